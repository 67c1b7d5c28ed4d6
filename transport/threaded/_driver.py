"""The I/O thread of the blocking API: one :class:`_Driver` per endpoint.

How this works
--------------
A daemon thread ``poll``\\ s the endpoint's UDP socket and a wake-up
socketpair, sleeping exactly until ``Endpoint.get_timer()`` (sub-millisecond
remainders are slept with ``time.sleep`` so pacing deadlines are met without
spinning). Each turn, under the endpoint lock, it reads datagram batches (GRO),
fires due timers, sends ``datagrams_to_send`` in batches (GSO; leftovers after
``EAGAIN`` wait for ``POLLOUT`` and hold back new output) and dispatches
``next_event()`` to the :class:`~transport.threaded._handle.ConnectionHandle`
of each connection. This module also holds the API's exception types and the
condition-variable wait helper shared by the other modules of the package.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transport import events
from transport.connection import Connection
from transport.endpoint import Endpoint
from transport.errors import NetworkError, TransportError
from transport.udp import Address, UdpSocket

if TYPE_CHECKING:
    from transport.threaded._handle import ConnectionHandle

DEFAULT_LINGER_S = 10.0
_RECV_BATCHES_PER_TURN = 4
_STOP_GRACE_S = 1.0


class ConnectionLostError(TransportError, ConnectionResetError):
    """The connection ended (peer close, idle timeout, protocol error)."""

    def __init__(self, message: str, error_code: int = 0, reason: str = "",
                 by_peer: bool = False) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.reason = reason
        self.by_peer = by_peer


class StreamResetError(TransportError, ConnectionResetError):
    """The peer abandoned its sending side of the stream (RESET_STREAM)."""

    def __init__(self, stream_id: int, error_code: int) -> None:
        super().__init__(f"stream {stream_id} reset by peer (code {error_code})")
        self.stream_id = stream_id
        self.error_code = error_code


class SendingStoppedError(TransportError, BrokenPipeError):
    """The peer asked us to stop sending on the stream (STOP_SENDING)."""


class StreamTimeoutError(TransportError, TimeoutError):
    """A blocking call did not complete within the timeout (``socket.timeout``)."""


def _resolve(address: tuple[str, int]) -> tuple[socket.AddressFamily, Address]:
    host, port = address[0], int(address[1])
    infos = socket.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_DGRAM)
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def _wait(cond: threading.Condition, ready: Callable[[], bool], timeout: float | None,
          what: str) -> None:
    """Wait (lock held) until ``ready()``; raise on timeout."""
    if ready():
        return
    if timeout is not None and timeout <= 0:
        if timeout == 0:
            raise BlockingIOError(f"{what} would block")
        raise StreamTimeoutError(f"{what} timed out")
    deadline = None if timeout is None else time.monotonic() + timeout
    while not ready():
        if deadline is None:
            cond.wait()
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StreamTimeoutError(f"{what} timed out after {timeout} s")
        cond.wait(remaining)


class _Driver:
    """One endpoint, its socket and the I/O thread that serves them."""

    def __init__(self, endpoint: Endpoint, sock: UdpSocket, name: str) -> None:
        self.lock = threading.Lock()
        self.endpoint = endpoint
        self.sock = sock
        self.handles: dict[Connection, ConnectionHandle] = {}
        #: server: called (lock held) for a connection seen for the first time
        self.on_new_connection: Callable[[Connection], ConnectionHandle | None] | None = None
        self.fatal: BaseException | None = None
        self.stopped = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._woken = False
        self._out: list[Any] = []  # (data, addr[, ECN codepoint])
        self._stopping = False
        self._stop_deadline = math.inf
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Make the I/O thread run a turn (call with the lock held)."""
        if not self._woken:
            self._woken = True
            with contextlib.suppress(BlockingIOError, OSError):
                self._wake_w.send(b"\0")

    def stop(self, grace_s: float = _STOP_GRACE_S) -> None:
        """Let closing connections send their CONNECTION_CLOSE, then end (lock held)."""
        if not self._stopping:
            self._stopping = True
            self._stop_deadline = time.monotonic() + grace_s
            self.wake()

    def join(self, timeout: float | None = None) -> None:
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # ---------------------------------------------------------------- loop
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # report to every waiter, then end
            with self.lock:
                self.fatal = exc
                for handle in list(self.handles.values()):
                    handle._fail(ConnectionLostError(f"I/O thread failed: {exc!r}"))
        finally:
            self.sock.close()
            self._wake_r.close()
            self._wake_w.close()
            self.stopped.set()

    def _loop(self) -> None:
        sock_fd = self.sock.fileno()
        wake_fd = self._wake_r.fileno()
        poller = select.poll()
        poller.register(sock_fd, select.POLLIN)
        poller.register(wake_fd, select.POLLIN)
        polling_out = False
        ready_sock = ready_out = ready_wake = False
        endpoint = self.endpoint
        while True:
            with self.lock:
                now = time.monotonic()
                if ready_wake:
                    self._woken = False
                    with contextlib.suppress(BlockingIOError):
                        while self._wake_r.recv(4096):
                            pass
                if ready_sock:
                    now = self._receive(now)
                deadline = endpoint.get_timer()
                if deadline is not None and now >= deadline:
                    endpoint.handle_timer(now)
                if ready_out or not self._out:
                    self._flush(now)
                self._dispatch()
                deadline = endpoint.get_timer()
                if self._stopping and (
                    not endpoint.connections or now >= self._stop_deadline
                ):
                    return
                want_out = bool(self._out)
            if want_out != polling_out:
                polling_out = want_out
                poller.modify(sock_fd, select.POLLIN | (select.POLLOUT if want_out else 0))
            timeout_ms: int | None = None
            if deadline is not None:
                delta = deadline - time.monotonic()
                if 0 < delta < 0.001:
                    ready = poller.poll(0)
                    if not ready:
                        time.sleep(delta)
                        ready_sock = ready_out = ready_wake = False
                        continue
                    timeout_ms = 0
                else:
                    timeout_ms = max(0, math.ceil(delta * 1000))
            if self._stopping:
                timeout_ms = 50 if timeout_ms is None else min(timeout_ms, 50)
            ready = poller.poll(timeout_ms)
            ready_sock = ready_out = ready_wake = False
            for fd, mask in ready:
                if fd == sock_fd:
                    ready_sock = bool(mask & (select.POLLIN | select.POLLERR))
                    ready_out = bool(mask & select.POLLOUT)
                else:
                    ready_wake = True

    def _receive(self, now: float) -> float:
        """Read up to a few batches; returns the time of the last read."""
        receive = self.endpoint.receive_groups  # (GRO buffers uncut)
        for _ in range(_RECV_BATCHES_PER_TURN):
            try:
                batch = self.sock.recv_groups(256)
            except NetworkError as exc:
                self._on_network_error(exc)
                continue
            if not batch:
                break
            # stamp after the read: a time taken before it (the thread may have
            # been descheduled since) would make RTT samples too short
            now = time.monotonic()
            receive(batch, now, self.sock.recv_ecn)  # (codepoints, when read)
            self._flush(now)  # acknowledgements go out while more data waits
        return now

    def _flush(self, now: float) -> None:
        ecn = self.sock.ecn  # (data, addr, ECN codepoint) triples when marking
        send = self.sock.send_batch_ecn if ecn else self.sock.send_batch
        if self._out:
            sent = send(self._out)
            self._out = self._out[sent:]
            if self._out:
                return
        endpoint = self.endpoint
        out: list[Any] = (
            endpoint.datagrams_to_send_ecn(now) if ecn else endpoint.datagrams_to_send(now)
        )
        if out:
            sent = send(out)
            if sent < len(out):
                self._out = out[sent:]

    def _dispatch(self) -> None:
        next_event = self.endpoint.next_event
        while True:
            item = next_event()
            if item is None:
                return
            conn, event = item
            handle = self.handles.get(conn)
            if handle is None:
                if self.on_new_connection is None or isinstance(
                    event, events.ConnectionTerminated
                ):
                    continue
                handle = self.on_new_connection(conn)
                if handle is None:
                    continue
            handle._on_event(event)

    def _on_network_error(self, exc: NetworkError) -> None:
        for conn, handle in list(self.handles.items()):
            if exc.address is None or conn.peer_addr == exc.address:
                handle._fail(exc)
                with contextlib.suppress(TransportError):
                    conn.close(0, "peer unreachable", graceful=False)
