"""QUIC variable-length integers in pure Python (shared by the pure codec modules).

How this works
--------------
RFC 9000 section 16: the two most significant bits of the first byte give the
encoded length (00 -> 1 byte, 01 -> 2, 10 -> 4, 11 -> 8); the remaining bits,
big-endian, hold the value, so the largest value is 2**62 - 1. Decoders accept
non-minimal encodings (a 1 written in 8 bytes is still 1); encoders always write
the shortest form. Every read is bounded by an explicit ``end`` and raises
:class:`~transport.errors.TruncatedError` when the integer would run past it.
"""

from __future__ import annotations

from transport.errors import BufferTooSmallError, FieldValueError, TruncatedError
from transport.wire.constants import MAX_VARINT

# A bytes-like input we index with ints: bytes, bytearray or a 'B' memoryview.
Buffer = bytes | bytearray | memoryview

# Length of the encoding, indexed by the first byte's two top bits.
_LENGTH_BY_PREFIX = (1, 2, 4, 8)
# Mask that strips the length prefix from an n-byte encoding, indexed by n.
_VALUE_MASK = {2: (1 << 14) - 1, 4: (1 << 30) - 1, 8: (1 << 62) - 1}


def as_view(buf: Buffer) -> Buffer:
    """Return ``buf`` in a form whose items are ints 0..255.

    bytes and bytearray pass through; a memoryview of another item format (or a
    multi-dimensional one) is cast to unsigned bytes.
    """
    if isinstance(buf, memoryview) and (buf.format != "B" or buf.ndim != 1):
        return buf.cast("B")
    return buf


def varint_size(value: int) -> int:
    """Bytes the minimal encoding of ``value`` takes: 1, 2, 4 or 8."""
    if value < 0x40:
        if value < 0:
            raise FieldValueError(f"varint value {value} is negative")
        return 1
    if value < 0x4000:
        return 2
    if value < 0x40000000:
        return 4
    if value <= MAX_VARINT:
        return 8
    raise FieldValueError(f"varint value {value} exceeds 2**62-1")


def encode_varint(value: int) -> bytes:
    """The minimal encoding of ``value`` (0 <= value <= 2**62-1)."""
    size = varint_size(value)
    if size == 1:
        return bytes((value,))
    # The prefix bits (01, 10, 11) are log2(size) placed in the top two bits.
    prefix = (size.bit_length() - 1) << (size * 8 - 2)
    return (prefix | value).to_bytes(size, "big")


def decode_varint(buf: Buffer, pos: int) -> tuple[int, int]:
    """Read the varint at ``buf[pos]``; return ``(value, next_pos)``."""
    buf = as_view(buf)
    if pos < 0:
        raise FieldValueError(f"negative position {pos}")
    return read_varint(buf, pos, len(buf))


def read_varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """Read the varint at ``buf[pos]`` without reading at or past ``end``.

    ``buf`` must already be an int-indexable view (see :func:`as_view`) and
    ``0 <= pos``, ``end <= len(buf)``.
    """
    if pos >= end:
        raise TruncatedError("input ended where a varint was expected")
    first = buf[pos]
    if first < 0x40:
        return first, pos + 1
    size = _LENGTH_BY_PREFIX[first >> 6]
    stop = pos + size
    if stop > end:
        raise TruncatedError(f"input ended inside a {size}-byte varint")
    return int.from_bytes(buf[pos:stop], "big") & _VALUE_MASK[size], stop


def write_varint(out: bytearray | memoryview, pos: int, end: int, value: int) -> int:
    """Write the minimal encoding of ``value`` at ``out[pos]``; return the next position."""
    data = encode_varint(value)
    stop = pos + len(data)
    if stop > end:
        raise BufferTooSmallError(f"no room for a {len(data)}-byte varint at {pos} (end {end})")
    out[pos:stop] = data
    return stop
