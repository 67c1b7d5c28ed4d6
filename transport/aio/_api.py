"""Opening connections and serving: ``connect``/``serve`` and the asyncio-
compatible ``open_connection``/``start_server``.

How this works
--------------
A client connection gets its own socket, endpoint and driver; the driver
closes the socket once the connection has fully closed (after the closing
period that lets a lost CONNECTION_CLOSE be answered). A server is one socket,
one endpoint and one driver for every peer: new connections appear as the
endpoint reports their first event, and each stream the peer opens is handed
to the stream callback (a ``handler(reader, writer)`` coroutine runs as a
task). :meth:`Server.shutdown` is the graceful path: stop accepting, let the
handlers finish, close every connection gracefully (queued stream bytes are
delivered and acknowledged first), then release the socket.

Opening a stream announces it to the peer (an empty STREAM frame, unless data
goes first), so the server's handler runs as soon as the client opens a stream
and either side may speak first.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from transport.aio._conn import AsyncConnection
from transport.aio._driver import EndpointDriver
from transport.aio._stream import DEFAULT_LIMIT, StreamReader, StreamState, StreamWriter
from transport.config import Config
from transport.connection import Connection
from transport.endpoint import Endpoint
from transport.udp import UdpSocket

__all__ = [
    "ConfiguredAPI",
    "Server",
    "connect",
    "open_connection",
    "serve",
    "start_server",
    "with_config",
]

#: How long a shutting-down server keeps its socket for connections still in
#: their closing period (3 PTO; long for ones that failed their handshake).
MAX_CLOSING_LINGER_S = 0.5

StreamHandler = Callable[[StreamReader, StreamWriter], Awaitable[None] | None]
ConnectionHandler = Callable[[AsyncConnection], Awaitable[None] | None]


async def _resolve(host: str | None, port: int, *, passive: bool) -> tuple[int, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    if host is None or host == "":
        host = "0.0.0.0" if passive else "localhost"
    infos = await loop.getaddrinfo(
        host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE if passive else 0
    )
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise OSError(f"cannot resolve {host!r}")
    family, _type, _proto, _name, sockaddr = infos[0]
    return int(family), (str(sockaddr[0]), int(sockaddr[1]))


async def _open(
    host: str | None,
    port: int,
    config: Config | None,
    *,
    limit: int,
    local_addr: tuple[str, int] | None,
) -> AsyncConnection:
    loop = asyncio.get_running_loop()
    family, addr = await _resolve(host, port, passive=False)
    if local_addr is None:
        local_addr = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)
    config = config or Config()
    sock = UdpSocket(local_addr, family=socket.AddressFamily(family), ecn=config.ecn)
    try:
        endpoint = Endpoint(config, is_server=False)
        driver = EndpointDriver(endpoint, sock, loop, close_when_idle=True)
    except BaseException:
        sock.close()
        raise
    try:
        core = endpoint.connect(addr, loop.time())
        conn = AsyncConnection(driver, core, limit=limit)
        driver.register(conn)
        driver.flush()
        await conn.wait_established()
    except BaseException:
        driver.close()
        raise
    return conn


class connect:
    """Open a connection: ``conn = await connect(...)`` or
    ``async with connect(host, port, config=...) as conn:``.

    Raises :class:`~transport.errors.PortUnreachableError` (a
    :class:`ConnectionRefusedError`) when nothing listens there and
    :class:`~transport.aio.HandshakeFailedError` when the handshake fails or
    times out (``Config.handshake_timeout_s``)."""

    def __init__(
        self,
        host: str | None,
        port: int,
        *,
        config: Config | None = None,
        limit: int = DEFAULT_LIMIT,
        local_addr: tuple[str, int] | None = None,
    ) -> None:
        self._args = (host, port, config, limit, local_addr)
        self._conn: AsyncConnection | None = None

    async def _open(self) -> AsyncConnection:
        host, port, config, limit, local_addr = self._args
        return await _open(host, port, config, limit=limit, local_addr=local_addr)

    def __await__(self) -> Generator[Any, None, AsyncConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncConnection:
        self._conn = await self._open()
        return self._conn

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        conn = self._conn
        if conn is None:
            return
        if exc_type is None:
            conn.close()
        else:
            conn.abort()
        await conn.wait_closed()


class _SocketInfo:
    """What ``asyncio.Server.sockets`` offers that callers use: ``getsockname``."""

    def __init__(self, sock: UdpSocket) -> None:
        self._sock = sock

    def getsockname(self) -> tuple[str, int]:
        return self._sock.local_address

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def family(self) -> int:
        return int(self._sock.family)


class Server:
    """A listening endpoint; the surface of :class:`asyncio.Server`, plus a
    graceful :meth:`shutdown`."""

    def __init__(
        self,
        driver: EndpointDriver,
        *,
        stream_callback: Callable[[AsyncConnection, StreamState], None] | None,
        connection_handler: ConnectionHandler | None,
        limit: int,
    ) -> None:
        self._driver = driver
        self._loop = driver.loop
        self._stream_callback = stream_callback
        self._connection_handler = connection_handler
        self._limit = limit
        self._tasks: set[asyncio.Task[Any]] = set()
        self._serving = True
        self._serve_forever: asyncio.Future[None] | None = None
        self._sockets = [_SocketInfo(driver.sock)]
        driver.accept = self._accept

    # ------------------------------------------------------------ surface
    @property
    def sockets(self) -> list[_SocketInfo]:
        return list(self._sockets)

    @property
    def local_address(self) -> tuple[str, int]:
        return self._driver.local_address

    @property
    def connections(self) -> list[AsyncConnection]:
        """Open connections (each has ``get_stats()``)."""
        return list(self._driver.connections.values())

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        """Serving starts at creation; kept for asyncio compatibility."""

    async def serve_forever(self) -> None:
        if self._serve_forever is not None:
            raise RuntimeError("serve_forever() is already running")
        self._serve_forever = self._loop.create_future()
        try:
            await self._serve_forever
        except asyncio.CancelledError:
            self.close()
            raise
        finally:
            self._serve_forever = None

    def close(self) -> None:
        """Stop accepting connections. Open ones go on; the socket is released
        when the last has closed (see :meth:`shutdown` to close them too)."""
        if not self._serving:
            return
        self._serving = False
        self._driver.endpoint.max_connections = 0  # refuse new INITIALs
        self._driver.close_when_idle = True
        if self._serve_forever is not None and not self._serve_forever.done():
            self._serve_forever.set_result(None)
        self._driver.flush()

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` was called and every connection has closed."""
        if self._serving:
            return  # like asyncio before 3.12: nothing to wait for yet
        await self._driver.wait_closed()

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Graceful stop: refuse new connections, wait for running handlers,
        close every connection gracefully (their queued bytes are delivered
        first), release the socket. Whatever is still running after
        ``timeout`` seconds is cancelled and aborted."""
        self.close()
        deadline = self._loop.time() + timeout
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - self._loop.time()))
        for conn in list(self._driver.connections.values()):
            conn.close()
        closing = [c.closed for c in self._driver.connections.values() if not c.is_closed]
        if closing:
            await asyncio.wait(closing, timeout=max(0.0, deadline - self._loop.time()))
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._driver.connections.values()):
            conn.abort()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        # connections in their closing period answer a lost CONNECTION_CLOSE;
        # give them a moment, not the whole timeout
        remaining = min(MAX_CLOSING_LINGER_S, max(0.0, deadline - self._loop.time()))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._driver.wait_closed(), remaining)
        self._driver.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    # ----------------------------------------------------------- internals
    def _accept(self, core: Connection) -> AsyncConnection | None:
        # no closures per connection (a server holds thousands): the driver's
        # table is the set of open connections, the stream callback is shared
        conn = AsyncConnection(self._driver, core, limit=self._limit,
                               stream_callback=self._stream_callback)
        if self._connection_handler is not None:
            handler = self._connection_handler

            def established(fut: asyncio.Future[None]) -> None:
                if not fut.cancelled() and fut.exception() is None:
                    self.spawn(handler(conn), conn)

            conn.handshake.add_done_callback(established)
        return conn

    def spawn(self, result: Awaitable[None] | None, conn: AsyncConnection | None) -> None:
        """Run a handler's coroutine as a tracked task (errors are logged)."""
        if result is None or not asyncio.iscoroutine(result):
            return
        task = self._loop.create_task(result)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return
            exc = t.exception()
            if exc is not None:
                self._loop.call_exception_handler(
                    {"message": "transport.aio handler failed", "exception": exc, "task": t}
                )

        task.add_done_callback(done)


async def _listen(
    host: str | None,
    port: int,
    config: Config | None,
    *,
    reuse_port: bool,
    max_connections: int,
) -> EndpointDriver:
    loop = asyncio.get_running_loop()
    family, addr = await _resolve(host, port, passive=True)
    config = config or Config()
    sock = UdpSocket(
        addr, family=socket.AddressFamily(family), reuse_port=reuse_port, ecn=config.ecn
    )
    try:
        endpoint = Endpoint(config, is_server=True, max_connections=max_connections)
        return EndpointDriver(endpoint, sock, loop)
    except BaseException:
        sock.close()
        raise


def _stream_callback(
    handler: StreamHandler, server_ref: list[Server]
) -> Callable[[AsyncConnection, StreamState], None]:
    def callback(conn: AsyncConnection, state: StreamState) -> None:
        reader = StreamReader(state)
        writer = StreamWriter(state, reader)
        server_ref[0].spawn(handler(reader, writer), conn)

    return callback


async def serve(
    host: str | None,
    port: int,
    handler: StreamHandler | None = None,
    *,
    config: Config | None = None,
    connection_handler: ConnectionHandler | None = None,
    limit: int = DEFAULT_LIMIT,
    reuse_port: bool = False,
    max_connections: int = 100_000,
) -> Server:
    """Serve on ``host:port``. ``handler(reader, writer)`` runs for every stream
    a peer opens; ``connection_handler(conn)`` runs for every connection once
    its handshake completes (without ``handler`` it takes streams with
    ``conn.accept_stream()``). Use ``async with await serve(...) as server``
    or call ``await server.shutdown()``."""
    driver = await _listen(
        host, port, config, reuse_port=reuse_port, max_connections=max_connections
    )
    ref: list[Server] = []
    server = Server(
        driver,
        stream_callback=None if handler is None else _stream_callback(handler, ref),
        connection_handler=connection_handler,
        limit=limit,
    )
    ref.append(server)
    return server


async def open_connection(
    host: str | None = None,
    port: int | None = None,
    *,
    config: Config | None = None,
    limit: int = DEFAULT_LIMIT,
    local_addr: tuple[str, int] | None = None,
    **kwds: Any,
) -> tuple[StreamReader, StreamWriter]:
    """Like :func:`asyncio.open_connection`: a connection with one stream.
    Closing the writer closes the connection (gracefully)."""
    if port is None:
        raise ValueError("port is required")
    _reject_tls(kwds)
    conn = await _open(host, port, config, limit=limit, local_addr=local_addr)
    state = conn._new_local_stream(True)
    conn.owned_by_stream = state
    reader = StreamReader(state)
    return reader, StreamWriter(state, reader)


async def start_server(
    client_connected_cb: StreamHandler,
    host: str | None = None,
    port: int | None = None,
    *,
    config: Config | None = None,
    limit: int = DEFAULT_LIMIT,
    reuse_port: bool = False,
    **kwds: Any,
) -> Server:
    """Like :func:`asyncio.start_server`: ``client_connected_cb(reader, writer)``
    runs for every stream a client opens (one per ``open_connection``)."""
    _reject_tls(kwds)
    return await serve(
        host, port or 0, client_connected_cb, config=config, limit=limit, reuse_port=reuse_port
    )


def _reject_tls(kwds: dict[str, Any]) -> None:
    for key, value in kwds.items():
        if key in ("ssl", "ssl_handshake_timeout", "ssl_shutdown_timeout", "server_hostname"):
            if value:
                raise ValueError(f"{key}: encryption is configured with Config(security=...)")
        elif key not in ("family", "flags", "backlog", "reuse_address", "start_serving", "sock"):
            raise TypeError(f"unexpected keyword argument {key!r}")
        elif key == "sock" and value is not None:
            raise ValueError("sock= is not supported")


class ConfiguredAPI:
    """The stream and protocol entry points with configs bound, for code
    written against :mod:`asyncio` that cannot pass ``config=``::

        net = aio.with_config(client=client_cfg, server=server_cfg)
        open_connection, start_server = net.open_connection, net.start_server
    """

    def __init__(self, client: Config | None, server: Config | None) -> None:
        self.client_config = client
        self.server_config = server

    async def open_connection(
        self, host: str | None = None, port: int | None = None, **kwds: Any
    ) -> tuple[StreamReader, StreamWriter]:
        kwds.setdefault("config", self.client_config)
        return await open_connection(host, port, **kwds)

    async def start_server(
        self,
        client_connected_cb: StreamHandler,
        host: str | None = None,
        port: int | None = None,
        **kwds: Any,
    ) -> Server:
        kwds.setdefault("config", self.server_config)
        return await start_server(client_connected_cb, host, port, **kwds)

    def connect(self, host: str | None, port: int, **kwds: Any) -> connect:
        kwds.setdefault("config", self.client_config)
        return connect(host, port, **kwds)

    async def serve(
        self, host: str | None, port: int, handler: StreamHandler | None = None, **kwds: Any
    ) -> Server:
        kwds.setdefault("config", self.server_config)
        return await serve(host, port, handler, **kwds)

    async def create_connection(
        self,
        protocol_factory: Callable[[], Any],
        host: str | None = None,
        port: int | None = None,
        **kwds: Any,
    ) -> tuple[Any, Any]:
        from transport.aio.protocol import create_connection

        kwds.setdefault("config", self.client_config)
        return await create_connection(protocol_factory, host, port, **kwds)

    async def create_server(
        self,
        protocol_factory: Callable[[], Any],
        host: str | None = None,
        port: int | None = None,
        **kwds: Any,
    ) -> Server:
        from transport.aio.protocol import create_server

        kwds.setdefault("config", self.server_config)
        return await create_server(protocol_factory, host, port, **kwds)


def with_config(
    config: Config | None = None, *, client: Config | None = None, server: Config | None = None
) -> ConfiguredAPI:
    """Bind configs once (``config`` for both sides, or ``client``/``server``)."""
    return ConfiguredAPI(client or config, server or config)
