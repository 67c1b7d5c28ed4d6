"""Protocol-style API: an :class:`asyncio.Transport` per stream.

How this works
--------------
:class:`StreamTransport` attaches to a stream's
:class:`~transport.aio._stream.StreamState` as its sink: bytes pulled from the
core go straight to ``protocol.data_received`` (none are buffered here), the
FIN to ``eof_received`` (a false return closes our side, as asyncio does),
and the end of the stream or connection to ``connection_lost``.
``pause_reading`` stops pulling, so unread bytes stay in the core and its
flow-control window stops the peer.

Writes go to the core's bounded send buffer; what it cannot take waits here
and counts as the transport's write buffer. Crossing the high-water mark calls
``protocol.pause_writing()``; falling to the low-water mark (as the core takes
more on ``StreamWritable``) calls ``resume_writing()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from transport.aio._api import Server, _listen, _open
from transport.aio._conn import AsyncConnection
from transport.aio._stream import DEFAULT_LIMIT, StreamState
from transport.config import Config
from transport.errors import TransportError

__all__ = ["StreamTransport", "create_connection", "create_server"]

DEFAULT_HIGH_WATER = 64 * 1024


class StreamTransport(asyncio.Transport):
    """One stream as an :class:`asyncio.Transport`."""

    def __init__(self, state: StreamState, protocol: asyncio.BaseProtocol) -> None:
        super().__init__()
        self._state = state
        self._protocol = protocol
        self._closing = False
        self._lost = False
        self._writing_paused = False
        self._high = DEFAULT_HIGH_WATER
        self._low = DEFAULT_HIGH_WATER // 4
        self._loop = state.conn.loop
        state.high_water = self._low
        state.sink = self

    # ----------------------------------------------------------- start-up
    def start(self) -> None:
        self._protocol.connection_made(self)
        self._state.pull()  # bytes that arrived with the stream's opening

    # --------------------------------------------------- sink (from state)
    def deliver(self, data: bytes) -> None:
        if not self._lost:
            self._protocol.data_received(data)  # type: ignore[attr-defined]

    def deliver_eof(self) -> None:
        if self._lost:
            return
        keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
        if not keep_open:
            self.close()
        self._maybe_lost()

    def send_progress(self) -> None:
        if self._writing_paused and len(self._state.send_pending) <= self._low:
            self._writing_paused = False
            self._protocol.resume_writing()
        self._maybe_lost()

    def lost(self, exc: BaseException | None) -> None:
        self._call_lost(exc)

    # ------------------------------------------------------- asyncio API
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._state.conn.extra_info(name, default, self._state.stream_id)

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_reading(self) -> bool:
        return not self._state.paused and not self._state.eof

    def pause_reading(self) -> None:
        self._state.paused = True

    def resume_reading(self) -> None:
        state = self._state
        if state.paused:
            state.paused = False
            self._loop.call_soon(state.pull)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._state.high_water = low
        self._check_pause()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        return len(self._state.send_pending)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._lost:
            return
        self._state.write(data)
        self._check_pause()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        self._state.write_eof()
        self._maybe_lost()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        """FIN after the buffered bytes; stop reading; ``connection_lost(None)``
        once the sending side has been handed over."""
        if self._closing:
            return
        self._closing = True
        state = self._state
        state.closing = True
        state.write_eof()
        if not state.eof:
            state.stop_reading()
        state.conn.stream_closed(state)
        self._maybe_lost()

    def abort(self) -> None:
        state = self._state
        self._closing = True
        state.closing = True
        core = state.conn.core
        if state.writable and not state.fin_sent:
            with contextlib.suppress(TransportError):
                core.reset_stream(state.stream_id, 0)
        state.send_pending.clear()
        state.fin_pending = False
        state.send_closed = True
        state.fin_sent = True
        if not state.eof:
            state.stop_reading()
        state.conn.flush()
        if state.conn.owned_by_stream is state:
            state.conn.abort()
        self._call_lost(None)

    # ----------------------------------------------------------- internals
    def _check_pause(self) -> None:
        if not self._writing_paused and len(self._state.send_pending) > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()

    def _maybe_lost(self) -> None:
        state = self._state
        if self._closing and state.send_done and (state.fin_sent or state.send_exc is not None):
            self._call_lost(None)

    def _call_lost(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._loop.call_soon(self._protocol.connection_lost, exc)  # type: ignore[arg-type]


async def create_connection(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    host: str | None = None,
    port: int | None = None,
    *,
    config: Config | None = None,
    local_addr: tuple[str, int] | None = None,
    **kwds: Any,
) -> tuple[StreamTransport, asyncio.BaseProtocol]:
    """Like :meth:`asyncio.loop.create_connection`: a new connection with one
    stream; returns ``(transport, protocol)``. Closing the transport closes
    the connection gracefully."""
    if port is None:
        raise ValueError("port is required")
    conn = await _open(host, port, config, limit=DEFAULT_LIMIT, local_addr=local_addr)
    state = conn._new_local_stream(True)
    conn.owned_by_stream = state
    protocol = protocol_factory()
    transport = StreamTransport(state, protocol)
    transport.start()
    return transport, protocol


async def create_server(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    host: str | None = None,
    port: int | None = None,
    *,
    config: Config | None = None,
    reuse_port: bool = False,
    max_connections: int = 100_000,
    **kwds: Any,
) -> Server:
    """Like :meth:`asyncio.loop.create_server`: ``protocol_factory()`` builds a
    protocol for every stream a peer opens."""
    driver = await _listen(
        host, port or 0, config, reuse_port=reuse_port, max_connections=max_connections
    )

    def on_stream(_conn: AsyncConnection, state: StreamState) -> None:
        StreamTransport(state, protocol_factory()).start()

    return Server(driver, stream_callback=on_stream, connection_handler=None, limit=DEFAULT_LIMIT)
