"""Hypothesis strategies that generate valid frame specs and packets for the codec tests.

Every spec is in the canonical form ``decode_frames`` returns: unused integer
fields 0, bodies as bytes, ACK-like bodies as tuples of absolute range ints.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from transport.wire.constants import (
    MAX_CID_LENGTH,
    MAX_VARINT,
    STREAM_FLAG_LEN,
    STREAM_FLAG_OFF,
    FrameType,
)

Spec = tuple[int, int, int, int, int, Any]

# Varints biased towards each encoded size and its boundaries.
varints = st.one_of(
    st.integers(0, 63),
    st.integers(64, 16383),
    st.integers(16384, (1 << 30) - 1),
    st.integers(1 << 30, MAX_VARINT),
    st.sampled_from([0, 63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30, MAX_VARINT]),
)
small_varints = st.integers(0, 20_000)
bodies = st.binary(max_size=64)


def _simple(frame_type: int, fields: int, values: st.SearchStrategy[int] = varints) -> Any:
    """A frame with ``fields`` varint fields and no body."""
    return st.tuples(*([values] * fields)).map(
        lambda ints: (frame_type, *ints, *([0] * (4 - len(ints))), None)
    )


@st.composite
def ack_bodies(draw: st.DrawFn, max_ranges: int = 12) -> tuple[int, tuple[int, ...]]:
    """(largest, flat ranges) built from RFC 9000 gap/length fields."""
    first_range = draw(small_varints)
    pairs = draw(st.lists(st.tuples(small_varints, small_varints), max_size=max_ranges - 1))
    span = first_range + sum(gap + 2 + length for gap, length in pairs)
    largest = span + draw(st.integers(0, MAX_VARINT - span))
    low = largest - first_range
    flat = [low, largest]
    for gap, length in pairs:
        high = low - gap - 2
        low = high - length
        flat += [low, high]
    return largest, tuple(flat)


@st.composite
def acks(draw: st.DrawFn, frame_type: int = FrameType.ACK) -> Spec:
    largest, flat = draw(ack_bodies())
    delay = 0 if frame_type == FrameType.FEC_RECOVERED else draw(varints)
    if frame_type == FrameType.ACK_ECN:
        flat += tuple(draw(st.tuples(varints, varints, varints)))
    return (frame_type, largest, delay, 0, 0, flat)


@st.composite
def streams(draw: st.DrawFn, with_len: bool = True) -> Spec:
    flags = STREAM_FLAG_LEN if with_len else 0
    flags |= draw(st.sampled_from([0, STREAM_FLAG_OFF])) | draw(st.sampled_from([0, 1]))
    data = draw(bodies)
    offset = draw(st.integers(0, MAX_VARINT - len(data))) if flags & STREAM_FLAG_OFF else 0
    return (FrameType.STREAM | flags, draw(varints), offset, 0, 0, data)


@st.composite
def cryptos(draw: st.DrawFn) -> Spec:
    data = draw(bodies)
    return (FrameType.CRYPTO, draw(st.integers(0, MAX_VARINT - len(data))), 0, 0, 0, data)


@st.composite
def new_connection_ids(draw: st.DrawFn) -> Spec:
    sequence = draw(varints)
    retire_prior_to = draw(st.integers(0, sequence))
    cid = draw(st.binary(min_size=1, max_size=MAX_CID_LENGTH))
    token = draw(st.binary(min_size=16, max_size=16))
    return (FrameType.NEW_CONNECTION_ID, sequence, retire_prior_to, len(cid), 0, cid + token)


@st.composite
def repairs(draw: st.DrawFn) -> Spec:
    m = draw(st.integers(1, 255))
    return (FrameType.REPAIR, draw(varints), draw(st.integers(1, 255)), m,
            draw(st.integers(0, m - 1)), draw(bodies))


def _with_body(frame_type: int, fields: int, body: Any = bodies) -> Any:
    return st.tuples(st.tuples(*([varints] * fields)), body).map(
        lambda x: (frame_type, *x[0], *([0] * (4 - fields)), x[1])
    )


stream_limits = st.integers(0, 1 << 60)

#: One strategy per frame type whose frame can be followed by more frames.
NON_TERMINAL: dict[str, Any] = {
    "PADDING": st.integers(1, 40).map(lambda n: (FrameType.PADDING, n, 0, 0, 0, None)),
    "PING": st.just((FrameType.PING, 0, 0, 0, 0, None)),
    "ACK": acks(FrameType.ACK),
    "ACK_ECN": acks(FrameType.ACK_ECN),
    "RESET_STREAM": _simple(FrameType.RESET_STREAM, 3),
    "STOP_SENDING": _simple(FrameType.STOP_SENDING, 2),
    "CRYPTO": cryptos(),
    "NEW_TOKEN": _with_body(FrameType.NEW_TOKEN, 0, st.binary(min_size=1, max_size=64)),
    "STREAM": streams(with_len=True),
    "MAX_DATA": _simple(FrameType.MAX_DATA, 1),
    "MAX_STREAM_DATA": _simple(FrameType.MAX_STREAM_DATA, 2),
    "MAX_STREAMS_BIDI": _simple(FrameType.MAX_STREAMS_BIDI, 1, stream_limits),
    "MAX_STREAMS_UNI": _simple(FrameType.MAX_STREAMS_UNI, 1, stream_limits),
    "DATA_BLOCKED": _simple(FrameType.DATA_BLOCKED, 1),
    "STREAM_DATA_BLOCKED": _simple(FrameType.STREAM_DATA_BLOCKED, 2),
    "STREAMS_BLOCKED_BIDI": _simple(FrameType.STREAMS_BLOCKED_BIDI, 1, stream_limits),
    "STREAMS_BLOCKED_UNI": _simple(FrameType.STREAMS_BLOCKED_UNI, 1, stream_limits),
    "NEW_CONNECTION_ID": new_connection_ids(),
    "RETIRE_CONNECTION_ID": _simple(FrameType.RETIRE_CONNECTION_ID, 1),
    "PATH_CHALLENGE": _with_body(FrameType.PATH_CHALLENGE, 0, st.binary(min_size=8, max_size=8)),
    "PATH_RESPONSE": _with_body(FrameType.PATH_RESPONSE, 0, st.binary(min_size=8, max_size=8)),
    "CONNECTION_CLOSE": _with_body(FrameType.CONNECTION_CLOSE, 2),
    "APPLICATION_CLOSE": _with_body(FrameType.APPLICATION_CLOSE, 1),
    "HANDSHAKE_DONE": st.just((FrameType.HANDSHAKE_DONE, 0, 0, 0, 0, None)),
    "ACK_FREQUENCY": _simple(FrameType.ACK_FREQUENCY, 3),
    "FEC_SOURCE": _simple(FrameType.FEC_SOURCE, 2),
    "REPAIR": repairs(),
    "FEC_RECOVERED": acks(FrameType.FEC_RECOVERED),
    "DATAGRAM_LEN": _with_body(FrameType.DATAGRAM_LEN, 0),
}
#: Frames that run to the end of the packet, so only come last.
TERMINAL: dict[str, Any] = {
    "STREAM_TO_END": streams(with_len=False),
    "DATAGRAM": _with_body(FrameType.DATAGRAM, 0),
    # compact STREAM (0x38..0x3f): a = the stream its type names, b = 24-bit offset
    "STREAM_COMPACT": st.tuples(st.integers(0, 7), st.integers(0, (1 << 24) - 1), bodies).map(
        lambda x: (FrameType.STREAM_COMPACT | x[0], x[0] >> 1, x[1], 0, 0, x[2])
    ),
}
ALL_TYPES: dict[str, Any] = {**NON_TERMINAL, **TERMINAL}

any_non_terminal = st.one_of(*NON_TERMINAL.values())


@st.composite
def frame_lists(draw: st.DrawFn, max_size: int = 8) -> list[Spec]:
    """A valid list of specs: any non-terminal frames, then maybe one terminal frame."""
    specs: list[Spec] = draw(st.lists(any_non_terminal, min_size=0, max_size=max_size))
    if draw(st.booleans()):
        specs.append(draw(st.one_of(*TERMINAL.values())))
    return specs


def canonical(specs: list[Spec]) -> list[Spec]:
    """What decode_frames returns for encoded ``specs``: adjacent PADDING runs merge."""
    merged: list[Spec] = []
    for spec in specs:
        if spec[0] == FrameType.PADDING and merged and merged[-1][0] == FrameType.PADDING:
            merged[-1] = (FrameType.PADDING, merged[-1][1] + spec[1], 0, 0, 0, None)
        else:
            merged.append(spec)
    return merged


def encoded_size_bound(specs: list[Spec]) -> int:
    """A buffer size that surely holds the encoded specs."""
    size = 0
    for spec in specs:
        body = spec[5]
        size += 64 + (len(body) * 8 if isinstance(body, tuple) else len(body or b""))
        if spec[0] == FrameType.PADDING:
            size += spec[1]
    return size

