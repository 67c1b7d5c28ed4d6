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
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict


def _parse_rate(text: str) -> float:
    units = {"k": 1e3, "m": 1e6, "g": 1e9}
    value = text.strip().lower().removesuffix("bit").removesuffix("bps")
    if value and value[-1] in units:
        return float(value[:-1]) * units[value[-1]]
    return float(value)


def _parse_seconds(text: str) -> float:
    value = text.strip().lower()
    if value.endswith("ms"):
        return float(value[:-2]) / 1000
    return float(value.removesuffix("s"))


def _parse_fraction(text: str) -> float:
    value = text.strip()
    if value.endswith("%"):
        return float(value[:-1]) / 100
    return float(value)


def _cmd_sim(args: argparse.Namespace) -> int:
    from transport.sim import Bernoulli, GilbertElliott, LossModel, Path
    from transport.sim.transfer import run_transfer

    loss: LossModel | None = None
    if args.loss > 0:
        if args.burst > 1:
            loss = GilbertElliott.from_mean(args.loss, args.burst)
        else:
            loss = Bernoulli(args.loss)
    path = Path.symmetric(args.rate, args.rtt, queue_bdp=args.queue_bdp, loss=loss)
    started = time.perf_counter()
    result = run_transfer(int(args.size), path, seed=args.seed, streams=args.streams)
    wall_s = time.perf_counter() - started
    capacity = args.rate * (1 - args.loss)
    summary = {
        "goodput_mbps": round(result.goodput_bps / 1e6, 3),
        "fraction_of_capacity": round(result.goodput_bps / capacity, 4) if capacity else None,
        "bytes": result.bytes_delivered,
        "intact": result.intact,
        "virtual_seconds": round(result.duration_s, 3),
        "wall_seconds": round(wall_s, 3),
        "speed_factor": round(result.duration_s / wall_s, 2) if wall_s else None,
        "rtt_ms": round(result.client.smoothed_rtt_s * 1000, 2) if result.client else None,
        "packets_lost": result.client.packets_lost if result.client else None,
        "packets_retransmitted": result.client.packets_retransmitted if result.client else None,
    }
    if args.json:
        payload = dict(summary, client=asdict(result.client) if result.client else None)
        print(json.dumps(payload, indent=2))
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key:<{width}}  {value}")
    return 0 if result.intact else 1


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


def _cmd_keygen(args: argparse.Namespace) -> int:
    """Write a new X25519 key pair: PATH (private, mode 0600) and PATH.pub."""
    import os

    from transport.crypto.keys import generate_keypair, public_key_to_raw, save_keypair
    from transport.errors import KeyFormatError

    private_path = str(args.out)
    public_path = private_path + ".pub"
    existing = [p for p in (private_path, public_path) if os.path.lexists(p)]
    if existing and not args.force:
        print(
            f"transport keygen: {', '.join(existing)} already exist(s); use --force to replace",
            file=sys.stderr,
        )
        return 2
    try:
        for path in existing:
            os.unlink(path)
    except OSError as exc:
        print(f"transport keygen: cannot replace {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    keypair = generate_keypair()
    try:
        save_keypair(keypair, private_path, public_path, fmt=args.format)
    except KeyFormatError as exc:
        if os.path.lexists(private_path) and not os.path.lexists(public_path):
            os.unlink(private_path)  # do not leave half a key pair behind
        print(f"transport keygen: {exc}", file=sys.stderr)
        return 2
    print(public_key_to_raw(keypair.public))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transport", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("sim", help="run a verified transfer through the simulator")
    sim.add_argument("--rate", type=_parse_rate, default=50e6, help="e.g. 50mbit (default)")
    sim.add_argument("--rtt", type=_parse_seconds, default=0.050, help="e.g. 50ms (default)")
    sim.add_argument("--loss", type=_parse_fraction, default=0.0, help="e.g. 1%% or 0.01")
    sim.add_argument("--burst", type=float, default=1.0, help="mean loss burst length")
    sim.add_argument("--queue-bdp", type=float, default=1.0, help="queue in BDPs")
    sim.add_argument("--size", type=float, default=20e6, help="bytes to transfer")
    sim.add_argument("--streams", type=int, default=1)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=_cmd_sim)

    dis = sub.add_parser("dissect", help="print the packets in a pcap file")
    dis.add_argument("pcap")
    dis.add_argument("--port", type=int, default=4433)
    dis.add_argument("--cid-length", type=int, default=8)
    dis.add_argument("-v", "--verbose", action="store_true")
    dis.set_defaults(func=_cmd_dissect)

    keygen = sub.add_parser(
        "keygen", help="create an X25519 key pair: PATH (private, 0600) and PATH.pub"
    )
    keygen.add_argument("--out", required=True, help="private key file; PATH.pub gets the public")
    keygen.add_argument("--format", choices=("pem", "raw"), default="pem",
                        help="pem: PKCS#8 / SubjectPublicKeyInfo (default); raw: base64 line")
    keygen.add_argument("--force", action="store_true", help="replace existing files")
    keygen.set_defaults(func=_cmd_keygen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
