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

``connect()`` returns once the handshake is done, with the connection's first
bidirectional stream opened; the stream is announced to the server even before
the client writes, so the listener's ``accept()`` returns it at once and either
side may speak first (banner protocols work). ``makefile()`` wraps a
:class:`io.RawIOBase` adapter in the usual buffered/text layers, so code
written for ``socket.makefile()`` (line protocols,
``socketserver.StreamRequestHandler`` subclasses) runs unchanged. Closing the
first stream closes its connection gracefully and lingers (bounded) until the
peer has acknowledged everything, as TCP's kernel would do after ``close()``.

Layout: :mod:`transport.threaded._driver` (the I/O thread, the exception
types, the wait helper), :mod:`transport.threaded._handle` (connections,
streams, ``makefile``) and this module (``connect``, ``listen``,
:class:`Listener`); everything public is importable from ``transport.threaded``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque

from transport.config import Config
from transport.connection import Connection
from transport.endpoint import Endpoint
from transport.errors import ConfigurationError, ConnectionClosedError, TransportError
from transport.threaded._driver import (
    _STOP_GRACE_S,
    DEFAULT_LINGER_S,
    ConnectionLostError,
    SendingStoppedError,
    StreamResetError,
    StreamTimeoutError,
    _Driver,
    _resolve,
    _wait,
)
from transport.threaded._handle import ConnectionHandle, Stream
from transport.udp import Address, UdpSocket

__all__ = [
    "DEFAULT_LINGER_S",
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
    sock = UdpSocket(bind, family=family, gso=gso, gro=gro, ecn=config.ecn)
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
        sock = UdpSocket(bind, family=family, reuse_port=reuse_port, gso=gso, gro=gro,
                         ecn=config.ecn)
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
