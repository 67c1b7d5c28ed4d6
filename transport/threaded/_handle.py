"""Application-side objects of the blocking API: connections and streams.

How this works
--------------
Calls run in the caller's thread: they take the endpoint lock, call the
sans-IO connection directly (``send_stream_data``, ``recv_stream_data``) and
wake the I/O thread (:mod:`transport.threaded._driver`) so output goes out.
Waits use one :class:`threading.Condition` per stream / connection built on the
endpoint lock, so no event is missed between a call and the wait; the I/O
thread hands events to :meth:`ConnectionHandle._on_event`, which notifies the
waiters. Backpressure is the core's: ``sendall`` blocks while the stream's
bounded send buffer accepts nothing and resumes on ``StreamWritable``.
``makefile()`` wraps :class:`_RawStreamIO` in the usual buffered/text layers.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from transport import events
from transport.connection import Connection, is_bidirectional, is_client_initiated
from transport.errors import (
    ConfigurationError,
    ConnectionClosedError,
    StreamError,
    TransportError,
)
from transport.stats import ConnectionStats
from transport.threaded._driver import (
    DEFAULT_LINGER_S,
    ConnectionLostError,
    SendingStoppedError,
    StreamResetError,
    StreamTimeoutError,
    _Driver,
    _wait,
)
from transport.udp import Address


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
