"""Round-trip and known-answer tests of the wire codec, run on both backends."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import ALL_TYPES, Spec, canonical, encoded_size_bound, frame_lists

from transport.errors import FieldValueError
from transport.wire.constants import (
    ACK_LIKE_TYPES,
    FRAME_FIELDS,
    MAX_CID_LENGTH,
    MAX_VARINT,
    PACKET_TYPE_SHORT,
    PACKET_TYPE_VERSION_NEGOTIATION,
    STREAM_TYPE_MAX,
    STREAM_TYPE_MIN,
    VERSION_1,
    FrameType,
    PacketType,
)

# ------------------------------------------------------------------ CRC32C ---
# RFC 3720 appendix B.4 lists the CRC bytes as sent (least significant first):
# zeros "aa 36 91 8a", ones "43 ab a8 62", incrementing "4e 79 dd 46",
# decrementing "5c db 3f 11".
CRC_VECTORS = [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"123456789", 0xE3069283),
    (b"", 0x00000000),
]


@pytest.mark.parametrize(("data", "expected"), CRC_VECTORS)
def test_crc32c_known_answers(codec: ModuleType, data: bytes, expected: int) -> None:
    assert codec.crc32c(data) == expected
    assert codec.crc32c(bytearray(data)) == expected
    assert codec.crc32c(memoryview(data)) == expected


def test_crc32c_long_input_matches_bytewise_continuation(codec: ModuleType) -> None:
    data = bytes((i * 37 + 11) & 0xFF for i in range(1500))
    running = 0
    for i in range(0, len(data), 7):  # 7-byte pieces: below the word-path threshold
        running = codec.crc32c(data[i:i + 7], running)
    assert codec.crc32c(data) == running
    assert codec.crc32c(memoryview(data)[3:1203]) == codec.crc32c(data[3:1203])


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc32c_continuation(codec: ModuleType, a: bytes, b: bytes) -> None:
    assert codec.crc32c(b, codec.crc32c(a)) == codec.crc32c(a + b)


# ----------------------------------------------------------------- varints ---
VARINT_BOUNDARIES = [
    (0, 1), (63, 1), (64, 2), (16383, 2), (16384, 4),
    ((1 << 30) - 1, 4), (1 << 30, 8), (MAX_VARINT, 8),
]


@pytest.mark.parametrize(("value", "size"), VARINT_BOUNDARIES)
def test_varint_boundaries(codec: ModuleType, value: int, size: int) -> None:
    assert codec.varint_size(value) == size
    data = codec.encode_varint(value)
    assert len(data) == size
    assert data[0] >> 6 == size.bit_length() - 1  # 00, 01, 10, 11
    assert codec.decode_varint(data, 0) == (value, size)
    assert codec.decode_varint(b"\xaa" + data + b"\xbb", 1) == (value, size + 1)


def test_varint_rfc9000_examples(codec: ModuleType) -> None:
    # RFC 9000 appendix A.1.
    assert codec.decode_varint(bytes.fromhex("c2197c5eff14e88c"), 0) == (151288809941952652, 8)
    assert codec.decode_varint(bytes.fromhex("9d7f3e7d"), 0) == (494878333, 4)
    assert codec.decode_varint(bytes.fromhex("7bbd"), 0) == (15293, 2)
    assert codec.decode_varint(bytes.fromhex("25"), 0) == (37, 1)
    assert codec.decode_varint(bytes.fromhex("4025"), 0) == (37, 2)  # non-minimal accepted
    assert codec.encode_varint(15293) == bytes.fromhex("7bbd")


@pytest.mark.parametrize("value", [MAX_VARINT + 1, 1 << 64, -1])
def test_varint_out_of_range(codec: ModuleType, value: int) -> None:
    with pytest.raises(FieldValueError):
        codec.varint_size(value)
    with pytest.raises(FieldValueError):
        codec.encode_varint(value)


@given(st.integers(0, MAX_VARINT))
def test_varint_roundtrip(codec: ModuleType, value: int) -> None:
    data = codec.encode_varint(value)
    assert len(data) == codec.varint_size(value)
    assert codec.decode_varint(bytearray(data), 0) == (value, len(data))


# ------------------------------------------------------------------ frames ---
def _encode(codec: ModuleType, specs: list[Spec]) -> bytes:
    out = bytearray(encoded_size_bound(specs))
    end = codec.encode_frames(specs, out, 0, len(out))
    return bytes(out[:end])


def _check_records(codec: ModuleType, specs: list[Spec], wire: bytes, offset: int) -> None:
    """The FrameDecoder's records describe exactly the specs."""
    buf = b"\xee" * offset + wire  # decoding at a non-zero start: data_off stays absolute
    decoder = codec.FrameDecoder()
    count = decoder.decode(buf, offset, len(buf))
    assert count == len(specs)
    for rec, (frame_type, a, b, c, d, body) in zip(decoder.frames[:count], specs, strict=True):
        assert (rec.type, rec.a, rec.b) == (frame_type, a, b)
        if frame_type in ACK_LIKE_TYPES:
            ints = list(decoder.ranges[rec.c:rec.c + len(body)])
            assert ints == list(body)
            assert rec.d == (len(body) - (3 if frame_type == FrameType.ACK_ECN else 0)) // 2
            assert (rec.data_off, rec.data_len) == (0, 0)
            continue
        assert (rec.c, rec.d) == (c, d)
        if body is None:
            assert (rec.data_off, rec.data_len) == (0, 0)
        else:
            assert offset <= rec.data_off <= len(buf)
            assert buf[rec.data_off:rec.data_off + rec.data_len] == body


# A quarter of the profile's examples per frame type (31 types).
PER_TYPE = settings(max_examples=max(10, settings().max_examples // 4))


@pytest.mark.parametrize("name", sorted(ALL_TYPES))
def test_every_frame_type_roundtrips(codec: ModuleType, name: str) -> None:
    @PER_TYPE
    @given(ALL_TYPES[name], st.integers(0, 3))
    def check(spec: Spec, offset: int) -> None:
        wire = _encode(codec, [spec])
        assert codec.decode_frames(wire) == [spec]
        assert codec.decode_frames(memoryview(b"\x01" * offset + wire), offset) == [spec]
        _check_records(codec, [spec], wire, offset)

    check()


def test_frame_strategies_cover_every_type(codec: ModuleType) -> None:
    covered = {int(FrameType.PADDING)}
    for name in ALL_TYPES:
        if name in ("STREAM", "STREAM_TO_END"):
            covered.update(range(STREAM_TYPE_MIN, STREAM_TYPE_MAX + 1))
        elif name != "PADDING":
            covered.add(int(FrameType[name]))
    assert {int(t) for t in FRAME_FIELDS} <= covered
    assert all(codec.decode_frames(bytes([t]) + bytes(30))[0][0] == t  # type byte accepted
               for t in covered if t not in (0x07, 0x18, 0x22))


@given(frame_lists())
def test_frame_lists_roundtrip(codec: ModuleType, specs: list[Spec]) -> None:
    wire = _encode(codec, specs)
    decoded = codec.decode_frames(wire)
    assert decoded == canonical(specs)
    assert _encode(codec, decoded) == wire  # decode output is valid encoder input
    _check_records(codec, canonical(specs), wire, 5)


@given(frame_lists(), st.integers(0, 40))
def test_encode_honours_pos_and_end(codec: ModuleType, specs: list[Spec], slack: int) -> None:
    wire = _encode(codec, specs)
    out = bytearray(b"\xcc" * (10 + len(wire) + slack))
    end = codec.encode_frames(specs, out, 10, 10 + len(wire))
    assert end == 10 + len(wire)
    assert out[10:end] == wire
    assert out[:10] == b"\xcc" * 10
    assert out[end:] == b"\xcc" * slack
    view_out = memoryview(bytearray(len(wire)))
    assert codec.encode_frames(specs, view_out, 0, -1) == len(wire)
    assert bytes(view_out) == wire


def test_decoder_reuses_records(codec: ModuleType) -> None:
    decoder = codec.FrameDecoder(8, 16)
    first = list(decoder.frames)
    ack = (FrameType.ACK, 10, 3, 0, 0, (8, 10, 1, 5))
    wire = _encode(codec, [ack, (FrameType.PING, 0, 0, 0, 0, None)])
    assert decoder.decode(wire) == 2
    assert list(decoder.ranges[:4]) == [8, 10, 1, 5]
    assert decoder.decode(_encode(codec, [(FrameType.MAX_DATA, 7, 0, 0, 0, None)])) == 1
    assert decoder.frames[0] is first[0]
    rec = decoder.frames[0]
    assert (rec.type, rec.a, rec.b, rec.c, rec.d, rec.data_off, rec.data_len) == (
        FrameType.MAX_DATA, 7, 0, 0, 0, 0, 0)


def test_ack_ranges_follow_rfc9000_arithmetic(codec: ModuleType) -> None:
    # largest 100, first_range 10 -> [90, 100]; gap 3, length 4 -> high 90-3-2=85, low 81.
    wire = bytes([0x02, 0x40, 100, 0x05, 0x01, 0x0A, 0x03, 0x04])
    assert codec.decode_frames(wire) == [(FrameType.ACK, 100, 5, 0, 0, (90, 100, 81, 85))]
    assert _encode(codec, [(FrameType.ACK, 100, 5, 0, 0, (90, 100, 81, 85))]) == wire


def test_padding_run_collapses(codec: ModuleType) -> None:
    wire = bytes(5) + b"\x01" + bytes(3)
    assert codec.decode_frames(wire) == [
        (FrameType.PADDING, 5, 0, 0, 0, None),
        (FrameType.PING, 0, 0, 0, 0, None),
        (FrameType.PADDING, 3, 0, 0, 0, None),
    ]
    assert codec.decode_frames(wire, 2, 4) == [(FrameType.PADDING, 2, 0, 0, 0, None)]


# ----------------------------------------------------------------- headers ---
cids = st.binary(max_size=MAX_CID_LENGTH)
pn_lengths = st.integers(1, 4)


@given(st.sampled_from([PacketType.INITIAL, PacketType.HANDSHAKE]), cids, cids,
       st.binary(max_size=40), st.integers(0, MAX_VARINT), pn_lengths, st.integers(4, 300),
       st.binary(max_size=30))
def test_long_header_roundtrip(
    codec: ModuleType, packet_type: int, dcid: bytes, scid: bytes, token: bytes, pn: int,
    pn_length: int, extra: int, trailing: bytes,
) -> None:
    if packet_type == PacketType.HANDSHAKE:
        token = b""
    length = pn_length + extra  # packet number + payload + CRC
    out = bytearray(100 + length)
    pos = codec.encode_long_header(out, 0, packet_type, VERSION_1, dcid, scid, token, pn,
                                   pn_length, length)
    datagram = bytes(out[:pos]) + bytes(range(256)) * 2
    datagram = datagram[:pos - pn_length + length] + trailing  # a coalesced packet may follow
    header = codec.decode_header(datagram, 8)
    expected_first = 0xC0 | (packet_type << 4) | (pn_length - 1)
    assert header == codec.Header(expected_first, packet_type, VERSION_1, dcid, scid, token,
                                  pos - pn_length, pn_length, pos - pn_length + length, (), b"")
    wire_pn = int.from_bytes(datagram[header.pn_offset:header.pn_offset + pn_length], "big")
    assert wire_pn == pn & ((1 << (8 * pn_length)) - 1)


@given(cids, cids, st.binary(max_size=60), st.binary(min_size=16, max_size=16))
def test_retry_roundtrip(
    codec: ModuleType, dcid: bytes, scid: bytes, token: bytes, tag: bytes
) -> None:
    out = bytearray(200)
    pos = codec.encode_long_header(out, 0, PacketType.RETRY, VERSION_1, dcid, scid, token,
                                   0, 1, 0)
    datagram = bytes(out[:pos]) + tag
    header = codec.decode_header(datagram, 8)
    assert header == codec.Header(0xE0, PacketType.RETRY, VERSION_1, dcid, scid, token, 0, 1,
                                  len(datagram), (), tag)


@given(st.integers(0, 0x7F), cids, cids, st.lists(st.integers(0, 0xFFFFFFFF), min_size=1,
                                                   max_size=10))
def test_version_negotiation_decode(
    codec: ModuleType, low_bits: int, dcid: bytes, scid: bytes, versions: list[int]
) -> None:
    datagram = (bytes([0x80 | low_bits]) + bytes(4) + bytes([len(dcid)]) + dcid
                + bytes([len(scid)]) + scid + b"".join(v.to_bytes(4, "big") for v in versions))
    header = codec.decode_header(datagram, 8)
    assert header == codec.Header(0x80 | low_bits, PACKET_TYPE_VERSION_NEGOTIATION, 0, dcid,
                                  scid, b"", 0, (low_bits & 3) + 1, len(datagram),
                                  tuple(versions), b"")


def test_unsupported_version_stops_after_cids(codec: ModuleType) -> None:
    datagram = bytes([0xD3]) + (0x0A0B0C0D).to_bytes(4, "big") + b"\x02ab\x01c" + b"anything"
    header = codec.decode_header(datagram, 8)
    assert header == codec.Header(0xD3, 1, 0x0A0B0C0D, b"ab", b"c", b"", 0, 4, len(datagram),
                                  (), b"")


@given(st.integers(0, MAX_CID_LENGTH), st.integers(0, MAX_VARINT), pn_lengths,
       st.integers(0, 1), st.integers(0, 1), st.binary(max_size=40), st.data())
def test_short_header_roundtrip(
    codec: ModuleType, cid_length: int, pn: int, pn_length: int, key_phase: int, spin: int,
    payload: bytes, data: st.DataObject,
) -> None:
    dcid = data.draw(st.binary(min_size=cid_length, max_size=cid_length))
    out = bytearray(1 + cid_length + pn_length)
    pos = codec.encode_short_header(out, 0, dcid, pn, pn_length, key_phase, spin)
    assert pos == len(out)
    datagram = bytes(out) + payload
    header = codec.decode_header(datagram, cid_length)
    first = 0x40 | (spin << 5) | (key_phase << 2) | (pn_length - 1)
    assert header == codec.Header(first, PACKET_TYPE_SHORT, 0, dcid, b"", b"", 1 + cid_length,
                                  pn_length, len(datagram), (), b"")
    assert int.from_bytes(datagram[1 + cid_length:pos], "big") == pn % (1 << (8 * pn_length))


def test_header_encoders_write_at_pos(codec: ModuleType) -> None:
    out = bytearray(b"\x99" * 40)
    pos = codec.encode_short_header(out, 3, b"\x01\x02", 0x1234, 2, key_phase=1)
    assert pos == 3 + 1 + 2 + 2
    assert out[:9] == b"\x99\x99\x99\x45\x01\x02\x12\x34\x99"
    view = memoryview(out)
    pos = codec.encode_long_header(view, 20, PacketType.HANDSHAKE, VERSION_1, b"", b"\x07",
                                   b"", 5, 1, 9)
    assert bytes(out[20:pos]) == bytes.fromhex("d0 54525001 00 01 07 09 05")


# ---------------------------------------------------------- packet numbers ---
def test_packet_number_length_rfc9000_a2(codec: ModuleType) -> None:
    # RFC 9000 A.2: acked 0xabe8b3; 0xac5c02 needs 16 bits, 0xace8fe needs 24 bits.
    assert codec.packet_number_length(0xAC5C02, 0xABE8B3) == 2
    assert codec.packet_number_length(0xACE8FE, 0xABE8B3) == 3
    assert codec.packet_number_length(0, -1) == 1
    assert codec.packet_number_length(127, -1) == 1  # 128 unacked: 2*128 <= 2**8
    assert codec.packet_number_length(128, -1) == 2
    assert codec.packet_number_length(1000 + (1 << 31), 1000) == 4
    with pytest.raises(FieldValueError):
        codec.packet_number_length(1001 + (1 << 31), 1000)
    with pytest.raises(FieldValueError):
        codec.packet_number_length(5, 5)


def test_decode_packet_number_rfc9000_a3(codec: ModuleType) -> None:
    assert codec.decode_packet_number(0x9B32, 2, 0xA82F30EA) == 0xA82F9B32
    assert codec.decode_packet_number(0, 1, -1) == 0
    assert codec.decode_packet_number(0xFF, 1, 0x1FE) == 0x1FF
    assert codec.decode_packet_number(0x01, 1, 0x1FE) == 0x201  # wraps forward
    assert codec.decode_packet_number(0xF0, 1, 0x205) == 0x1F0  # wraps back
    # The window is (expected - 128, expected + 128] for one byte: both edges.
    assert codec.decode_packet_number(0x00, 1, 0x27F) == 0x300  # expected 0x280, 0x200 is out
    assert codec.decode_packet_number(0x80, 1, 0x1FF) == 0x280  # expected 0x200, edge is in
    with pytest.raises(FieldValueError):
        codec.decode_packet_number(0x100, 1, 5)
    with pytest.raises(FieldValueError):
        codec.decode_packet_number(0, 5, 5)


@given(st.integers(-1, 1 << 40), st.integers(1, 1 << 31), st.data())
def test_packet_number_roundtrip(
    codec: ModuleType, largest_acked: int, distance: int, data: st.DataObject
) -> None:
    pn = largest_acked + distance
    length = codec.packet_number_length(pn, largest_acked)
    # The receiver has seen at least what was acknowledged and not yet pn.
    largest_received = data.draw(st.integers(largest_acked, pn - 1))
    truncated = pn & ((1 << (8 * length)) - 1)
    assert codec.decode_packet_number(truncated, length, largest_received) == pn


# ------------------------------------------------------ mixed input types ---
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_decoders_accept_buffer_types(codec: ModuleType, kind: Any) -> None:
    specs: list[Spec] = [(FrameType.STREAM | 0x07, 4, 9, 0, 0, b"hi")]
    wire = _encode(codec, specs)
    assert codec.decode_frames(kind(wire)) == specs
    assert codec.FrameDecoder().decode(kind(wire)) == 1
    header = codec.decode_header(kind(bytes([0x41]) + bytes(8) + b"\x00" * 5), 8)
    assert header.pn_offset == 9
    assert codec.decode_varint(kind(b"\x40\x05"), 0) == (5, 2)

