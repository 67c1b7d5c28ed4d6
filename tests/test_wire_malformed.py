"""Malformed input and encode-error tests of the wire codec, run on both backends.

The contract checked here: for any input the decoders either succeed or raise a
``WireError`` subclass, and the class is the one the spec names. Truncating a
valid frame sequence at byte ``k`` either raises ``TruncatedError`` or decodes
the frames before the cut unchanged, with the last one possibly shortened when
it has no length field (a PADDING run, STREAM without LEN, DATAGRAM).
"""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wire_strategies import Spec, canonical, encoded_size_bound, frame_lists

from transport.errors import (
    BufferTooSmallError,
    FieldValueError,
    TruncatedError,
    UnknownFrameError,
    WireError,
)
from transport.wire import codec_pure as reference
from transport.wire.constants import (
    MAX_ACK_RANGES,
    MAX_DATAGRAM_SIZE,
    MAX_VARINT,
    STREAM_COMPACT_MAX,
    STREAM_COMPACT_MIN,
    STREAM_FLAG_LEN,
    STREAM_TYPE_MAX,
    STREAM_TYPE_MIN,
    VERSION_1,
    FrameType,
    PacketType,
)

DEFINED_ONE_BYTE_TYPES = (
    {int(t) for t in FrameType}
    | set(range(STREAM_TYPE_MIN, STREAM_TYPE_MAX + 1))
    | set(range(STREAM_COMPACT_MIN, STREAM_COMPACT_MAX + 1))
)
UNDEFINED_ONE_BYTE_TYPES = sorted(set(range(0x40)) - DEFINED_ONE_BYTE_TYPES)


def _encode(codec: ModuleType, specs: list[Spec]) -> bytes:
    out = bytearray(encoded_size_bound(specs))
    return bytes(out[:codec.encode_frames(specs, out, 0, len(out))])


def _is_shortened(cut: Spec, original: Spec) -> bool:
    """``cut`` is ``original``, or it with a shorter run-to-the-end body or PADDING run."""
    if cut == original:
        return True
    if cut[0] != original[0]:
        return False
    if cut[0] == FrameType.PADDING:
        return 1 <= cut[1] <= original[1]
    runs_to_end = (
        cut[0] == FrameType.DATAGRAM
        or STREAM_COMPACT_MIN <= cut[0] <= STREAM_COMPACT_MAX
        or (STREAM_TYPE_MIN <= cut[0] <= STREAM_TYPE_MAX and not cut[0] & STREAM_FLAG_LEN))
    return (runs_to_end and cut[:5] == original[:5]
            and original[5].startswith(cut[5]))


def _check_prefix(decoded: list[Spec], original: list[Spec]) -> None:
    assert len(decoded) <= len(original)
    if decoded:
        assert decoded[:-1] == original[:len(decoded) - 1]
        assert _is_shortened(decoded[-1], original[len(decoded) - 1])


# ------------------------------------------------------------- truncation ---
@given(frame_lists(max_size=5))
def test_truncated_frames_raise_or_decode_a_prefix(
    codec: ModuleType, specs: list[Spec]
) -> None:
    wire = _encode(codec, specs)
    original = canonical(specs)
    decoder = codec.FrameDecoder()
    for k in range(len(wire)):
        try:
            decoded = codec.decode_frames(wire[:k])
        except TruncatedError:
            decoded = None
        if decoded is not None:
            _check_prefix(decoded, original)
        # The same cut expressed as `end` on the whole buffer (frames overrunning `end`).
        try:
            count = decoder.decode(wire, 0, k)
        except TruncatedError:
            assert decoded is None
        else:
            assert decoded is not None and count == len(decoded)


def _initial_packet(codec: ModuleType) -> bytes:
    payload = _encode(codec, [(FrameType.CRYPTO, 0, 0, 0, 0, b"hello"),
                              (FrameType.PADDING, 20, 0, 0, 0, None)])
    length = 2 + len(payload) + 4
    out = bytearray(100)
    pos = codec.encode_long_header(out, 0, PacketType.INITIAL, VERSION_1, b"\x11" * 8,
                                   b"\x22" * 4, b"tok", 0x1234, 2, length)
    body = payload + codec.crc32c(bytes(out[:pos]) + payload).to_bytes(4, "big")
    return bytes(out[:pos]) + body


def test_truncated_long_header_packets_raise_truncated(codec: ModuleType) -> None:
    packet = _initial_packet(codec)
    assert codec.decode_header(packet, 8).packet_end == len(packet)
    for k in range(len(packet)):
        with pytest.raises(TruncatedError):
            codec.decode_header(packet[:k], 8)


def test_truncated_short_header_raises_truncated(codec: ModuleType) -> None:
    out = bytearray(12)
    codec.encode_short_header(out, 0, b"\x33" * 8, 7, 3)
    for k in range(12):
        with pytest.raises(TruncatedError):
            codec.decode_header(bytes(out[:k]), 8)
    assert codec.decode_header(bytes(out), 8).pn_offset == 9


def test_truncated_retry_and_version_negotiation(codec: ModuleType) -> None:
    out = bytearray(40)
    pos = codec.encode_long_header(out, 0, PacketType.RETRY, VERSION_1, b"\x01", b"\x02",
                                   b"", 0, 1, 0)
    retry = bytes(out[:pos]) + b"\x05" * 16
    for k in range(len(retry)):
        with pytest.raises(TruncatedError):
            codec.decode_header(retry[:k], 8)
    vn = b"\x80" + bytes(4) + b"\x01\x01\x01\x02" + VERSION_1.to_bytes(4, "big") * 2
    for k in range(len(vn)):
        if k >= 13 and (k - 9) % 4 == 0:  # header is 9 bytes, then whole u32 versions
            assert codec.decode_header(vn[:k], 8).versions == (VERSION_1,) * ((k - 9) // 4)
        else:
            with pytest.raises(TruncatedError):
                codec.decode_header(vn[:k], 8)


@pytest.mark.parametrize("value", [64, 16384, 1 << 30])
def test_truncated_varints(codec: ModuleType, value: int) -> None:
    data = codec.encode_varint(value)
    for k in range(len(data)):
        with pytest.raises(TruncatedError):
            codec.decode_varint(data[:k], 0)
    with pytest.raises(TruncatedError):
        codec.decode_varint(data, len(data))


# ------------------------------------------------------------ frame types ---
@pytest.mark.parametrize("frame_type", UNDEFINED_ONE_BYTE_TYPES)
def test_unknown_one_byte_frame_types(codec: ModuleType, frame_type: int) -> None:
    with pytest.raises(UnknownFrameError):
        codec.decode_frames(bytes([frame_type, 0, 0, 0]))


@pytest.mark.parametrize(("wire", "error"), [
    (b"\x40\x01", FieldValueError),                  # PING in two bytes
    (b"\x80\x00\x00\x1e", FieldValueError),          # HANDSHAKE_DONE in four bytes
    (b"\xc0" + bytes(6) + b"\x08\x00\x00", FieldValueError),  # STREAM in eight bytes
    (b"\x40\x1f", UnknownFrameError),                # undefined type, non-minimal
    (b"\x40\x40", UnknownFrameError),                # 64: beyond our types
    (b"\x80\x01\x00\x00", UnknownFrameError),
    (b"\x40", TruncatedError),                       # type varint cut short
    (b"\x01\x80\x00", TruncatedError),
])
def test_multi_byte_frame_types(codec: ModuleType, wire: bytes, error: type) -> None:
    with pytest.raises(error):
        codec.decode_frames(wire)
    with pytest.raises(error):
        codec.FrameDecoder().decode(wire)


# ----------------------------------------------------------- field values ---
MALFORMED_FRAMES = [
    # (description, wire bytes, error)
    ("STREAM length past the end", b"\x0a\x01\x44\x00abc", TruncatedError),
    ("CRYPTO length 2**62-1", b"\x06\x00\xff\xff\xff\xff\xff\xff\xff\xff", TruncatedError),
    ("DATAGRAM_LEN past the end", b"\x31\x05abcd", TruncatedError),
    ("CONNECTION_CLOSE reason past the end", b"\x1c\x00\x00\x09bad", TruncatedError),
    ("PATH_CHALLENGE short", b"\x1a1234567", TruncatedError),
    ("NEW_CONNECTION_ID short token", b"\x18\x01\x00\x01\xaa" + bytes(15), TruncatedError),
    ("STREAM offset + length over 2**62-1",
     b"\x0e\x00\xff\xff\xff\xff\xff\xff\xff\xff\x01x", FieldValueError),
    ("CRYPTO offset + length over 2**62-1",
     b"\x06\xff\xff\xff\xff\xff\xff\xff\xff\x01x", FieldValueError),
    ("first ACK range below zero", b"\x02\x05\x00\x00\x06", FieldValueError),
    ("ACK gap below zero", b"\x02\x0a\x00\x01\x02\x07\x00", FieldValueError),
    ("ACK length below zero", b"\x02\x0a\x00\x01\x02\x06\x01", FieldValueError),
    ("FEC_RECOVERED range below zero", b"\x23\x03\x00\x04", FieldValueError),
    ("ACK with 257 ranges", b"\x02\x40\xff\x00\x41\x00\x00", FieldValueError),
    ("NEW_CONNECTION_ID retire_prior_to > sequence",
     b"\x18\x01\x02\x04abcd" + bytes(16), FieldValueError),
    ("NEW_CONNECTION_ID CID length 21", b"\x18\x01\x00\x15" + bytes(37), FieldValueError),
    ("NEW_CONNECTION_ID CID length 0", b"\x18\x01\x00\x00" + bytes(16), FieldValueError),
    ("NEW_TOKEN empty", b"\x07\x00", FieldValueError),
    ("MAX_STREAMS over 2**60", b"\x12\xd0\x00\x00\x00\x00\x00\x00\x01", FieldValueError),
    ("STREAMS_BLOCKED over 2**60", b"\x17\xd0\x00\x00\x00\x00\x00\x00\x01", FieldValueError),
    ("REPAIR k = 0", b"\x22\x00\x00\x01\x00\x00", FieldValueError),
    ("REPAIR m = 256", b"\x22\x00\x01\x41\x00\x00\x00", FieldValueError),
    ("REPAIR index = m", b"\x22\x00\x01\x02\x02\x00", FieldValueError),
]


@pytest.mark.parametrize(("wire", "error"), [(w, e) for _, w, e in MALFORMED_FRAMES],
                         ids=[d for d, _, _ in MALFORMED_FRAMES])
def test_malformed_frames(codec: ModuleType, wire: bytes, error: type) -> None:
    with pytest.raises(error):
        codec.decode_frames(wire)
    with pytest.raises(error):  # also behind a valid frame, inside a larger buffer
        codec.FrameDecoder().decode(b"\xff\x01" + wire + b"\x01", 1, len(wire) + 2)


def test_ack_with_256_ranges_is_accepted(codec: ModuleType) -> None:
    wire = b"\x02\x44\x00\x00\x40\xff\x00" + b"\x00\x00" * 255
    decoded = codec.decode_frames(wire)
    assert len(decoded[0][5]) == 2 * MAX_ACK_RANGES
    assert decoded[0][5][:4] == (1024, 1024, 1022, 1022)  # gap 0: high = low - 2
    assert decoded[0][5][-2:] == (514, 514)


def test_decoder_capacity(codec: ModuleType) -> None:
    decoder = codec.FrameDecoder(max_frames=4, max_ranges=6)
    assert decoder.decode(b"\x01" * 4) == 4
    with pytest.raises(FieldValueError):
        decoder.decode(b"\x01" * 5)
    assert decoder.decode(b"\x01\x01\x01" + bytes(50)) == 4  # a PADDING run is one record
    three_ranges = b"\x02\x14\x00\x02\x00\x00\x00\x00\x00"  # 6 ints: fits exactly
    assert decoder.decode(three_ranges) == 1
    with pytest.raises(FieldValueError):
        decoder.decode(b"\x02\x05\x00\x00\x00" + three_ranges)  # 2 + 6 ints over two frames
    assert decoder.decode(b"\x03\x14\x00\x00\x00\x00\x00\x00") == 1  # ACK_ECN: 2 + 3 ints
    with pytest.raises(FieldValueError):  # ACK_ECN with two ranges: 4 + 3 ints
        decoder.decode(b"\x03\x14\x00\x01\x00\x00\x00\x00\x00\x00")
    assert decoder.decode(b"\x01" * 4) == 4  # usable again after an error


def test_decode_spans(codec: ModuleType) -> None:
    for start, end in [(-1, 3), (4, 3), (0, 5), (6, -1)]:
        with pytest.raises(FieldValueError):
            codec.decode_frames(b"\x01" * 4, start, end)
    assert codec.decode_frames(b"\x01" * 4, 4, -1) == []
    assert codec.FrameDecoder().decode(b"\x01" * 4, 2, 2) == 0


# ---------------------------------------------------------------- headers ---
V1 = VERSION_1.to_bytes(4, "big")
# Each case is valid apart from the one named defect, so a missing check shows.
HEADER_CASES = [
    ("short header without fixed bit", b"\x00" + bytes(12), FieldValueError),
    ("long header without fixed bit", b"\x90" + V1 + b"\x00\x00" + b"\x05" + bytes(5),
     FieldValueError),
    ("DCID length 21", b"\xd0" + V1 + b"\x15" + bytes(21) + b"\x00" + b"\x05" + bytes(5),
     FieldValueError),
    ("SCID length 21", b"\xd0" + V1 + b"\x00\x15" + bytes(21) + b"\x05" + bytes(5),
     FieldValueError),
    ("VN with DCID length 21", b"\x80" + bytes(4) + b"\x15" + bytes(21) + b"\x00" + V1,
     FieldValueError),
    ("reserved long type", b"\xf0" + V1 + b"\x00\x00" + b"\x05" + bytes(5), FieldValueError),
    ("INITIAL length below pn + CRC", b"\xc1" + VERSION_1.to_bytes(4, "big") + b"\x00\x00\x00"
     + b"\x05" + bytes(10), FieldValueError),
    ("HANDSHAKE length past datagram", b"\xd0" + VERSION_1.to_bytes(4, "big") + b"\x00\x00"
     + b"\x20" + bytes(10), TruncatedError),
    ("INITIAL token past datagram", b"\xc0" + VERSION_1.to_bytes(4, "big") + b"\x00\x00"
     + b"\x30" + bytes(10), TruncatedError),
    ("empty datagram", b"", TruncatedError),
    ("oversized datagram", b"\x40" + bytes(MAX_DATAGRAM_SIZE), FieldValueError),
]


@pytest.mark.parametrize(("datagram", "error"), [(d, e) for _, d, e in HEADER_CASES],
                         ids=[n for n, _, _ in HEADER_CASES])
def test_malformed_headers(codec: ModuleType, datagram: bytes, error: type) -> None:
    with pytest.raises(error):
        codec.decode_header(datagram, 8)


def test_version_negotiation_without_fixed_bit_is_fine(codec: ModuleType) -> None:
    header = codec.decode_header(b"\x80" + bytes(4) + b"\x00\x00" + b"\x00\x00\x00\x01", 8)
    assert header.versions == (1,)


@pytest.mark.parametrize("cid_length", [-1, 21])
def test_short_cid_length_out_of_range(codec: ModuleType, cid_length: int) -> None:
    with pytest.raises(FieldValueError):
        codec.decode_header(b"\x40" + bytes(30), cid_length)


def test_header_encoder_field_errors(codec: ModuleType) -> None:
    out = bytearray(200)
    bad_long: list[dict[str, Any]] = [
        dict(dcid=bytes(21)), dict(scid=bytes(21)), dict(pn_length=0), dict(pn_length=5),
        dict(pn=-1), dict(pn=MAX_VARINT + 1), dict(length=4), dict(version=0),
        dict(version=1 << 32), dict(packet_type=PacketType.RESERVED),
        dict(packet_type=PacketType.HANDSHAKE, token=b"x"), dict(length=MAX_VARINT + 1),
    ]
    for bad in bad_long:
        args: dict[str, Any] = dict(packet_type=PacketType.INITIAL, version=VERSION_1,
                                    dcid=b"", scid=b"", token=b"", pn=0, pn_length=1, length=10)
        args.update(bad)
        with pytest.raises(FieldValueError):
            codec.encode_long_header(out, 0, args["packet_type"], args["version"],
                                     args["dcid"], args["scid"], args["token"], args["pn"],
                                     args["pn_length"], args["length"])
    for dcid, pn, pn_length, key_phase, spin in [(bytes(21), 0, 1, 0, 0), (b"", -1, 1, 0, 0),
                                                  (b"", 0, 0, 0, 0), (b"", 0, 1, 2, 0),
                                                  (b"", 0, 1, 0, 2)]:
        with pytest.raises(FieldValueError):
            codec.encode_short_header(out, 0, dcid, pn, pn_length, key_phase, spin)


def test_header_encoders_buffer_too_small(codec: ModuleType) -> None:
    full = bytearray(100)
    need = codec.encode_long_header(full, 0, PacketType.INITIAL, VERSION_1, b"\x01" * 8,
                                    b"\x02" * 8, b"token", 99, 4, 1000)
    for size in range(need):
        out = bytearray(b"\x77" * size)
        with pytest.raises(BufferTooSmallError):
            codec.encode_long_header(out, 0, PacketType.INITIAL, VERSION_1, b"\x01" * 8,
                                     b"\x02" * 8, b"token", 99, 4, 1000)
        assert out == b"\x77" * size  # nothing written
    for size in range(1 + 8 + 3):
        with pytest.raises(BufferTooSmallError):
            codec.encode_short_header(bytearray(size), 0, b"\x01" * 8, 5, 3)
    with pytest.raises(BufferTooSmallError):
        codec.encode_short_header(bytearray(20), 10, b"\x01" * 8, 5, 3)


# --------------------------------------------------------------- encoding ---
@given(frame_lists(max_size=5))
def test_encode_buffer_too_small_at_every_end(codec: ModuleType, specs: list[Spec]) -> None:
    wire = _encode(codec, specs)
    for end in range(3, 3 + len(wire)):
        out = bytearray(b"\x55" * (len(wire) + 10))
        with pytest.raises(BufferTooSmallError):
            codec.encode_frames(specs, out, 3, end)
        assert out[end:] == b"\x55" * (len(out) - end)  # nothing at or past end
        with pytest.raises(BufferTooSmallError):
            codec.encode_frames(specs, bytearray(end), 3, -1)


ACK = FrameType.ACK
ENCODE_ERRORS = [
    ("unknown type 0x1f", [(0x1F, 0, 0, 0, 0, None)], UnknownFrameError),
    ("unknown type 0x40", [(0x40, 0, 0, 0, 0, None)], UnknownFrameError),
    ("varint over 2**62-1", [(FrameType.MAX_DATA, MAX_VARINT + 1, 0, 0, 0, None)],
     FieldValueError),
    ("negative varint", [(FrameType.MAX_DATA, -1, 0, 0, 0, None)], FieldValueError),
    ("PADDING of 0", [(FrameType.PADDING, 0, 0, 0, 0, None)], FieldValueError),
    ("STREAM offset without OFF", [(0x0A, 1, 5, 0, 0, b"x")], FieldValueError),
    ("STREAM offset + length over max", [(0x0E, 1, MAX_VARINT, 0, 0, b"x")], FieldValueError),
    ("STREAM without LEN not last", [(0x08, 1, 0, 0, 0, b"x"), (1, 0, 0, 0, 0, None)],
     FieldValueError),
    ("DATAGRAM not last", [(0x30, 0, 0, 0, 0, b"x"), (1, 0, 0, 0, 0, None)], FieldValueError),
    ("body not bytes", [(FrameType.CRYPTO, 0, 0, 0, 0, "text")], FieldValueError),
    ("missing body", [(FrameType.CRYPTO, 0, 0, 0, 0, None)], FieldValueError),
    ("spec of 5 fields", [(FrameType.PING, 0, 0, 0, 0)], FieldValueError),
    ("NEW_TOKEN empty", [(FrameType.NEW_TOKEN, 0, 0, 0, 0, b"")], FieldValueError),
    ("NEW_CONNECTION_ID retire > seq", [(0x18, 1, 2, 4, 0, bytes(20))], FieldValueError),
    ("NEW_CONNECTION_ID CID length 21", [(0x18, 1, 0, 21, 0, bytes(37))], FieldValueError),
    ("NEW_CONNECTION_ID body length", [(0x18, 1, 0, 4, 0, bytes(19))], FieldValueError),
    ("PATH_CHALLENGE 7 bytes", [(0x1A, 0, 0, 0, 0, bytes(7))], FieldValueError),
    ("MAX_STREAMS over 2**60", [(0x13, (1 << 60) + 1, 0, 0, 0, None)], FieldValueError),
    ("REPAIR k 0", [(0x22, 0, 0, 1, 0, b"")], FieldValueError),
    ("REPAIR index = m", [(0x22, 0, 1, 3, 3, b"")], FieldValueError),
    ("ACK largest mismatch", [(ACK, 11, 0, 0, 0, (5, 10))], FieldValueError),
    ("ACK low > high", [(ACK, 10, 0, 0, 0, (11, 10))], FieldValueError),
    ("ACK ranges ascending", [(ACK, 10, 0, 0, 0, (8, 10, 12, 14))], FieldValueError),
    ("ACK ranges adjacent", [(ACK, 10, 0, 0, 0, (8, 10, 5, 7))], FieldValueError),
    ("ACK ranges overlapping", [(ACK, 10, 0, 0, 0, (8, 10, 5, 8))], FieldValueError),
    ("ACK negative low", [(ACK, 10, 0, 0, 0, (8, 10, -2, 3))], FieldValueError),
    ("ACK odd ints", [(ACK, 10, 0, 0, 0, (8, 10, 5))], FieldValueError),
    ("ACK no ranges", [(ACK, 10, 0, 0, 0, ())], FieldValueError),
    ("ACK body bytes", [(ACK, 10, 0, 0, 0, b"\x08\x0a")], FieldValueError),
    ("ACK_ECN without counts", [(FrameType.ACK_ECN, 10, 0, 0, 0, (8, 10))], FieldValueError),
    ("ACK 257 ranges", [(ACK, 1000, 0, 0, 0,
                         (1000, 1000, *[x for i in range(256) for x in (2 * i, 2 * i)][::-1]))],
     FieldValueError),
]


@pytest.mark.parametrize(("specs", "error"), [(s, e) for _, s, e in ENCODE_ERRORS],
                         ids=[d for d, _, _ in ENCODE_ERRORS])
def test_encode_errors(codec: ModuleType, specs: list[Spec], error: type) -> None:
    with pytest.raises(error):
        codec.encode_frames(specs, bytearray(2000), 0, 2000)


def test_encode_output_span_errors(codec: ModuleType) -> None:
    with pytest.raises(FieldValueError):
        codec.encode_frames([(1, 0, 0, 0, 0, None)], bytearray(10), -1, 10)
    assert codec.encode_frames([], bytearray(10), 4, 10) == 4
    assert codec.encode_frames([(1, 0, 0, 0, 0, None)], bytearray(10), 0, 50) == 1  # clamped


# ------------------------------------------------------ fuzz: no surprises ---
def _decode_everything(codec: ModuleType, data: bytes) -> None:
    """Run every decoder on ``data``; only WireError subclasses may escape."""
    for call in (
        lambda: codec.decode_frames(data),
        lambda: codec.FrameDecoder(16, 64).decode(data),
        lambda: codec.decode_header(data, 8),
        lambda: codec.decode_header(data, 0),
        lambda: codec.decode_varint(data, 0),
    ):
        with contextlib.suppress(WireError):
            call()


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_wire_errors(codec: ModuleType, data: bytes) -> None:
    _decode_everything(codec, data)


@given(st.lists(st.sampled_from(sorted(DEFINED_ONE_BYTE_TYPES)), max_size=6),
       st.binary(max_size=60), st.data())
def test_type_led_random_bytes_only_raise_wire_errors(
    codec: ModuleType, types: list[int], filler: bytes, data: st.DataObject
) -> None:
    # Random bytes rarely start with a defined type; these always do.
    wire = b"".join(bytes([t]) + data.draw(st.binary(max_size=12)) for t in types) + filler
    _decode_everything(codec, wire)


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    """A valid datagram (short header + frames, or INITIAL) with random edits."""
    specs = draw(frame_lists(max_size=4))
    frames = bytearray(encoded_size_bound(specs))
    frames = frames[:reference.encode_frames(specs, frames, 0, len(frames))]
    out = bytearray(100)
    if draw(st.booleans()):
        pos = reference.encode_short_header(out, 0, b"\x44" * 8, draw(st.integers(0, 1000)), 2)
    else:
        pos = reference.encode_long_header(out, 0, PacketType.INITIAL, VERSION_1, b"\x01" * 8,
                                           b"", b"", 1, 1, 1 + len(frames) + 4)
    packet = out[:pos] + frames
    packet += reference.crc32c(packet).to_bytes(4, "big")
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "set"]))
        at = draw(st.integers(0, max(0, len(packet) - 1)))
        if kind == "flip" and packet:
            packet[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            packet[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and packet:
            del packet[at:at + draw(st.integers(1, 4))]
        elif kind == "set" and packet:
            packet[at] = draw(st.sampled_from([0x00, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFF]))
    return bytes(packet)


@given(mutated_packets())
def test_mutated_packets_only_raise_wire_errors(codec: ModuleType, packet: bytes) -> None:
    _decode_everything(codec, packet)
    try:
        header = codec.decode_header(packet, 8)
    except WireError:
        return
    start = header.pn_offset + header.pn_length if header.pn_offset else len(packet)
    with contextlib.suppress(WireError):
        codec.decode_frames(packet, min(start, header.packet_end), header.packet_end)


@given(mutated_packets())
def test_backends_agree_on_mutated_packets(codec: ModuleType, packet: bytes) -> None:
    def outcome(module: ModuleType) -> object:
        results: list[object] = []
        for call in (lambda: module.decode_header(packet, 8),
                     lambda: module.decode_frames(packet, min(11, len(packet)))):
            try:
                results.append(call())
            except WireError as exc:
                results.append(type(exc))
        return results

    assert outcome(codec) == outcome(reference)
