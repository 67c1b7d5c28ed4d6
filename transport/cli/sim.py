"""`transport sim`: one verified transfer through the simulator."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from transport.cli.units import parse_fraction, parse_rate, parse_seconds


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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("sim", help="run a verified transfer through the simulator")
    sim.add_argument("--rate", type=parse_rate, default=50e6, help="e.g. 50mbit (default)")
    sim.add_argument("--rtt", type=parse_seconds, default=0.050, help="e.g. 50ms (default)")
    sim.add_argument("--loss", type=parse_fraction, default=0.0, help="e.g. 1%% or 0.01")
    sim.add_argument("--burst", type=float, default=1.0, help="mean loss burst length")
    sim.add_argument("--queue-bdp", type=float, default=1.0, help="queue in BDPs")
    sim.add_argument("--size", type=float, default=20e6, help="bytes to transfer")
    sim.add_argument("--streams", type=int, default=1)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=_cmd_sim)
