"""Soak test: many connections through the impairment relay, every byte checked.

How this works
--------------
One process drives a client :class:`~transport.endpoint.Endpoint` (all
connections share one UDP socket) and a server endpoint on another socket,
both sans-IO, in a plain ``select`` loop on 127.0.0.1. Between them sits
:class:`transport.relay.Relay` in a child process (its own core): 5 % random
loss both ways, uniform jitter with reordering allowed, 20 ms RTT.

Each client connection runs streams one or two at a time, opened at random:
a stream carries a 40-byte header (body length, SHA-256 of the body) and a
random body (1 KiB .. 256 KiB), then FIN. The server checks length and hash
at FIN and answers on the same stream with the SHA-256 it computed, which the
client compares. One stream in ten is reset by the client part-way (the
server then resets its half). A connection that ends unexpectedly is counted
and replaced. When the time is up no new streams start, the run drains for
up to 15 s, and whatever did not finish is reported.

Resident memory is read from ``/proc/self/statm`` once a second. Growth is
the median of the last tenth of the samples against the median of the first
tenth after warm-up (a quarter of the run, at least 15 s).

Prints one JSON object; exits 1 on any corrupted or lost stream, any
exception, or RSS growth above ``--max-rss-growth`` (percent).

    python benchmarks/soak.py --connections 200 --duration 600
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import random
import select
import socket
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transport import Config
from transport import events as ev
from transport.connection import Connection
from transport.crypto.keys import generate_keypair
from transport.endpoint import Endpoint
from transport.errors import LocalError
from transport.sim import Bernoulli
from transport.sim.jitter import UniformJitter
from transport.sim.scenarios import PathSpec

HEADER_BYTES = 40
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
SIZES = (1024, 4096, 16 * 1024, 64 * 1024, 256 * 1024)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_BYTES


def relay_main(server_port: int, port_pipe: object, duration_s: float, loss: float) -> None:
    from transport.relay import Relay

    path = PathSpec(
        rate_bps=None, rtt_s=0.020, loss=Bernoulli(loss), reorder=True,
        jitter=UniformJitter(0.004),
    )
    relay = Relay(path, target_port=server_port, seed=7)
    port_pipe.send(relay.port)  # type: ignore[attr-defined]
    relay.serve(duration_s)


@dataclass
class OutStream:
    body: bytes
    header: bytes
    sent: int = 0  # bytes of header+body accepted
    reset_at: int | None = None
    reply: bytearray = field(default_factory=bytearray)


@dataclass
class InStream:
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Totals:
    streams_started: int = 0
    streams_verified: int = 0
    streams_reset: int = 0
    bytes_verified: int = 0
    corrupted: int = 0
    lost: int = 0
    exceptions: int = 0
    connections_opened: int = 0
    connections_lost: int = 0
    unfinished: int = 0
    errors: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        keys = generate_keypair(randbytes=random.Random(args.seed + 1).randbytes)
        common: dict[str, Any] = {
            "idle_timeout_s": 30.0, "handshake_timeout_s": 20.0, "keepalive_interval_s": 5.0}
        self.client_cfg = Config(server_public_key=keys.public,
                                 rng=random.Random(args.seed + 2), **common)
        self.server_cfg = Config(static_key=keys, rng=random.Random(args.seed + 3), **common)
        self.server_sock = self._sock()
        self.client_sock = self._sock()
        self.client = Endpoint(self.client_cfg)
        self.server = Endpoint(self.server_cfg, is_server=True)
        self.totals = Totals()
        self.out: dict[Connection, dict[int, OutStream]] = {}
        self.next_start: dict[Connection, float] = {}
        self.incoming: dict[tuple[int, int], InStream] = {}
        self.server_ids: dict[Connection, int] = {}
        self.rss: list[tuple[float, int]] = []
        self.relay_addr: tuple[str, int] = ("127.0.0.1", 0)
        self.stopping = False

    @staticmethod
    def _sock() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        return s

    # ------------------------------------------------------------ client
    def open_connection(self, now: float) -> None:
        conn = self.client.connect(self.relay_addr, now)
        self.out[conn] = {}
        self.next_start[conn] = float("inf")  # set at HandshakeCompleted
        self.totals.connections_opened += 1

    def start_stream(self, conn: Connection, now: float) -> None:
        try:
            sid = conn.open_stream()
        except LocalError:
            self.next_start[conn] = now + 0.1
            return
        size = self.rng.choice(SIZES)
        size = self.rng.randint(size // 2, size)
        body = self.rng.randbytes(size)
        header = size.to_bytes(8, "big") + hashlib.sha256(body).digest()
        s = OutStream(body, header)
        if self.rng.random() < 0.1:
            s.reset_at = self.rng.randint(0, size)
        self.out[conn][sid] = s
        self.totals.streams_started += 1
        self.pump(conn, sid)
        concurrent = len(self.out[conn])
        gap = self.rng.uniform(0.0, 0.4) if concurrent < 2 else float("inf")
        self.next_start[conn] = now + gap

    def pump(self, conn: Connection, sid: int) -> None:
        s = self.out[conn].get(sid)
        if s is None:
            return
        total = HEADER_BYTES + len(s.body)
        while s.sent < total:
            if s.reset_at is not None and s.sent >= HEADER_BYTES + s.reset_at:
                conn.reset_stream(sid, 9)
                del self.out[conn][sid]
                self.totals.streams_reset += 1
                self.schedule(conn)
                return
            end = min(total, s.sent + 65536)
            if s.reset_at is not None:
                end = min(end, HEADER_BYTES + s.reset_at + 1)
            if s.sent < HEADER_BYTES:
                chunk = (s.header + s.body[: end - HEADER_BYTES])[s.sent : end]
            else:
                chunk = s.body[s.sent - HEADER_BYTES : end - HEADER_BYTES]
            accepted = conn.send_stream_data(sid, chunk, end_stream=end == total)
            s.sent += accepted
            if accepted < len(chunk):
                return

    def schedule(self, conn: Connection) -> None:
        if self.next_start.get(conn) == float("inf") and not self.stopping:
            self.next_start[conn] = time.monotonic() + self.rng.uniform(0.0, 0.4)

    def on_client_event(self, conn: Connection, event: ev.Event) -> None:
        t = self.totals
        if isinstance(event, ev.HandshakeCompleted):
            self.next_start[conn] = time.monotonic()
        elif isinstance(event, ev.StreamWritable):
            self.pump(conn, event.stream_id)
        elif isinstance(event, ev.StreamReadable):
            s = self.out[conn].get(event.stream_id)
            while True:
                try:
                    data, fin = conn.recv_stream_data(event.stream_id)
                except LocalError:
                    return
                if s is not None:
                    s.reply.extend(data)
                if fin:
                    if s is not None:
                        if bytes(s.reply) == hashlib.sha256(s.body).digest():
                            t.streams_verified += 1
                            t.bytes_verified += len(s.body)
                        else:
                            t.corrupted += 1
                            t.errors.append(f"client: bad reply on stream {event.stream_id}")
                        del self.out[conn][event.stream_id]
                        self.schedule(conn)
                    return
                if not data:
                    return
        elif isinstance(event, ev.StreamReset):
            self.out[conn].pop(event.stream_id, None)
            self.schedule(conn)
        elif isinstance(event, ev.ConnectionTerminated):
            pending = self.out.pop(conn, {})
            self.next_start.pop(conn, None)
            t.connections_lost += 1
            t.lost += len(pending)
            t.errors.append(f"client connection ended: {event}")
            if not self.stopping:
                self.open_connection(time.monotonic())

    # ------------------------------------------------------------ server
    def on_server_event(self, conn: Connection, event: ev.Event) -> None:
        t = self.totals
        key_conn = self.server_ids.setdefault(conn, len(self.server_ids))
        if isinstance(event, ev.StreamReadable):
            key = (key_conn, event.stream_id)
            rec = self.incoming.setdefault(key, InStream())
            while True:
                try:
                    data, fin = conn.recv_stream_data(event.stream_id)
                except LocalError:
                    return
                rec.data.extend(data)
                if fin:
                    del self.incoming[key]
                    self.check(conn, event.stream_id, rec.data)
                    return
                if not data:
                    return
        elif isinstance(event, ev.StreamReset):
            self.incoming.pop((key_conn, event.stream_id), None)
            with contextlib.suppress(LocalError):
                conn.reset_stream(event.stream_id, 9)
        elif isinstance(event, ev.ConnectionTerminated):
            self.server_ids.pop(conn, None)
            stale = [k for k in self.incoming if k[0] == key_conn]
            for k in stale:
                del self.incoming[k]
            if not event.by_peer and event.error_code != 0:
                t.errors.append(f"server connection ended: {event}")

    def check(self, conn: Connection, sid: int, data: bytearray) -> None:
        t = self.totals
        ok = len(data) >= HEADER_BYTES
        digest = b""
        if ok:
            size = int.from_bytes(data[:8], "big")
            body = memoryview(data)[HEADER_BYTES:]
            digest = hashlib.sha256(body).digest()
            ok = len(body) == size and digest == bytes(data[8:HEADER_BYTES])
        if not ok:
            t.corrupted += 1
            t.errors.append(f"server: stream {sid} failed its length/hash check")
        with contextlib.suppress(LocalError):
            conn.send_stream_data(sid, digest, end_stream=True)

    # -------------------------------------------------------------- loop
    def run(self) -> dict[str, object]:
        a = self.args
        parent, child = multiprocessing.Pipe()
        server_port = self.server_sock.getsockname()[1]
        relay = multiprocessing.Process(
            target=relay_main, args=(server_port, child, a.duration + 60, a.loss), daemon=True
        )
        relay.start()
        self.relay_addr = ("127.0.0.1", parent.recv())
        start = time.monotonic()
        end = start + a.duration
        drain_end = end + 15.0
        next_open = start
        opened = 0
        next_sample = start
        socks = [self.client_sock, self.server_sock]
        t = self.totals
        while True:
            now = time.monotonic()
            if now >= next_sample:
                self.rss.append((now - start, rss_bytes()))
                next_sample += 1.0
            if now >= end and not self.stopping:
                self.stopping = True
                for conn in self.next_start:
                    self.next_start[conn] = float("inf")
            if self.stopping and (now >= drain_end or not any(self.out.values())):
                break
            while opened < a.connections and now >= next_open:
                self.open_connection(now)
                opened += 1
                next_open += 0.005
            if not self.stopping:
                for conn, at in list(self.next_start.items()):
                    if at <= now and conn in self.out:
                        self.start_stream(conn, now)
            try:
                self.step(now)
            except Exception:
                t.exceptions += 1
                t.errors.append(traceback.format_exc(limit=8))
                if t.exceptions > 10:
                    break
            timers = [x for x in (self.client.get_timer(), self.server.get_timer()) if x]
            wake = min([*timers, now + 0.05, next_sample])
            if opened < a.connections:
                wake = min(wake, next_open)
            if not self.stopping and self.next_start:
                wake = min(wake, min(self.next_start.values()))
            timeout = max(0.0, wake - time.monotonic())
            select.select(socks, [], [], timeout)
        relay.terminate()
        relay.join(5)
        t.unfinished = sum(len(v) for v in self.out.values())
        return self.report(time.monotonic() - start)

    def step(self, now: float) -> None:
        for sock, ep in ((self.client_sock, self.client), (self.server_sock, self.server)):
            for _ in range(512):
                try:
                    data, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                ep.receive_datagram(data, addr, now)
        for ep in (self.client, self.server):
            deadline = ep.get_timer()
            if deadline is not None and deadline <= now:
                ep.handle_timer(now)
        for sock, ep, handler in (
            (self.client_sock, self.client, self.on_client_event),
            (self.server_sock, self.server, self.on_server_event),
        ):
            for _ in range(4):
                out = ep.datagrams_to_send(now)
                for data, addr in out:
                    with contextlib.suppress(OSError):  # a full buffer is just loss
                        sock.sendto(data, addr)
                busy = bool(out)
                while (item := ep.next_event()) is not None:
                    busy = True
                    handler(*item)
                if not busy:
                    break

    def report(self, elapsed_s: float) -> dict[str, object]:
        a = self.args
        t = self.totals
        warmup = a.warmup if a.warmup is not None else max(15.0, a.duration / 4)
        after = [r for at, r in self.rss if warmup <= at <= a.duration]
        growth = 0.0
        if len(after) >= 10:
            tenth = max(1, len(after) // 10)
            first = statistics.median(after[:tenth])
            last = statistics.median(after[-tenth:])
            growth = 100.0 * (last - first) / first
        return {
            "connections": a.connections,
            "duration_s": a.duration,
            "elapsed_s": round(elapsed_s, 1),
            "loss": a.loss,
            "streams_started": t.streams_started,
            "streams_verified": t.streams_verified,
            "streams_reset": t.streams_reset,
            "bytes_verified": t.bytes_verified,
            "corrupted": t.corrupted,
            "lost": t.lost,
            "unfinished": t.unfinished,
            "exceptions": t.exceptions,
            "connections_opened": t.connections_opened,
            "connections_lost": t.connections_lost,
            "rss_start_mb": round(self.rss[0][1] / 2**20, 1) if self.rss else None,
            "rss_after_warmup_mb": round(after[0] / 2**20, 1) if after else None,
            "rss_end_mb": round(self.rss[-1][1] / 2**20, 1) if self.rss else None,
            "rss_max_mb": round(max(r for _a, r in self.rss) / 2**20, 1) if self.rss else None,
            "rss_growth_after_warmup_pct": round(growth, 2),
            "warmup_s": warmup,
            "errors": t.errors[:10],
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--connections", type=int, default=200)
    p.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    p.add_argument("--loss", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-rss-growth", type=float, default=5.0, help="percent")
    p.add_argument(
        "--warmup", type=float, default=None,
        help="seconds before RSS growth is measured (default: max(15, duration / 4))",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    result = Soak(args).run()
    ok = (
        result["corrupted"] == 0
        and result["lost"] == 0
        and result["unfinished"] == 0
        and result["exceptions"] == 0
        and float(result["rss_growth_after_warmup_pct"]) <= args.max_rss_growth  # type: ignore[arg-type]
    )
    result["ok"] = ok
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
