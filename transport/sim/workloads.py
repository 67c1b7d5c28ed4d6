"""Workloads over simulated topologies, and the scenario runner.

How this works
--------------
:func:`run_scenario` builds a :class:`~transport.sim.Simulator`, wires the
scenario's topology (:mod:`transport.sim.topology`) and attaches, per flow, a
client and a server :class:`~transport.endpoint.Endpoint`, each wrapped in an
:class:`~transport.sim.transfer.AppNode` whose event handler is the
workload's application object:

* **bulk** (:class:`BulkSender` / :class:`BulkReceiver`): one stream, written
  as fast as the connection accepts, ``size_bytes`` or without end until the
  scenario's duration;
* **messages** (:class:`MessageSender` / :class:`MessageReceiver`): fixed-size
  messages, one every ``1 / rate_hz`` seconds of virtual time (a simulator
  callback). A message's latency runs from its *scheduled* send time (so
  sender-side queueing counts) to the moment its last byte is read. By default
  all messages share one ordered stream (a log or feed: a loss delays every
  later message until it is repaired, head-of-line blocking); with
  ``per_message_streams`` each message is its own unidirectional stream, the
  QUIC idiom for independent messages (a loss delays only its own message);
* **rpc** (:class:`RpcClient` / :class:`RpcServer`): closed-loop
  request/response, each exchange on a new bidirectional stream,
  ``concurrency`` outstanding; latency from request written to response read.

:func:`run_message_latency` runs the messaging workload alone between one
client and one server over a :class:`~transport.sim.link.Path` (the FEC
latency benchmark and tests use it).

A sampler callback reads every client's ``Connection.get_stats()`` (cwnd,
smoothed and latest RTT) and each receiver's delivered byte count every
``sample_interval_s`` into a :class:`~transport.sim.results.TimeSeries`.
Everything random derives from the seed (simulator streams, seeded configs and
keys), so a run is reproducible.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from transport.config import Config
from transport.connection import Connection
from transport.endpoint import Endpoint
from transport.errors import StreamLimitError
from transport.events import (
    Event,
    HandshakeCompleted,
    StreamReadable,
    StreamsAvailable,
    StreamWritable,
)
from transport.sim.link import Address, Path
from transport.sim.results import ScenarioResult, TimeSeries, jain_fairness
from transport.sim.scenarios import Scenario
from transport.sim.simulator import Simulator
from transport.sim.topology import build_topology
from transport.sim.transfer import CLIENT_ADDR, SERVER_ADDR, AppNode, provision_keys

__all__ = [
    "BulkReceiver",
    "BulkSender",
    "MessageReceiver",
    "MessageRun",
    "MessageSender",
    "RpcClient",
    "RpcServer",
    "run_message_latency",
    "run_scenario",
]

CHUNK_BYTES = 1 << 16
_FILL = memoryview(random.Random(0).randbytes(CHUNK_BYTES))


class Receiver:
    """Common receiving side: reads every readable stream, counts bytes."""

    def __init__(self) -> None:
        self.delivered_bytes = 0
        self.first_read_s: float | None = None
        self.last_read_s = 0.0
        self.finished_streams = 0

    def on_event(self, conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, StreamReadable):
            sid = event.stream_id
            while True:
                data, fin = conn.recv_stream_data(sid)
                if data:
                    if self.first_read_s is None:
                        self.first_read_s = now
                    self.delivered_bytes += len(data)
                    self.last_read_s = now
                    self.on_data(conn, sid, len(data), now)
                if fin:
                    self.finished_streams += 1
                    self.on_fin(conn, sid, now)
                    return
                if not data:
                    return

    def on_data(self, conn: Connection, sid: int, size: int, now: float) -> None:
        return None

    def on_fin(self, conn: Connection, sid: int, now: float) -> None:
        return None


class BulkSender:
    """Writes ``size_bytes`` (None: without end) on one stream."""

    def __init__(self, size_bytes: int | None) -> None:
        self.size_bytes = size_bytes
        self.sent = 0
        self.stream_id: int | None = None
        self.start_s: float | None = None
        self.done = False

    def on_event(self, conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, HandshakeCompleted):
            self.start_s = now
            self.stream_id = conn.open_stream()
            self._fill(conn)
        elif isinstance(event, StreamWritable) and event.stream_id == self.stream_id:
            self._fill(conn)

    def _fill(self, conn: Connection) -> None:
        sid = self.stream_id
        if sid is None or self.done:
            return
        while True:
            count = (
                CHUNK_BYTES
                if self.size_bytes is None
                else min(CHUNK_BYTES, self.size_bytes - self.sent)
            )
            last = self.size_bytes is not None and self.sent + count == self.size_bytes
            accepted = conn.send_stream_data(sid, _FILL[:count], end_stream=last)
            self.sent += accepted
            if last and accepted == count:
                self.done = True
                return
            if accepted < count:
                return


class BulkReceiver(Receiver):
    pass


class MessageLog:
    """Shared between a message sender and receiver (the simulation is one process)."""

    def __init__(self, message_bytes: int) -> None:
        self.message_bytes = message_bytes
        self.scheduled_s: list[float] = []
        self.latencies_s: list[float] = []
        #: per-message streams: message index -> latency (messages finish out of order)
        self.latency_by_index: dict[int, float] = {}


class MessageSender:
    """Queues one message per tick (a simulator callback) and writes what fits.

    One ordered stream by default; ``per_message_streams`` opens a
    unidirectional stream per message (ended with the message), queueing
    messages while the peer's stream limit is reached."""

    def __init__(self, log: MessageLog, per_message_streams: bool = False) -> None:
        self.log = log
        self.per_message_streams = per_message_streams
        self.conn: Connection | None = None
        self.stream_id: int | None = None
        self.backlog = 0  # bytes of due messages not yet accepted
        self.start_s: float | None = None
        #: per-message streams: (stream id, bytes left) of messages being written
        self._open: dict[int, int] = {}
        self._unopened = 0  # due messages waiting for stream credit
        self.stream_limited = 0  # how often a message waited for stream credit

    def on_event(self, conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, HandshakeCompleted):
            self.conn = conn
            self.start_s = now
            if not self.per_message_streams:
                self.stream_id = conn.open_stream()
        elif isinstance(event, StreamWritable):
            if event.stream_id == self.stream_id:
                self._flush()
            elif event.stream_id in self._open:
                self._write_message(event.stream_id)
        elif isinstance(event, StreamsAvailable) and self.per_message_streams:
            self._open_messages()

    def tick(self, now: float) -> None:
        if self.conn is None:
            return
        self.log.scheduled_s.append(now)
        if self.per_message_streams:
            self._unopened += 1
            self._open_messages()
        else:
            self.backlog += self.log.message_bytes
            self._flush()

    def _open_messages(self) -> None:
        conn = self.conn
        while conn is not None and self._unopened:
            try:
                sid = conn.open_stream(bidirectional=False)
            except StreamLimitError:
                self.stream_limited += 1
                return
            self._unopened -= 1
            self._open[sid] = self.log.message_bytes
            self._write_message(sid)

    def _write_message(self, sid: int) -> None:
        if self.conn is not None:
            left = self._open.pop(sid)
            accepted = self.conn.send_stream_data(sid, _FILL[:left], end_stream=True)
            if accepted < left:
                self._open[sid] = left - accepted

    def _flush(self) -> None:
        if self.conn is None or self.stream_id is None:
            return
        while self.backlog:
            count = min(self.backlog, CHUNK_BYTES)
            accepted = self.conn.send_stream_data(self.stream_id, _FILL[:count])
            self.backlog -= accepted
            if accepted < count:
                return


class MessageReceiver(Receiver):
    """Records each message's latency as its last byte becomes readable: by
    byte count on one ordered stream, by stream FIN with per-message streams
    (client-initiated unidirectional stream n carries message n)."""

    def __init__(self, log: MessageLog) -> None:
        super().__init__()
        self.log = log
        self.stream_bytes = 0

    def on_data(self, conn: Connection, sid: int, size: int, now: float) -> None:
        if sid & 2:  # a unidirectional stream: one message, complete at its FIN
            return
        self.stream_bytes += size
        log = self.log
        complete = self.stream_bytes // log.message_bytes
        while len(log.latencies_s) < complete:
            log.latencies_s.append(now - log.scheduled_s[len(log.latencies_s)])

    def on_fin(self, conn: Connection, sid: int, now: float) -> None:
        log = self.log
        if sid & 2 and (sid >> 2) < len(log.scheduled_s):
            latency_s = now - log.scheduled_s[sid >> 2]
            log.latency_by_index[sid >> 2] = latency_s
            log.latencies_s.append(latency_s)


class RpcClient(Receiver):
    """Closed loop: ``concurrency`` requests outstanding, one stream each."""

    def __init__(self, request_bytes: int, concurrency: int, stop_s: float) -> None:
        super().__init__()
        self.request = bytes(request_bytes)
        self.concurrency = concurrency
        self.stop_s = stop_s
        self.started: dict[int, float] = {}
        self.latencies_s: list[float] = []
        self.start_s: float | None = None
        self.stream_limited = 0

    def on_event(self, conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, HandshakeCompleted):
            self.start_s = now
            for _ in range(self.concurrency):
                self._request(conn, now)
        else:
            super().on_event(conn, event, now)

    def _request(self, conn: Connection, now: float) -> None:
        if now >= self.stop_s:
            return
        try:
            sid = conn.open_stream()
        except StreamLimitError:
            self.stream_limited += 1
            return
        self.started[sid] = now
        conn.send_stream_data(sid, self.request, end_stream=True)

    def on_fin(self, conn: Connection, sid: int, now: float) -> None:
        began = self.started.pop(sid, None)
        if began is not None:
            self.latencies_s.append(now - began)
            self._request(conn, now)
        # A request that could not open a stream earlier is retried here.
        while self.stream_limited and len(self.started) < self.concurrency and now < self.stop_s:
            self.stream_limited -= 1
            self._request(conn, now)


class RpcServer(Receiver):
    """Answers each finished request stream with ``response_bytes``."""

    def __init__(self, response_bytes: int) -> None:
        super().__init__()
        self.response_bytes = response_bytes
        self.pending: dict[int, int] = {}

    def on_event(self, conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, StreamWritable) and event.stream_id in self.pending:
            self._send(conn, event.stream_id)
        else:
            super().on_event(conn, event, now)

    def on_fin(self, conn: Connection, sid: int, now: float) -> None:
        self.pending[sid] = self.response_bytes
        self._send(conn, sid)

    def _send(self, conn: Connection, sid: int) -> None:
        left = self.pending[sid]
        while left:
            count = min(left, CHUNK_BYTES)
            accepted = conn.send_stream_data(sid, _FILL[:count], end_stream=count == left)
            left -= accepted
            if accepted < count:
                break
        if left:
            self.pending[sid] = left
        else:
            del self.pending[sid]


@dataclass
class MessageRun:
    """What :func:`run_message_latency` measured."""

    #: (scheduled send time, latency) of every delivered message, in send order
    delivered: list[tuple[float, float]]
    scheduled: int
    client: Connection
    server: Connection | None

    def latencies_s(self, after_s: float = 0.0) -> list[float]:
        """Latencies of the messages scheduled at or after ``after_s``."""
        return [lat for sent, lat in self.delivered if sent >= after_s]


def run_message_latency(
    config: Callable[[random.Random], Config],
    path: Path,
    *,
    seed: int = 0,
    seconds: float = 10.0,
    message_bytes: int = 1024,
    interval_s: float = 0.001024,
    per_message_streams: bool = False,
    drain_s: float = 3.0,
) -> MessageRun:
    """Messages of ``message_bytes`` every ``interval_s`` for ``seconds`` from a
    client to a server over ``path``; per-message latency from scheduled send
    time to readable (one ordered stream, or a stream per message)."""
    sim = Simulator(seed=seed)
    ccfg, scfg = provision_keys(
        config(sim.rng("client")), config(sim.rng("server")), sim.rng("keys")
    )
    client_ep, server_ep = Endpoint(ccfg), Endpoint(scfg, is_server=True)
    log = MessageLog(message_bytes)
    sender = MessageSender(log, per_message_streams=per_message_streams)
    receiver = MessageReceiver(log)
    servers: list[Connection] = []

    def server_event(conn: Connection, event: Event, now: float) -> None:
        if not servers:
            servers.append(conn)
        receiver.on_event(conn, event, now)

    client_node = AppNode(client_ep, sender.on_event)
    server_node = AppNode(server_ep, server_event)
    sim.attach(CLIENT_ADDR, client_node)
    sim.attach(SERVER_ADDR, server_node)
    sim.connect(CLIENT_ADDR, SERVER_ADDR, path)

    def tick(now: float) -> None:
        sender.tick(now)
        if now + interval_s <= seconds:
            sim.call_later(interval_s, tick, touches=(client_node,))

    client = client_ep.connect(SERVER_ADDR, 0.0)
    sim.schedule(0.0, tick, touches=(client_node,))
    sim.run(until_s=seconds + drain_s)
    if per_message_streams:
        delivered = sorted((log.scheduled_s[i], lat) for i, lat in log.latency_by_index.items())
    else:
        delivered = list(zip(log.scheduled_s, log.latencies_s, strict=False))
    return MessageRun(
        delivered=delivered,
        scheduled=len(log.scheduled_s),
        client=client,
        server=servers[0] if servers else None,
    )


def _make_config(scenario: Scenario) -> Callable[[random.Random], Config]:
    from transport.congestion import controllers

    factory = controllers[scenario.cc]

    def make(rng: random.Random) -> Config:
        return Config(
            rng=rng, congestion_control=factory, security=scenario.security, fec=scenario.fec
        )

    return make


def _ticker(
    sim: Simulator, sender: MessageSender, node: AppNode, period_s: float, until_s: float
) -> Callable[[float], None]:
    """A callback that queues one message and re-schedules itself every ``period_s``."""

    def tick(now: float) -> None:
        sender.tick(now)
        if now + period_s < until_s:
            sim.call_later(period_s, tick, touches=(node,))

    return tick


class _Flow:
    def __init__(self) -> None:
        self.client_conn: Connection | None = None
        self.sender: Any = None
        self.receiver: Receiver | None = None
        self.start_s = 0.0


def run_scenario(
    scenario: Scenario,
    seed: int = 1,
    *,
    sample_interval_s: float = 0.1,
    params: dict[str, Any] | None = None,
) -> ScenarioResult:
    """Run ``scenario`` once in virtual time and collect its metrics."""
    wall_start = time.perf_counter()
    sim = Simulator(seed=seed)
    topo = build_topology(sim, scenario.path, scenario.topology)
    make = _make_config(scenario)
    work = scenario.workload
    duration = scenario.duration_s
    flows: list[_Flow] = []
    latency_sources: list[list[float]] = []

    for index, ((caddr, saddr), start_s) in enumerate(
        zip(topo.flows, topo.start_times_s, strict=True)
    ):
        flow = _Flow()
        flow.start_s = start_s
        ccfg, scfg = provision_keys(
            make(sim.rng(f"client{index}")),
            make(sim.rng(f"server{index}")),
            sim.rng(f"keys{index}"),
        )
        client_ep = Endpoint(ccfg, is_server=False)
        server_ep = Endpoint(scfg, is_server=True)
        if work.kind == "bulk":
            flow.sender = BulkSender(work.size_bytes)
            flow.receiver = BulkReceiver()
            client_handler = flow.sender.on_event
        elif work.kind == "messages":
            log = MessageLog(work.message_bytes)
            latency_sources.append(log.latencies_s)
            flow.sender = MessageSender(log)
            flow.receiver = MessageReceiver(log)
            client_handler = flow.sender.on_event
        else:
            rpc = RpcClient(work.request_bytes, work.concurrency, duration)
            latency_sources.append(rpc.latencies_s)
            flow.sender = rpc
            flow.receiver = rpc  # the client reads the responses
            client_handler = rpc.on_event
        server_handler = (
            RpcServer(work.response_bytes).on_event
            if work.kind == "rpc"
            else flow.receiver.on_event
        )
        client_node = AppNode(client_ep, client_handler)
        sim.attach(caddr, client_node)
        sim.attach(saddr, AppNode(server_ep, server_handler))

        def start(
            now: float, ep: Endpoint = client_ep, saddr: Address = saddr, flow: _Flow = flow
        ) -> None:
            flow.client_conn = ep.connect(saddr, now)

        sim.schedule(start_s, start, touches=(client_node,))
        if work.kind == "messages":
            sim.schedule(
                start_s,
                _ticker(sim, flow.sender, client_node, 1.0 / work.rate_hz, duration),
                touches=(client_node,),
            )
        flows.append(flow)

    samples: list[list[tuple[float, float, float, float]]] = [[] for _ in flows]
    sample_t: list[float] = []

    def sample(now: float) -> None:
        sample_t.append(now)
        for i, flow in enumerate(flows):
            conn = flow.client_conn
            delivered = float(flow.receiver.delivered_bytes) if flow.receiver else 0.0
            if conn is None:
                samples[i].append((0.0, float("nan"), float("nan"), delivered))
            else:
                st = conn.get_stats()
                samples[i].append(
                    (st.congestion_window_bytes, st.smoothed_rtt_s, st.latest_rtt_s, delivered)
                )
        if now + sample_interval_s <= duration:
            sim.call_later(sample_interval_s, sample, touches=())

    sim.schedule(0.0, sample, touches=())

    sized = work.kind == "bulk" and work.size_bytes is not None

    def all_done() -> bool:
        return all(f.receiver is not None and f.receiver.finished_streams >= 1 for f in flows)

    sim.run(until_s=duration, stop_when=all_done if sized else None)
    end_s = sim.now

    flow_goodput = []
    for flow in flows:
        rx = flow.receiver
        assert rx is not None
        began = flow.sender.start_s if flow.sender.start_s is not None else flow.start_s
        finish = rx.last_read_s if sized and rx.finished_streams else end_s
        flow_goodput.append(rx.delivered_bytes * 8.0 / max(finish - began, 1e-9))
    total_bytes = sum(f.receiver.delivered_bytes for f in flows if f.receiver)
    begin_all = min((f.sender.start_s for f in flows if f.sender.start_s is not None), default=0.0)
    goodput = total_bytes * 8.0 / max(end_s - begin_all, 1e-9)

    stats = [f.client_conn.get_stats() for f in flows if f.client_conn is not None]
    fwd = topo.forward.stats()
    bwd = topo.backward.stats()
    qd = np.asarray(fwd.queue_delay_samples, dtype=np.float64)
    lat = np.asarray([x for src in latency_sources for x in src], dtype=np.float64)
    arr = np.asarray(samples, dtype=np.float64)  # (flows, samples, 4)
    if arr.size == 0:
        arr = np.zeros((len(flows), 0, 4))
    series = TimeSeries(
        t_s=np.asarray(sample_t, dtype=np.float64),
        cwnd_bytes=np.nan_to_num(arr[:, :, 0]),
        srtt_s=np.nan_to_num(arr[:, :, 1]),
        latest_rtt_s=np.nan_to_num(arr[:, :, 2]),
        delivered_bytes=arr[:, :, 3],
    )
    cross_bps = 0.0
    if topo.sink is not None:
        cross_bps = topo.sink.bytes_received * 8.0 / max(end_s, 1e-9)
    return ScenarioResult(
        scenario=scenario.name,
        cc=scenario.cc,
        loss_rate=scenario.path.loss_rate,
        seed=seed,
        duration_s=end_s,
        goodput_bps=goodput,
        capacity_bps=scenario.path.rate_bps,
        flow_goodput_bps=np.asarray(flow_goodput, dtype=np.float64),
        fairness=jain_fairness(flow_goodput),
        latencies_s=lat,
        retransmissions=sum(s.packets_retransmitted for s in stats),
        packets_sent=sum(s.packets_sent for s in stats),
        packets_lost=sum(s.packets_lost for s in stats),
        queue_delay_mean_s=fwd.queue_delay_mean_s,
        queue_delay_p95_s=float(np.percentile(qd, 95)) if qd.size else 0.0,
        queue_drops=fwd.packets_dropped_queue + fwd.packets_dropped_aqm + bwd.packets_dropped_queue,
        loss_drops=fwd.packets_dropped_loss + bwd.packets_dropped_loss,
        completed=all_done() if sized else True,
        events=sim.stats().events,
        wall_s=time.perf_counter() - wall_start,
        timeseries=series,
        cross_traffic_bps=cross_bps,
        params=dict(params or {}),
        fec=scenario.fec,
        fec_recovered=sum(s.fec_reported_recovered for s in stats),
    )
