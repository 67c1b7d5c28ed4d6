"""One stream's asyncio-side state, and the reader/writer views over it.

How this works
--------------
:class:`StreamState` sits between the sans-IO core and the application:

* **Receiving.** A ``StreamReadable`` event only marks the stream "readable in
  the core"; bytes are pulled (``recv_stream_data``) while our buffer is under
  its cap (twice the reader ``limit``, like asyncio's pause threshold, or more
  while a ``readexactly(n)`` waits for ``n``). Unread bytes therefore stay in
  the core, whose receive window then stops the peer: backpressure reaches the
  sender. Readers wait on one future; bytes leave the buffer only in the same
  synchronous step that returns them, so a cancelled read loses nothing.
* **Sending.** ``write`` offers bytes to the core's bounded send buffer
  (``send_stream_data`` returns what it took); the rest waits in
  ``send_pending`` and is offered again on ``StreamWritable``. ``drain`` waits
  while ``send_pending`` is above the high-water mark (0 for stream writers:
  the core must have taken everything). A cancelled drain removes only its own
  future. A FIN asked for while bytes are pending follows the last of them.
* **Protocol mode.** When a :class:`~transport.aio.protocol.StreamTransport`
  is attached, pulled bytes go to ``protocol.data_received`` instead of the
  buffer, and ``pause_reading`` simply stops pulling.

Like asyncio's transports, writes after the connection is lost are dropped
silently and ``drain`` raises :class:`ConnectionResetError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from transport.errors import ConnectionClosedError, StreamError

if TYPE_CHECKING:
    from transport.aio._conn import AsyncConnection

__all__ = ["StreamReader", "StreamState", "StreamWriter"]

DEFAULT_LIMIT = 2**16  # asyncio's default reader limit


class _Sink(Protocol):
    """What a protocol-mode transport offers the stream state."""

    def deliver(self, data: bytes) -> None: ...
    def deliver_eof(self) -> None: ...
    def send_progress(self) -> None: ...
    def lost(self, exc: BaseException | None) -> None: ...


class StreamState:
    """Buffers and waiters of one stream (internal; see the module docstring)."""

    __slots__ = (
        "closing",
        "conn",
        "core_eof",
        "core_readable",
        "drain_waiters",
        "eof",
        "fin_pending",
        "fin_sent",
        "high_water",
        "limit",
        "paused",
        "read_waiter",
        "recv_buf",
        "recv_exc",
        "send_closed",
        "send_exc",
        "send_pending",
        "sink",
        "stream_id",
        "want",
        "writable",
    )

    def __init__(
        self,
        conn: AsyncConnection,
        stream_id: int,
        *,
        readable: bool,
        writable: bool,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        self.conn = conn
        self.stream_id = stream_id
        self.limit = limit
        self.want = 0  # bytes a waiting readexactly needs buffered
        self.recv_buf = bytearray()
        self.core_readable = False
        self.core_eof = not readable  # the core has no more bytes for us
        self.eof = not readable  # ... and the application has been told
        self.recv_exc: BaseException | None = None
        self.read_waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.sink: _Sink | None = None
        self.writable = writable
        self.send_pending = bytearray()
        self.send_closed = not writable  # write_eof / close called
        self.fin_pending = False
        self.fin_sent = not writable
        self.send_exc: BaseException | None = None
        self.drain_waiters: list[asyncio.Future[None]] = []
        self.high_water = 0
        self.closing = False

    # ---------------------------------------------------------- receiving
    def on_readable(self) -> None:
        """The core has bytes (or the FIN) for this stream."""
        self.core_readable = True
        self.pull()

    def pull(self) -> None:
        """Move bytes from the core to the buffer (or the protocol) while there is room."""
        core = self.conn.core
        sid = self.stream_id
        got = False
        while self.core_readable and not self.core_eof:
            if self.sink is not None:
                if self.paused:
                    break
                room = 1 << 20
            else:
                room = max(2 * self.limit, self.want) - len(self.recv_buf)
                if room <= 0:
                    break
            try:
                data, fin = core.recv_stream_data(sid, room)
            except StreamError:
                self.core_readable = False
                break
            if data:
                got = True
                if self.sink is not None:
                    self.sink.deliver(data)
                else:
                    self.recv_buf += data
            if fin:
                self.core_eof = True
                self.core_readable = False
            elif len(data) < room:
                self.core_readable = False
        if self.core_eof and not self.eof:
            self.eof = True
            got = True
            if self.sink is not None:
                self.sink.deliver_eof()
        if got:
            self._wake_reader()
            self.conn.flush()  # window updates may be due
        if self.eof and not self.recv_buf:
            self.maybe_forget()

    def on_reset(self, error_code: int) -> None:
        """The peer abandoned its sending side (RESET_STREAM)."""
        self.core_eof = True
        self.core_readable = False
        if not self.eof:
            self.eof = True
            self.recv_exc = ConnectionResetError(
                f"stream {self.stream_id} reset by peer (error {error_code})"
            )
            if self.sink is not None:
                self.sink.lost(self.recv_exc)
        self._wake_reader()

    def _wake_reader(self) -> None:
        waiter = self.read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_for_data(self, name: str) -> None:
        if self.read_waiter is not None:
            raise RuntimeError(
                f"{name}() called while another coroutine is already waiting for incoming data"
            )
        if self.core_readable:
            self.pull()
            if self.recv_buf or self.eof:
                return
        waiter = self.conn.loop.create_future()
        self.read_waiter = waiter
        try:
            await waiter
        finally:
            self.read_waiter = None

    def consumed(self) -> None:
        """The application took bytes: pull more if the core has them."""
        if self.core_readable:
            self.pull()
        elif self.eof and not self.recv_buf:
            self.maybe_forget()

    def maybe_forget(self) -> None:
        """Untrack the stream once both directions are finished."""
        if (
            self.eof
            and not self.recv_buf
            and (self.fin_sent or self.send_exc is not None)
            and not self.send_pending
        ):
            self.conn.forget_stream(self)

    def stop_reading(self) -> None:
        """Discard what the application will never read; ask the peer to stop."""
        self.recv_buf.clear()
        if not self.core_eof:
            self.core_eof = True
            self.core_readable = False
            with contextlib.suppress(StreamError, ConnectionClosedError):
                self.conn.core.stop_sending(self.stream_id, 0)
            self.conn.flush()
        self.eof = True
        self._wake_reader()
        self.maybe_forget()

    # ------------------------------------------------------------ sending
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.send_closed:
            if not self.writable:
                raise StreamError(f"stream {self.stream_id} is receive-only")
            raise RuntimeError("cannot call write() after write_eof() or close()")
        if self.send_exc is not None or not data:
            return  # like asyncio: writes to a lost connection are dropped
        if self.send_pending:
            self.send_pending += data
            return
        try:
            accepted = self.conn.core.send_stream_data(self.stream_id, data)
        except (StreamError, ConnectionClosedError) as exc:
            self._send_failed(exc)
            return
        if accepted < len(data):
            self.send_pending += memoryview(data)[accepted:]
        self.conn.flush()

    def write_eof(self) -> None:
        if self.send_closed:
            return
        self.send_closed = True
        if self.send_exc is not None:
            return
        if self.send_pending:
            self.fin_pending = True
            return
        self._send_fin()

    def _send_fin(self) -> None:
        try:
            self.conn.core.send_stream_data(self.stream_id, b"", end_stream=True)
        except (StreamError, ConnectionClosedError) as exc:
            self._send_failed(exc)
            return
        self.fin_sent = True
        self.fin_pending = False
        self.conn.flush()
        self._wake_drainers()
        self.conn.send_settled()
        self.maybe_forget()

    def on_writable(self) -> None:
        """The core's send buffer has room again: offer what is pending."""
        pending = self.send_pending
        if pending and self.send_exc is None:
            with memoryview(pending) as view:
                try:
                    accepted = self.conn.core.send_stream_data(
                        self.stream_id, view, end_stream=self.fin_pending
                    )
                except (StreamError, ConnectionClosedError) as exc:
                    accepted = -1
                    failure: Exception = exc
            if accepted < 0:
                self._send_failed(failure)
                return
            del pending[:accepted]
            if not pending and self.fin_pending:
                self.fin_sent = True
                self.fin_pending = False
            self.conn.flush()
        if len(pending) <= self.high_water:
            self._wake_drainers()
        if self.sink is not None:
            self.sink.send_progress()
        if not pending:
            self.conn.send_settled()
            self.maybe_forget()

    def on_stop_sending(self, error_code: int) -> None:
        self._send_failed(
            ConnectionResetError(
                f"peer stopped reading stream {self.stream_id} (error {error_code})"
            )
        )

    def _send_failed(self, exc: BaseException) -> None:
        if self.send_exc is None:
            self.send_exc = exc
        self.send_pending.clear()
        self.fin_pending = False
        self._wake_drainers()
        self.conn.send_settled()

    def _wake_drainers(self) -> None:
        for waiter in self.drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def send_done(self) -> bool:
        """Nothing left for us to hand to the core on this stream."""
        return self.send_exc is not None or (not self.send_pending and not self.fin_pending)

    async def drain(self) -> None:
        while True:
            if self.send_exc is not None:
                raise self.send_exc
            if self.conn.lost_exc is not None and self.send_pending:
                raise ConnectionResetError("connection lost")
            if len(self.send_pending) <= self.high_water:
                return
            waiter = self.conn.loop.create_future()
            self.drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                self.drain_waiters.remove(waiter)

    # ---------------------------------------------------------- connection
    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection ended; ``exc`` None means a clean close (readers see EOF)."""
        if not self.eof:
            self.core_eof = True
            self.core_readable = False
            self.eof = True
            if exc is not None:
                self.recv_exc = exc
        if not self.send_done or (exc is not None and not self.fin_sent):
            self._send_failed(exc or ConnectionResetError("connection closed"))
        if self.sink is not None:
            self.sink.lost(exc)
        self._wake_reader()
        self._wake_drainers()


class StreamReader:
    """Reads one stream; the interface of :class:`asyncio.StreamReader`."""

    def __init__(self, state: StreamState) -> None:
        self._s = state

    @property
    def stream_id(self) -> int:
        return self._s.stream_id

    def __repr__(self) -> str:
        s = self._s
        return f"<StreamReader stream={s.stream_id} buffered={len(s.recv_buf)} eof={s.eof}>"

    def exception(self) -> BaseException | None:
        return self._s.recv_exc

    def at_eof(self) -> bool:
        """True when the buffer is empty and the peer's FIN has been read."""
        s = self._s
        return s.eof and not s.recv_buf

    def _raise_if_failed(self) -> None:
        s = self._s
        if s.recv_exc is not None and not s.recv_buf:
            raise s.recv_exc

    async def read(self, n: int = -1) -> bytes:
        s = self._s
        if n == 0:
            return b""
        if n < 0:
            chunks = []
            while True:
                chunk = await self.read(s.limit)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        while not s.recv_buf and not s.eof:
            await s.wait_for_data("read")
        self._raise_if_failed()
        data = bytes(memoryview(s.recv_buf)[:n])
        del s.recv_buf[:n]
        s.consumed()
        return data

    async def readexactly(self, n: int) -> bytes:
        s = self._s
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if n == 0:
            return b""
        while len(s.recv_buf) < n:
            if s.eof:
                self._raise_if_failed()
                partial = bytes(s.recv_buf)
                s.recv_buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            s.want = n
            try:
                await s.wait_for_data("readexactly")
            finally:
                s.want = 0
        data = bytes(memoryview(s.recv_buf)[:n])
        del s.recv_buf[:n]
        s.consumed()
        return data

    async def readline(self) -> bytes:
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            s = self._s
            if s.recv_buf.startswith(b"\n", exc.consumed):
                del s.recv_buf[: exc.consumed + 1]
            else:
                s.recv_buf.clear()
            s.consumed()
            raise ValueError(exc.args[0]) from None

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        s = self._s
        seplen = len(separator)
        if seplen == 0:
            raise ValueError("Separator should be at least one-byte string")
        offset = 0
        while True:
            buf = s.recv_buf
            if len(buf) - offset >= seplen:
                found = buf.find(separator, offset)
                if found != -1:
                    break
                offset = len(buf) + 1 - seplen
                if offset > s.limit:
                    raise asyncio.LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit", offset
                    )
            if s.eof:
                self._raise_if_failed()
                partial = bytes(buf)
                buf.clear()
                raise asyncio.IncompleteReadError(partial, None)
            await s.wait_for_data("readuntil")
        if found > s.limit:
            raise asyncio.LimitOverrunError(
                "Separator is found, but chunk is longer than limit", found
            )
        end = found + seplen
        data = bytes(memoryview(s.recv_buf)[:end])
        del s.recv_buf[:end]
        s.consumed()
        return data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if line == b"":
            raise StopAsyncIteration
        return line


class StreamWriter:
    """Writes one stream; the interface of :class:`asyncio.StreamWriter`."""

    def __init__(self, state: StreamState, reader: StreamReader | None = None) -> None:
        self._s = state
        self._reader = reader

    def __repr__(self) -> str:
        s = self._s
        return f"<StreamWriter stream={s.stream_id} pending={len(s.send_pending)}>"

    @property
    def stream_id(self) -> int:
        return self._s.stream_id

    @property
    def transport(self) -> Any:
        """asyncio code sometimes reaches for ``writer.transport``; here it is the writer."""
        return self

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._s.write(data)

    def writelines(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        self._s.write(b"".join(data))

    def write_eof(self) -> None:
        self._s.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        """Bytes the core has not accepted yet."""
        return len(self._s.send_pending)

    async def drain(self) -> None:
        """Wait until the core's bounded send buffer took every written byte."""
        await self._s.drain()

    def close(self) -> None:
        """Finish the sending side (FIN after pending bytes) and stop reading."""
        s = self._s
        if s.closing:
            return
        s.closing = True
        s.write_eof()
        if not s.eof or s.recv_buf:
            s.stop_reading()
        s.conn.stream_closed(s)

    def is_closing(self) -> bool:
        s = self._s
        return s.closing or s.conn.lost_exc is not None

    async def wait_closed(self) -> None:
        """Wait until every byte and the FIN went to the core (and, for a
        connection opened just for this stream, until it has closed)."""
        s = self._s
        while not s.send_done:
            waiter = s.conn.loop.create_future()
            s.drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                s.drain_waiters.remove(waiter)
        if s.conn.owned_by_stream is s:
            await s.conn.wait_closed()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._s.conn.extra_info(name, default, self._s.stream_id)

    async def start_tls(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("streams are already encrypted (security='noise')")
