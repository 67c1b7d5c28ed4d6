"""Congestion-control benchmark in the simulator: NewReno, CUBIC and BBR.

How this works
--------------
Every scenario runs real :class:`~transport.endpoint.Endpoint` pairs with the
default configuration (noise security, auto-tuned receive windows, pacing in
the packetizer) in the deterministic simulator (virtual time, seeded).
``run_flows`` builds a *dumbbell*: each flow has its own client and server
address, and every client->server route starts with the SAME forward
bottleneck :class:`Link` (the server->client routes share one return link),
so flows compete for one drop-tail queue. Senders write without end (bulk);
receivers count bytes read per 100 ms bin. The bottleneck backlog is sampled
every 10 ms to give the RTT (base RTT + queueing delay). Each run executes in
its own worker process (``--jobs``), so runs are independent and reproducible.

Scenarios (path 50 Mbit/s, 50 ms RTT, queue 1 BDP unless stated):

(a) utilisation at 0 % loss: goodput after the first 2 s / capacity, and
    the bottleneck's busy share (IP bytes delivered / capacity);
(b) random loss {0.5, 1, 2, 5, 10} % both ways: goodput / ((1 - p) x capacity)
    (the issue's definition) and goodput / header ceiling;
(c) bufferbloat, queue 10 BDP: median RTT / base RTT;
(d) fairness: 2 and 4 flows of one controller (started 0.5 s apart) for
    60 s, Jain's index of per-flow goodput from 20 s to the end ("after 20 s";
    also seconds 20-30 alone, and the middle third);
    BBR vs CUBIC split; every (d) run and the BBR (b) runs are repeated with
    the simulator seeds ``SEEDS`` and the median is the figure (each seed's
    value is in the JSON too);
(e) capacity 50 -> 10 -> 50 Mbit/s at 10 s and 20 s: time until the goodput
    of 500 ms bins stays >= 80 % of the new capacity's ceiling for 1 s;
(f) ECN: CUBIC and BBR alone on a 10 BDP queue that is drop-tail, CoDel
    (drops), or CoDel marking CE with ECN end to end (RFC 9000 §13.4):
    goodput after 2 s, packets the sender lost, CE marks, median RTT.

Header ceiling: goodput counts stream payload only. :func:`header_ceiling`
computes from the wire format how much of each IP byte on the bottleneck is
payload for a bulk 1-RTT stream packet (IPv4+UDP, short header, AEAD tag,
STREAM frame header); with 1400-byte datagrams it is ~0.956. Loss happens
before the bottleneck queue in the simulator, so a sender that compensates
for loss can reach ``ceiling`` x capacity, i.e. a (b) ratio of up to
``ceiling / (1 - p)``.

Output: JSON on stdout and in ``benchmarks/results/bench_cc[_quick].json``;
PNG plots in ``benchmarks/results/`` when matplotlib imports. ``--quick``
shortens everything (about a minute).

Run: python benchmarks/bench_cc.py [--quick] [--only a,b] [--controllers bbr,cubic]
(``--only d --controllers cubic --no-save`` reruns just CUBIC's fairness cases;
``--seeds 1,2,3,4,5,6`` repeats the (b) BBR and (d) runs over more seeds.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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
from transport.sim.transfer import AppNode, provision_keys
from transport.wire.constants import AEAD_TAG_LENGTH, DEFAULT_CID_LENGTH

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
#: Sender's stream send buffer: 4 MiB, not the core's 1 MiB default, which limits
#: bulk senders at >= 5 % loss (lost data holds the buffer); see --send-buffer-mib.
SEND_BUFFER_BYTES = 4 * MIB
#: Simulator seeds of the (b) BBR and (d) runs; the target is checked on the median.
#: One seed is one sample of a chaotic system: a change that moves no decision
#: by itself can swing a 2-flow Jain index between 0.85 and 0.95.
SEEDS = (1, 2, 3)
CHUNK = memoryview(bytes(range(256)) * 256)
#: (f) bottleneck variants: queue discipline and whether ECN codepoints move.
ECN_VARIANTS: dict[str, dict[str, Any]] = {
    "droptail": {},
    "codel": {"aqm": "codel"},
    "codel_ecn": {"aqm": "codel", "ecn": True},
}


@dataclass
class FlowResult:
    name: str
    bins: list[int]  # bytes read per BIN_S
    controller: CongestionController | None = None
    connection: Connection | None = None
    #: (time, state, cwnd, pacing rate, bytes in flight) every 10 ms with ``trace``
    trace: list[tuple[float, str, int, float, int]] = field(default_factory=list)
    #: the sender's figures at the end of the run
    packets_lost: int = 0
    ecn_state: str = ""
    ce_reported: int = 0

    def goodput_bps(self, start_s: float, end_s: float) -> float:
        i, j = round(start_s / BIN_S), round(end_s / BIN_S)
        return sum(self.bins[i:j]) * 8 / (end_s - start_s)


@dataclass
class RunResult:
    flows: list[FlowResult]
    rtt_samples: list[tuple[float, float]]  # (time, rtt_s)
    duration_s: float
    link_ip_bytes: int
    link_packets: int = 0
    #: bottleneck: packets the AQM marked CE / dropped, tail drops
    link_marked_ce: int = 0
    link_dropped_aqm: int = 0
    link_dropped_queue: int = 0

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
    send_buffer_bytes: int = SEND_BUFFER_BYTES,
    aqm: str | None = None,
    ecn: bool = False,
) -> RunResult:
    """Run one bulk flow per controller factory over a shared bottleneck
    (``aqm="codel"``: CoDel on both links; ``ecn``: codepoints move end to end)."""
    sim = Simulator(seed=seed)
    queue_bytes = max(int(queue_bdp * rate_bps / 8 * rtt_s), 3000)
    model = Bernoulli(loss) if loss else None
    forward = Link(
        rate_bps=rate_bps,
        delay_s=rtt_s / 2,
        queue_bytes=queue_bytes,
        loss=model,
        name="bottleneck:fwd",
        aqm=aqm,
    )
    backward = Link(
        rate_bps=rate_bps,
        delay_s=rtt_s / 2,
        queue_bytes=queue_bytes,
        loss=model,
        name="bottleneck:bwd",
        aqm=aqm,
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
        # Default configs (noise security, auto-tuned receive windows) except
        # the controller and the sender's stream send buffer.
        client_cfg, server_cfg = provision_keys(
            Config(
                congestion_control=make,
                rng=sim.rng(f"c{index}"),
                stream_send_buffer_bytes=send_buffer_bytes,
            ),
            Config(rng=sim.rng(f"s{index}")),
            sim.rng(f"k{index}"),
        )
        client = Endpoint(client_cfg, is_server=False)
        server = Endpoint(server_cfg, is_server=True)
        sender = _Sender(index * start_gap_s)
        receiver = _Receiver(result.bins)
        sim.attach(client_addr, AppNode(client, sender.on_event, ecn=ecn))
        sim.attach(server_addr, AppNode(server, receiver.on_event, ecn=ecn))
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
    for flow in flows:  # plain data only: results cross process boundaries
        if flow.connection is not None:
            conn_stats = flow.connection.get_stats()
            flow.packets_lost = conn_stats.packets_lost
            flow.ecn_state = conn_stats.ecn_state
            flow.ce_reported = conn_stats.ecn_ce_reported
        flow.controller = None
        flow.connection = None
    return RunResult(
        flows, samples, duration_s, ip_bytes, stats.packets_delivered,
        stats.packets_marked_ce, stats.packets_dropped_aqm, stats.packets_dropped_queue,
    )


def jain(values: list[float]) -> float:
    total = sum(values)
    squares = sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 0.0


def header_ceiling(
    max_datagram_size: int = 1400,
    *,
    cid_length: int = DEFAULT_CID_LENGTH,
    tag_bytes: int = AEAD_TAG_LENGTH,
    ip_udp_bytes: int = 28,
    pn_length: int = 2,
    offset_varint_bytes: int = 4,
) -> dict[str, Any]:
    """Payload share of the bottleneck's IP bytes for bulk 1-RTT stream packets.

    The packetizer reserves a 4-byte packet number when sizing the STREAM
    frame, then encodes the packet number in ``pn_length`` bytes (2 while
    128..32767 packets are unacknowledged, as on this path). The STREAM frame
    header is type (1) + stream id 0 (1) + offset (4 bytes for offsets of
    16 KiB..1 GiB) + length (2).
    """
    frame_header = 1 + 1 + offset_varint_bytes + 2
    payload = max_datagram_size - (1 + cid_length + 4) - tag_bytes - frame_header
    datagram = 1 + cid_length + pn_length + frame_header + payload + tag_bytes
    wire = datagram + ip_udp_bytes
    return {
        "payload_bytes": payload,
        "datagram_bytes": datagram,
        "wire_bytes": wire,
        "ceiling": round(payload / wire, 5),
    }


CEILING = header_ceiling()["ceiling"]


def _controller_list(names: list[str]) -> list[Callable[..., CongestionController]]:
    return [CONTROLLERS[n] for n in names]


def _run_task(task: tuple[str, list[str], dict[str, Any]]) -> tuple[str, RunResult]:
    key, names, kwargs = task
    return key, run_flows(_controller_list(names), **kwargs)


def run_all(tasks: list[tuple[str, list[str], dict[str, Any]]], jobs: int) -> dict[str, RunResult]:
    """Run every task in its own worker process (fresh interpreter state per run)."""
    if jobs <= 1:
        return dict(_run_task(t) for t in tasks)
    # longest runs first so the pool finishes together
    order = sorted(tasks, key=lambda t: -t[2]["duration_s"] * (1.0 - t[2].get("loss", 0.0)))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes=jobs, maxtasksperchild=1) as pool:
        return dict(pool.imap_unordered(_run_task, order))


# ---------------------------------------------------------------- scenarios
def plan(
    only: set[str],
    names: list[str],
    quick: bool,
    send_buffer_bytes: int,
    seeds_override: tuple[int, ...] | None = None,
    fairness_s: float | None = None,
) -> tuple[list[tuple[str, list[str], dict[str, Any]]], dict[str, Any]]:
    tasks: list[tuple[str, list[str], dict[str, Any]]] = []
    params: dict[str, Any] = {}
    common = {"send_buffer_bytes": send_buffer_bytes}
    seeds = seeds_override or (SEEDS[:1] if quick else SEEDS)
    params["seeds"] = list(seeds)
    if "a" in only:
        params["a"] = 5.0 if quick else 15.0
        for n in names:
            tasks.append((f"a/{n}", [n], {"duration_s": params["a"], **common}))
    if "b" in only:
        losses = [0.02, 0.10] if quick else [0.005, 0.01, 0.02, 0.05, 0.10]
        params["b"] = (8.0 if quick else 20.0, losses)
        for n in names:
            for p in losses:
                for seed in seeds if n == "bbr" else seeds[:1]:
                    kwargs = {"duration_s": params["b"][0], "loss": p, "seed": seed, **common}
                    tasks.append((f"b/{n}/{p}/s{seed}", [n], kwargs))
        if "bbr" in names and send_buffer_bytes != MIB:
            for p in losses:  # the core's default send buffer, for comparison
                kwargs = {"duration_s": params["b"][0], "loss": p, "send_buffer_bytes": MIB}
                tasks.append((f"b1m/bbr/{p}/s1", ["bbr"], kwargs))
    if "c" in only:
        params["c"] = 8.0 if quick else 20.0
        for n in names:
            tasks.append((f"c/{n}", [n], {"duration_s": params["c"], "queue_bdp": 10.0, **common}))
    if "d" in only:
        params["d"] = fairness_s or (12.0 if quick else 60.0)
        counts = (2,) if quick else (2, 4)
        for seed in seeds:
            kwargs = {"duration_s": params["d"], "start_gap_s": 0.5, "seed": seed, **common}
            for n in names:
                for count in counts:
                    tasks.append((f"d/{n}/{count}/s{seed}", [n] * count, kwargs))
            if "bbr" in names and "cubic" in names:
                tasks.append((f"d/bbr_vs_cubic/s{seed}", ["bbr", "cubic"], kwargs))
    if "e" in only:
        params["e"] = phase = 6.0 if quick else 10.0
        for n in names:
            kwargs = {
                "duration_s": 3 * phase,
                "rate_schedule": [(phase, 10e6), (2 * phase, 50e6)],
                **common,
            }
            tasks.append((f"e/{n}", [n], kwargs))
    if "f" in only:
        params["f"] = 8.0 if quick else 20.0
        for n in names:
            if n == "newreno":
                continue
            for variant, extra in ECN_VARIANTS.items():
                kwargs = {"duration_s": params["f"], "queue_bdp": 10.0, **extra, **common}
                tasks.append((f"f/{n}/{variant}", [n], kwargs))
    return tasks, params


def summarise(
    runs: dict[str, RunResult], names: list[str], params: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "a" in params:
        d = params["a"]
        rows = {}
        for n in names:
            run = runs[f"a/{n}"]
            goodput = run.flows[0].goodput_bps(2.0, d)
            rows[n] = {
                "goodput_mbps": round(goodput / 1e6, 2),
                "utilisation": round(goodput / RATE_BPS, 3),
                "of_ceiling": round(goodput / (CEILING * RATE_BPS), 3),
                "link_busy_share": round(run.link_ip_bytes * 8 / (RATE_BPS * d), 3),
                "mean_wire_bytes": round(run.link_ip_bytes / max(run.link_packets, 1), 1),
                "median_rtt_ms": round(run.median_rtt_s(2.0) * 1e3, 1),
            }
        out["a_utilisation"] = rows
    if "b" in params:
        d, losses = params["b"]
        rows = {}
        for prefix, label in (("b", None), ("b1m", "bbr_send_buffer_1MiB")):
            for n in names if prefix == "b" else ["bbr"]:
                if not any(k.startswith(f"{prefix}/{n}/{losses[0]}/s") for k in runs):
                    continue
                row = {}
                for p in losses:
                    goodputs = [
                        run.flows[0].goodput_bps(2.0, d)
                        for key, run in runs.items()
                        if key.startswith(f"{prefix}/{n}/{p}/s")
                    ]
                    goodput = statistics.median(goodputs)
                    row[str(p)] = {
                        "goodput_mbps": round(goodput / 1e6, 2),
                        "ratio": round(goodput / ((1 - p) * RATE_BPS), 3),
                        "ratio_seeds": [round(g / ((1 - p) * RATE_BPS), 3) for g in goodputs],
                        "ratio_max": round(CEILING / (1 - p), 3),
                        "of_ceiling": round(goodput / (CEILING * RATE_BPS), 3),
                    }
                rows[label or n] = row
        out["b_random_loss"] = rows
    if "c" in params:
        d = params["c"]
        rows = {}
        for n in names:
            run = runs[f"c/{n}"]
            median = run.median_rtt_s(3.0)
            rows[n] = {
                "median_rtt_ms": round(median * 1e3, 1),
                "rtt_ratio": round(median / RTT_S, 3),
                "goodput_mbps": round(run.flows[0].goodput_bps(3.0, d) / 1e6, 2),
            }
        out["c_bufferbloat"] = rows
    if "d" in params:
        d = params["d"]
        late = (min(20.0, d - 5.0), d)
        early = (d / 3, 2 * d / 3)
        seeds = params["seeds"]
        rows = {}
        for n in names:
            rows[n] = {}
            for count in (2, 4):
                keys = [f"d/{n}/{count}/s{seed}" for seed in seeds]
                if any(key not in runs for key in keys):
                    continue
                fair_runs = [runs[key] for key in keys]
                per_seed = [[f.goodput_bps(*late) for f in run.flows] for run in fair_runs]
                jains = [jain(rates) for rates in per_seed]
                early_jains = [
                    jain([f.goodput_bps(*early) for f in run.flows]) for run in fair_runs
                ]
                short = (late[0], min(late[0] + 10.0, d))
                short_jains = [
                    jain([f.goodput_bps(*short) for f in run.flows]) for run in fair_runs
                ]
                rows[n][f"{count}_flows"] = {
                    "jain": round(statistics.median(jains), 3),
                    "jain_seeds": [round(j, 3) for j in jains],
                    "goodput_mbps_seeds": [
                        [round(r / 1e6, 2) for r in rates] for rates in per_seed
                    ],
                    "jain_earlier": round(statistics.median(early_jains), 3),
                    # the first 10 s after 20 s alone (the whole run before session 4)
                    "jain_20_30": round(statistics.median(short_jains), 3),
                    "jain_20_30_seeds": [round(j, 3) for j in short_jains],
                    "window_s": list(late),
                    "seeds": list(seeds),
                }
        keys = [f"d/bbr_vs_cubic/s{seed}" for seed in seeds]
        if all(key in runs for key in keys):
            mixed = [runs[key] for key in keys]
            shares = []
            per_seed = []
            for run in mixed:
                rates = [f.goodput_bps(*late) for f in run.flows]
                per_seed.append(rates)
                shares.append(rates[0] / (sum(rates) or 1.0))
            rows["bbr_vs_cubic"] = {
                "bbr_share": round(statistics.median(shares), 3),
                "bbr_share_seeds": [round(x, 3) for x in shares],
                "mbps_seeds": [[round(r / 1e6, 2) for r in rates] for rates in per_seed],
            }
        out["d_fairness"] = rows
    if "e" in params:
        phase = params["e"]
        rows = {}
        for n in names:
            run = runs[f"e/{n}"]
            flow = run.flows[0]
            med_after_down = statistics.median(
                [r for t, r in run.rtt_samples if phase + 1 <= t < 2 * phase] or [0.0]
            )
            rows[n] = {
                "reconverge_down_s": _reconverge_s(flow, phase, 2 * phase, 10e6),
                "reconverge_up_s": _reconverge_s(flow, 2 * phase, 3 * phase, 50e6),
                "median_rtt_at_10mbps_ms": round(med_after_down * 1e3, 1),
            }
        out["e_capacity_steps"] = rows
    if "f" in params:
        d = params["f"]
        rows = {}
        for n in names:
            if f"f/{n}/droptail" not in runs:
                continue
            rows[n] = {}
            for variant in ECN_VARIANTS:
                run = runs[f"f/{n}/{variant}"]
                flow = run.flows[0]
                goodput = flow.goodput_bps(2.0, d)
                rows[n][variant] = {
                    "goodput_mbps": round(goodput / 1e6, 2),
                    "of_ceiling": round(goodput / (CEILING * RATE_BPS), 3),
                    "packets_lost": flow.packets_lost,
                    "ce_marks": run.link_marked_ce,
                    "aqm_drops": run.link_dropped_aqm,
                    "tail_drops": run.link_dropped_queue,
                    "median_rtt_ms": round(run.median_rtt_s(2.0) * 1e3, 1),
                    "ecn_state": flow.ecn_state,
                }
        out["f_ecn"] = rows
    return out


def _reconverge_s(flow: FlowResult, at_s: float, end_s: float, capacity_bps: float) -> float | None:
    step = 0.5
    hold = int(1.0 / step)
    t = at_s
    good = 0
    while t + step <= end_s:
        if flow.goodput_bps(t, t + step) >= 0.8 * capacity_bps * CEILING:
            good += 1
            if good >= hold:
                return round(t + step - hold * step - at_s, 2)
        else:
            good = 0
        t += step
    return None


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
    for name, variants in results.get("f_ecn", {}).items():
        # not issue targets: what ECN should deliver, checked so a regression shows
        marked, codel = variants["codel_ecn"], variants["codel"]
        add(f"(f) {name} ECN validated", marked["ecn_state"], "capable",
            marked["ecn_state"] == "capable")
        add(f"(f) {name} losses with CoDel+ECN", marked["packets_lost"], "0",
            marked["packets_lost"] == 0)
        add(f"(f) {name} goodput CoDel+ECN / CoDel", round(
            marked["goodput_mbps"] / max(codel["goodput_mbps"], 1e-9), 3), ">= 0.99",
            marked["goodput_mbps"] >= 0.99 * codel["goodput_mbps"])
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
    ecn = results.get("f_ecn")
    if ecn:
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.5))
        variants = list(ECN_VARIANTS)
        width = 0.8 / max(len(ecn), 1)
        for i, (name, rows) in enumerate(ecn.items()):
            xs = [j + i * width for j in range(len(variants))]
            for ax, field_name in zip(
                axes, ("goodput_mbps", "packets_lost", "median_rtt_ms"), strict=True
            ):
                ax.bar(xs, [rows[v][field_name] for v in variants], width, label=name)
                ax.set_title(field_name)
                ax.set_xticks([j + width / 2 for j in range(len(variants))], variants,
                              fontsize="small")
        axes[0].legend(fontsize="small")
        fig.suptitle("ECN: 50 Mbit/s, 50 ms RTT, 10 BDP queue")
        path = os.path.join(RESULTS_DIR, "cc_ecn.png")
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (~1 min)")
    parser.add_argument("--only", default="a,b,c,d,e,f", help="scenarios to run, e.g. a,b")
    parser.add_argument("--controllers", default="newreno,cubic,bbr")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--send-buffer-mib",
        type=float,
        default=SEND_BUFFER_BYTES / MIB,
        help="sender's stream send buffer (the core default is 1 MiB)",
    )
    parser.add_argument(
        "--seeds",
        default="",
        help="simulator seeds of the (b) BBR and (d) runs, e.g. 1,2,3,4,5,6 (default 1,2,3)",
    )
    parser.add_argument(
        "--fairness-seconds",
        type=float,
        default=None,
        help="length of the (d) runs; Jain's index is taken from 20 s to the end "
        "(default 60 s: seconds 20-60)",
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON file")
    args = parser.parse_args(argv)
    names = [n for n in args.controllers.split(",") if n]
    for n in names:
        if n not in CONTROLLERS:
            parser.error(f"unknown controller {n!r}")
    only = set(args.only.split(","))
    send_buffer_bytes = int(args.send_buffer_mib * MIB)
    started = time.perf_counter()
    seeds = tuple(int(x) for x in args.seeds.split(",") if x) or None
    tasks, params = plan(only, names, args.quick, send_buffer_bytes, seeds, args.fairness_seconds)
    runs = run_all(tasks, args.jobs)
    results: dict[str, Any] = {
        "path": {"rate_mbps": RATE_BPS / 1e6, "rtt_ms": RTT_S * 1e3, "queue_bdp": 1.0},
        "quick": args.quick,
        "security": Config().security,
        "send_buffer_bytes": send_buffer_bytes,
        "header_ceiling": header_ceiling(),
    }
    results.update(summarise(runs, names, params))
    results["targets"] = check_targets(results)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    if not args.no_plots:
        plots = {
            k.replace("/s1", "").replace("/", "_"): r
            for k, r in runs.items()
            if k[0] in "ef" or (k[0] == "d" and k.endswith("/s1"))
        }
        results["plots"] = [os.path.relpath(p) for p in make_plots(results, plots)]
    text = json.dumps(results, indent=2)
    print(text)
    if not args.no_save:
        os.makedirs(RESULTS_DIR, exist_ok=True)
        name = "bench_cc_quick.json" if args.quick else "bench_cc.json"
        with open(os.path.join(RESULTS_DIR, name), "w") as fh:
            fh.write(text + "\n")
    for check in results["targets"]:
        mark = "MET    " if check["met"] else "NOT MET"
        print(f"{mark} {check['target']}: {check['value']} (goal {check['goal']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
