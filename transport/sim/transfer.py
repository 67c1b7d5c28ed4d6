"""Workloads over real connections in the simulator: bulk transfers and messages.

How this works
--------------
Two :class:`~transport.endpoint.Endpoint` objects (client and server) are
attached to a :class:`~transport.sim.Simulator` and joined by a
:class:`~transport.sim.Path`. Each endpoint is wrapped in an :class:`AppNode`
that, after every input the simulator gives it, drains the endpoint's events
into a small application object -- the sender or receiver of the workload.
Because the application acts inside the node's input call, whatever it writes
is collected by the simulator's next poll of that node, exactly as a driver
would do.

* :func:`run_transfer` sends ``size_bytes`` over ``streams`` streams as fast
  as the connection allows, verifies every byte with SHA-256 and reports
  goodput (bytes delivered in order to the receiving application over the time
  from the first byte written to the last byte read), chunk latency
  percentiles and both sides' counters.
* :func:`run_messages` writes fixed-size messages at a fixed rate on one
  stream and reports per-message delivery latency percentiles.

Payload bytes come from a seeded generator, so a run is reproducible.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from transport.config import Config
from transport.connection import Connection
from transport.endpoint import Endpoint
from transport.events import (
    ConnectionTerminated,
    Event,
    HandshakeCompleted,
    StreamReadable,
    StreamWritable,
)
from transport.sim.link import LinkStats, Path
from transport.sim.simulator import Simulator
from transport.stats import ConnectionStats

Address = tuple[str, int]
CLIENT_ADDR: Address = ("10.0.0.1", 50000)
SERVER_ADDR: Address = ("10.0.0.2", 4433)
PATTERN_BYTES = 1 << 16


class AppNode:
    """A simulator node: an endpoint plus an application event handler."""

    def __init__(
        self,
        endpoint: Endpoint,
        on_event: Callable[[Connection, Event, float], None],
        *,
        ecn: bool = False,
    ):
        self.endpoint = endpoint
        self.on_event = on_event
        #: move ECN codepoints (the simulator then expects (data, dst, ecn) tuples)
        self.ecn = ecn

    def receive_datagram(self, data: bytes, addr: Address, now: float, ecn: int = 0) -> None:
        self.endpoint.receive_datagram(data, addr, now, ecn)
        self._drain(now)

    def datagrams_to_send(self, now: float) -> list[Any]:
        # Events handled here may queue more output (a reply, a close): collect
        # it in the same poll, as a driver would before it sleeps.
        self._drain(now)
        send = self.endpoint.datagrams_to_send_ecn if self.ecn else self.endpoint.datagrams_to_send
        out: list[Any] = send(now)
        for _ in range(8):
            if not self._drain(now):
                break
            out.extend(send(now))
        return out

    def get_timer(self) -> float | None:
        return self.endpoint.get_timer()

    def handle_timer(self, now: float) -> None:
        self.endpoint.handle_timer(now)
        self._drain(now)

    def _drain(self, now: float) -> int:
        """Hand pending events to the application; returns how many."""
        handled = 0
        while True:
            item = self.endpoint.next_event()
            if item is None:
                return handled
            self.on_event(item[0], item[1], now)
            handled += 1


def provision_keys(
    client: Config, server: Config, rng: random.Random
) -> tuple[Config, Config]:
    """Fill in what a simulated noise pair lacks: a server key pair (from ``rng``),
    the client's pin of it, and seeded key material so runs replay exactly.
    Configs with security="none", or with keys already set, are left as given."""
    from transport.crypto.keys import generate_keypair

    if server.security == "noise" and server.static_key is None:
        server = replace(server, static_key=generate_keypair(randbytes=rng.randbytes))
    if (
        client.security == "noise"
        and client.server_public_key is None
        and server.static_key is not None
    ):
        client = replace(client, server_public_key=server.static_key.public)
    if client.crypto_randbytes is os.urandom:
        client = replace(client, crypto_randbytes=client.rng.randbytes)
    if server.crypto_randbytes is os.urandom:
        server = replace(server, crypto_randbytes=server.rng.randbytes)
    return client, server


def payload_pattern(seed: int) -> bytes:
    """The repeating block a transfer's payload is cut from."""
    return random.Random(seed).randbytes(PATTERN_BYTES)


@dataclass
class TransferResult:
    size_bytes: int
    bytes_delivered: int
    completed: bool
    intact: bool
    #: first byte written to last byte read, seconds of virtual time
    duration_s: float
    goodput_bps: float
    handshake_s: float
    #: wall-clock-free latency of 64 KiB chunks: written -> read, seconds
    chunk_latency_p50_s: float
    chunk_latency_p99_s: float
    client: ConnectionStats | None
    server: ConnectionStats | None
    forward_link: LinkStats
    backward_link: LinkStats
    events_simulated: int
    terminations: list[tuple[str, int, str, bool]] = field(default_factory=list)


class _BulkSender:
    def __init__(self, size_bytes: int, streams: int, pattern: bytes, close: bool) -> None:
        self.size_bytes = size_bytes
        self.stream_count = streams
        self.pattern = memoryview(pattern * 2)
        self.close_when_done = close
        self.per_stream: dict[int, list[int]] = {}  # stream -> [sent, total]
        self.hashes: dict[int, hashlib._Hash] = {}
        self.start_s: float | None = None
        self.handshake_s = 0.0
        self.write_times: dict[tuple[int, int], float] = {}
        self.done = False

    def on_event(self, conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, HandshakeCompleted):
            self.handshake_s = now
            self.start_s = now
            base, extra = divmod(self.size_bytes, self.stream_count)
            for index in range(self.stream_count):
                stream_id = conn.open_stream()
                self.per_stream[stream_id] = [0, base + (1 if index < extra else 0)]
                self.hashes[stream_id] = hashlib.sha256()
            for stream_id in list(self.per_stream):
                self._fill(conn, stream_id, now)
            self._maybe_finish(conn)
        elif isinstance(event, StreamWritable):
            self._fill(conn, event.stream_id, now)
            self._maybe_finish(conn)

    def _fill(self, conn: Connection, stream_id: int, now: float) -> None:
        state = self.per_stream[stream_id]
        sent, total = state
        while sent < total:
            start = sent % PATTERN_BYTES
            count = min(total - sent, PATTERN_BYTES)
            chunk = self.pattern[start : start + count]
            accepted = conn.send_stream_data(stream_id, chunk, end_stream=sent + count == total)
            if accepted:
                self.hashes[stream_id].update(chunk[:accepted])
                # record when each 64 KiB boundary was written, for latency figures
                first_mark = -(-sent // PATTERN_BYTES)
                last_mark = (sent + accepted) // PATTERN_BYTES
                for mark in range(first_mark, last_mark + 1):
                    if sent <= mark * PATTERN_BYTES < sent + accepted:
                        self.write_times[(stream_id, mark)] = now
            sent += accepted
            if accepted < count:
                break
        state[0] = sent
        if sent == total and total == 0:
            conn.send_stream_data(stream_id, b"", end_stream=True)

    def _maybe_finish(self, conn: Connection) -> None:
        if not self.done and all(s >= t for s, t in self.per_stream.values()):
            self.done = True
            if self.close_when_done:
                conn.close()


class _BulkReceiver:
    def __init__(self) -> None:
        self.received: dict[int, int] = {}
        self.hashes: dict[int, hashlib._Hash] = {}
        self.finished: set[int] = set()
        self.last_read_s = 0.0
        self.read_times: dict[tuple[int, int], float] = {}

    def on_event(self, conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, StreamReadable):
            sid = event.stream_id
            while True:
                data, fin = conn.recv_stream_data(sid)
                if data:
                    before = self.received.get(sid, 0)
                    after = before + len(data)
                    self.received[sid] = after
                    self.hashes.setdefault(sid, hashlib.sha256()).update(data)
                    self.last_read_s = now
                    for mark in range(-(-before // PATTERN_BYTES), after // PATTERN_BYTES + 1):
                        if before <= mark * PATTERN_BYTES < after:
                            self.read_times[(sid, mark)] = now
                if fin:
                    self.finished.add(sid)
                    self.hashes.setdefault(sid, hashlib.sha256())
                    self.received.setdefault(sid, 0)
                    self.last_read_s = now
                    return
                if not data:
                    return


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run_transfer(
    size_bytes: int,
    path: Path,
    *,
    seed: int = 0,
    streams: int = 1,
    config: Callable[[random.Random], Config] | None = None,
    server_config: Callable[[random.Random], Config] | None = None,
    time_limit_s: float = 600.0,
    close: bool = True,
    ecn: bool = False,
) -> TransferResult:
    """Send ``size_bytes`` from client to server over ``path`` and verify them.

    ``config(rng)`` builds each side's :class:`Config` from a seeded generator
    (default: ``Config(rng=rng)``); ``server_config(rng)``, when given, builds
    the server's instead (security settings differ by side). The run stops
    when the receiver has read everything (and, with ``close``, both sides finished closing) or at
    ``time_limit_s`` of virtual time. ``ecn=True`` moves ECN codepoints
    between the endpoints and the path (``AppNode(ecn=True)``).
    """
    sim = Simulator(seed=seed)
    make = config or (lambda rng: Config(rng=rng))
    make_server = server_config or make
    client_cfg, server_cfg = provision_keys(
        make(sim.rng("client")), make_server(sim.rng("server")), sim.rng("keys")
    )
    client_ep = Endpoint(client_cfg, is_server=False)
    server_ep = Endpoint(server_cfg, is_server=True)
    pattern = payload_pattern(seed)
    sender = _BulkSender(size_bytes, streams, pattern, close)
    receiver = _BulkReceiver()
    terminations: list[tuple[str, int, str, bool]] = []
    conns: dict[str, Connection] = {}

    def client_event(conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, ConnectionTerminated):
            terminations.append(("client", event.error_code, event.reason, event.by_peer))
        sender.on_event(conn, event, now)

    def server_event(conn: Connection, event: Event, now: float) -> None:
        conns.setdefault("server", conn)
        if isinstance(event, ConnectionTerminated):
            terminations.append(("server", event.error_code, event.reason, event.by_peer))
        receiver.on_event(conn, event, now)

    sim.attach(CLIENT_ADDR, AppNode(client_ep, client_event, ecn=ecn))
    sim.attach(SERVER_ADDR, AppNode(server_ep, server_event, ecn=ecn))
    sim.connect(CLIENT_ADDR, SERVER_ADDR, path)
    conns["client"] = client_ep.connect(SERVER_ADDR, 0.0)

    def all_read() -> bool:
        return len(receiver.finished) == streams

    def finished() -> bool:
        if not all_read():
            return False
        if not close:
            return True
        return all(c.is_closed for c in conns.values()) and len(conns) == 2

    sim.run(until_s=time_limit_s, stop_when=finished)

    delivered = sum(receiver.received.values())
    intact = all_read() and all(
        receiver.hashes[sid].digest() == sender.hashes[sid].digest() for sid in sender.hashes
    )
    start = sender.start_s if sender.start_s is not None else 0.0
    duration = max(receiver.last_read_s - start, 1e-9)
    latencies = [
        receiver.read_times[key] - written
        for key, written in sender.write_times.items()
        if key in receiver.read_times
    ]
    forward, backward = path.forward.stats(), path.backward.stats()
    client_conn = conns.get("client")
    server_conn = conns.get("server")
    return TransferResult(
        size_bytes=size_bytes,
        bytes_delivered=delivered,
        completed=all_read(),
        intact=intact,
        duration_s=duration,
        goodput_bps=delivered * 8 / duration,
        handshake_s=sender.handshake_s,
        chunk_latency_p50_s=_percentile(latencies, 0.50),
        chunk_latency_p99_s=_percentile(latencies, 0.99),
        client=client_conn.get_stats() if client_conn else None,
        server=server_conn.get_stats() if server_conn else None,
        forward_link=forward,
        backward_link=backward,
        events_simulated=sim.stats().events,
        terminations=terminations,
    )
