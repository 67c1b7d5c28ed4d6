"""The ``transport`` command line.

How this works
--------------
``transport sim`` runs one verified bulk transfer through the deterministic
simulator (rate, RTT, queue, random or bursty loss) and prints goodput and the
connection counters, as a table or ``--json``. ``transport dissect`` prints the
packets of a pcap file captured on this protocol's UDP port, using the scapy
dissector (the ``scapy`` extra). More subcommands (``bench``, ``send``,
``recv``, ``relay``) arrive with the drivers. ``transport keygen --out PATH``
writes a new X25519 key pair (PATH private, mode 0600; PATH.pub public) and
prints the public key as base64.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from transport.cli import bench, dissect, keygen, relay, sim, transfer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transport", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (sim, dissect, keygen, relay, bench, transfer):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
