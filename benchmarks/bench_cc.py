"""Congestion-control benchmark in the simulator: NewReno, CUBIC and BBR.

How this works
--------------
Every scenario runs real :class:`~transport.endpoint.Endpoint` pairs in the
deterministic simulator (virtual time, seeded). ``run_flows`` builds a
*dumbbell*: each flow has its own client and server address, and every
client->server route starts with the SAME forward bottleneck :class:`Link`
(the server->client routes share one return link), so flows compete for one
drop-tail queue. Senders write without end (bulk); receivers count bytes read
per 100 ms bin. The bottleneck backlog is sampled every 10 ms to give the
RTT (base RTT + queueing delay).

Scenarios (path 50 Mbit/s, 50 ms RTT, queue 1 BDP unless stated):

(a) utilisation at 0 % loss: goodput after the first 2 s / capacity, and
    the bottleneck's busy share (IP bytes delivered / capacity);
(b) random loss {0.5, 1, 2, 5, 10} % both ways: goodput / ((1 - p) x capacity);
(c) bufferbloat, queue 10 BDP: median RTT / base RTT;
(d) fairness: 2 and 4 flows of one controller, Jain's index of per-flow
    goodput over seconds 10-20 (flows start 0.5 s apart); BBR vs CUBIC split;
(e) capacity 50 -> 10 -> 50 Mbit/s at 10 s and 20 s: time until the goodput
    of 500 ms bins stays >= 80 % of the new capacity for 1 s.

Goodput counts stream payload only; packet headers, the CRC and the
IPv4/UDP overhead (~4 % at 1400-byte datagrams) are not goodput, so 0.96 is
about the ceiling of the ratios in (a) and (b) when the sender does not
compensate for loss.

Output: JSON on stdout; PNG plots in ``benchmarks/results/`` when matplotlib
imports. ``--quick`` shortens everything for CI smoke runs.

Run: python benchmarks/bench_cc.py [--quick] [--only a,b] [--controllers bbr,cubic]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transport.config import Config
from transport.congestion import BBR, CongestionController, Cubic, NewReno
from transport.connection import Connection
from transport.endpoint import Endpoint
from transport.events import Event, HandshakeCompleted, StreamReadable, StreamWritable
from transport.sim import Bernoulli, Link, Simulator
from transport.sim.transfer import AppNode

RATE_BPS = 50e6
RTT_S = 0.050
BDP_BYTES = int(RATE_BPS / 8 * RTT_S)
BIN_S = 0.1
CONTROLLERS: dict[str, Callable[..., CongestionController]] = {
    "newreno": NewReno,
    "cubic": Cubic,
    "bbr": BBR,
}
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
MIB = 1024 * 1024
CHUNK = memoryview(bytes(range(256)) * 256)


@dataclass
class FlowResult:
    name: str
    bins: list[int]  # bytes read per BIN_S
    controller: CongestionController | None = None
    connection: Connection | None = None
    #: (time, state, cwnd, pacing rate, bytes in flight) every 10 ms with ``trace``
    trace: list[tuple[float, str, int, float, int]] = field(default_factory=list)

    def goodput_bps(self, start_s: float, end_s: float) -> float:
        i, j = round(start_s / BIN_S), round(end_s / BIN_S)
        return sum(self.bins[i:j]) * 8 / (end_s - start_s)


@dataclass
class RunResult:
    flows: list[FlowResult]
    rtt_samples: list[tuple[float, float]]  # (time, rtt_s)
    duration_s: float
    link_ip_bytes: int

    def median_rtt_s(self, start_s: float) -> float:
        values = [r for t, r in self.rtt_samples if t >= start_s]
        return statistics.median(values) if values else 0.0


class _Sender:
    """Writes without end on one stream once the handshake completes."""

    def __init__(self, start_s: float) -> None:
        self.start_s = start_s
        self.stream_id: int | None = None

    def on_event(self, conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, HandshakeCompleted):
            self.stream_id = conn.open_stream()
            self.fill(conn)
        elif isinstance(event, StreamWritable) and event.stream_id == self.stream_id:
            self.fill(conn)

    def fill(self, conn: Connection) -> None:
        if self.stream_id is None:
            return
        while conn.send_stream_data(self.stream_id, CHUNK) == len(CHUNK):
            pass


class _Receiver:
    def __init__(self, bins: list[int]) -> None:
        self.bins = bins

    def on_event(self, conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, StreamReadable):
            index = int(now / BIN_S)
            while True:
                data, _fin = conn.recv_stream_data(event.stream_id)
                if not data:
                    return
                if index < len(self.bins):
                    self.bins[index] += len(data)


def run_flows(
    controllers: list[Callable[..., CongestionController]],
    *,
    duration_s: float,
    rate_bps: float = RATE_BPS,
    rtt_s: float = RTT_S,
    queue_bdp: float = 1.0,
    loss: float = 0.0,
    start_gap_s: float = 0.0,
    rate_schedule: list[tuple[float, float]] | None = None,
    seed: int = 1,
    trace: bool = False,
) -> RunResult:
    """Run one bulk flow per controller factory over a shared bottleneck."""
    sim = Simulator(seed=seed)
    queue_bytes = max(int(queue_bdp * rate_bps / 8 * rtt_s), 3000)
    model = Bernoulli(loss) if loss else None
    forward = Link(
        rate_bps=rate_bps,
        delay_s=rtt_s / 2,
        queue_bytes=queue_bytes,
        loss=model,
        name="bottleneck:fwd",
    )
    backward = Link(
        rate_bps=rate_bps,
        delay_s=rtt_s / 2,
        queue_bytes=queue_bytes,
        loss=model,
        name="bottleneck:bwd",
    )
    nbins = int(duration_s / BIN_S) + 1
    flows: list[FlowResult] = []
    for index, factory in enumerate(controllers):
        result = FlowResult(name=getattr(factory, "__name__", str(factory)), bins=[0] * nbins)
        flows.append(result)

        def make(
            *,
            max_datagram_size: int,
            rng: Any = None,
            _f: Any = factory,
            _r: FlowResult = result,
        ) -> CongestionController:
            controller: CongestionController = _f(max_datagram_size=max_datagram_size, rng=rng)
            _r.controller = controller
            return controller

        client_addr = (f"10.0.1.{index + 1}", 50000)
        server_addr = (f"10.0.2.{index + 1}", 4433)
        client = Endpoint(
            Config(security="none", congestion_control=make, rng=sim.rng(f"c{index}")),
            is_server=False,
        )
        # Receive windows large enough for the path (flow control is not under test).
        server = Endpoint(
            Config(
                security="none",
                rng=sim.rng(f"s{index}"),
                initial_max_stream_data=8 * MIB,
                initial_max_data=16 * MIB,
            ),
            is_server=True,
        )
        sender = _Sender(index * start_gap_s)
        receiver = _Receiver(result.bins)
        sim.attach(client_addr, AppNode(client, sender.on_event))
        sim.attach(server_addr, AppNode(server, receiver.on_event))
        sim.add_route(client_addr, server_addr, forward)
        sim.add_route(server_addr, client_addr, backward)

        def start(
            now: float, _c: Endpoint = client, _a: Any = server_addr, _r: FlowResult = result
        ) -> None:
            _r.connection = _c.connect(_a, now)

        sim.schedule(index * start_gap_s, start)

    samples: list[tuple[float, float]] = []
    current_rate = [rate_bps]

    def sample(now: float) -> None:
        backlog = forward.backlog_bytes(now)
        samples.append((now, rtt_s + backlog * 8 / current_rate[0]))
        if trace:
            for flow in flows:
                c = flow.controller
                if c is not None and flow.connection is not None:
                    rate = c.pacing_rate_bps or 0.0
                    inflight = flow.connection.get_stats().bytes_in_flight
                    flow.trace.append((now, c.state, c.congestion_window_bytes, rate, inflight))
        if now + 0.01 < duration_s:
            sim.schedule(now + 0.01, sample, touches=())

    sim.schedule(0.01, sample, touches=())
    for at_s, new_rate in rate_schedule or []:

        def change(now: float, _r: float = new_rate) -> None:
            forward.set_rate(_r)
            backward.set_rate(_r)
            current_rate[0] = _r

        sim.schedule(at_s, change, touches=())
    sim.run(until_s=duration_s)
    stats = forward.stats()
    ip_bytes = stats.bytes_delivered + stats.packets_delivered * forward.overhead_bytes
    return RunResult(flows, samples, duration_s, ip_bytes)


def jain(values: list[float]) -> float:
    total = sum(values)
    squares = sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 0.0


# ---------------------------------------------------------------- scenarios
def scenario_utilisation(names: list[str], duration_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        run = run_flows([CONTROLLERS[name]], duration_s=duration_s)
        goodput = run.flows[0].goodput_bps(2.0, duration_s)
        out[name] = {
            "goodput_mbps": round(goodput / 1e6, 2),
            "utilisation": round(goodput / RATE_BPS, 3),
            "link_busy_share": round(run.link_ip_bytes * 8 / (RATE_BPS * duration_s), 3),
            "median_rtt_ms": round(run.median_rtt_s(2.0) * 1e3, 1),
        }
    return out


def scenario_loss(names: list[str], duration_s: float, losses: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        out[name] = {}
        for p in losses:
            run = run_flows([CONTROLLERS[name]], duration_s=duration_s, loss=p)
            goodput = run.flows[0].goodput_bps(2.0, duration_s)
            out[name][str(p)] = {
                "goodput_mbps": round(goodput / 1e6, 2),
                "ratio": round(goodput / ((1 - p) * RATE_BPS), 3),
            }
    return out


def scenario_bufferbloat(names: list[str], duration_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        run = run_flows([CONTROLLERS[name]], duration_s=duration_s, queue_bdp=10.0)
        median = run.median_rtt_s(3.0)
        out[name] = {
            "median_rtt_ms": round(median * 1e3, 1),
            "rtt_ratio": round(median / RTT_S, 3),
            "goodput_mbps": round(run.flows[0].goodput_bps(3.0, duration_s) / 1e6, 2),
        }
    return out


def scenario_fairness(
    names: list[str], duration_s: float, plots: dict[str, RunResult]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    window = (duration_s / 2, duration_s)
    for name in names:
        out[name] = {}
        for count in (2, 4):
            run = run_flows([CONTROLLERS[name]] * count, duration_s=duration_s, start_gap_s=0.5)
            rates = [f.goodput_bps(*window) for f in run.flows]
            out[name][f"{count}_flows"] = {
                "jain": round(jain(rates), 3),
                "goodput_mbps": [round(r / 1e6, 2) for r in rates],
            }
            plots[f"fairness_{name}_{count}"] = run
    if "bbr" in names and "cubic" in names:
        run = run_flows([BBR, Cubic], duration_s=duration_s, start_gap_s=0.5)
        rates = [f.goodput_bps(*window) for f in run.flows]
        total = sum(rates) or 1.0
        out["bbr_vs_cubic"] = {
            "bbr_mbps": round(rates[0] / 1e6, 2),
            "cubic_mbps": round(rates[1] / 1e6, 2),
            "bbr_share": round(rates[0] / total, 3),
            "jain": round(jain(rates), 3),
        }
        plots["fairness_bbr_vs_cubic"] = run
    return out


def _reconverge_s(flow: FlowResult, at_s: float, end_s: float, capacity_bps: float) -> float | None:
    step = 0.5
    hold = int(1.0 / step)
    t = at_s
    good = 0
    while t + step <= end_s:
        if flow.goodput_bps(t, t + step) >= 0.8 * capacity_bps * 0.96:
            good += 1
            if good >= hold:
                return round(t + step - hold * step - at_s, 2)
        else:
            good = 0
        t += step
    return None


def scenario_steps(names: list[str], phase_s: float, plots: dict[str, RunResult]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        run = run_flows(
            [CONTROLLERS[name]],
            duration_s=3 * phase_s,
            rate_schedule=[(phase_s, 10e6), (2 * phase_s, 50e6)],
        )
        flow = run.flows[0]
        down = _reconverge_s(flow, phase_s, 2 * phase_s, 10e6)
        up = _reconverge_s(flow, 2 * phase_s, 3 * phase_s, 50e6)
        med_after_down = statistics.median(
            [r for t, r in run.rtt_samples if phase_s + 1 <= t < 2 * phase_s] or [0.0]
        )
        out[name] = {
            "reconverge_down_s": down,
            "reconverge_up_s": up,
            "median_rtt_at_10mbps_ms": round(med_after_down * 1e3, 1),
        }
        plots[f"steps_{name}"] = run
    return out


# ---------------------------------------------------------------- targets
def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []

    def add(name: str, value: Any, target: str, met: bool) -> None:
        checks.append({"target": name, "value": value, "goal": target, "met": bool(met)})

    for name, row in results.get("a_utilisation", {}).items():
        add(
            f"(a) {name} utilisation",
            row["link_busy_share"],
            ">= 0.95",
            row["link_busy_share"] >= 0.95,
        )
    bbr_loss = results.get("b_random_loss", {}).get("bbr", {})
    for p, row in bbr_loss.items():
        goal = 0.85 if float(p) > 0.05 else 0.95
        add(f"(b) bbr loss {p}", row["ratio"], f">= {goal}", row["ratio"] >= goal)
    bloat = results.get("c_bufferbloat", {}).get("bbr")
    if bloat:
        add("(c) bbr median RTT / base", bloat["rtt_ratio"], "<= 1.25", bloat["rtt_ratio"] <= 1.25)
    for name, rows in results.get("d_fairness", {}).items():
        if name == "bbr_vs_cubic":
            continue
        for flows, row in rows.items():
            add(f"(d) {name} {flows} Jain", row["jain"], ">= 0.9", row["jain"] >= 0.9)
    for name, row in results.get("e_capacity_steps", {}).items():
        for key in ("reconverge_down_s", "reconverge_up_s"):
            value = row[key]
            add(f"(e) {name} {key}", value, "<= 5 s", value is not None and value <= 5.0)
    return checks


# ---------------------------------------------------------------- plots
def make_plots(results: dict[str, Any], runs: dict[str, RunResult]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    os.makedirs(RESULTS_DIR, exist_ok=True)
    written: list[str] = []
    loss = results.get("b_random_loss")
    if loss:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, rows in loss.items():
            xs = [float(p) * 100 for p in rows]
            ax.plot(xs, [rows[p]["ratio"] for p in rows], marker="o", label=name)
        ax.axhline(0.95, color="grey", linestyle=":")
        ax.set_xscale("log")
        ax.set_xlabel("random loss (%)")
        ax.set_ylabel("goodput / ((1-p) x capacity)")
        ax.set_title("Random loss, 50 Mbit/s, 50 ms RTT, 1 BDP queue")
        ax.legend()
        path = os.path.join(RESULTS_DIR, "cc_loss.png")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    for key, run in runs.items():
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
        step = 0.5
        times = [i * step for i in range(int(run.duration_s / step))]
        for i, flow in enumerate(run.flows):
            ax1.plot(
                times,
                [flow.goodput_bps(t, t + step) / 1e6 for t in times],
                label=f"{flow.name} #{i}",
            )
        ax1.set_ylabel("goodput (Mbit/s)")
        ax1.legend(fontsize="small")
        ax2.plot([t for t, _ in run.rtt_samples], [r * 1e3 for _, r in run.rtt_samples])
        ax2.set_ylabel("RTT (ms)")
        ax2.set_xlabel("time (s)")
        ax1.set_title(key)
        path = os.path.join(RESULTS_DIR, f"cc_{key}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short CI smoke run")
    parser.add_argument("--only", default="a,b,c,d,e", help="scenarios to run, e.g. a,b")
    parser.add_argument("--controllers", default="newreno,cubic,bbr")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    names = [n for n in args.controllers.split(",") if n]
    for n in names:
        if n not in CONTROLLERS:
            parser.error(f"unknown controller {n!r}")
    only = set(args.only.split(","))
    quick = args.quick
    started = time.perf_counter()
    import inspect

    import transport.packetizer

    results: dict[str, Any] = {
        "path": {"rate_mbps": RATE_BPS / 1e6, "rtt_ms": RTT_S * 1e3, "queue_bdp": 1.0},
        "quick": quick,
        # whether the connection releases packets through the Pacer (see docs/congestion.md)
        "pacing_integrated": "pacer" in inspect.getsource(transport.packetizer),
    }
    runs: dict[str, RunResult] = {}
    if "a" in only:
        results["a_utilisation"] = scenario_utilisation(names, 5.0 if quick else 15.0)
    if "b" in only:
        losses = [0.02] if quick else [0.005, 0.01, 0.02, 0.05, 0.10]
        results["b_random_loss"] = scenario_loss(names, 5.0 if quick else 20.0, losses)
    if "c" in only:
        results["c_bufferbloat"] = scenario_bufferbloat(names, 6.0 if quick else 20.0)
    if "d" in only:
        results["d_fairness"] = scenario_fairness(names, 6.0 if quick else 20.0, runs)
    if "e" in only:
        results["e_capacity_steps"] = scenario_steps(names, 4.0 if quick else 10.0, runs)
    results["targets"] = check_targets(results)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    if not args.no_plots:
        results["plots"] = make_plots(results, runs)
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    for check in results["targets"]:
        mark = "MET    " if check["met"] else "NOT MET"
        print(f"{mark} {check['target']}: {check['value']} (goal {check['goal']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
