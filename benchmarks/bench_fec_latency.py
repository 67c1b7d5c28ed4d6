"""FEC in the protocol, in the simulator: message latency and bulk cost.

How this works
--------------
Messaging workload (issue 6): 1 KiB messages, one every 1.024 ms (1 MB/s),
over a 20 Mbit/s, 80 ms RTT path (one-way 40 ms, a 2-BDP queue), for
``--seconds`` of virtual time, with the same application objects as the
simulator's scenarios (:func:`transport.sim.workloads.run_message_latency`
with :class:`~transport.sim.workloads.MessageSender` and
:class:`~transport.sim.workloads.MessageReceiver`). A message's latency runs
from its *scheduled* send time to the moment its last byte is readable at the
receiver, so sender-side queueing and head-of-line blocking both count.
Messages scheduled in the first ``--warmup`` seconds (slow start, and the
first loss-rate estimate the adaptive policy needs) are left out of the
percentiles, for both arms alike.

Two message-to-stream mappings, each run with FEC off (ARQ alone) and
adaptive, identical otherwise:

* ``ordered`` -- every message on one ordered stream (a log, a feed, a
  WebSocket-like channel). A lost packet holds back every later message until
  it is repaired; this is the case the issue's target describes ("the slowest
  messages wait 2-3 RTTs").
* ``per_message`` -- one unidirectional stream per message (the QUIC idiom
  for independent messages; the receiver allows 4096 concurrent streams so
  stream credit never limits). A loss delays only its own message.

Loss: 1, 2 and 5 % random, and Gilbert-Elliott at 2 % with mean burst 3,
applied to both directions. Figures are medians over ``--seeds`` seeds of
per-run percentiles; ``pooled`` percentiles over all seeds' messages are also
reported.

Bulk workload: 40 MB over a clean path (0 %) and at 5 % loss, 50 Mbit/s,
50 ms RTT: goodput with FEC off vs adaptive, and the repair overhead.

Targets: with adaptive FEC, p99 <= one-way delay + 20 ms at 2 % random loss,
and >= 3x lower p99 than ARQ alone; adaptive FEC costs <= 2 % goodput at 0 %
loss. Prints one JSON object (``--out`` also writes it); ``--plot`` writes a
latency CDF. Run: python benchmarks/bench_fec_latency.py
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from transport import Config
from transport.sim import Bernoulli, GilbertElliott, Path
from transport.sim.loss import LossModel
from transport.sim.transfer import run_transfer
from transport.sim.workloads import run_message_latency

MESSAGE_BYTES = 1024
RATE_BYTES_PER_S = 1_000_000
ONE_WAY_S = 0.040
RATE_BPS = 20e6
MAX_STREAMS = 4096
DRAIN_S = 3.0
MAPPINGS = ("ordered", "per_message")
LOSSES: dict[str, Callable[[], LossModel]] = {
    "random_1%": lambda: Bernoulli(0.01),
    "random_2%": lambda: Bernoulli(0.02),
    "random_5%": lambda: Bernoulli(0.05),
    "bursty_2%_burst3": lambda: GilbertElliott.from_mean(0.02, 3.0),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def run_messages(
    fec: str, loss: LossModel, seed: int, seconds: float, mapping: str, warmup_s: float
) -> tuple[dict[str, float], list[float]]:
    """One messaging run: summary figures and the steady-state latencies (s)."""
    path = Path.symmetric(RATE_BPS, 2 * ONE_WAY_S, loss=loss, queue_bdp=2.0)

    def make(rng: random.Random) -> Config:
        return Config(rng=rng, fec=fec, max_streams_uni=MAX_STREAMS)

    run = run_message_latency(
        make,
        path,
        seed=seed,
        seconds=seconds,
        message_bytes=MESSAGE_BYTES,
        interval_s=MESSAGE_BYTES / RATE_BYTES_PER_S,
        per_message_streams=mapping == "per_message",
        drain_s=DRAIN_S,
    )
    steady = run.latencies_s(warmup_s)
    stats = run.client.get_stats()
    fec_sender = run.client._fec_sender
    summary = {
        "messages": len(steady),
        "undelivered": run.scheduled - len(run.delivered),
        "p50_ms": percentile(steady, 0.50) * 1000,
        "p90_ms": percentile(steady, 0.90) * 1000,
        "p99_ms": percentile(steady, 0.99) * 1000,
        "p999_ms": percentile(steady, 0.999) * 1000,
        "max_ms": max(steady, default=float("nan")) * 1000,
        "repair_overhead": stats.fec_repair_bytes_sent / max(1, stats.bytes_sent),
        "packets_sent": stats.packets_sent,
        "retransmitted_packets": stats.packets_retransmitted,
        "recovered_by_fec": stats.fec_reported_recovered,
        "fec_blocks": fec_sender.block_id if fec_sender is not None else 0,
        "released_to_arq_early": fec_sender.tracker.released if fec_sender is not None else 0,
    }
    return summary, steady


def run_bulk(fec: str, loss_rate: float, seed: int, size: int) -> dict[str, float]:
    loss = Bernoulli(loss_rate) if loss_rate else None
    path = Path.symmetric(50e6, 0.050, loss=loss)
    result = run_transfer(size, path, seed=seed, config=lambda rng: Config(rng=rng, fec=fec))
    client = result.client
    return {
        "goodput_mbps": result.goodput_bps / 1e6,
        "intact": float(result.intact),
        "repair_overhead": (client.fec_repair_bytes_sent / max(1, client.bytes_sent))
        if client
        else 0.0,
        "retransmitted_packets": client.packets_retransmitted if client else 0,
        "recovered_by_fec": client.fec_reported_recovered if client else 0,
    }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}


def plot_cdf(curves: dict[str, list[float]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for label, values in curves.items():
        ordered = sorted(v * 1000 for v in values)
        n = len(ordered)
        # complementary CDF on a log axis: the tail is what matters
        ax.step(ordered, [1 - (i + 1) / n + 1 / n for i in range(n)], where="post", label=label)
    ax.axvline(ONE_WAY_S * 1000 + 20, color="grey", linestyle="--", label="one-way + 20 ms")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1.0)
    ax.set_xlabel("message latency (ms)")
    ax.set_ylabel("fraction of messages slower (1 - CDF)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bulk-bytes", type=int, default=40_000_000)
    parser.add_argument("--losses", default=",".join(LOSSES), help="comma-separated subset")
    parser.add_argument("--mappings", default=",".join(MAPPINGS))
    parser.add_argument("--no-bulk", action="store_true")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--plot", help="write a latency CDF (PNG) of the 2 %% random runs")
    args = parser.parse_args()
    started = time.perf_counter()
    messaging: dict[str, Any] = {}
    curves: dict[str, list[float]] = {}
    for mapping in args.mappings.split(","):
        messaging[mapping] = {}
        for name in args.losses.split(","):
            arms: dict[str, Any] = {}
            for fec in ("off", "adaptive"):
                runs, pooled = [], []
                for seed in range(args.seeds):
                    summary, steady = run_messages(
                        fec, LOSSES[name](), seed, args.seconds, mapping, args.warmup
                    )
                    runs.append(summary)
                    pooled.extend(steady)
                arm = _median(runs)
                arm["pooled_p99_ms"] = round(percentile(pooled, 0.99) * 1000, 2)
                arm["pooled_p999_ms"] = round(percentile(pooled, 0.999) * 1000, 2)
                arm["per_seed_p99_ms"] = [round(r["p99_ms"], 2) for r in runs]
                arms[fec] = arm
                if name == "random_2%":
                    curves[f"{mapping}, FEC {fec}"] = pooled
            messaging[mapping][name] = arms
    bulk: dict[str, Any] = {}
    if not args.no_bulk:
        bulk = {
            f"loss_{int(p * 100)}%": {
                fec: _median(
                    [run_bulk(fec, p, seed, args.bulk_bytes) for seed in range(args.seeds)]
                )
                for fec in ("off", "adaptive")
            }
            for p in (0.0, 0.05)
        }
    targets: dict[str, Any] = {}
    for mapping, by_loss in messaging.items():
        two = by_loss.get("random_2%")
        if two is None:
            continue
        p99_adaptive, p99_off = two["adaptive"]["p99_ms"], two["off"]["p99_ms"]
        targets[mapping] = {
            "p99_adaptive_at_2%_ms": p99_adaptive,
            "p99_le_one_way_plus_20ms": p99_adaptive <= ONE_WAY_S * 1000 + 20,
            "p99_off_over_adaptive": round(p99_off / p99_adaptive, 2),
            "p99_3x_lower_than_arq": p99_off >= 3 * p99_adaptive,
        }
    if bulk:
        clean = bulk["loss_0%"]
        cost = 1 - clean["adaptive"]["goodput_mbps"] / clean["off"]["goodput_mbps"]
        targets["bulk"] = {
            "adaptive_goodput_cost_at_0%": round(cost, 4),
            "cost_le_2%": cost <= 0.02,
        }
    report = {
        "benchmark": "FEC in the protocol (simulator)",
        "messaging": messaging,
        "bulk": bulk,
        "targets": targets,
        "wall_s": round(time.perf_counter() - started, 1),
        "command": f"python benchmarks/bench_fec_latency.py --seconds {args.seconds} "
        f"--warmup {args.warmup} --seeds {args.seeds} --bulk-bytes {args.bulk_bytes}",
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.plot and curves:
        plot_cdf(curves, args.plot, "FEC off vs adaptive, 2 % random loss, 1 KiB at 1 MB/s")


if __name__ == "__main__":
    main()
