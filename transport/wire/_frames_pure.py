"""Frame decoding in pure Python (the reference for ``csrc/codec.c``).

How this works
--------------
Decoding walks ``buf[start:end]`` frame by frame. The first byte is the frame
type; a table maps each defined type to a small function that reads the frame's
fields (varints unless noted, RFC 9000 section 16) and fills one preallocated
:class:`FrameRecord` ``(type, a, b, c, d, data_off, data_len)`` -- the compact
record described in ``constants.py``. ACK-like frames append their ranges as
absolute ``(low, high)`` pairs to the decoder's ``ranges`` list, computed with
the gap/length arithmetic of RFC 9000 section 19.3.1. Nothing is copied while
decoding: bodies are located by ``data_off``/``data_len``.

Error rules (the native backend matches them):

* Input ending before a field, or a length whose body would pass ``end``:
  :class:`TruncatedError`. So decoding a prefix ``buf[start:k]`` of valid frames
  either raises TruncatedError or returns the original frames up to the cut,
  the last possibly shorter (PADDING run, STREAM without LEN, DATAGRAM).
* Fields are checked as soon as they are read, in wire order; a body overrunning
  ``end`` is reported before a value check that needs the body's length
  (STREAM/CRYPTO offset + length > 2**62-1).
* Frame type: a byte >= 0x40 starts a multi-byte varint type. If its value is a
  type we define, that is a non-minimal encoding (FieldValueError); any other
  value, or an undefined one-byte type, is UnknownFrameError. The type is
  checked before the decoder's frame capacity.
* Values outside what the format allows: FieldValueError (NEW_TOKEN length 0,
  NEW_CONNECTION_ID retire_prior_to > sequence or CID length not 1..20,
  MAX_STREAMS/STREAMS_BLOCKED over 2**60, REPAIR k or m not 1..255 or
  repair_index >= m, ACK range going negative, more than MAX_ACK_RANGES ranges
  in a frame (range_count >= 256, checked before the ranges are read), more
  than ``max_frames`` records or ``max_ranges`` ints in one decode).
* Records for frames with a body have ``data_off`` = where the body starts, even
  for an empty body; frames without a body have ``data_off = data_len = 0``.
  Unused integer fields are 0. After an exception the records and ``ranges``
  hold unspecified values.
* ``decode_frames`` has the default capacities of ``FrameDecoder()`` (it reuses
  one decoder per thread, so it is safe to call from several threads).

Encoding lives in ``_frame_writers_pure``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from transport.errors import (
    ConfigurationError,
    FieldValueError,
    TruncatedError,
    UnknownFrameError,
)
from transport.wire._varint_pure import Buffer, as_view, read_varint
from transport.wire.constants import (
    FRAME_FIELDS,
    MAX_ACK_RANGES,
    MAX_CID_LENGTH,
    MAX_FRAMES_PER_PACKET,
    MAX_VARINT,
    PATH_CHALLENGE_LENGTH,
    STATELESS_RESET_TOKEN_LENGTH,
    STREAM_COMPACT_MAX,
    STREAM_COMPACT_MIN,
    STREAM_FLAG_LEN,
    STREAM_FLAG_OFF,
    STREAM_TYPE_MAX,
    STREAM_TYPE_MIN,
    FrameType,
)

__all__ = ["FrameDecoder", "FrameRecord", "FrameSpec", "decode_frames"]

MAX_STREAMS_LIMIT = 1 << 60
DEFAULT_MAX_RANGES = 1024
_NONZERO = re.compile(rb"[^\x00]")

_ACK = FrameType.ACK.value
_ACK_ECN = FrameType.ACK_ECN.value
_FEC_RECOVERED = FrameType.FEC_RECOVERED.value
_ACK_LIKE = frozenset((_ACK, _ACK_ECN, _FEC_RECOVERED))


def _wire_type(frame_type: int) -> int:
    """The FRAME_FIELDS key for a wire type (all STREAM variants share 0x08)."""
    if STREAM_TYPE_MIN <= frame_type <= STREAM_TYPE_MAX:
        return FrameType.STREAM.value
    if STREAM_COMPACT_MIN <= frame_type <= STREAM_COMPACT_MAX:
        return FrameType.STREAM_COMPACT.value
    return frame_type


# Which one-byte types carry a body (indexed by type; STREAM variants included).
_HAS_BODY = tuple(
    t < 0x40 and _wire_type(t) in FRAME_FIELDS and FRAME_FIELDS[_wire_type(t)][1]
    for t in range(256)
)


class FrameRecord:
    """One decoded frame: ``type``, integer fields ``a``..``d``, body location."""

    __slots__ = ("a", "b", "c", "d", "data_len", "data_off", "type")

    def __init__(self) -> None:
        self.type = self.a = self.b = self.c = self.d = self.data_off = self.data_len = 0

    def __repr__(self) -> str:
        return (
            f"FrameRecord(type=0x{self.type:02x}, a={self.a}, b={self.b}, c={self.c}, "
            f"d={self.d}, data_off={self.data_off}, data_len={self.data_len})"
        )


# ------------------------------------------------------------- decoding ---
# A field reader: (buf, pos, end, record, decoder) -> position after the frame.
_Reader = Callable[[Buffer, int, int, FrameRecord, "FrameDecoder"], int]


def _body(buf: Buffer, pos: int, end: int, rec: FrameRecord, length: int) -> int:
    """Locate a ``length``-byte body at ``pos``; return the position after it."""
    if length > end - pos:
        raise TruncatedError(f"a {length}-byte body runs past the packet end")
    rec.data_off = pos
    rec.data_len = length
    return pos + length


def _read_padding(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    found = _NONZERO.search(buf, pos, end)
    stop = found.start() if found else end
    rec.a = stop - pos + 1  # the type byte was the first zero
    return stop


def _read_nothing(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    return pos


def _read_one(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    rec.a, pos = read_varint(buf, pos, end)
    return pos


def _read_two(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    rec.a, pos = read_varint(buf, pos, end)
    rec.b, pos = read_varint(buf, pos, end)
    return pos


def _read_three(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    rec.a, pos = read_varint(buf, pos, end)
    rec.b, pos = read_varint(buf, pos, end)
    rec.c, pos = read_varint(buf, pos, end)
    return pos


def _read_stream_limit(
    buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder
) -> int:
    rec.a, pos = read_varint(buf, pos, end)
    if rec.a > MAX_STREAMS_LIMIT:
        raise FieldValueError(f"stream count {rec.a} exceeds 2**60")
    return pos


def _read_ack(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    frame_type = rec.type
    largest, pos = read_varint(buf, pos, end)
    ack_delay = 0
    if frame_type != _FEC_RECOVERED:
        ack_delay, pos = read_varint(buf, pos, end)
    range_count, pos = read_varint(buf, pos, end)
    first_range, pos = read_varint(buf, pos, end)
    if range_count >= MAX_ACK_RANGES:
        raise FieldValueError(f"{range_count + 1} ACK ranges exceed {MAX_ACK_RANGES}")
    ranges = dec.ranges
    needed = 2 * (range_count + 1) + (3 if frame_type == _ACK_ECN else 0)
    if len(ranges) + needed > dec.max_ranges:
        raise FieldValueError(f"ranges exceed the decoder capacity of {dec.max_ranges} ints")
    low = largest - first_range
    if low < 0:
        raise FieldValueError("first ACK range goes below packet number 0")
    rec.a = largest
    rec.b = ack_delay
    rec.c = len(ranges)
    rec.d = range_count + 1
    ranges.append(low)
    ranges.append(largest)
    for _ in range(range_count):
        gap, pos = read_varint(buf, pos, end)
        length, pos = read_varint(buf, pos, end)
        high = low - gap - 2
        low = high - length
        if low < 0:
            raise FieldValueError("ACK range goes below packet number 0")
        ranges.append(low)
        ranges.append(high)
    if frame_type == _ACK_ECN:
        for _ in range(3):
            count, pos = read_varint(buf, pos, end)
            ranges.append(count)
    return pos


def _read_crypto(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    rec.a, pos = read_varint(buf, pos, end)
    length, pos = read_varint(buf, pos, end)
    pos = _body(buf, pos, end, rec, length)
    if rec.a + length > MAX_VARINT:
        raise FieldValueError("CRYPTO offset + length exceeds 2**62-1")
    return pos


def _read_new_token(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    length, pos = read_varint(buf, pos, end)
    if length == 0:
        raise FieldValueError("NEW_TOKEN with an empty token")
    return _body(buf, pos, end, rec, length)


def _read_stream(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    frame_type = rec.type
    rec.a, pos = read_varint(buf, pos, end)
    if frame_type & STREAM_FLAG_OFF:
        rec.b, pos = read_varint(buf, pos, end)
    if frame_type & STREAM_FLAG_LEN:
        length, pos = read_varint(buf, pos, end)
    else:
        length = end - pos
    pos = _body(buf, pos, end, rec, length)
    if rec.b + length > MAX_VARINT:
        raise FieldValueError("STREAM offset + length exceeds 2**62-1")
    return pos


def _read_stream_compact(
    buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder
) -> int:
    """Compact STREAM (10.25): stream ID from the type, a 3-byte truncated
    offset (rebuilt by the receiver, transport.wire.compact), data to the end."""
    if end - pos < 3:
        raise TruncatedError("compact STREAM frame shorter than its offset")
    rec.a = (rec.type >> 1) & 3
    rec.b = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
    return _body(buf, pos + 3, end, rec, end - pos - 3)


def _read_new_connection_id(
    buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder
) -> int:
    rec.a, pos = read_varint(buf, pos, end)
    rec.b, pos = read_varint(buf, pos, end)
    if rec.b > rec.a:
        raise FieldValueError("NEW_CONNECTION_ID retire_prior_to exceeds its sequence")
    if pos >= end:
        raise TruncatedError("NEW_CONNECTION_ID ends before the CID length")
    cid_length = buf[pos]
    if not 1 <= cid_length <= MAX_CID_LENGTH:
        raise FieldValueError(f"NEW_CONNECTION_ID CID length {cid_length} is not 1..20")
    rec.c = cid_length
    return _body(buf, pos + 1, end, rec, cid_length + STATELESS_RESET_TOKEN_LENGTH)


def _read_path(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    return _body(buf, pos, end, rec, PATH_CHALLENGE_LENGTH)


def _read_connection_close(
    buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder
) -> int:
    rec.a, pos = read_varint(buf, pos, end)
    rec.b, pos = read_varint(buf, pos, end)
    length, pos = read_varint(buf, pos, end)
    return _body(buf, pos, end, rec, length)


def _read_length_body(
    buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder
) -> int:
    length, pos = read_varint(buf, pos, end)
    return _body(buf, pos, end, rec, length)


def _read_application_close(
    buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder
) -> int:
    rec.a, pos = read_varint(buf, pos, end)
    return _read_length_body(buf, pos, end, rec, dec)


def _read_repair(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    rec.a, pos = read_varint(buf, pos, end)
    rec.b, pos = read_varint(buf, pos, end)
    if not 1 <= rec.b <= 255:
        raise FieldValueError(f"REPAIR k={rec.b} is not 1..255")
    rec.c, pos = read_varint(buf, pos, end)
    if not 1 <= rec.c <= 255:
        raise FieldValueError(f"REPAIR m={rec.c} is not 1..255")
    rec.d, pos = read_varint(buf, pos, end)
    if rec.d >= rec.c:
        raise FieldValueError(f"REPAIR index {rec.d} is not below m={rec.c}")
    return _read_length_body(buf, pos, end, rec, dec)


def _read_to_end(buf: Buffer, pos: int, end: int, rec: FrameRecord, dec: FrameDecoder) -> int:
    return _body(buf, pos, end, rec, end - pos)


_READER_BY_TYPE: dict[int, _Reader] = {
    FrameType.PADDING: _read_padding,
    FrameType.PING: _read_nothing,
    FrameType.ACK: _read_ack,
    FrameType.ACK_ECN: _read_ack,
    FrameType.RESET_STREAM: _read_three,
    FrameType.STOP_SENDING: _read_two,
    FrameType.CRYPTO: _read_crypto,
    FrameType.NEW_TOKEN: _read_new_token,
    FrameType.MAX_DATA: _read_one,
    FrameType.MAX_STREAM_DATA: _read_two,
    FrameType.MAX_STREAMS_BIDI: _read_stream_limit,
    FrameType.MAX_STREAMS_UNI: _read_stream_limit,
    FrameType.DATA_BLOCKED: _read_one,
    FrameType.STREAM_DATA_BLOCKED: _read_two,
    FrameType.STREAMS_BLOCKED_BIDI: _read_stream_limit,
    FrameType.STREAMS_BLOCKED_UNI: _read_stream_limit,
    FrameType.NEW_CONNECTION_ID: _read_new_connection_id,
    FrameType.RETIRE_CONNECTION_ID: _read_one,
    FrameType.PATH_CHALLENGE: _read_path,
    FrameType.PATH_RESPONSE: _read_path,
    FrameType.CONNECTION_CLOSE: _read_connection_close,
    FrameType.APPLICATION_CLOSE: _read_application_close,
    FrameType.HANDSHAKE_DONE: _read_nothing,
    FrameType.ACK_FREQUENCY: _read_three,
    FrameType.FEC_SOURCE: _read_two,
    FrameType.REPAIR: _read_repair,
    FrameType.FEC_RECOVERED: _read_ack,
    FrameType.DATAGRAM: _read_to_end,
    FrameType.DATAGRAM_LEN: _read_length_body,
    **{t: _read_stream for t in range(STREAM_TYPE_MIN, STREAM_TYPE_MAX + 1)},
    **{t: _read_stream_compact for t in range(STREAM_COMPACT_MIN, STREAM_COMPACT_MAX + 1)},
}
# Indexed by the first byte; None for undefined one-byte types and for 0x40..0xff.
_READERS: tuple[_Reader | None, ...] = tuple(_READER_BY_TYPE.get(t) for t in range(256))


def _reject_long_type(buf: Buffer, pos: int, end: int) -> None:
    """Raise the right error for a frame type written in two or more bytes."""
    value, _ = read_varint(buf, pos, end)
    if value < 0x40 and _READERS[value] is not None:
        raise FieldValueError(f"frame type 0x{value:02x} is not minimally encoded")
    raise UnknownFrameError(f"unknown frame type 0x{value:x}")


class FrameDecoder:
    """Decodes the frames of one packet into reusable records.

    ``frames`` holds ``max_frames`` preallocated :class:`FrameRecord` objects;
    ``decode`` fills the first ``n`` and returns ``n``. ``ranges`` receives the
    ACK-like frames' ints (at most ``max_ranges`` per decode).
    """

    __slots__ = ("frames", "max_frames", "max_ranges", "ranges")

    def __init__(
        self, max_frames: int = MAX_FRAMES_PER_PACKET, max_ranges: int = DEFAULT_MAX_RANGES
    ) -> None:
        if max_frames < 1 or max_ranges < 0:
            raise ConfigurationError("max_frames must be >= 1 and max_ranges >= 0")
        self.max_frames = max_frames
        self.max_ranges = max_ranges
        self.frames = [FrameRecord() for _ in range(max_frames)]
        self.ranges: list[int] = []

    def decode(self, buf: Buffer, start: int = 0, end: int = -1) -> int:
        """Decode every frame in ``buf[start:end]`` (``end=-1``: to the end); return the count."""
        buf = as_view(buf)
        if end == -1:
            end = len(buf)
        if not 0 <= start <= end <= len(buf):
            raise FieldValueError(f"bad frame span {start}..{end} of a {len(buf)}-byte buffer")
        self.ranges.clear()
        frames = self.frames
        readers = _READERS
        capacity = self.max_frames
        count = 0
        pos = start
        while pos < end:
            frame_type = buf[pos]
            reader = readers[frame_type]
            if reader is None:
                if frame_type >= 0x40:
                    _reject_long_type(buf, pos, end)
                raise UnknownFrameError(f"unknown frame type 0x{frame_type:02x}")
            if count == capacity:
                raise FieldValueError(f"more than {capacity} frames in one packet")
            rec = frames[count]
            rec.type = frame_type
            rec.a = rec.b = rec.c = rec.d = rec.data_off = rec.data_len = 0
            pos = reader(buf, pos + 1, end, rec, self)
            count += 1
        return count


FrameSpec = tuple[int, int, int, int, int, Any]
_per_thread = threading.local()


def decode_frames(buf: Buffer, start: int = 0, end: int = -1) -> list[FrameSpec]:
    """Decode the frames in ``buf[start:end]`` into ``(type, a, b, c, d, body)`` specs.

    ``body`` is bytes for frames with a body, the tuple of range ints (plus ECN
    counts) for ACK-like frames (with ``c = d = 0``), else None.
    """
    buf = as_view(buf)
    decoder: FrameDecoder | None = getattr(_per_thread, "decoder", None)
    if decoder is None:
        decoder = _per_thread.decoder = FrameDecoder()
    count = decoder.decode(buf, start, end)
    ranges = decoder.ranges
    specs: list[FrameSpec] = []
    for rec in decoder.frames[:count]:
        frame_type = rec.type
        if frame_type in _ACK_LIKE:
            ints = 2 * rec.d + (3 if frame_type == _ACK_ECN else 0)
            flat = tuple(ranges[rec.c:rec.c + ints])
            specs.append((frame_type, rec.a, rec.b, 0, 0, flat))
        elif _HAS_BODY[frame_type]:
            data = bytes(buf[rec.data_off:rec.data_off + rec.data_len])
            specs.append((frame_type, rec.a, rec.b, rec.c, rec.d, data))
        else:
            specs.append((frame_type, rec.a, rec.b, rec.c, rec.d, None))
    return specs
