"""Blocking, socket-like API: one I/O thread per endpoint.

How this works
--------------
``connect()`` builds a client :class:`~transport.endpoint.Endpoint` on its own
:class:`~transport.udp.UdpSocket`; ``listen()`` builds a server endpoint. Each
endpoint gets a :class:`_Driver`: one daemon I/O thread that ``poll``\\ s the UDP
socket and a wake-up socketpair, sleeping exactly until
``Endpoint.get_timer()`` (sub-millisecond remainders are slept with
``time.sleep`` so pacing deadlines are met without spinning). Each turn of the
loop, under the endpoint lock, it reads datagram batches (GRO), fires due
timers, sends ``datagrams_to_send`` in batches (GSO; leftovers after
``EAGAIN`` wait for ``POLLOUT`` and hold back new output), and dispatches
``next_event()`` to the connection and stream objects, which notify
the threads waiting on them.

Application calls run in the caller's thread: they take the same lock, call
the sans-IO connection directly (``send_stream_data``, ``recv_stream_data``),
and wake the I/O thread so the output goes out. Waits use one
:class:`threading.Condition` per stream / connection built on the endpoint
lock, so nothing is missed between a call and the wait. Backpressure is the
core's: ``sendall`` blocks while the stream's bounded send buffer accepts
nothing and resumes on ``StreamWritable``; ``recv`` blocks until data or the
FIN (then returns ``b""``). Timeouts raise :class:`StreamTimeoutError` (a
:class:`TimeoutError`, i.e. ``socket.timeout``); a terminated connection
raises :class:`ConnectionLostError` (a :class:`ConnectionResetError`) with the
peer's code and reason; an ICMP "port unreachable" raises
:class:`~transport.errors.PortUnreachableError`.

Streams open lazily, as in QUIC: ``connect()`` returns once the handshake is
done with the connection's first bidirectional stream, but the listener's
``accept()`` sees the stream only when its first bytes (or FIN) arrive, so the
client speaks first. ``makefile()`` wraps a :class:`io.RawIOBase` adapter in
the usual buffered/text layers, so code written for ``socket.makefile()``
(line protocols, ``socketserver.StreamRequestHandler`` subclasses) runs
unchanged. Closing the first stream closes its connection gracefully and
lingers (bounded) until the peer has acknowledged everything, as TCP's kernel
would do after ``close()``.
"""

from __future__ import annotations

import contextlib
import io
import math
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from transport import events
from transport.config import Config
from transport.connection import Connection, is_bidirectional, is_client_initiated
from transport.endpoint import Endpoint
from transport.errors import (
    ConfigurationError,
    ConnectionClosedError,
    NetworkError,
    StreamError,
    TransportError,
)
from transport.stats import ConnectionStats
from transport.udp import Address, UdpSocket

__all__ = [
    "ConnectionHandle",
    "ConnectionLostError",
    "Listener",
    "SendingStoppedError",
    "Stream",
    "StreamResetError",
    "StreamTimeoutError",
    "connect",
    "listen",
]

#: How long closing the first stream waits for the peer to acknowledge our data.
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
        self._out: list[tuple[bytes, Address]] = []
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
                    self._receive(now)
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

    def _receive(self, now: float) -> None:
        receive = self.endpoint.receive_datagram
        for _ in range(_RECV_BATCHES_PER_TURN):
            try:
                batch = self.sock.recv_batch(256)
            except NetworkError as exc:
                self._on_network_error(exc)
                continue
            if not batch:
                return
            for data, addr in batch:
                receive(data, addr, now)
            self._flush(now)  # acknowledgements go out while more data waits

    def _flush(self, now: float) -> None:
        if self._out:
            sent = self.sock.send_batch(self._out)
            self._out = self._out[sent:]
            if self._out:
                return
        out = self.endpoint.datagrams_to_send(now)
        if out:
            sent = self.sock.send_batch(out)
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


class ConnectionHandle:
    """One connection as seen by application threads: streams, datagrams, stats."""

    def __init__(self, driver: _Driver, conn: Connection, *, owns_driver: bool) -> None:
        self._driver = driver
        self._conn = conn
        self._owns_driver = owns_driver
        self._cond = threading.Condition(driver.lock)
        self._streams: dict[int, Stream] = {}
        self._incoming: deque[Stream] = deque()
        self._datagrams: deque[bytes] = deque(maxlen=conn.config.max_received_datagrams)
        self._main_taken = False
        self.established = False
        self.error: BaseException | None = None
        self.terminated: events.ConnectionTerminated | None = None
        #: server: where the first peer stream goes (the listener's accept queue)
        self.on_first_stream: Callable[[Stream], None] | None = None
        driver.handles[conn] = self

    # -------------------------------------------------------------- public
    @property
    def peer_address(self) -> Address | None:
        return self._conn.peer_addr

    @property
    def closed(self) -> bool:
        return self.terminated is not None or self.error is not None

    def stats(self) -> ConnectionStats:
        """A snapshot of the connection's counters (RTT, window, losses, ...)."""
        with self._driver.lock:
            return self._conn.get_stats()

    def open_stream(self, bidirectional: bool = True) -> Stream:
        """Open another stream on this connection (the peer sees it when data flows)."""
        with self._driver.lock:
            self._check()
            stream_id = self._conn.open_stream(bidirectional)
            return self._attach(stream_id)

    def accept_stream(self, timeout: float | None = None) -> Stream:
        """Wait for a stream the peer opened (other than the first one)."""
        with self._driver.lock:
            _wait(self._cond, lambda: bool(self._incoming) or self.closed, timeout,
                  "accept_stream")
            if self._incoming:
                return self._incoming.popleft()
            raise self._closed_error()

    def send_datagram(self, data: bytes) -> bool:
        """Send an unreliable datagram (False: the oldest queued one was dropped)."""
        with self._driver.lock:
            self._check()
            queued = self._conn.send_datagram(data)
            self._driver.wake()
            return queued

    def recv_datagram(self, timeout: float | None = None) -> bytes:
        with self._driver.lock:
            _wait(self._cond, lambda: bool(self._datagrams) or self.closed, timeout,
                  "recv_datagram")
            if self._datagrams:
                return self._datagrams.popleft()
            raise self._closed_error()

    def close(self, error_code: int = 0, reason: str = "", *, graceful: bool = True,
              linger_s: float | None = DEFAULT_LINGER_S) -> None:
        """Close the connection; graceful waits (up to ``linger_s``) until the
        peer acknowledged every byte already written."""
        with self._driver.lock:
            if not self.closed:
                with contextlib.suppress(TransportError):
                    self._conn.close(error_code, reason, graceful=graceful)
                self._driver.wake()
        if linger_s:
            self.wait_closed(linger_s)
        if self._owns_driver:
            with self._driver.lock:
                self._driver.stop()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the connection ended; False on timeout."""
        with self._driver.lock:
            try:
                _wait(self._cond, lambda: self.closed, timeout, "wait_closed")
            except (StreamTimeoutError, BlockingIOError):
                return False
        return True

    def __enter__(self) -> ConnectionHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------ internal (lock held)
    def _check(self) -> None:
        if self.closed:
            raise self._closed_error()

    def _closed_error(self) -> BaseException:
        if self.error is not None:
            return self.error
        t = self.terminated
        if t is None:
            return ConnectionClosedError("the connection is closed")
        who = "peer" if t.by_peer else "local"
        kind = "application" if t.application else "transport"
        return ConnectionLostError(
            f"connection closed by {who} ({kind} code {t.error_code}"
            + (f": {t.reason}" if t.reason else "") + ")",
            t.error_code, t.reason, t.by_peer,
        )

    def _attach(self, stream_id: int, *, main: bool = False) -> Stream:
        stream = Stream(self, stream_id, main=main)
        self._streams[stream_id] = stream
        return stream

    def _fail(self, error: BaseException) -> None:
        if self.error is None and self.terminated is None:
            self.error = error
        self._wake_all()

    def _wake_all(self) -> None:
        self._cond.notify_all()
        for stream in self._streams.values():
            stream._cond.notify_all()

    def _on_event(self, event: events.Event) -> None:
        if isinstance(event, events.StreamReadable | events.StreamWritable):
            stream = self._streams.get(event.stream_id)
            if stream is None:
                if not isinstance(event, events.StreamReadable) or (
                    is_client_initiated(event.stream_id) == self._conn.is_client
                ):
                    return
                self._on_peer_stream(event.stream_id)
            else:
                if isinstance(event, events.StreamReadable):
                    stream._readable = True
                stream._cond.notify_all()
        elif isinstance(event, events.HandshakeCompleted):
            self.established = True
            self._cond.notify_all()
        elif isinstance(event, events.StreamReset):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._recv_error = StreamResetError(event.stream_id, event.error_code)
                stream._cond.notify_all()
        elif isinstance(event, events.StopSendingReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._send_error = SendingStoppedError(
                    f"peer stopped stream {event.stream_id} (code {event.error_code})"
                )
                stream._cond.notify_all()
        elif isinstance(event, events.DatagramReceived):
            self._datagrams.append(event.data)
            self._cond.notify_all()
        elif isinstance(event, events.ConnectionTerminated):
            self.terminated = event
            self._driver.handles.pop(self._conn, None)
            self._wake_all()
            if self._owns_driver:
                self._driver.stop()

    def _on_peer_stream(self, stream_id: int) -> None:
        first = (
            not self._main_taken and is_bidirectional(stream_id) and not self._conn.is_client
        )
        stream = self._attach(stream_id, main=first)
        if first and self.on_first_stream is not None:
            self._main_taken = True
            self.on_first_stream(stream)
        else:
            self._incoming.append(stream)
            self._cond.notify_all()


class _RawStreamIO(io.RawIOBase):
    """``io.RawIOBase`` over a :class:`Stream` (what ``socket.SocketIO`` is to sockets)."""

    def __init__(self, stream: Stream, mode: str) -> None:
        super().__init__()
        self._stream = stream
        self._reading = "r" in mode
        self._writing = "w" in mode

    def readable(self) -> bool:
        return self._reading

    def writable(self) -> bool:
        return self._writing

    def readinto(self, buffer: Any) -> int:
        return self._stream.recv_into(buffer)

    def write(self, data: Any) -> int:
        with memoryview(data) as view:
            self._stream.sendall(view)
            return view.nbytes


class Stream:
    """A bidirectional (or one-way) byte stream with the socket API."""

    def __init__(self, handle: ConnectionHandle, stream_id: int, *, main: bool = False) -> None:
        self.connection = handle
        self.stream_id = stream_id
        self._main = main
        self._driver = handle._driver
        self._conn = handle._conn
        self._cond = threading.Condition(handle._driver.lock)
        local = is_client_initiated(stream_id) == self._conn.is_client
        bidi = is_bidirectional(stream_id)
        self._can_send = bidi or local
        self._can_recv = bidi or not local
        self._timeout: float | None = None
        self._eof = not self._can_recv
        self._fin_sent = not self._can_send
        self._closed = False
        self._readable = True  # try a read before the first wait
        self._recv_error: BaseException | None = None
        self._send_error: BaseException | None = None

    # ------------------------------------------------------------ settings
    def settimeout(self, timeout: float | None) -> None:
        if timeout is not None and timeout < 0:
            raise ConfigurationError("timeout must be >= 0 or None")
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getpeername(self) -> Address | None:
        return self._conn.peer_addr

    def getsockname(self) -> Address:
        return self._driver.sock.local_address

    # ------------------------------------------------------------- receive
    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Up to ``bufsize`` bytes; blocks until some arrive; ``b""`` at the FIN."""
        if bufsize < 0:
            raise ConfigurationError("bufsize must be >= 0")
        if bufsize == 0:
            return b""
        with self._driver.lock:
            while True:
                if self._eof:
                    return b""
                if self._recv_error is not None:
                    raise self._recv_error
                if self._closed:
                    raise ConnectionClosedError("the stream is closed")
                self._readable = False
                try:
                    data, fin = self._conn.recv_stream_data(self.stream_id, bufsize)
                except StreamError:
                    if self.connection.closed:
                        raise self.connection._closed_error() from None
                    data, fin = b"", True  # the receiving side is gone: end of stream
                if fin:
                    self._eof = True
                if data:
                    self._driver.wake()  # window updates go out
                    return data
                if fin:
                    return b""
                if self.connection.closed:
                    raise self.connection._closed_error()
                _wait(self._cond, self._recv_ready, self._timeout, "recv")

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        size = nbytes or len(view)
        data = self.recv(size)
        view[: len(data)] = data
        return len(data)

    def _recv_ready(self) -> bool:
        return (
            self._readable
            or self._recv_error is not None
            or self._closed
            or self.connection.closed
        )

    # ---------------------------------------------------------------- send
    def send(self, data: Any) -> int:
        """Queue some of ``data``; blocks until at least one byte fits."""
        with self._driver.lock:
            return self._send_locked(memoryview(data).cast("B"), self._timeout)

    def sendall(self, data: Any) -> None:
        """Queue all of ``data``, blocking while the send buffer is full."""
        view = memoryview(data).cast("B")
        total = len(view)
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        offset = 0
        with self._driver.lock:
            while offset < total:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                offset += self._send_locked(view[offset:], remaining)

    def _send_locked(self, view: memoryview, timeout: float | None) -> int:
        while True:
            self._check_send()
            if not len(view):
                return 0
            try:
                accepted = self._conn.send_stream_data(self.stream_id, view)
            except ConnectionClosedError:
                if self.connection.closed:
                    raise self.connection._closed_error() from None
                raise
            if accepted:
                self._driver.wake()
                return accepted
            _wait(self._cond, self._send_ready, timeout, "send")

    def _send_ready(self) -> bool:
        if self._send_error is not None or self._closed or self.connection.closed:
            return True
        try:
            return self._conn.stream_writable_bytes(self.stream_id) > 0
        except StreamError:
            return True  # the sending side is gone; the next call reports why

    def _check_send(self) -> None:
        if self._closed or self._fin_sent:
            raise ConnectionClosedError("the stream is closed for sending")
        if self._send_error is not None:
            raise self._send_error
        if self.connection.closed:
            raise self.connection._closed_error()

    # --------------------------------------------------------------- close
    def shutdown(self, how: int) -> None:
        """``SHUT_WR``: send the FIN; ``SHUT_RD``: ask the peer to stop sending."""
        with self._driver.lock:
            if how in (socket.SHUT_WR, socket.SHUT_RDWR):
                self._send_fin()
            if how in (socket.SHUT_RD, socket.SHUT_RDWR) and not self._eof:
                self._eof = True
                with contextlib.suppress(TransportError):
                    self._conn.stop_sending(self.stream_id)
            self._driver.wake()
            self._cond.notify_all()

    def _send_fin(self) -> None:
        if self._fin_sent or self._send_error is not None or self.connection.closed:
            return
        self._fin_sent = True
        with contextlib.suppress(TransportError):
            self._conn.send_stream_data(self.stream_id, b"", end_stream=True)

    def close(self, linger_s: float | None = DEFAULT_LINGER_S) -> None:
        """Send the FIN. Closing the connection's first stream closes the
        connection too, waiting up to ``linger_s`` for our data to be acknowledged."""
        with self._driver.lock:
            if self._closed:
                return
            self._send_fin()
            self._closed = True
            self._driver.wake()
            self._cond.notify_all()
        if self._main:
            self.connection.close(linger_s=linger_s)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        return -1

    def makefile(self, mode: str = "r", buffering: int | None = None, *,
                 encoding: str | None = None, errors: str | None = None,
                 newline: str | None = None) -> Any:
        """A file object over the stream, as ``socket.makefile`` returns."""
        if not set(mode) <= {"r", "w", "b"}:
            raise ConfigurationError(f"invalid mode {mode!r} (only r, w, b)")
        reading, writing, binary = "r" in mode, "w" in mode, "b" in mode
        if not reading and not writing:
            reading = True
        raw = _RawStreamIO(self, ("r" if reading else "") + ("w" if writing else ""))
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ConfigurationError("unbuffered streams must be binary")
            return raw
        buffer: Any
        if reading and writing:
            buffer = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        text = io.TextIOWrapper(buffer, encoding, errors, newline, line_buffering=False)
        text.mode = mode  # type: ignore[misc]
        return text

    def __repr__(self) -> str:
        return f"<Stream {self.stream_id} peer={self._conn.peer_addr} closed={self._closed}>"


# ------------------------------------------------------------------ entry points
def connect(address: tuple[str, int], *, config: Config | None = None,
            timeout: float | None = None, bind: Address | None = None,
            gso: bool = True, gro: bool = True) -> Stream:
    """Open a connection to ``address`` and its first bidirectional stream.

    ``config`` defaults to ``Config()`` (noise: set ``server_public_key``).
    Raises :class:`StreamTimeoutError` when the handshake does not finish in
    ``timeout`` seconds, :class:`~transport.errors.PortUnreachableError` when
    nothing listens there, :class:`ConnectionLostError` when the handshake fails.
    """
    config = config if config is not None else Config()
    family, peer = _resolve(address)
    if bind is None:
        bind = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)
    sock = UdpSocket(bind, family=family, gso=gso, gro=gro)
    driver = _Driver(Endpoint(config), sock, f"transport-client-{peer[0]}:{peer[1]}")
    with driver.lock:
        conn = driver.endpoint.connect(peer, time.monotonic())
        handle = ConnectionHandle(driver, conn, owns_driver=True)
    driver.start()
    try:
        with driver.lock:
            _wait(handle._cond, lambda: handle.established or handle.closed, timeout, "connect")
            handle._check()
            stream = handle._attach(conn.open_stream(True), main=True)
            handle._main_taken = True
            stream.settimeout(timeout)
            return stream
    except BaseException:
        handle.close(graceful=False, linger_s=None)
        raise


class Listener:
    """A server endpoint; ``accept()`` returns each new connection's first stream."""

    def __init__(self, address: tuple[str, int], *, config: Config, backlog: int = 128,
                 reuse_port: bool = False, gso: bool = True, gro: bool = True,
                 max_connections: int = 100_000) -> None:
        if backlog < 1:
            raise ConfigurationError("backlog must be >= 1")
        family, bind = _resolve(address)
        self._backlog = backlog
        self._timeout: float | None = None
        sock = UdpSocket(bind, family=family, reuse_port=reuse_port, gso=gso, gro=gro)
        endpoint = Endpoint(config, is_server=True, max_connections=max_connections)
        self._driver = _Driver(endpoint, sock, f"transport-server-{sock.local_address[1]}")
        self._cond = threading.Condition(self._driver.lock)
        self._queue: deque[tuple[Stream, Address]] = deque()
        self._closed = False
        self._driver.on_new_connection = self._on_new_connection
        self._driver.start()

    @property
    def local_address(self) -> Address:
        return self._driver.sock.local_address

    def getsockname(self) -> Address:
        return self.local_address

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def accept(self, timeout: float | None = None) -> tuple[Stream, Address]:
        """Wait for a new connection's first stream; returns ``(stream, peer)``."""
        limit = self._timeout if timeout is None else timeout
        with self._driver.lock:
            _wait(self._cond, lambda: bool(self._queue) or self._closed, limit, "accept")
            if self._queue:
                return self._queue.popleft()
            raise ConnectionClosedError("the listener is closed")

    def connections(self) -> list[ConnectionHandle]:
        with self._driver.lock:
            return list(self._driver.handles.values())

    def close(self, error_code: int = 0, reason: str = "server closing") -> None:
        """Close every connection (abruptly) and stop the I/O thread."""
        with self._driver.lock:
            if self._closed:
                return
            self._closed = True
            for handle in list(self._driver.handles.values()):
                with contextlib.suppress(TransportError):
                    handle._conn.close(error_code, reason, graceful=False)
            self._cond.notify_all()
            self._driver.stop()
        self._driver.join(_STOP_GRACE_S + 1)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # lock held
    def _on_new_connection(self, conn: Connection) -> ConnectionHandle | None:
        if self._closed or len(self._queue) >= self._backlog:
            with contextlib.suppress(TransportError):
                conn.close(0x1, "server busy", graceful=False)
            return None
        handle = ConnectionHandle(self._driver, conn, owns_driver=False)
        handle.on_first_stream = self._on_first_stream
        return handle

    def _on_first_stream(self, stream: Stream) -> None:
        peer = stream.getpeername() or ("", 0)
        self._queue.append((stream, peer))
        self._cond.notify()


def listen(address: tuple[str, int], *, config: Config, backlog: int = 128,
           reuse_port: bool = False, gso: bool = True, gro: bool = True) -> Listener:
    """Serve connections on ``address`` (a noise server needs ``config.static_key``)."""
    return Listener(address, config=config, backlog=backlog, reuse_port=reuse_port,
                    gso=gso, gro=gro)
