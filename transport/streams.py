"""Per-stream send buffers and receive reassembly for the sans-IO core.

How this works
--------------
A stream is an ordered, reliable byte sequence with an optional end (FIN) and
an abrupt end (reset) (RFC 9000 §2-§3). These classes keep the bytes and the
per-byte state; the connection owns stream IDs, stream-count limits, frame
encoding, packet numbers and connection-level flow control.

**SendStream.** The application's bytes live in a ring buffer (a fixed
``bytearray``, offset ``x`` at index ``x % size``) holding the live span
``[acked_prefix, write_offset)``. ``write`` copies in at most the free room
(the buffer is bounded: sent-but-unacknowledged bytes count against it) and
reports how many bytes it took. ``next_frame`` hands out one STREAM frame
worth of data: first ranges declared lost (they were charged to flow control
when first sent, so credit does not limit them), then new bytes limited by the
credit the caller computed, then a lone FIN if one is still owed. Recovery
reports each frame's fate back with ``on_acked`` / ``on_lost`` (delivery
callbacks, no packet copies). Acknowledged ranges are kept in a
:class:`RangeSet`; when they reach the acked prefix it advances and the space
is reused at once, so freeing costs O(1) and never moves bytes, and memory is
released in order even when ACKs arrive out of order. The ring starts small
and doubles on demand up to the limit. A lost range is re-queued minus
whatever was acknowledged meanwhile, and a late ACK removes bytes still queued
for resend, so spurious losses cost little. ``reset`` discards everything and
leaves a RESET_STREAM pending with final size = the highest offset ever sent
(§4.5); the stream is done once that is acknowledged.

**ReceiveStream.** In-order bytes go straight to the readable data, a list of
pieces as they arrived (a ``bytes`` piece is kept without a copy, small pieces
share a ``bytearray``); a read that takes everything returns the one piece as
it is, or joins them: one copy at most from the frames to the application,
however many frames arrive between reads. Early bytes are written
at their place in a second, dense ``bytearray`` that starts at the first
missing offset, with a :class:`RangeSet` saying which offsets really arrived;
duplicates and overlaps simply land on the same positions. When the gap fills,
the now-contiguous prefix moves to the readable data. Every byte held lies at
or above the read offset and below the advertised limit, so reassembly memory
never exceeds the receive window; the number of out-of-order ranges is capped
too (a peer that scatters tiny fragments gets PROTOCOL_VIOLATION).
Final-size rules (§4.5) raise FINAL_SIZE_ERROR; data beyond the advertised
limit raises FLOW_CONTROL_ERROR (§4.1). The stream-level window is a
:class:`transport.flow.ReceiveWindow`: after reads the connection calls
``window_update(now, rtt_s)`` and sends MAX_STREAM_DATA when it returns a
limit. The connection charges increases of ``highest_offset`` to its own
connection-level window.

**Compact STREAM frames** (docs/wire-format.md 10.25) carry the low 24 bits
of their offset. The receiver rebuilds it against the receive stream's
``highest_offset`` (:func:`compact_stream_offset`; for a packet that arrives
after higher-numbered ones, only when every reference that their data could
explain rebuilds the same offset); the sender writes one only when every
reference between its ``acked_prefix`` (those bytes arrived) and its
``highest_sent_offset`` rebuilds the offset exactly
(``transport.wire.compact.compact_offset_ok``).

Typical use by the connection (sketch)::

    # send side, per packet being built
    credit = min(stream_credit.available, conn_credit.available)
    frame = stream.next_frame(room_bytes, credit)
    if frame is not None:
        offset, data, fin, new_bytes = frame
        stream_credit.consume(new_bytes); conn_credit.consume(new_bytes)
    # recovery: stream.on_acked(offset, len(data), fin) -> True means "writable"
    # receive side
    before = rstream.highest_offset
    readable = rstream.on_data(offset, data, fin)
    conn_window.add_received(rstream.highest_offset - before)
"""

from __future__ import annotations

from transport.errors import (
    ConfigurationError,
    FieldValueError,
    RemoteProtocolError,
    StreamError,
)
from transport.flow import ReceiveWindow
from transport.rangeset import RangeSet
from transport.wire.compact import decode_compact_offset
from transport.wire.constants import MAX_VARINT, STREAM_COMPACT_MIN, ErrorCode

__all__ = ["ReceiveStream", "SendStream", "compact_stream_offset"]

_FINAL_SIZE_ERROR = int(ErrorCode.FINAL_SIZE_ERROR)
_FRAME_ENCODING_ERROR = int(ErrorCode.FRAME_ENCODING_ERROR)
_FLOW_CONTROL_ERROR = int(ErrorCode.FLOW_CONTROL_ERROR)
_PROTOCOL_VIOLATION = int(ErrorCode.PROTOCOL_VIOLATION)

# Reassembly tracks out-of-order data as ranges; a peer that scatters tiny
# fragments across the window would make that bookkeeping outweigh the data.
# Allow one range per this many bytes of maximum window (plus a floor).
_MIN_AVG_FRAGMENT_BYTES = 64

# Readable pieces smaller than this share one bytearray: a peer's tiny frames
# cost about their size in memory, not a Python object each.
_SMALL_PIECE_BYTES = 512

# A send ring starts this small and doubles on demand up to the buffer limit,
# so idle or lightly used streams stay cheap.
_INITIAL_RING_BYTES = 16 * 1024

Frame = tuple[int, bytes, bool, int]


class SendStream:
    """The sending half of one stream: bounded buffer, retransmission, FIN, reset.

    Offsets are absolute stream offsets in bytes.
    """

    __slots__ = (
        "_acked",
        "_buf_start",
        "_buffer_limit",
        "_fin",
        "_fin_acked",
        "_fin_lost",
        "_fin_sent",
        "_lost",
        "_reset_acked",
        "_reset_code",
        "_reset_pending",
        "_ring",
        "_ring_size",
        "_sent_offset",
        "_stop_sending_code",
        "_write_blocked",
        "_write_offset",
        "stream_id",
    )

    def __init__(self, stream_id: int, *, buffer_limit_bytes: int) -> None:
        if buffer_limit_bytes <= 0:
            raise ConfigurationError(f"buffer_limit_bytes must be > 0, not {buffer_limit_bytes}")
        self.stream_id = stream_id
        self._buffer_limit = buffer_limit_bytes
        # Ring buffer: offset x lives at index x % _ring_size; it holds the live
        # span [_buf_start, _write_offset), which never exceeds the buffer limit.
        self._ring_size = min(buffer_limit_bytes, _INITIAL_RING_BYTES)
        self._ring = memoryview(bytearray(self._ring_size))
        self._buf_start = 0  # every byte below this is acknowledged (space reusable)
        self._write_offset = 0  # bytes accepted from the application
        self._sent_offset = 0  # highest offset ever sent (new data starts here)
        self._acked = RangeSet()  # acknowledged ranges above _buf_start (with a gap)
        self._lost = RangeSet()  # ranges to re-send, never overlapping _acked
        self._fin = False  # FIN written by the application
        self._fin_sent = False
        self._fin_lost = False
        self._fin_acked = False
        self._write_blocked = False  # a write was cut short; report room once
        self._reset_code: int | None = None
        self._reset_pending = False
        self._reset_acked = False
        self._stop_sending_code: int | None = None

    # ------------------------------------------------------------ application
    def write(self, data: bytes | bytearray | memoryview, fin: bool = False) -> int:
        """Append up to :attr:`writable_bytes` of ``data`` (a bytes-like object
        of unsigned bytes); returns bytes accepted.

        FIN is recorded only when all of ``data`` was accepted. Raises
        StreamError after FIN or reset.
        """
        if self._fin or self._reset_code is not None:
            raise StreamError(
                f"stream {self.stream_id}: write after "
                + ("reset" if self._reset_code is not None else "FIN")
            )
        size = len(data)
        room = self._buffer_limit - (self._write_offset - self._buf_start)
        if size > room:
            self._write_blocked = True
            size = room
        elif fin:
            self._fin = True
        if size <= 0:
            return 0
        start = self._write_offset
        end = start + size
        if end - self._buf_start > self._ring_size:
            self._grow(end - self._buf_start)
        ring_size = self._ring_size
        pos = start % ring_size
        first = ring_size - pos
        if size <= first and size == len(data):
            self._ring[pos : pos + size] = data  # common case: one copy, no views
        else:
            with memoryview(data) as view:
                if size <= first:
                    self._ring[pos : pos + size] = view[:size]
                else:
                    self._ring[pos:] = view[:first]
                    self._ring[: size - first] = view[first:size]
        self._write_offset = end
        return size

    def _grow(self, needed_bytes: int) -> None:
        """Replace the ring with a larger one (doubling, capped at the limit)."""
        new_size = self._ring_size * 2
        while new_size < needed_bytes:
            new_size *= 2
        new_size = min(new_size, self._buffer_limit)
        live = self._slice(self._buf_start, self._write_offset)
        ring = memoryview(bytearray(new_size))
        pos = self._buf_start % new_size
        first = new_size - pos
        if len(live) <= first:
            ring[pos : pos + len(live)] = live
        else:
            ring[pos:] = live[:first]
            ring[: len(live) - first] = live[first:]
        self._ring = ring
        self._ring_size = new_size

    def _slice(self, start: int, end: int) -> bytes:
        """A copy of the buffered bytes at offsets [start, end)."""
        ring_size = self._ring_size
        pos = start % ring_size
        stop = pos + end - start
        if stop <= ring_size:
            return bytes(self._ring[pos:stop])
        return bytes(self._ring[pos:]) + bytes(self._ring[: stop - ring_size])

    @property
    def writable_bytes(self) -> int:
        """Free room in the send buffer (0 after FIN or reset)."""
        if self._fin or self._reset_code is not None:
            return 0
        return self._buffer_limit - (self._write_offset - self._buf_start)

    def reset(self, error_code: int) -> int:
        """Abandon the stream: discard buffered data, stop (re)transmission and
        leave a RESET_STREAM pending. Returns the final size (highest offset sent).
        Raises StreamError if already reset."""
        if self._reset_code is not None:
            raise StreamError(f"stream {self.stream_id} already reset")
        self._reset_code = error_code
        self._reset_pending = True
        self._ring_size = 1
        self._ring = memoryview(bytearray(1))
        self._lost.clear()
        self._fin_lost = False
        return self._sent_offset

    def on_stop_sending(self, error_code: int) -> bool:
        """The peer asked us to stop (STOP_SENDING, RFC 9000 §3.5): reset with its
        code unless already reset or everything was already acknowledged.
        Returns True when a RESET_STREAM became pending."""
        if self._stop_sending_code is None:
            self._stop_sending_code = error_code
        if self._reset_code is not None or self.is_all_acked:
            return False
        self.reset(error_code)
        return True

    # -------------------------------------------------------------- packetize
    def next_frame(self, max_bytes: int, credit_bytes: int) -> Frame | None:
        """The next STREAM frame to send as ``(offset, data, fin, new_bytes)``, or None.

        Lost ranges come first and are not limited by ``credit_bytes``; then new
        data, at most ``min(max_bytes, credit_bytes)``; then a zero-length FIN
        frame if a FIN is still owed. ``new_bytes`` counts bytes beyond the
        previous highest sent offset: the caller charges them to stream and
        connection credit.
        """
        if self._reset_code is not None:
            return None
        lost = self._lost
        if lost and max_bytes > 0:
            start, end = lost.first()
            if end - start > max_bytes:
                end = start + max_bytes
                lost.subtract(start, end)
            else:
                lost.shift()
            data = self._slice(start, end)
            fin = self._fin and end == self._write_offset and not self._fin_acked
            if fin:
                self._fin_sent = True
                self._fin_lost = False
            return start, data, fin, 0
        start = self._sent_offset
        write_offset = self._write_offset
        n = write_offset - start
        if n > 0:
            if n > max_bytes:
                n = max_bytes
            if n > credit_bytes:
                n = credit_bytes
            if n <= 0:
                return None
            end = start + n
            ring_size = self._ring_size
            pos = start % ring_size
            if pos + n <= ring_size:
                data = bytes(self._ring[pos : pos + n])
            else:
                data = self._slice(start, end)
            self._sent_offset = end
            fin = self._fin and end == write_offset
            if fin:
                self._fin_sent = True
            return start, data, fin, n
        if self._fin and (not self._fin_sent or self._fin_lost) and not self._fin_acked:
            self._fin_sent = True
            self._fin_lost = False
            return write_offset, b"", True, 0
        return None

    def unsent_run(self, credit_bytes: int) -> tuple[int, memoryview, bool, bool] | None:
        """For a send loop that seals many packets in one call: the new bytes
        :meth:`next_frame` would hand out next, as ``(offset, view, fin, cut)``
        -- at most ``credit_bytes``, contiguous in the buffer (``cut``: more
        follows past its end), ``fin`` when they end the stream -- or None when
        lost ranges come first or nothing new is buffered. The view is valid
        until the next call into the stream; :meth:`mark_run_sent` takes bytes."""
        if self._reset_code is not None or self._lost:
            return None
        start = self._sent_offset
        write_offset = self._write_offset
        n = write_offset - start
        if n > credit_bytes:
            n = credit_bytes
        if n <= 0:
            return None
        ring_size = self._ring_size
        pos = start % ring_size
        cut = pos + n > ring_size
        if cut:
            n = ring_size - pos
        return start, self._ring[pos : pos + n], self._fin and start + n == write_offset, cut

    def mark_run_sent(self, n_bytes: int, fin: bool) -> None:
        """``n_bytes`` of :meth:`unsent_run` were sent (with the FIN when ``fin``)."""
        self._sent_offset += n_bytes
        if fin:
            self._fin_sent = True

    def has_data_to_send(self, credit_bytes: int) -> bool:
        """True when :meth:`next_frame` would return a frame given this credit."""
        if self._reset_code is not None:
            return False
        if self._lost:
            return True
        if self._write_offset > self._sent_offset:
            return credit_bytes > 0
        return self._fin and (not self._fin_sent or self._fin_lost) and not self._fin_acked

    @property
    def pending_new_bytes(self) -> int:
        """Buffered bytes never sent yet (what STREAM_DATA_BLOCKED would be about)."""
        return self._write_offset - self._sent_offset

    # --------------------------------------------------------------- recovery
    @property
    def needs_announcement(self) -> bool:
        """True while nothing was written, sent or reset: the peer learns of the
        stream only from an empty STREAM frame."""
        return not (
            self._write_offset or self._fin or self._sent_offset or self._fin_sent
            or self._reset_code is not None
        )

    def on_acked(self, offset: int, length: int, fin: bool) -> bool:
        """A frame ``[offset, offset+length)`` (plus FIN if ``fin``) was acknowledged.

        Frees the acknowledged prefix of the buffer. Returns True when room
        opened up after a write had been cut short (emit a "writable" event).
        """
        if self._reset_code is not None:
            return False
        if fin:
            self._fin_acked = True
            self._fin_lost = False
        end = offset + length
        base = self._buf_start
        if end <= base:
            return False
        if offset < base:
            offset = base
        if self._lost:
            self._lost.subtract(offset, end)
        acked = self._acked
        if offset == base:
            if acked and acked.first_start() <= end:
                acked.add(offset, end)
                end = acked.shift()[1]
            self._buf_start = end
            if self._write_blocked and not self._fin:
                self._write_blocked = False
                return True
            return False
        acked.add(offset, end)
        return False

    def on_lost(self, offset: int, length: int, fin: bool) -> None:
        """A frame was declared lost: queue the parts not yet acknowledged."""
        if self._reset_code is not None:
            return
        if fin and not self._fin_acked:
            self._fin_lost = True
        end = offset + length
        if end <= self._buf_start:
            return
        if offset < self._buf_start:
            offset = self._buf_start
        lost = self._lost
        lost.add(offset, end)
        for a_start, a_end in self._acked:
            if a_start >= end:
                break
            if a_end > offset:
                lost.subtract(a_start, a_end)

    # ------------------------------------------------------------ RESET_STREAM
    @property
    def reset_pending(self) -> bool:
        """True when a RESET_STREAM must be (re)sent."""
        return self._reset_pending

    def take_reset(self) -> tuple[int, int] | None:
        """``(error_code, final_size)`` of a pending RESET_STREAM, clearing the
        pending flag (call :meth:`on_reset_lost` to re-arm it), or None."""
        if not self._reset_pending or self._reset_code is None:
            return None
        self._reset_pending = False
        return self._reset_code, self._sent_offset

    def on_reset_acked(self) -> None:
        self._reset_acked = True
        self._reset_pending = False

    def on_reset_lost(self) -> None:
        if self._reset_code is not None and not self._reset_acked:
            self._reset_pending = True

    # ------------------------------------------------------------------ state
    @property
    def is_all_acked(self) -> bool:
        """All data and the FIN acknowledged, or the reset acknowledged: the
        connection may discard this stream."""
        if self._reset_code is not None:
            return self._reset_acked
        return self._fin_acked and self._buf_start == self._write_offset

    @property
    def is_reset(self) -> bool:
        return self._reset_code is not None

    @property
    def reset_error_code(self) -> int | None:
        return self._reset_code

    @property
    def stop_sending_error_code(self) -> int | None:
        """The error code of the peer's STOP_SENDING, if one arrived."""
        return self._stop_sending_code

    @property
    def fin_written(self) -> bool:
        return self._fin

    @property
    def highest_sent_offset(self) -> int:
        """One past the highest byte ever sent (= final size if reset now)."""
        return self._sent_offset

    @property
    def acked_prefix(self) -> int:
        """Every byte below this offset is acknowledged: a lower bound of the
        receiver's highest received offset (compact STREAM frames)."""
        return self._buf_start

    @property
    def write_offset(self) -> int:
        """Total bytes accepted from the application."""
        return self._write_offset

    @property
    def bytes_buffered(self) -> int:
        """Bytes held (unsent plus sent-but-unacknowledged; 0 after reset)."""
        if self._reset_code is not None:
            return 0
        return self._write_offset - self._buf_start

    @property
    def bytes_acked(self) -> int:
        """Bytes acknowledged so far (contiguous prefix plus out-of-order ranges)."""
        return self._buf_start + self._acked.total()

    def __repr__(self) -> str:
        return (
            f"SendStream(id={self.stream_id}, written={self._write_offset}, "
            f"sent={self._sent_offset}, acked_prefix={self._buf_start}, "
            f"fin={self._fin}, reset={self._reset_code})"
        )


class ReceiveStream:
    """The receiving half of one stream: bounded reassembly, final size, window.

    ``window_bytes`` is the initial stream window (what the peer was told in
    transport parameters); ``max_window_bytes`` (default: no auto-tuning) caps
    its growth.
    """

    __slots__ = (
        "_chunks",
        "_contig_end",
        "_fin_read",
        "_final_size",
        "_held",
        "_highest",
        "_limit",
        "_max_held_ranges",
        "_ooo",
        "_read_offset",
        "_readable",
        "_reported_read",
        "_reset_code",
        "_window",
        "stream_id",
    )

    def __init__(
        self, stream_id: int, *, window_bytes: int, max_window_bytes: int | None = None
    ) -> None:
        self.stream_id = stream_id
        self._window = ReceiveWindow(
            window_bytes, window_bytes if max_window_bytes is None else max_window_bytes
        )
        self._limit = self._window.limit  # cached copy for the per-packet check
        # readable bytes, offsets [_read_offset, _contig_end): in pieces as
        # they arrived (no copy until read; small ones coalesced, _keep)
        self._chunks: list[bytes | bytearray] = []
        self._readable = 0
        self._read_offset = 0
        self._contig_end = 0
        # Out-of-order bytes: _ooo[i] is offset _contig_end + i; _held says which
        # of those offsets really arrived (the rest of _ooo is zero filler).
        self._ooo = bytearray()
        self._held = RangeSet()
        self._max_held_ranges = 16 + self._window.max_window_bytes // _MIN_AVG_FRAGMENT_BYTES
        self._highest = 0
        self._final_size: int | None = None
        self._fin_read = False
        self._reported_read = 0  # bytes read already reported to the window
        self._reset_code: int | None = None

    # ------------------------------------------------------------- peer input
    def on_data(self, offset: int, data: bytes | bytearray | memoryview, fin: bool) -> bool:
        """Take a STREAM frame. Returns True when new bytes or the FIN became
        readable. Raises RemoteProtocolError (FINAL_SIZE_ERROR or
        FLOW_CONTROL_ERROR) on a violation; duplicates are ignored. ``data`` is
        copied, never referenced after the call."""
        end = offset + len(data)
        final_size = self._final_size
        if final_size is not None:
            if end > final_size or (fin and end != final_size):
                raise RemoteProtocolError(
                    _FINAL_SIZE_ERROR,
                    f"stream {self.stream_id}: data to {end}, final size {final_size}",
                )
        elif fin and end < self._highest:
            raise RemoteProtocolError(
                _FINAL_SIZE_ERROR,
                f"stream {self.stream_id}: FIN at {end} below received offset {self._highest}",
            )
        if end > self._highest:
            if end > self._limit:
                raise RemoteProtocolError(
                    _FLOW_CONTROL_ERROR,
                    f"stream {self.stream_id}: data to {end}, limit {self._limit}",
                )
            self._highest = end
            self._window.on_received(end)
        newly_fin = False
        if fin and final_size is None:
            self._final_size = end
            newly_fin = True
        if self._reset_code is not None:
            return False
        contig = self._contig_end
        if end <= contig:  # duplicate, or an empty frame at/below the contiguous end
            return newly_fin and contig == end
        if offset == end:  # an empty frame (a FIN) beyond what is contiguous
            return False
        held = self._held
        if not held and offset <= contig:
            # Fast path: in order (possibly overlapping what we have), nothing held.
            if offset == contig:
                self._keep(data)
            else:
                with memoryview(data) as view:
                    self._keep(view[contig - offset :])
            self._contig_end = end
            return True
        ooo = self._ooo
        if offset <= contig:
            # Filling the gap at the front. Common case: the frame ends at or
            # before the first held range, so its bytes go straight to the
            # readable buffer and the held range (if reached) follows them.
            first_start = held.first_start()
            if end <= first_start:
                with memoryview(data) as view:
                    self._keep(view[contig - offset :])
                skip = end - contig  # filler bytes in ooo now behind us
                if end == first_start:
                    new_end = held.shift()[1]
                    with memoryview(ooo) as view:
                        self._keep(view[skip : new_end - contig])
                    end = new_end
                del ooo[: end - contig]
                self._contig_end = end
                return True
        # Out of order (or overlapping held data): write into the dense buffer.
        start = offset if offset > contig else contig
        rel_start = start - contig
        rel_end = end - contig
        with memoryview(data) as view:
            if rel_start == len(ooo):  # right after everything held: append
                ooo += view[start - offset :]
            else:
                if len(ooo) < rel_end:
                    ooo += bytes(rel_end - len(ooo))
                ooo[rel_start:rel_end] = view[start - offset :]
        held.add(start, end)
        if held.first_start() == contig:
            new_end = held.shift()[1]
            n = new_end - contig
            with memoryview(ooo) as view:
                self._keep(view[:n])
            del ooo[:n]
            self._contig_end = new_end
            return True
        if len(held) > self._max_held_ranges:
            raise RemoteProtocolError(
                _PROTOCOL_VIOLATION,
                f"stream {self.stream_id}: more than {self._max_held_ranges} "
                "out-of-order fragments",
            )
        return False

    def on_reset(self, error_code: int, final_size: int) -> bool:
        """Take a RESET_STREAM. Applies the final-size checks of :meth:`on_data`
        and the flow-control limit, discards buffered data and returns True the
        first time. Afterwards the connection should count
        ``final_size - bytes_read`` as consumed at connection level (and charge
        any increase of :attr:`highest_offset`)."""
        known = self._final_size
        if known is not None and final_size != known:
            raise RemoteProtocolError(
                _FINAL_SIZE_ERROR,
                f"stream {self.stream_id}: reset final size {final_size}, known {known}",
            )
        if final_size < self._highest:
            raise RemoteProtocolError(
                _FINAL_SIZE_ERROR,
                f"stream {self.stream_id}: reset final size {final_size} below "
                f"received offset {self._highest}",
            )
        if final_size > self._limit:
            raise RemoteProtocolError(
                _FLOW_CONTROL_ERROR,
                f"stream {self.stream_id}: reset final size {final_size}, limit {self._limit}",
            )
        self._final_size = final_size
        if final_size > self._highest:
            self._highest = final_size
            self._window.on_received(final_size)
        if self._reset_code is not None:
            return False
        self._reset_code = error_code
        self._chunks = []
        self._readable = 0
        self._ooo = bytearray()
        self._held.clear()
        return True

    def _keep(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` to the readable bytes: a ``bytes`` object is kept
        as it is (immutable: no copy), anything else copied. A small piece goes
        into a trailing bytearray of small pieces, so a peer's tiny frames cost
        about their size in memory, not an object each."""
        size = len(data)
        chunks = self._chunks
        if size < _SMALL_PIECE_BYTES:
            if chunks and type(last := chunks[-1]) is bytearray:
                last += data
            else:
                chunks.append(bytearray(data))
        else:
            chunks.append(data if type(data) is bytes else bytes(data))
        self._readable += size

    # ------------------------------------------------------------ application
    def read(self, max_bytes: int = -1) -> bytes:
        """Up to ``max_bytes`` (all if negative) readable bytes, in order.
        Returns b"" when nothing is readable or after a reset."""
        chunks = self._chunks
        size = self._readable
        if max_bytes < 0 or max_bytes >= size:
            data = b"".join(chunks)  # (one bytes piece: that piece, no copy)
            chunks.clear()
        else:
            size = max_bytes
            taken = 0
            need = size
            while need and len(chunks[taken]) <= need:
                need -= len(chunks[taken])
                taken += 1
            parts = chunks[:taken]
            if need:  # the first `need` bytes of the next piece
                piece = chunks[taken]
                parts.append(piece[:need])
                chunks[taken] = piece[need:]
            del chunks[:taken]
            data = b"".join(parts)
        self._readable -= size
        self._read_offset += size
        if self._read_offset == self._final_size and self._reset_code is None:
            self._fin_read = True
        return data

    def window_update(self, now: float, rtt_s: float) -> int | None:
        """Report reads to the stream window; returns a new limit to advertise
        in MAX_STREAM_DATA, or None. Never grows the limit once the final size
        is known (the peer needs no more credit)."""
        n = self._read_offset - self._reported_read
        if n <= 0:
            return None
        self._reported_read = self._read_offset
        new_limit = self._window.on_consumed(n, now, rtt_s)
        if new_limit is None or self._final_size is not None:
            return None
        self._limit = new_limit
        return new_limit

    def on_peer_blocked(self, limit_bytes: int) -> int | None:
        """STREAM_DATA_BLOCKED at ``limit_bytes``: a new limit to advertise in
        MAX_STREAM_DATA (the window grew, :meth:`ReceiveWindow.on_peer_blocked`),
        or None. Never once the final size is known."""
        if self._final_size is not None:
            return None
        new_limit = self._window.on_peer_blocked(limit_bytes)
        if new_limit is not None:
            self._limit = new_limit
        return new_limit

    # ------------------------------------------------------------------ state
    @property
    def readable_bytes(self) -> int:
        return self._readable

    @property
    def bytes_buffered(self) -> int:
        """Bytes of memory held: readable plus the out-of-order span."""
        return self._readable + len(self._ooo)

    @property
    def bytes_read(self) -> int:
        return self._read_offset

    @property
    def highest_offset(self) -> int:
        """One past the highest byte received (or the reset's final size)."""
        return self._highest

    @property
    def limit(self) -> int:
        """The highest offset we allow (the MAX_STREAM_DATA we advertised)."""
        return self._limit

    @property
    def window(self) -> ReceiveWindow:
        """The stream-level receive window (``window_bytes``, ``consumed``, ...)."""
        return self._window

    @property
    def final_size(self) -> int | None:
        return self._final_size

    @property
    def fin_received(self) -> bool:
        return self._final_size is not None and self._reset_code is None

    @property
    def is_finished(self) -> bool:
        """Every byte up to the FIN has been read by the application."""
        return self._fin_read

    @property
    def is_reset(self) -> bool:
        return self._reset_code is not None

    @property
    def reset_error_code(self) -> int | None:
        return self._reset_code

    def __repr__(self) -> str:
        return (
            f"ReceiveStream(id={self.stream_id}, read={self._read_offset}, "
            f"contiguous={self._contig_end}, highest={self._highest}, "
            f"final_size={self._final_size}, reset={self._reset_code})"
        )


def compact_stream_offset(truncated: int, length: int, reference: int,
                          slack_bytes: int = 0) -> int:
    """The offset of a received compact STREAM frame carrying ``truncated``
    (its low 24 bits) and ``length`` bytes, rebuilt against ``reference``
    (the receive stream's ``highest_offset``). A negative offset or one whose
    data would end beyond 2^62-1 is a malformed frame: RemoteProtocolError
    FRAME_ENCODING_ERROR, as for every frame that does not decode.

    ``slack_bytes`` > 0: the packet arrived after packets numbered above it,
    whose data may have raised ``reference`` by up to that much past the
    exact reference (the highest end among packets numbered below it, which
    the sender's rule is about). The offset is kept only when every
    reference in ``[reference - slack_bytes, reference]`` rebuilds the same
    value; otherwise FieldValueError (a WireError: the packet is dropped
    unacknowledged, and the sender sends the data again)."""
    offset = decode_compact_offset(truncated, reference)
    if slack_bytes > 0 and offset != decode_compact_offset(
        truncated, max(0, reference - slack_bytes)
    ):
        raise FieldValueError(
            f"compact STREAM offset {truncated:#x} is ambiguous {slack_bytes} bytes behind "
            f"{reference}: the packet is dropped"
        )
    if offset < 0 or offset + length > MAX_VARINT:
        raise RemoteProtocolError(
            _FRAME_ENCODING_ERROR,
            f"compact STREAM offset {truncated:#x} does not rebuild against {reference}",
            STREAM_COMPACT_MIN,
        )
    return offset
