"""`transport dissect`: print the packets of a pcap file (scapy extra)."""

from __future__ import annotations

import argparse
import sys


def _cmd_dissect(args: argparse.Namespace) -> int:
    from transport import dissect

    try:
        from scapy.utils import rdpcap
    except ImportError:  # pragma: no cover - depends on the extra
        print("transport dissect needs scapy: pip install 'transport[scapy]'", file=sys.stderr)
        return 2
    dissect.bind(port=args.port, short_cid_length=args.cid_length)
    for packet in rdpcap(args.pcap):
        packet.show() if args.verbose else print(packet.summary())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dis = sub.add_parser("dissect", help="print the packets in a pcap file")
    dis.add_argument("pcap")
    dis.add_argument("--port", type=int, default=4433)
    dis.add_argument("--cid-length", type=int, default=8)
    dis.add_argument("-v", "--verbose", action="store_true")
    dis.set_defaults(func=_cmd_dissect)
