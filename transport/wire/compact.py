"""Compact STREAM frames: the offset window rules (pure Python reference).

How this works
--------------
A compact STREAM frame (types 0x38..0x3f, docs/wire-format.md 10.25) carries
only the low 24 bits of its offset. The receiver rebuilds the offset like a
packet number (RFC 9000 appendix A.3, window 2^24): its reference ``r`` is
the receive stream's highest end offset received from packets numbered below
the frame's (0 when nothing; see ``transport.streams.compact_stream_offset``
for packets that arrive late),
and the offset is the value with those low bits in ``(r - 2^23, r + 2^23]``
(:func:`decode_compact_offset`; -1 when that value is negative, a malformed
frame).

A sender writes one only when that rebuild is exact whatever the receiver's
reference is at the time: with ``low`` a lower bound of the reference (the
stream's contiguously acknowledged prefix: those bytes arrived) and ``high``
an upper bound (the highest end offset sent on the stream), every ``r`` in
``[low, high]`` must put ``offset`` inside its window, which holds when
``offset - low < 2^23`` and ``high - offset < 2^23``
(:func:`compact_offset_ok`). ``csrc/frames.c`` (``tp_compact_offset``,
``tp_compact_ok``) are the C twins; tests compare them.
"""

from __future__ import annotations

from transport.wire.constants import (
    COMPACT_OFFSET_HALF,
    COMPACT_OFFSET_WINDOW,
    COMPACT_STREAM_ID_LIMIT,
    MAX_VARINT,
    STREAM_COMPACT_MIN,
)

__all__ = ["compact_frame_type", "compact_offset_ok", "decode_compact_offset"]

_MASK = COMPACT_OFFSET_WINDOW - 1


def compact_frame_type(stream_id: int, fin: bool) -> int:
    """The type byte of a compact STREAM frame (``stream_id`` < 4)."""
    return STREAM_COMPACT_MIN | (stream_id << 1) | (1 if fin else 0)


def decode_compact_offset(truncated: int, reference: int) -> int:
    """The offset whose low 24 bits are ``truncated`` closest to ``reference``:
    the value in ``(reference - 2^23, reference + 2^23]``; -1 when it is
    negative (malformed)."""
    if not 0 <= reference <= MAX_VARINT:
        return -1
    candidate = (reference & ~_MASK) | (truncated & _MASK)
    if candidate <= reference - COMPACT_OFFSET_HALF:
        candidate += COMPACT_OFFSET_WINDOW
    elif candidate > reference + COMPACT_OFFSET_HALF:
        candidate -= COMPACT_OFFSET_WINDOW
    return candidate if candidate >= 0 else -1


def compact_offset_ok(stream_id: int, offset: int, low: int, high: int) -> bool:
    """Whether a frame at ``offset`` may be sent compact: stream ID below 4 and
    every receiver reference in ``[low, high]`` decodes it exactly."""
    return (
        stream_id < COMPACT_STREAM_ID_LIMIT
        and offset - low < COMPACT_OFFSET_HALF
        and high - offset < COMPACT_OFFSET_HALF
    )
