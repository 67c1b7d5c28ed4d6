"""`transport relay`: a UDP impairment relay on loopback (see transport.relay)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from transport.cli.units import parse_fraction, parse_rate, parse_seconds


def _cmd_relay(args: argparse.Namespace) -> int:
    from transport.errors import ConfigurationError
    from transport.relay import Relay
    from transport.sim.jitter import UniformJitter
    from transport.sim.loss import Bernoulli, GilbertElliott
    from transport.sim.scenarios import PathSpec

    try:
        loss = None
        if args.loss > 0:
            loss = (
                GilbertElliott.from_mean(args.loss, args.burst)
                if args.burst > 1
                else Bernoulli(args.loss)
            )
        path = PathSpec(
            rate_bps=args.rate,
            rtt_s=2 * args.delay,
            queue_bdp=args.queue_bdp,
            aqm=args.aqm,
            loss=loss,
            jitter=UniformJitter(args.jitter) if args.jitter > 0 else None,
            reorder=args.reorder,
            duplicate_p=args.duplicate,
            corrupt_p=args.corrupt,
        )
        relay = Relay(
            path, listen_port=args.listen, target_port=args.target, host=args.host, seed=args.seed
        )
    except (ConfigurationError, OSError) as exc:
        print(f"transport relay: {exc}", file=sys.stderr)
        return 2
    print(
        f"relaying {args.host}:{relay.port} -> {args.host}:{args.target} "
        f"(rate {args.rate or 'unlimited'}, one-way delay {args.delay * 1e3:g} ms, "
        f"loss {args.loss * 100:g} %)",
        file=sys.stderr,
        flush=True,
    )
    try:
        relay.serve(duration_s=args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        fwd, bwd = relay.stats()
        relay.close()
        keys = (
            "packets_offered",
            "packets_dropped_loss",
            "packets_dropped_queue",
            "packets_delivered",
        )
        report = {
            name: {k: asdict(s)[k] for k in keys}
            for name, s in (("forward", fwd), ("backward", bwd))
        }
        print(json.dumps(report, indent=2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("relay", help="UDP impairment relay on loopback (delay, loss, rate, queue)")
    p.add_argument("--listen", type=int, required=True, help="port clients send to")
    p.add_argument("--target", type=int, required=True, help="port of the real server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--rate", type=parse_rate, default=None, help="e.g. 50mbit (default: unlimited)")
    p.add_argument("--delay", type=parse_seconds, default=0.0, help="one-way delay, e.g. 25ms")
    p.add_argument("--loss", type=parse_fraction, default=0.0, help="each way, e.g. 2%%")
    p.add_argument(
        "--burst", type=float, default=1.0, help="mean loss burst (Gilbert-Elliott if > 1)"
    )
    p.add_argument("--queue-bdp", type=float, default=1.0)
    p.add_argument("--aqm", choices=("droptail", "codel"), default="droptail")
    p.add_argument(
        "--jitter", type=parse_seconds, default=0.0, help="uniform extra delay up to this"
    )
    p.add_argument("--reorder", action="store_true", help="let jitter reorder packets")
    p.add_argument("--duplicate", type=parse_fraction, default=0.0)
    p.add_argument("--corrupt", type=parse_fraction, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=parse_seconds, default=None, help="stop after this long")
    p.set_defaults(func=_cmd_relay)
