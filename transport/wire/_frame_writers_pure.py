"""Frame encoding in pure Python (the reference for ``csrc/codec.c``).

How this works
--------------
Encoding takes specs ``(type, a, b, c, d, body)`` -- the shape
``_frames_pure.decode_frames`` returns -- and looks up a small per-type writer
that validates the fields and returns the frame's header bytes (type and
fields as minimal varints, RFC 9000 sections 16 and 19) plus its body. The loop
checks that header + body fit before ``end`` and only then copies them into
``out``, which is never resized. ACK-like bodies are absolute ``(low, high)``
pairs, highest first, turned into gap/length form (RFC 9000 section 19.3.1).

Encoder decisions:

* ``end == -1`` means ``len(out)``; a larger ``end`` is clamped to ``len(out)``;
  ``pos < 0`` or ``end < -1`` is FieldValueError. Frames are written in order; if
  one fails, the ones before it have been written (``out`` beyond ``pos`` is
  unspecified) and nothing is ever written at or past ``end``.
* PADDING ``(0, n, ...)`` needs ``n >= 1``. Integer fields a frame type does not
  use are ignored, except STREAM without the OFF bit, which requires ``b == 0``.
  FEC_RECOVERED ignores ``b`` (it has no ack delay on the wire).
* A STREAM frame without the LEN bit, a compact STREAM frame (0x38..0x3f,
  ``a`` = the stream ID its type names, ``b`` = the 24-bit truncated offset)
  or a DATAGRAM (0x30) runs to the end of
  the packet, so it must be the last spec in the list (FieldValueError
  otherwise); the encoder cannot see frames added by later calls.
* Bodies must be bytes, bytearray or memoryview (ACK-like: a list or tuple of
  ints), else FieldValueError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from transport.errors import BufferTooSmallError, FieldValueError, UnknownFrameError
from transport.wire._frames_pure import MAX_STREAMS_LIMIT
from transport.wire._varint_pure import Buffer, as_view, encode_varint
from transport.wire.constants import (
    COMPACT_OFFSET_WINDOW,
    MAX_ACK_RANGES,
    MAX_CID_LENGTH,
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

__all__ = ["encode_frames", "write_ack_head", "write_stream_compact_head", "write_stream_head"]

_ACK_ECN = FrameType.ACK_ECN.value
_FEC_RECOVERED = FrameType.FEC_RECOVERED.value

# A header writer: (type, a, b, c, d, body) -> (bytes before the body, body).
_Writer = Callable[[int, int, int, int, int, Any], tuple[bytes, Buffer]]
_NO_BODY = b""
_v = encode_varint


def _bytes_body(body: Any) -> Buffer:
    if isinstance(body, (bytes, bytearray)):
        return body
    if isinstance(body, memoryview):
        return as_view(body)
    raise FieldValueError(f"frame body must be bytes-like, not {type(body).__name__}")


def _write_nothing(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    return bytes((t,)), _NO_BODY


def _write_one(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    return bytes((t,)) + _v(a), _NO_BODY


def _write_two(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    return bytes((t,)) + _v(a) + _v(b), _NO_BODY


def _write_three(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    return bytes((t,)) + _v(a) + _v(b) + _v(c), _NO_BODY


def _write_stream_limit(
    t: int, a: int, b: int, c: int, d: int, body: Any
) -> tuple[bytes, Buffer]:
    if a > MAX_STREAMS_LIMIT:
        raise FieldValueError(f"stream count {a} exceeds 2**60")
    return _write_one(t, a, b, c, d, body)


def _write_ack(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    if not isinstance(body, (list, tuple)):
        raise FieldValueError("an ACK-like frame's body must be a list or tuple of ints")
    pair_ints = len(body) - (3 if t == _ACK_ECN else 0)
    if pair_ints < 2 or pair_ints % 2:
        raise FieldValueError(f"ACK-like body of {len(body)} ints has no whole ranges")
    if pair_ints // 2 > MAX_ACK_RANGES:
        raise FieldValueError(f"{pair_ints // 2} ACK ranges exceed {MAX_ACK_RANGES}")
    low, high = body[0], body[1]
    if high != a:
        raise FieldValueError(f"largest {a} differs from the first range's high {high}")
    if not 0 <= low <= high:
        raise FieldValueError(f"ACK range [{low}, {high}] is invalid")
    parts = [bytes((t,)), _v(a)]
    if t != _FEC_RECOVERED:
        parts.append(_v(b))
    parts.append(_v(pair_ints // 2 - 1))
    parts.append(_v(high - low))
    for i in range(2, pair_ints, 2):
        next_low, next_high = body[i], body[i + 1]
        gap = low - next_high - 2
        if gap < 0 or not 0 <= next_low <= next_high:
            raise FieldValueError(f"ACK range [{next_low}, {next_high}] after low {low}")
        parts.append(_v(gap))
        parts.append(_v(next_high - next_low))
        low = next_low
    parts.extend(_v(count) for count in body[pair_ints:])
    return b"".join(parts), _NO_BODY


def _write_crypto(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    data = _bytes_body(body)
    if a + len(data) > MAX_VARINT:
        raise FieldValueError("CRYPTO offset + length exceeds 2**62-1")
    return bytes((t,)) + _v(a) + _v(len(data)), data


def _write_new_token(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    data = _bytes_body(body)
    if not data:
        raise FieldValueError("NEW_TOKEN with an empty token")
    return bytes((t,)) + _v(len(data)), data


def _write_stream(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    data = _bytes_body(body)
    head = bytes((t,)) + _v(a)
    if t & STREAM_FLAG_OFF:
        head += _v(b)
    elif b != 0:
        raise FieldValueError("STREAM offset must be 0 when the OFF bit is clear")
    if b + len(data) > MAX_VARINT:
        raise FieldValueError("STREAM offset + length exceeds 2**62-1")
    if t & STREAM_FLAG_LEN:
        head += _v(len(data))
    return head, data


def _write_stream_compact(
    t: int, a: int, b: int, c: int, d: int, body: Any
) -> tuple[bytes, Buffer]:
    """Compact STREAM: ``a`` must be the stream ID the type names, ``b`` the
    truncated offset (< 2^24); ``c``, when not 0, the full offset (checked:
    ``c`` + length must not exceed 2^62-1)."""
    data = _bytes_body(body)
    if a != (t >> 1) & 3:
        raise FieldValueError(f"compact STREAM type 0x{t:02x} does not name stream {a}")
    if not 0 <= b < COMPACT_OFFSET_WINDOW:
        raise FieldValueError(f"compact STREAM truncated offset {b} is not 24 bits")
    if c + len(data) > MAX_VARINT:
        raise FieldValueError("STREAM offset + length exceeds 2**62-1")
    return bytes((t,)) + b.to_bytes(3, "big"), data


def _write_new_connection_id(
    t: int, a: int, b: int, c: int, d: int, body: Any
) -> tuple[bytes, Buffer]:
    data = _bytes_body(body)
    if b > a:
        raise FieldValueError("NEW_CONNECTION_ID retire_prior_to exceeds its sequence")
    if not 1 <= c <= MAX_CID_LENGTH:
        raise FieldValueError(f"NEW_CONNECTION_ID CID length {c} is not 1..20")
    if len(data) != c + STATELESS_RESET_TOKEN_LENGTH:
        raise FieldValueError("NEW_CONNECTION_ID body must be the CID + 16-byte reset token")
    return bytes((t,)) + _v(a) + _v(b) + bytes((c,)), data


def _write_path(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    data = _bytes_body(body)
    if len(data) != PATH_CHALLENGE_LENGTH:
        raise FieldValueError(f"PATH_CHALLENGE/RESPONSE data must be {PATH_CHALLENGE_LENGTH} bytes")
    return bytes((t,)), data


def _write_connection_close(
    t: int, a: int, b: int, c: int, d: int, body: Any
) -> tuple[bytes, Buffer]:
    data = _bytes_body(body)
    return bytes((t,)) + _v(a) + _v(b) + _v(len(data)), data


def _write_application_close(
    t: int, a: int, b: int, c: int, d: int, body: Any
) -> tuple[bytes, Buffer]:
    data = _bytes_body(body)
    return bytes((t,)) + _v(a) + _v(len(data)), data


def _write_repair(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    data = _bytes_body(body)
    if not 1 <= b <= 255 or not 1 <= c <= 255 or not 0 <= d < c:
        raise FieldValueError(f"REPAIR k={b}, m={c}, index={d} out of range")
    return bytes((t,)) + _v(a) + _v(b) + _v(c) + _v(d) + _v(len(data)), data


def _write_to_end(t: int, a: int, b: int, c: int, d: int, body: Any) -> tuple[bytes, Buffer]:
    return bytes((t,)), _bytes_body(body)


def _write_length_body(
    t: int, a: int, b: int, c: int, d: int, body: Any
) -> tuple[bytes, Buffer]:
    data = _bytes_body(body)
    return bytes((t,)) + _v(len(data)), data


_WRITERS: dict[int, _Writer] = {
    FrameType.PING: _write_nothing,
    FrameType.ACK: _write_ack,
    FrameType.ACK_ECN: _write_ack,
    FrameType.RESET_STREAM: _write_three,
    FrameType.STOP_SENDING: _write_two,
    FrameType.CRYPTO: _write_crypto,
    FrameType.NEW_TOKEN: _write_new_token,
    FrameType.MAX_DATA: _write_one,
    FrameType.MAX_STREAM_DATA: _write_two,
    FrameType.MAX_STREAMS_BIDI: _write_stream_limit,
    FrameType.MAX_STREAMS_UNI: _write_stream_limit,
    FrameType.DATA_BLOCKED: _write_one,
    FrameType.STREAM_DATA_BLOCKED: _write_two,
    FrameType.STREAMS_BLOCKED_BIDI: _write_stream_limit,
    FrameType.STREAMS_BLOCKED_UNI: _write_stream_limit,
    FrameType.NEW_CONNECTION_ID: _write_new_connection_id,
    FrameType.RETIRE_CONNECTION_ID: _write_one,
    FrameType.PATH_CHALLENGE: _write_path,
    FrameType.PATH_RESPONSE: _write_path,
    FrameType.CONNECTION_CLOSE: _write_connection_close,
    FrameType.APPLICATION_CLOSE: _write_application_close,
    FrameType.HANDSHAKE_DONE: _write_nothing,
    FrameType.ACK_FREQUENCY: _write_three,
    FrameType.FEC_SOURCE: _write_two,
    FrameType.REPAIR: _write_repair,
    FrameType.FEC_RECOVERED: _write_ack,
    FrameType.DATAGRAM: _write_to_end,
    FrameType.DATAGRAM_LEN: _write_length_body,
    **{t: _write_stream for t in range(STREAM_TYPE_MIN, STREAM_TYPE_MAX + 1)},
    **{t: _write_stream_compact for t in range(STREAM_COMPACT_MIN, STREAM_COMPACT_MAX + 1)},
}


def _runs_to_end(frame_type: int) -> bool:
    if STREAM_TYPE_MIN <= frame_type <= STREAM_TYPE_MAX:
        return not frame_type & STREAM_FLAG_LEN
    if STREAM_COMPACT_MIN <= frame_type <= STREAM_COMPACT_MAX:
        return True
    return frame_type == FrameType.DATAGRAM


def encode_frames(
    frames: Iterable[Sequence[Any]], out: bytearray | memoryview, pos: int, end: int = -1
) -> int:
    """Encode frame specs ``(type, a, b, c, d, body)`` into ``out[pos:end]``; return the new pos."""
    if end == -1 or end > len(out):
        end = len(out)
    if pos < 0 or end < 0:
        raise FieldValueError(f"bad output span {pos}..{end}")
    specs = frames if isinstance(frames, (list, tuple)) else list(frames)
    last = len(specs) - 1
    for index, spec in enumerate(specs):
        try:
            frame_type, a, b, c, d, body = spec
        except (TypeError, ValueError):
            raise FieldValueError("a frame spec is (type, a, b, c, d, body)") from None
        if frame_type == FrameType.PADDING:
            if a < 1:
                raise FieldValueError(f"PADDING run of {a} bytes")
            if a > end - pos:
                raise BufferTooSmallError(f"{a} bytes of PADDING do not fit at {pos}")
            out[pos:pos + a] = bytes(a)
            pos += a
            continue
        writer = _WRITERS.get(frame_type)
        if writer is None:
            raise UnknownFrameError(f"cannot encode unknown frame type {frame_type!r}")
        if index != last and _runs_to_end(frame_type):
            raise FieldValueError(f"frame type 0x{frame_type:02x} runs to the packet end")
        head, data = writer(frame_type, a, b, c, d, body)
        head_stop = pos + len(head)
        stop = head_stop + len(data)
        if stop > end:
            raise BufferTooSmallError(
                f"frame 0x{frame_type:02x} of {stop - pos} bytes does not fit at {pos}"
            )
        out[pos:head_stop] = head
        if data:
            out[head_stop:stop] = data
        pos = stop
    return pos


def write_ack_head(frame_type: int, largest: int, ack_delay: int, ranges: Any) -> bytes:
    """The bytes of an ACK-like frame, exactly as ``encode_frames`` writes them."""
    return _write_ack(frame_type, largest, ack_delay, 0, 0, ranges)[0]


def write_stream_head(
    frame_type: int, stream_id: int, offset: int, data: Any
) -> tuple[bytes, Buffer]:
    """(header bytes, body) of a STREAM frame, exactly as ``encode_frames`` writes it."""
    return _write_stream(frame_type, stream_id, offset, 0, 0, data)


def write_stream_compact_head(
    stream_id: int, offset: int, data: Any, fin: bool
) -> tuple[bytes, Buffer]:
    """(header bytes, body) of the compact STREAM frame for a frame at the full
    ``offset`` (its low 24 bits are written), as ``encode_frames`` writes the
    spec ``(0x38 | (stream_id & 3) << 1 | fin, stream_id, offset mod 2^24,
    offset, 0, data)``: a stream ID of 4 or more is FieldValueError."""
    frame_type = STREAM_COMPACT_MIN | ((stream_id & 3) << 1) | (1 if fin else 0)
    return _write_stream_compact(frame_type, stream_id, offset & (COMPACT_OFFSET_WINDOW - 1),
                                 offset, 0, data)
