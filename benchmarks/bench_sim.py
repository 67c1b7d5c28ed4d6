"""Simulated goodput table: bulk transfer over a lossy 50 Mbit/s, 50 ms path.

How this works
--------------
Each run is one :func:`transport.sim.transfer.run_transfer` in the
deterministic simulator: a client sends one stream to a server over
``Path.symmetric(rate, rtt, queue_bdp=1)`` with Bernoulli loss ``p`` on the
data direction (the ACK direction is lossless unless ``--loss-both``). The
transfer size is what the ideal sender would move in ``--duration`` seconds
of virtual time, ``(1 - p) * rate / 8 * duration``, and the run is cut at
``1.5 * duration`` (plus the handshake), so every run simulates between
``duration`` and ``1.5 * duration`` seconds whatever the controller achieves.

Reported per run: goodput (bytes the receiving application read, over the time
from the first byte written to the last byte read), goodput as a fraction of
``(1 - p) * rate`` (the capacity left after random loss), whether the transfer
completed, the virtual seconds simulated, the wall-clock seconds taken and the
simulator speed factor (virtual / wall). Per loss rate: medians over
``--seeds`` seeds. Output: one JSON document on stdout.

Controllers: the config default, or any name in
``transport.congestion.controllers`` (``--cc newreno``, ``--cc all``).

Run: python benchmarks/bench_sim.py [--quick] [--cc NAME|all] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from transport import Config
from transport.congestion import controllers
from transport.sim import Bernoulli, Path
from transport.sim.transfer import run_transfer
from transport.wire import backend

RATE_BPS = 50e6
RTT_S = 0.050
QUEUE_BDP = 1.0
LOSS_RATES = (0.0, 0.005, 0.01, 0.02, 0.05, 0.10)


def _controller_name(factory: object) -> str:
    for name, candidate in controllers.items():
        if candidate is factory:
            return name
    return getattr(factory, "__name__", repr(factory))


def _one_run(
    factory: Callable[..., Any], loss: float, seed: int, duration_s: float, loss_both: bool
) -> dict[str, Any]:
    capacity_bps = (1.0 - loss) * RATE_BPS
    size_bytes = int(capacity_bps / 8 * duration_s)
    model = Bernoulli(loss) if loss else None
    path = Path.symmetric(
        RATE_BPS,
        RTT_S,
        queue_bdp=QUEUE_BDP,
        loss=model,
        loss_backward="same" if loss_both else None,
    )

    def config(rng: random.Random) -> Config:
        return Config(rng=rng, congestion_control=factory)

    time_limit_s = 1.5 * duration_s + 1.0
    started = time.perf_counter()
    result = run_transfer(
        size_bytes, path, seed=seed, config=config, time_limit_s=time_limit_s, close=False
    )
    wall_s = time.perf_counter() - started
    virtual_s = result.handshake_s + result.duration_s if result.completed else time_limit_s
    client = result.client
    return {
        "seed": seed,
        "size_bytes": size_bytes,
        "completed": result.completed,
        "intact": result.intact if result.completed else None,
        "bytes_delivered": result.bytes_delivered,
        "goodput_mbps": round(result.goodput_bps / 1e6, 3),
        "goodput_fraction": round(result.goodput_bps / capacity_bps, 4),
        "virtual_s": round(virtual_s, 3),
        "wall_s": round(wall_s, 3),
        "speed_factor": round(virtual_s / wall_s, 2) if wall_s > 0 else None,
        "link_loss_rate": round(result.forward_link.loss_rate, 4),
        "queue_drops": result.forward_link.packets_dropped_queue,
        "packets_sent": client.packets_sent if client else 0,
        "packets_lost": client.packets_lost if client else 0,
        "spurious_retransmits": client.spurious_retransmits if client else 0,
        "chunk_latency_p50_s": round(result.chunk_latency_p50_s, 4),
        "chunk_latency_p99_s": round(result.chunk_latency_p99_s, 4),
    }


def _row(
    factory: Callable[..., Any], loss: float, seeds: list[int], duration_s: float,
    loss_both: bool,
) -> dict[str, Any]:
    runs = [_one_run(factory, loss, seed, duration_s, loss_both) for seed in seeds]
    return {
        "loss": loss,
        "goodput_fraction_median": statistics.median(r["goodput_fraction"] for r in runs),
        "goodput_mbps_median": statistics.median(r["goodput_mbps"] for r in runs),
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "virtual_s_median": statistics.median(r["virtual_s"] for r in runs),
        "speed_factor_median": statistics.median(
            r["speed_factor"] for r in runs if r["speed_factor"] is not None
        ),
        "all_completed": all(r["completed"] for r in runs),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--cc",
        default=None,
        help=f"controller: one of {sorted(controllers)}, or 'all' (default: the config default)",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per loss rate (>= 3)")
    parser.add_argument(
        "--duration", type=float, default=20.0, help="ideal transfer time in virtual seconds"
    )
    parser.add_argument("--quick", action="store_true", help="short runs (3 s) for a smoke test")
    parser.add_argument(
        "--loss-both", action="store_true", help="apply the loss to the ACK direction too"
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    duration_s = 3.0 if args.quick else args.duration
    if args.cc is None:
        factories = {_controller_name(Config().congestion_control): Config().congestion_control}
    elif args.cc == "all":
        factories = dict(controllers)
    elif args.cc in controllers:
        factories = {args.cc: controllers[args.cc]}
    else:
        parser.error(f"unknown controller {args.cc!r}; known: {sorted(controllers)}")
    seeds = list(range(1, args.seeds + 1))
    started = time.perf_counter()
    table = {
        name: [_row(factory, loss, seeds, duration_s, args.loss_both) for loss in LOSS_RATES]
        for name, factory in factories.items()
    }
    report = {
        "benchmark": "sim_goodput",
        "path": {
            "rate_bps": RATE_BPS,
            "rtt_s": RTT_S,
            "queue_bdp": QUEUE_BDP,
            "loss_model": "bernoulli",
            "loss_direction": "both" if args.loss_both else "data only",
        },
        "duration_s": duration_s,
        "seeds": seeds,
        "statistic": "median over seeds",
        "goodput_fraction_of": "(1 - loss) * rate_bps",
        "codec_backend": backend,
        "python": platform.python_version(),
        "quick": args.quick,
        "controllers": table,
        "summary": {
            name: {f"{row['loss']:.3f}": row["goodput_fraction_median"] for row in rows}
            for name, rows in table.items()
        },
        "total_wall_s": round(time.perf_counter() - started, 2),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
