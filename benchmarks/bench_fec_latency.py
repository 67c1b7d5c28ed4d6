"""FEC in the protocol, in the simulator: message latency and bulk cost.

How this works
--------------
Messaging workload (issue 6): 1 KiB messages written at 1 MB/s on one stream
over a 20 Mbit/s, 80 ms RTT path (one-way 40 ms), for ``--seconds`` of virtual
time. The sender notes when each message was written; the receiver reads
whole messages and records when each became readable. Delivery latency =
readable - written, so it includes head-of-line blocking behind a lost packet.
Runs with FEC off (ARQ alone) and adaptive, at 1, 2 and 5 % random loss and
at 2 % Gilbert-Elliott loss with mean burst 3; median over ``--seeds``.

Bulk workload: a clean path (0 %) and 5 % loss, 50 Mbit/s, 50 ms RTT: goodput
with FEC off vs adaptive, and the repair overhead.

Targets: with adaptive FEC, p99 <= one-way delay + 20 ms at 2 % random loss,
and >= 3x lower p99 than ARQ alone; adaptive FEC costs <= 2 % goodput at 0 %
loss. Prints one JSON object. Run: python benchmarks/bench_fec_latency.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from transport import Config
from transport.connection import Connection
from transport.endpoint import Endpoint
from transport.events import Event, HandshakeCompleted, StreamReadable
from transport.sim import Bernoulli, GilbertElliott, Path, Simulator
from transport.sim.transfer import CLIENT_ADDR, SERVER_ADDR, AppNode, provision_keys, run_transfer

MESSAGE_BYTES = 1024
RATE_BYTES_PER_S = 1_000_000
ONE_WAY_S = 0.040


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def run_messages(fec: str, loss: Any, seed: int, seconds: float) -> dict[str, float]:
    sim = Simulator(seed=seed)
    path = Path.symmetric(20e6, 2 * ONE_WAY_S, loss=loss, queue_bdp=2.0)
    ccfg, scfg = provision_keys(
        Config(rng=sim.rng("client"), fec=fec), Config(rng=sim.rng("server"), fec=fec),
        sim.rng("keys"),
    )
    client_ep, server_ep = Endpoint(ccfg), Endpoint(scfg, is_server=True)
    written: list[float] = []
    readable: list[float] = []
    state: dict[str, Any] = {"sid": None, "conn": None, "buf": 0}
    interval_s = MESSAGE_BYTES / RATE_BYTES_PER_S
    message = bytes(MESSAGE_BYTES)

    def client_event(conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, HandshakeCompleted):
            state["conn"], state["sid"] = conn, conn.open_stream()
            sim.call_later(0.0, send_one)

    def send_one(now: float) -> None:
        conn: Connection = state["conn"]
        if now > seconds or conn.is_closed:
            return
        if conn.send_stream_data(state["sid"], message) == MESSAGE_BYTES:
            written.append(now)
        sim.call_later(interval_s, send_one, touches=[CLIENT_ADDR])

    def server_event(conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, StreamReadable):
            data, _fin = conn.recv_stream_data(event.stream_id)
            total = state["buf"] + len(data)
            whole, state["buf"] = divmod(total, MESSAGE_BYTES)
            readable.extend([now] * whole)

    sim.attach(CLIENT_ADDR, AppNode(client_ep, client_event))
    sim.attach(SERVER_ADDR, AppNode(server_ep, server_event))
    sim.connect(CLIENT_ADDR, SERVER_ADDR, path)
    client_conn = client_ep.connect(SERVER_ADDR, 0.0)
    sim.run(until_s=seconds + 3.0)
    latencies = [r - w for w, r in zip(written, readable, strict=False)]
    warm = latencies[len(latencies) // 20 :]  # skip the first 5 % (slow start)
    stats = client_conn.get_stats()
    return {
        "messages": len(latencies),
        "p50_ms": _percentile(warm, 0.50) * 1000,
        "p99_ms": _percentile(warm, 0.99) * 1000,
        "p999_ms": _percentile(warm, 0.999) * 1000,
        "repair_overhead": stats.fec_repair_bytes_sent / max(1, stats.bytes_sent),
        "retransmitted_packets": stats.packets_retransmitted,
        "recovered_by_fec": stats.fec_reported_recovered,
    }


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
    }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bulk-bytes", type=int, default=40_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    losses: dict[str, Any] = {
        "random_1%": lambda: Bernoulli(0.01),
        "random_2%": lambda: Bernoulli(0.02),
        "random_5%": lambda: Bernoulli(0.05),
        "bursty_2%_burst3": lambda: GilbertElliott.from_mean(0.02, 3.0),
    }
    messaging: dict[str, Any] = {}
    for name, make_loss in losses.items():
        messaging[name] = {
            fec: _median(
                [run_messages(fec, make_loss(), seed, args.seconds) for seed in range(args.seeds)]
            )
            for fec in ("off", "adaptive")
        }
    bulk = {
        f"loss_{int(p * 100)}%": {
            fec: _median([run_bulk(fec, p, seed, args.bulk_bytes) for seed in range(args.seeds)])
            for fec in ("off", "adaptive")
        }
        for p in (0.0, 0.05)
    }
    two = messaging["random_2%"]
    p99_adaptive, p99_off = two["adaptive"]["p99_ms"], two["off"]["p99_ms"]
    clean = bulk["loss_0%"]
    cost = 1 - clean["adaptive"]["goodput_mbps"] / clean["off"]["goodput_mbps"]
    report = {
        "benchmark": "FEC in the protocol (simulator)",
        "messaging": messaging,
        "bulk": bulk,
        "targets": {
            "p99_adaptive_at_2%_ms": p99_adaptive,
            "p99_le_one_way_plus_20ms": p99_adaptive <= ONE_WAY_S * 1000 + 20,
            "p99_off_over_adaptive": round(p99_off / p99_adaptive, 2),
            "p99_3x_lower_than_arq": p99_off >= 3 * p99_adaptive,
            "adaptive_goodput_cost_at_0%": round(cost, 4),
            "cost_le_2%": cost <= 0.02,
        },
        "wall_s": round(time.perf_counter() - started, 1),
        "command": f"python benchmarks/bench_fec_latency.py --seconds {args.seconds} "
        f"--seeds {args.seeds} --bulk-bytes {args.bulk_bytes}",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
