"""The asyncio driver of one endpoint: socket, timer, events.

How this works
--------------
An :class:`EndpointDriver` owns one :class:`~transport.udp.UdpSocket` and one
sans-IO :class:`~transport.endpoint.Endpoint`, and runs them on an asyncio
loop without a task of its own:

* **Receive.** The socket fd is registered with ``loop.add_reader``. When it is
  readable, batches from ``recv_groups`` (GRO buffers uncut) go to
  ``endpoint.receive_groups`` (the whole batch), then the driver flushes.
* **Flush.** ``endpoint.datagrams_to_send(now)`` goes to ``send_batch``; when
  the kernel buffer fills, the unsent tail is kept (one batch at most, as no
  new batch is asked for meanwhile) and ``loop.add_writer`` waits for room.
  Then events are dispatched to the :class:`~transport.aio._conn.AsyncConnection`
  of each connection, and the one timer is re-armed. Application calls flush
  at once, so what they queue leaves without waiting for the loop; a flush
  started while one runs (a protocol callback that writes) makes the running
  one go round again instead of recursing.
* **Timer.** A single ``loop.call_at`` at ``endpoint.get_timer()``. ``now`` is
  always ``loop.time()``. If the loop wakes us before the deadline, the timer
  is re-armed just after it; if the core hands back a deadline that has
  already passed and that it did not act on, the next wake-up is clamped at
  least :data:`TIMER_CLAMP_S` ahead, so the driver never busy-loops.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transport.connection import Connection
from transport.endpoint import Endpoint
from transport.errors import NetworkError
from transport.events import ConnectionTerminated
from transport.udp import UdpSocket

if TYPE_CHECKING:
    from transport.aio._conn import AsyncConnection

__all__ = ["TIMER_CLAMP_S", "EndpointDriver"]

log = logging.getLogger("transport.aio")

#: Smallest wait after a deadline the core did not act on.
TIMER_CLAMP_S = 0.001
#: Slack added when the loop woke us before the deadline.
EARLY_WAKEUP_SLACK_S = 0.0001
RECV_BATCH = 256
RECV_BATCHES_PER_WAKEUP = 8


class EndpointDriver:
    """Runs one endpoint on one socket in an asyncio loop."""

    def __init__(
        self,
        endpoint: Endpoint,
        sock: UdpSocket,
        loop: asyncio.AbstractEventLoop,
        *,
        accept: Callable[[Connection], AsyncConnection | None] | None = None,
        close_when_idle: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.sock = sock
        self.loop = loop
        self.connections: dict[Connection, AsyncConnection] = {}
        #: server side: builds the AsyncConnection of a new connection (None: ignore it)
        self.accept = accept
        #: client side: close the socket once the endpoint has no connection left
        self.close_when_idle = close_when_idle
        self.local_address = sock.local_address
        self._fd = sock.fileno()
        self._backlog: deque[Any] = deque()  # (data, addr[, ECN codepoint])
        self._writer_armed = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._last_fired_at = float("-inf")
        self._flushing = False
        self._again = False
        self.closed = False
        self._closed_future: asyncio.Future[None] = loop.create_future()
        loop.add_reader(self._fd, self._on_readable)

    # -------------------------------------------------------------- inputs
    def _on_readable(self) -> None:
        if self.closed:
            return
        endpoint = self.endpoint
        sock = self.sock
        for _ in range(RECV_BATCHES_PER_WAKEUP):
            try:
                batch = sock.recv_groups(RECV_BATCH)  # (GRO buffers uncut)
                now = self.loop.time()  # stamp each batch when it was read (RTT samples)
            except NetworkError as exc:
                self._network_error(exc)
                continue
            except OSError as exc:  # pragma: no cover - socket failure
                log.warning("transport.aio: receive failed: %s", exc)
                break
            endpoint.receive_groups(batch, now, sock.recv_ecn)  # (codepoints, when read)
            if sum(-(-len(data) // size) if size else 1 for data, size, _ in batch) < RECV_BATCH:
                break
        self.flush()

    def _network_error(self, exc: NetworkError) -> None:
        for conn in list(self.connections.values()):
            peer = conn.core.peer_addr
            if exc.address is None or peer is None or tuple(peer[:2]) == tuple(exc.address[:2]):
                conn.on_network_error(exc)

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed:
            return
        deadline = self._timer_at
        now = self.loop.time()
        if deadline is not None and now < deadline:
            # woken early (clock granularity): wait until just past the deadline
            self._timer = self.loop.call_at(deadline + EARLY_WAKEUP_SLACK_S, self._on_timer)
            return
        self._timer_at = None
        self._last_fired_at = now
        self.endpoint.handle_timer(now)
        self.flush()

    def _on_writable(self) -> None:
        if self.closed:
            return
        if self._send(list(self._backlog), from_backlog=True):
            self.loop.remove_writer(self._fd)
            self._writer_armed = False
            self.flush()

    # ------------------------------------------------------------- outputs
    def flush(self) -> None:
        """Send what the endpoint has, dispatch its events, re-arm the timer."""
        if self._flushing:
            self._again = True
            return
        if self.closed:
            return
        self._flushing = True
        try:
            endpoint = self.endpoint
            while True:
                self._again = False
                if not self._backlog:
                    now = self.loop.time()
                    out: list[Any] = (  # with ECN: (data, addr, codepoint) triples
                        endpoint.datagrams_to_send_ecn(now)
                        if self.sock.ecn
                        else endpoint.datagrams_to_send(now)
                    )
                    if out:
                        self._send(out, from_backlog=False)
                self._dispatch()
                if not self._again or self.closed:
                    break
            if not self.closed:
                self._arm_timer()
        finally:
            self._flushing = False
        if (
            self.close_when_idle
            and not self.closed
            and not self.connections
            and not self.endpoint.connections
        ):
            self.close()

    def _send(self, datagrams: list[Any], *, from_backlog: bool) -> bool:
        """Send; keep the unsent tail. True when nothing is left over."""
        try:
            sock = self.sock
            sent = sock.send_batch_ecn(datagrams) if sock.ecn else sock.send_batch(datagrams)
        except NetworkError as exc:
            log.warning("transport.aio: send failed: %s", exc)
            sent = len(datagrams)  # UDP: treat as lost, recovery resends
        if from_backlog:
            for _ in range(sent):
                self._backlog.popleft()
        elif sent < len(datagrams):
            self._backlog.extend(datagrams[sent:])
        if self._backlog:
            if not self._writer_armed:
                self.loop.add_writer(self._fd, self._on_writable)
                self._writer_armed = True
            return False
        return True

    def _dispatch(self) -> None:
        endpoint = self.endpoint
        connections = self.connections
        while True:
            item = endpoint.next_event()
            if item is None:
                return
            core, event = item
            conn = connections.get(core)
            if conn is None:
                if self.accept is None or isinstance(event, ConnectionTerminated):
                    continue  # a connection that never got going, or one we let go
                conn = self.accept(core)
                if conn is None:
                    continue
                connections[core] = conn
            conn.on_event(event)

    def _arm_timer(self) -> None:
        deadline = self.endpoint.get_timer()
        if deadline is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = None
            return
        if self._timer is not None and deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        when = deadline
        if deadline <= self._last_fired_at:
            # the core left a deadline in place that has already been served:
            # clamp instead of spinning
            when = max(deadline, self.loop.time() + TIMER_CLAMP_S)
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    # ----------------------------------------------------------- lifetime
    def register(self, conn: AsyncConnection) -> None:
        self.connections[conn.core] = conn

    def connection_terminated(self, conn: AsyncConnection) -> None:
        self.connections.pop(conn.core, None)

    def close(self) -> None:
        """Stop at once: unregister from the loop and close the socket."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writer_armed:
            self.loop.remove_writer(self._fd)
            self._writer_armed = False
        self.loop.remove_reader(self._fd)
        self.sock.close()
        self._backlog.clear()
        if not self._closed_future.done():
            self._closed_future.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed_future)

    async def wait_closed_if_owned(self) -> None:
        if self.close_when_idle:
            await self.wait_closed()
