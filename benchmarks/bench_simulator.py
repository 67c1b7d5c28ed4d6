"""Simulator speed: 50 Mbit/s, 50 ms RTT, 1 % loss, 60 s bulk transfer (BBR).

Prints JSON: wall seconds, virtual seconds, speed factor (virtual / wall),
goodput and events per second, for security "noise" (default) and "none".
``--duration`` shortens the run; ``--profile`` prints the top functions by
internal time (cProfile) to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
from pathlib import Path

from transport.sim.loss import Bernoulli
from transport.sim.scenarios import PathSpec, Scenario
from transport.sim.workloads import run_scenario


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--security", default="noise,none")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--out", help="also write the JSON here (e.g. benchmarks/results/simulator.json)"
    )
    args = parser.parse_args()
    path = PathSpec(rate_bps=50e6, rtt_s=0.050, loss=Bernoulli(0.01))
    results = []
    for security in args.security.split(","):
        sc = Scenario(
            "bench-simulator", path=path, cc="bbr", duration_s=args.duration, security=security
        )
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        run = run_scenario(sc, seed=1, sample_interval_s=1.0)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(20)
        results.append(
            {
                "security": security,
                "virtual_s": round(run.duration_s, 3),
                "wall_s": round(run.wall_s, 3),
                "speed_factor": round(run.speed_factor, 2),
                "goodput_mbps": round(run.goodput_bps / 1e6, 3),
                "packets_sent": run.packets_sent,
                "events": run.events,
                "events_per_wall_s": round(run.events / run.wall_s),
                "meets_60s_wall": run.wall_s <= 60.0 * args.duration / 60.0,
            }
        )
        print(json.dumps(results[-1]), file=sys.stderr)
    text = json.dumps({"benchmark": "simulator", "path": path.to_dict(), "runs": results}, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
