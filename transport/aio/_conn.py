"""The asyncio face of one connection.

How this works
--------------
An :class:`AsyncConnection` wraps one sans-IO :class:`~transport.connection.Connection`
that an :class:`~transport.aio._driver.EndpointDriver` moves datagrams for.
The driver hands it every event of its connection (:meth:`on_event`); it keeps
one :class:`~transport.aio._stream.StreamState` per stream and resolves
futures: the handshake, received datagrams, incoming streams, the end.

Every application call changes the core and then calls :meth:`flush`, so the
packets it makes leave at once.

Closing is graceful by default: :meth:`close` waits (without blocking the
caller) until every stream's pending bytes went to the core, then asks the
core for a graceful close, which sends CONNECTION_CLOSE once all stream data
has been acknowledged. :meth:`wait_closed` waits for that to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transport import events
from transport.aio._stream import DEFAULT_LIMIT, StreamReader, StreamState, StreamWriter
from transport.connection import Connection, is_bidirectional, is_client_initiated
from transport.errors import (
    ConnectionClosedError,
    HandshakeError,
    LocalError,
    NetworkError,
)
from transport.stats import ConnectionStats
from transport.wire.constants import ErrorCode

if TYPE_CHECKING:
    from transport.aio._driver import EndpointDriver

__all__ = ["AsyncConnection", "ConnectionLostError", "HandshakeFailedError"]


class HandshakeFailedError(HandshakeError, ConnectionError):
    """The connection could not be established: the server refused the
    handshake (wrong key, unauthorised client, security mismatch) or did not
    answer in time. Also a :class:`ConnectionError` (an :class:`OSError`), so
    code written for ``asyncio.open_connection`` catches it."""


class ConnectionLostError(ConnectionResetError):
    """The connection ended with an error while streams were in use."""


StreamCallback = Callable[[StreamState], None]


class AsyncConnection:
    """A connection to one peer: streams, unreliable datagrams, close, stats."""

    # a server holds thousands of idle ones: slots, and the queues and sets
    # below are created on first use
    __slots__ = (
        "__weakref__", "_close_request", "_closed", "_closed_future", "_datagram_waiter",
        "_datagrams", "_handshake_future", "_handshake_state", "_incoming", "_incoming_waiter",
        "_network_error", "_peer_done", "_peer_floor", "core", "driver", "limit", "loop",
        "lost_exc", "on_stream", "owned_by_stream", "stream_callback", "streams", "termination",
    )

    def __init__(
        self,
        driver: EndpointDriver,
        core: Connection,
        *,
        limit: int = DEFAULT_LIMIT,
        on_stream: StreamCallback | None = None,
        stream_callback: Callable[[AsyncConnection, StreamState], None] | None = None,
    ) -> None:
        self.driver = driver
        self.core = core
        self.loop = driver.loop
        self.limit = limit
        #: called with each new peer-opened stream; None: queue it for accept_stream()
        self.on_stream = on_stream
        #: like ``on_stream``, called with this connection too (a server's handler)
        self.stream_callback = stream_callback
        self.streams: dict[int, StreamState] = {}
        # the ``handshake`` and ``closed`` futures are made when first asked for
        # (a server's connections mostly never are); until then these say it:
        # handshake pending (False), completed (True) or failed (its exception)
        self._handshake_state: bool | BaseException = False
        self._handshake_future: asyncio.Future[None] | None = None
        self._closed = False
        self._closed_future: asyncio.Future[None] | None = None
        self.lost_exc: BaseException | None = None
        self.termination: events.ConnectionTerminated | None = None
        self.owned_by_stream: StreamState | None = None  # open_connection's stream
        self._network_error: BaseException | None = None
        self._datagrams: deque[bytes] | None = None
        self._datagram_waiter: asyncio.Future[None] | None = None
        self._incoming: deque[StreamState] | None = None
        self._incoming_waiter: asyncio.Future[None] | None = None
        self._close_request: tuple[int, str] | None = None
        # peer streams already finished and forgotten, per kind (bidirectional?):
        # every index below the floor, plus the finished ones above it
        # (indexed by ``bidirectional``: 0 uni, 1 bidi; the floors are made when
        # the first peer stream is forgotten, the sets only while some stream
        # finished before an older one)
        self._peer_floor: list[int] | None = None
        self._peer_done: tuple[set[int], set[int]] | None = None

    def __repr__(self) -> str:
        role = "client" if self.core.is_client else "server"
        return f"<AsyncConnection {role} peer={self.core.peer_addr} state={self.core.state.name}>"

    # ----------------------------------------------------------- properties
    @property
    def peer_address(self) -> Any:
        return self.core.peer_addr

    @property
    def local_address(self) -> Any:
        return self.driver.local_address

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def handshake(self) -> asyncio.Future[None]:
        """Done once the handshake completed; its exception when it failed."""
        future = self._handshake_future
        if future is None:
            future = self._handshake_future = self.loop.create_future()
            state = self._handshake_state
            if state is True:
                future.set_result(None)
            elif isinstance(state, BaseException):
                future.set_exception(state)
                future.exception()  # mark retrieved: nobody may be waiting
        return future

    @property
    def closed(self) -> asyncio.Future[None]:
        """Done once the connection has closed."""
        future = self._closed_future
        if future is None:
            future = self._closed_future = self.loop.create_future()
            if self._closed:
                future.set_result(None)
        return future

    @property
    def peer_static_key(self) -> bytes | None:
        return self.core.peer_static_key

    def get_stats(self) -> ConnectionStats:
        """A snapshot of the connection's counters, RTT and congestion state."""
        return self.core.get_stats()

    stats = property(get_stats)

    def extra_info(self, name: str, default: Any = None, stream_id: int | None = None) -> Any:
        if name == "peername":
            return self.core.peer_addr
        if name == "sockname":
            return self.driver.local_address
        if name == "connection":
            return self
        if name == "stream_id":
            return stream_id
        if name == "stats":
            return self.core.get_stats()
        if name == "peer_static_key":
            return self.core.peer_static_key
        return default

    # ---------------------------------------------------------------- I/O
    def flush(self) -> None:
        self.driver.flush()

    def on_event(self, event: events.Event) -> None:
        """Apply one core event (called by the driver)."""
        if isinstance(event, events.StreamReadable):
            state = self._stream_for_event(event.stream_id)
            if state is not None:
                state.on_readable()
        elif isinstance(event, events.StreamWritable):
            state = self.streams.get(event.stream_id)
            if state is not None:
                state.on_writable()
        elif isinstance(event, events.DatagramReceived):
            queue = self._datagrams
            if queue is None:
                queue = self._datagrams = deque(maxlen=self.core.config.max_received_datagrams)
            queue.append(event.data)
            _wake(self._datagram_waiter)
        elif isinstance(event, events.StreamReset):
            state = self._stream_for_event(event.stream_id)
            if state is not None:
                state.on_reset(event.error_code)
        elif isinstance(event, events.StopSendingReceived):
            state = self._stream_for_event(event.stream_id)
            if state is not None:
                state.on_stop_sending(event.error_code)
        elif isinstance(event, events.HandshakeCompleted):
            if self._handshake_state is False:
                self._handshake_state = True
                if self._handshake_future is not None:
                    self._handshake_future.set_result(None)
        elif isinstance(event, events.ConnectionTerminated):
            self._on_terminated(event)

    def on_network_error(self, exc: NetworkError) -> None:
        """An ICMP error about our peer: fatal only while handshaking."""
        if self._handshake_state is not False or self._closed:
            return
        self._network_error = exc
        with contextlib.suppress(LocalError):
            self.core.close(ErrorCode.NO_ERROR, "peer unreachable", graceful=False)
        self.flush()

    def _on_terminated(self, event: events.ConnectionTerminated) -> None:
        self.termination = event
        # our graceful close, or the peer's: application close with code 0
        clean = event.error_code == 0 and (event.application or not event.by_peer)
        if self._handshake_state is False:
            exc: BaseException
            if self._network_error is not None:
                exc = self._network_error
            else:
                who = "the server" if event.by_peer else "this side"
                exc = HandshakeFailedError(
                    event.error_code or ErrorCode.HANDSHAKE_FAILED,
                    f"handshake with {self.core.peer_addr} failed ({who}): {event.reason}",
                )
            self._handshake_state = exc
            future = self._handshake_future
            if future is not None:
                future.set_exception(exc)
                future.exception()  # mark retrieved: nobody may be waiting
            self.lost_exc = exc
        elif not clean:
            self.lost_exc = ConnectionLostError(
                f"connection closed by {'peer' if event.by_peer else 'us'}: "
                f"{event.reason or 'no reason'} (error 0x{event.error_code:x})"
            )
        else:
            self.lost_exc = ConnectionResetError("connection closed")
        handshake_failed = isinstance(self._handshake_state, BaseException)
        stream_exc = None if clean and not handshake_failed else self.lost_exc
        for state in list(self.streams.values()):
            state.connection_lost(stream_exc)
        _wake(self._datagram_waiter)
        _wake(self._incoming_waiter)
        if not self._closed:
            self._closed = True
            if self._closed_future is not None:
                self._closed_future.set_result(None)
        self.driver.connection_terminated(self)

    # ------------------------------------------------------------- streams
    def _stream_for_event(self, stream_id: int) -> StreamState | None:
        state = self.streams.get(stream_id)
        if state is not None:
            return state
        if is_client_initiated(stream_id) == self.core.is_client:
            return None  # one of ours we no longer track
        bidi = is_bidirectional(stream_id)
        if self.peer_stream_forgotten(stream_id):
            return None  # finished and forgotten: a late event
        state = StreamState(self, stream_id, readable=True, writable=bidi, limit=self.limit)
        self.streams[stream_id] = state
        if self.on_stream is not None:
            self.on_stream(state)
        elif self.stream_callback is not None:
            self.stream_callback(self, state)
        else:
            incoming = self._incoming
            if incoming is None:
                incoming = self._incoming = deque()
            incoming.append(state)
            _wake(self._incoming_waiter)
        return state

    def _new_local_stream(self, bidirectional: bool) -> StreamState:
        if self.lost_exc is not None or self._close_request is not None:
            raise ConnectionClosedError("the connection is closed")
        stream_id = self.core.open_stream(bidirectional)
        state = StreamState(
            self, stream_id, readable=bidirectional, writable=True, limit=self.limit
        )
        self.streams[stream_id] = state
        return state

    def stream_closed(self, state: StreamState) -> None:
        """A writer was closed: an open_connection stream closes its connection."""
        if self.owned_by_stream is state:
            self.close()

    def peer_stream_forgotten(self, stream_id: int) -> bool:
        """Whether this peer-opened stream finished and was forgotten."""
        floor, done = self._peer_floor, self._peer_done
        if floor is None:
            return False
        bidi = is_bidirectional(stream_id)
        index = stream_id >> 2
        return index < floor[bidi] or (done is not None and index in done[bidi])

    def forget_stream(self, state: StreamState) -> None:
        """Both directions of the stream are finished: stop tracking it."""
        stream_id = state.stream_id
        if self.streams.pop(stream_id, None) is None:
            return
        if is_client_initiated(stream_id) == self.core.is_client:
            return
        bidi = is_bidirectional(stream_id)
        index = stream_id >> 2
        floors = self._peer_floor
        if floors is None:
            floors = self._peer_floor = [0, 0]
        both = self._peer_done
        if index != floors[bidi]:  # an older stream is still open
            if both is None:
                both = self._peer_done = (set(), set())
            both[bidi].add(index)
            return
        floor = index + 1
        if both is not None:
            done = both[bidi]
            while floor in done:
                done.discard(floor)
                floor += 1
            if not both[0] and not both[1]:
                self._peer_done = None
        floors[bidi] = floor

    async def open_stream(self) -> tuple[StreamReader, StreamWriter]:
        """Open a bidirectional stream: an (asyncio-style) reader and writer."""
        await self.wait_established()
        state = self._new_local_stream(True)
        reader = StreamReader(state)
        return reader, StreamWriter(state, reader)

    async def open_unidirectional(self) -> StreamWriter:
        """Open a send-only stream."""
        await self.wait_established()
        return StreamWriter(self._new_local_stream(False))

    async def accept_stream(self) -> tuple[StreamReader, StreamWriter]:
        """The next stream the peer opened (only without an ``on_stream`` handler).
        A unidirectional stream comes with a writer that refuses writes."""
        while not self._incoming:
            if self.lost_exc is not None:
                raise self.lost_exc
            waiter = self.loop.create_future()
            self._incoming_waiter = waiter
            try:
                await waiter
            finally:
                self._incoming_waiter = None
        state = self._incoming.popleft()
        reader = StreamReader(state)
        return reader, StreamWriter(state, reader)

    async def wait_established(self) -> None:
        await asyncio.shield(self.handshake)

    # ----------------------------------------------------------- datagrams
    def send_datagram(self, data: bytes) -> bool:
        """Send an unreliable datagram (lost datagrams are not resent). False
        when the send queue was full and the oldest queued one was dropped."""
        if self.lost_exc is not None:
            raise ConnectionClosedError("the connection is closed")
        ok = self.core.send_datagram(data)
        self.flush()
        return ok

    async def receive_datagram(self) -> bytes:
        """The next unreliable datagram from the peer."""
        while not self._datagrams:
            if self.lost_exc is not None:
                raise self.lost_exc
            if self._datagram_waiter is not None:
                raise RuntimeError("receive_datagram() is already being awaited")
            waiter = self.loop.create_future()
            self._datagram_waiter = waiter
            try:
                await waiter
            finally:
                self._datagram_waiter = None
        return self._datagrams.popleft()

    @property
    def max_datagram_size(self) -> int:
        """Largest payload :meth:`send_datagram` takes (the smaller of ours and the peer's)."""
        peer = self.core.peer_params
        theirs = 0 if peer is None else peer.max_datagram_frame_size or 0
        return min(theirs, self.core.config.max_datagram_frame_size)

    # --------------------------------------------------------------- close
    def close(self, error_code: int = 0, reason: str = "") -> None:
        """Close gracefully: pending stream bytes are delivered first."""
        if self._close_request is not None or self._closed:
            return
        self._close_request = (error_code, reason)
        self.send_settled()

    def send_settled(self) -> None:
        """A stream handed its last pending bytes to the core: a requested
        close may go ahead."""
        request = self._close_request
        if request is None or self._closed:
            return
        if all(state.send_done for state in self.streams.values()):
            self._close_request = (-1, "")  # sent: do not ask again
            if request[0] >= 0:
                with contextlib.suppress(LocalError):
                    self.core.close(request[0], request[1], graceful=True)
                self.flush()

    def abort(self, error_code: int = 0, reason: str = "") -> None:
        """Close now; unacknowledged data is abandoned."""
        if self._closed:
            return
        self._close_request = (-1, "")
        with contextlib.suppress(LocalError):
            self.core.close(error_code, reason, graceful=False)
        self.flush()

    async def wait_closed(self) -> None:
        """Wait until the connection has closed (and, for a client, its socket)."""
        await asyncio.shield(self.closed)
        await self.driver.wait_closed_if_owned()

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
