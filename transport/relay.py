"""An unprivileged UDP impairment relay: the simulator's path model on real sockets.

How this works
--------------
The relay listens on ``host:listen_port``. Datagrams arriving there come from
the *client* (the latest sender address is remembered) and are forwarded from
a second, ephemeral socket to ``target_host:target_port``; datagrams the
target sends back to that socket go to the client from the listening socket.

Each direction is a :class:`transport.sim.link.Link` built from a
:class:`~transport.sim.scenarios.PathSpec` -- the same loss, duplication,
drop-tail/CoDel queue, rate, corruption, delay and jitter decisions as in the
simulator. The links are bound to the relay's own event heap and fed real
time (``time.monotonic()`` since start) as ``now``: ``Link._offer`` computes
each datagram's delivery time and pushes it on the heap; the loop sleeps in
``select`` until the next socket event or the earliest delivery, then sends
everything due. Capacity schedules are applied as real time passes.

Run it in a background thread (:meth:`Relay.start`, or ``with Relay(...)``)
or in the foreground (:meth:`Relay.serve`, used by ``transport relay``).
"""

from __future__ import annotations

import heapq
import itertools
import select
import socket
import threading
import time
from typing import Any

from transport.errors import ConfigurationError
from transport.sim.link import Link, LinkStats
from transport.sim.scenarios import PathSpec

__all__ = ["Relay"]

_FWD = ("forward", 0)
_BWD = ("backward", 0)
MAX_DATAGRAM = 65535
RECV_BATCH = 64


class Relay:
    """UDP relay ``listen_port -> target_port`` applying ``path`` both ways."""

    def __init__(
        self,
        path: PathSpec,
        *,
        listen_port: int = 0,
        target_port: int,
        host: str = "127.0.0.1",
        target_host: str | None = None,
        seed: int = 0,
    ) -> None:
        if not 0 < target_port < 65536:
            raise ConfigurationError("target_port must be 1..65535")
        self.path = path
        self.target = (target_host or host, target_port)
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._listen.bind((host, listen_port))
        self._upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._upstream.bind((host, 0))
        for sock in (self._listen, self._upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        built = path.build()
        self.forward: Link = built.forward
        self.backward: Link = built.backward
        self._heap: list[tuple[Any, ...]] = []
        seq = itertools.count()
        self.forward._bind(self._heap, seq, seed, "relay:fwd")
        self.backward._bind(self._heap, seq, seed, "relay:bwd")
        self._route_fwd = (self.forward,)
        self._route_bwd = (self.backward,)
        self._client: tuple[str, int] | None = None
        self._schedule = sorted(path.rate_schedule)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self.send_errors = 0

    @property
    def port(self) -> int:
        """The listening port (useful with ``listen_port=0``)."""
        return int(self._listen.getsockname()[1])

    def stats(self) -> tuple[LinkStats, LinkStats]:
        return self.forward.stats(), self.backward.stats()

    # ------------------------------------------------------------ running --
    def start(self) -> Relay:
        self._thread = threading.Thread(target=self.serve, name="transport-relay", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._listen.close()
        self._upstream.close()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def serve(self, duration_s: float | None = None) -> None:
        """Relay until :meth:`close` (or ``duration_s`` seconds)."""
        self._t0 = time.monotonic()
        t0 = self._t0
        end = float("inf") if duration_s is None else duration_s
        heap = self._heap
        listen, upstream = self._listen, self._upstream
        socks = [listen, upstream]
        stop = self._stop
        schedule = self._schedule
        while not stop.is_set():
            now = time.monotonic() - t0
            if now >= end:
                break
            while schedule and schedule[0][0] <= now:
                _, rate = schedule.pop(0)
                self.forward.set_rate(rate)
                self.backward.set_rate(rate)
            self._release(now)
            timeout = 0.05
            if heap:
                timeout = min(timeout, max(heap[0][0] - now, 0.0))
            readable, _, _ = select.select(socks, [], [], timeout)
            if not readable:
                continue
            now = time.monotonic() - t0
            if listen in readable:
                self._drain(listen, True, now)
            if upstream in readable:
                self._drain(upstream, False, now)

    def _drain(self, sock: socket.socket, from_client: bool, now: float) -> None:
        for _ in range(RECV_BATCH):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable surfaced as ECONNREFUSED
                continue
            if from_client:
                self._client = (addr[0], addr[1])
                self.forward._offer(data, _FWD, _FWD, self._route_fwd, 0, now)
            elif addr == self.target:
                self.backward._offer(data, _BWD, _BWD, self._route_bwd, 0, now)

    def _release(self, now: float) -> None:
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= now:
            entry = pop(heap)
            data = entry[3]
            link = entry[6][0]
            link.packets_delivered += 1
            link.bytes_delivered += len(data)
            try:
                if entry[5] is _FWD:
                    self._upstream.sendto(data, self.target)
                elif self._client is not None:
                    self._listen.sendto(data, self._client)
            except OSError:
                self.send_errors += 1
