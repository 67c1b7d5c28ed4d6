"""``python -m transport.emulate --rate 50mbit --delay 25ms --loss 2% -- CMD``.

Builds an :class:`EmulatedPath`, runs CMD in namespace A (``{a}``, ``{b}``,
``{addr_b}`` in CMD are replaced by the namespace names and B's address) and
tears everything down; the exit status is CMD's. ``--server CMD`` starts a
command in namespace B first (and stops it afterwards).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

from transport.cli.units import parse_fraction, parse_rate, parse_seconds
from transport.emulate import ADDR_B, EmulatedPath


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m transport.emulate", description=__doc__)
    ap.add_argument("--rate", type=parse_rate, default=50e6)
    ap.add_argument("--delay", type=parse_seconds, default=0.025, help="one-way")
    ap.add_argument("--loss", type=parse_fraction, default=0.0)
    ap.add_argument("--queue-bdp", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--server", help="command to start in namespace B first")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("give a command after --")
    with EmulatedPath(
        rate_bps=args.rate,
        delay_s=args.delay,
        loss=args.loss,
        queue_bdp=args.queue_bdp,
        seed=args.seed,
    ) as path:
        subst = {"a": path.ns["a"], "b": path.ns["b"], "addr_b": ADDR_B}
        server = None
        if args.server:
            server = path.popen("b", shlex.split(args.server.format(**subst)))
            time.sleep(0.3)
        try:
            return path.run("a", [c.format(**subst) for c in cmd]).returncode
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    server.kill()


if __name__ == "__main__":
    sys.exit(main())
