"""Tests of the packet-level fast paths ``seal_stream_packet`` and ``open_short_packet``.

Both backends (``codec`` fixture) must produce exactly the bytes of the generic
encoders (short header + encode_frames + CRC32C) and open what they seal; the
native backend must match the pure reference value for value and error class
for error class on arbitrary (also invalid) arguments and bytes. Malformed
datagrams -- truncated at every offset, bit flips, a foreign DCID, random
bytes -- raise only the documented WireError subclasses.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wire_strategies import ack_bodies, varints

import transport.wire as wire
from transport.errors import (
    BufferTooSmallError,
    ChecksumError,
    FieldValueError,
    ForeignPacketError,
    TruncatedError,
    WireError,
)
from transport.wire import codec_native as native
from transport.wire import codec_pure as pure
from transport.wire.constants import MAX_VARINT, FrameType

DCID = bytes(range(1, 9))
#: the sealers write STREAM with OFF and without LEN (the last frame runs to
#: the end of the payload, docs/wire-format.md 10.9)
STREAM_OFF = 0x0C

dcids = st.binary(max_size=20)
pn_lengths = st.integers(1, 4)
packet_numbers = st.integers(0, MAX_VARINT)
ack_range_lists = st.one_of(st.none(), ack_bodies(max_ranges=6).map(lambda lb: list(lb[1])))
stream_data = st.binary(max_size=300)


@st.composite
def packet_args(draw: st.DrawFn) -> dict[str, Any]:
    """Valid arguments of seal_stream_packet (the output buffer excluded)."""
    data = draw(stream_data)
    return {
        "dcid": draw(dcids),
        "pn": draw(packet_numbers),
        "pn_length": draw(pn_lengths),
        "ack_ranges": draw(ack_range_lists),
        "ack_delay": draw(varints),
        "stream_id": draw(varints),
        "offset": draw(st.integers(0, MAX_VARINT - len(data))),
        "data": data,
        "fin": draw(st.booleans()),
        "crc": draw(st.booleans()),
    }


def _seal(codec: ModuleType, args: dict[str, Any], size: int = 2048) -> bytes:
    out = bytearray(size)
    length = codec.seal_stream_packet(
        out, args["dcid"], args["pn"], args["pn_length"], args["ack_ranges"],
        args["ack_delay"], args["stream_id"], args["offset"], args["data"], args["fin"],
        args["crc"])
    return bytes(out[:length])


def _generic(args: dict[str, Any]) -> bytes:
    """The same packet built with the generic pure encoders."""
    out = bytearray(2048)
    pos = pure.encode_short_header(out, 0, args["dcid"], args["pn"], args["pn_length"])
    specs: list[tuple[Any, ...]] = []
    ranges = args["ack_ranges"]
    if ranges is not None:
        specs.append((FrameType.ACK, ranges[1], args["ack_delay"], 0, 0, tuple(ranges)))
    specs.append((STREAM_OFF | int(args["fin"]), args["stream_id"], args["offset"], 0, 0,
                  args["data"]))
    pos = pure.encode_frames(specs, out, pos, len(out))
    if args["crc"]:
        out[pos:pos + 4] = pure.crc32c(bytes(out[:pos])).to_bytes(4, "big")
        pos += 4
    return bytes(out[:pos])


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # compared by class between the backends
        return ("error", type(exc))


def _open_outcome(codec: ModuleType, buf: bytes, dcid: bytes, crc: bool) -> tuple[Any, ...]:
    decoder = codec.FrameDecoder(8, 16)
    try:
        result = codec.open_short_packet(buf, dcid, decoder, crc)
    except Exception as exc:  # compared by class between the backends
        return ("error", type(exc))
    records = [(r.type, r.a, r.b, r.c, r.d, r.data_off, r.data_len)
               for r in decoder.frames[:result[3]]]
    ranges = [list(decoder.ranges[r.c:r.c + 2 * r.d]) for r in decoder.frames[:result[3]]
              if r.type == FrameType.ACK]
    return ("ok", result, records, ranges)


# ------------------------------------------------------------------- seal ---
@given(packet_args())
def test_seal_equals_header_plus_encode_frames_plus_crc(
    codec: ModuleType, args: dict[str, Any]
) -> None:
    assert _seal(codec, args) == _generic(args)


@given(packet_args())
def test_seal_fits_exactly_and_reports_one_byte_less(
    codec: ModuleType, args: dict[str, Any]
) -> None:
    wire_bytes = _generic(args)
    assert _seal(codec, args, len(wire_bytes)) == wire_bytes
    with pytest.raises(BufferTooSmallError):
        _seal(codec, args, len(wire_bytes) - 1)


def test_seal_every_small_output_size(codec: ModuleType) -> None:
    args = {"dcid": DCID, "pn": 77, "pn_length": 2, "ack_ranges": [5, 9, 0, 2],
            "ack_delay": 3, "stream_id": 4, "offset": 100, "data": b"abc", "fin": False,
            "crc": True}
    full = _generic(args)
    for size in range(len(full)):
        with pytest.raises(BufferTooSmallError):
            _seal(codec, args, size)
    assert _seal(codec, args, len(full)) == full


def test_seal_accepts_buffer_kinds(codec: ModuleType) -> None:
    args = {"dcid": DCID, "pn": 1, "pn_length": 1, "ack_ranges": (0, 4), "ack_delay": 0,
            "stream_id": 0, "offset": 0, "data": b"hello", "fin": True, "crc": True}
    expected = _generic(args)
    out = bytearray(64)
    view = memoryview(out)
    length = codec.seal_stream_packet(view, memoryview(DCID), 1, 1, [0, 4], 0, 0, 0,
                                      memoryview(bytearray(b"hello")), True)
    assert bytes(out[:length]) == expected
    for ranges in (array("Q", [0, 4]), memoryview(array("Q", [0, 4]))):
        out = bytearray(64)
        length = codec.seal_stream_packet(out, DCID, 1, 1, ranges, 0, 0, 0, b"hello", True)
        assert bytes(out[:length]) == expected


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"dcid": bytes(21)}, FieldValueError),
        ({"pn_length": 5}, FieldValueError),
        ({"pn_length": 0}, FieldValueError),
        ({"pn": MAX_VARINT + 1}, FieldValueError),
        ({"ack_ranges": []}, FieldValueError),
        ({"ack_ranges": [5]}, FieldValueError),
        ({"ack_ranges": [5, 9, 8, 9]}, FieldValueError),  # overlapping
        ({"ack_ranges": [5, 9, 2, 4]}, FieldValueError),  # adjacent (gap -1)
        ({"ack_ranges": [9, 5]}, FieldValueError),  # low > high
        ({"ack_ranges": [0, 1] * 300}, FieldValueError),  # more than 256 ranges
        ({"ack_delay": MAX_VARINT + 1}, FieldValueError),
        ({"stream_id": MAX_VARINT + 1}, FieldValueError),
        ({"stream_id": -1}, FieldValueError),
        ({"offset": MAX_VARINT}, FieldValueError),  # offset + length too large
        ({"data": "text"}, FieldValueError),
    ],
)
def test_seal_rejects_bad_values(
    codec: ModuleType, change: dict[str, Any], error: type[WireError]
) -> None:
    args = {"dcid": DCID, "pn": 1, "pn_length": 2, "ack_ranges": [0, 4], "ack_delay": 1,
            "stream_id": 0, "offset": 0, "data": b"x", "fin": False, "crc": True}
    args.update(change)
    with pytest.raises(error):
        _seal(codec, args)


def test_seal_ack_delay_is_ignored_without_ack(codec: ModuleType) -> None:
    args = {"dcid": DCID, "pn": 1, "pn_length": 2, "ack_ranges": None, "ack_delay": -5,
            "stream_id": 0, "offset": 0, "data": b"x", "fin": False, "crc": False}
    assert _seal(codec, args) == _generic({**args, "ack_delay": 0})


@given(packet_args(), st.tuples(varints, varints, varints))
def test_seal_writes_ack_ecn_for_ranges_plus_counts(
    codec: ModuleType, args: dict[str, Any], counts: tuple[int, int, int]
) -> None:
    """An odd number of ACK ints is the ranges plus the ECT(0), ECT(1), CE
    counts: the packet carries ACK_ECN (what the packetizer piggybacks with ECN)."""
    ranges = args["ack_ranges"] if args["ack_ranges"] is not None else [0, 0]
    args = {**args, "ack_ranges": [*ranges, *counts]}
    out = bytearray(2048)
    pos = pure.encode_short_header(out, 0, args["dcid"], args["pn"], args["pn_length"])
    specs: list[tuple[Any, ...]] = [
        (FrameType.ACK_ECN, ranges[1], args["ack_delay"], 0, 0, tuple(args["ack_ranges"])),
        (STREAM_OFF | int(args["fin"]), args["stream_id"], args["offset"], 0, 0,
         args["data"]),
    ]
    pos = pure.encode_frames(specs, out, pos, len(out))
    if args["crc"]:
        out[pos:pos + 4] = pure.crc32c(bytes(out[:pos])).to_bytes(4, "big")
        pos += 4
    assert _seal(codec, args) == bytes(out[:pos])


_any_ints = st.one_of(varints, st.integers(-3, 3), st.integers(MAX_VARINT - 2, 1 << 64))


@given(
    st.integers(0, 80), st.binary(max_size=22), st.integers(-1, 1 << 33), st.integers(-1, 6),
    st.one_of(st.none(), st.lists(st.integers(-2, 1 << 63), max_size=8), ack_range_lists),
    _any_ints, _any_ints, _any_ints, st.binary(max_size=40), st.booleans(), st.booleans(),
)
def test_seal_native_matches_pure_on_any_arguments(
    size: int, dcid: bytes, pn: int, pn_length: int, ranges: list[int] | None,
    ack_delay: int, stream_id: int, offset: int, data: bytes, fin: bool, crc: bool,
) -> None:
    results = []
    for codec in (pure, native):
        out = bytearray(size)
        outcome = _outcome(codec.seal_stream_packet, out, dcid, pn, pn_length, ranges,
                           ack_delay, stream_id, offset, data, fin, crc)
        results.append(outcome if outcome[0] == "error" else (outcome, bytes(out)))
    assert results[0] == results[1]


# ------------------------------------------------------------------- open ---
@given(packet_args())
def test_open_returns_what_seal_wrote(codec: ModuleType, args: dict[str, Any]) -> None:
    packet = _seal(codec, args)
    decoder = codec.FrameDecoder()
    first, truncated_pn, pn_length, count = codec.open_short_packet(
        packet, args["dcid"], decoder, args["crc"])
    assert first == packet[0] and first & 0xC0 == 0x40
    assert pn_length == args["pn_length"]
    assert truncated_pn == args["pn"] & ((1 << (8 * pn_length)) - 1)
    frames = decoder.frames[:count]
    has_ack = args["ack_ranges"] is not None
    assert count == 1 + has_ack
    if has_ack:
        ack = frames[0]
        assert (ack.type, ack.a, ack.b) == (FrameType.ACK, args["ack_ranges"][1],
                                            args["ack_delay"])
        assert list(decoder.ranges[ack.c:ack.c + 2 * ack.d]) == args["ack_ranges"]
    stream = frames[-1]
    assert stream.type == STREAM_OFF | int(args["fin"])
    assert (stream.a, stream.b) == (args["stream_id"], args["offset"])
    body = packet[stream.data_off:stream.data_off + stream.data_len]
    assert body == args["data"]


@given(packet_args())
def test_open_equals_header_crc_and_frame_decode(
    codec: ModuleType, args: dict[str, Any]
) -> None:
    packet = _seal(codec, args)
    header = codec.decode_header(packet, len(args["dcid"]))
    end = len(packet) - 4 if args["crc"] else len(packet)
    reference = codec.FrameDecoder()
    count = reference.decode(packet, header.pn_offset + header.pn_length, end)
    decoder = codec.FrameDecoder()
    result = codec.open_short_packet(memoryview(packet), args["dcid"], decoder, args["crc"])
    pn_bytes = packet[header.pn_offset:header.pn_offset + header.pn_length]
    assert result == (header.first_byte, int.from_bytes(pn_bytes, "big"), header.pn_length,
                      count)
    assert [(r.type, r.a, r.b, r.c, r.d, r.data_off, r.data_len) for r in
            decoder.frames[:count]] == [(r.type, r.a, r.b, r.c, r.d, r.data_off, r.data_len)
                                        for r in reference.frames[:count]]


def _sample_packet(codec: ModuleType, crc: bool = True) -> bytes:
    args = {"dcid": DCID, "pn": 0x1234, "pn_length": 2, "ack_ranges": [90, 100, 10, 80],
            "ack_delay": 25, "stream_id": 4, "offset": 1 << 20, "data": bytes(range(200)),
            "fin": False, "crc": crc}
    return _seal(codec, args)


def test_open_truncated_at_every_offset(codec: ModuleType) -> None:
    for crc in (True, False):
        packet = _sample_packet(codec, crc)
        for cut in range(len(packet)):
            decoder = codec.FrameDecoder()
            try:
                codec.open_short_packet(packet[:cut], DCID, decoder, crc)
            except (TruncatedError, ChecksumError) as exc:
                assert crc or isinstance(exc, TruncatedError)
            else:
                # Without a CRC a cut at a frame boundary is still well formed.
                assert not crc


def test_open_bit_flips(codec: ModuleType) -> None:
    packet = _sample_packet(codec)
    decoder = codec.FrameDecoder()
    for index in range(len(packet)):
        for bit in range(8):
            flipped = bytearray(packet)
            flipped[index] ^= 1 << bit
            if index == 0 and bit >= 6:
                expected: type[WireError] = FieldValueError  # form or fixed bit
            elif 1 <= index <= len(DCID):
                expected = ForeignPacketError
            else:
                expected = ChecksumError
            with pytest.raises(expected):
                codec.open_short_packet(bytes(flipped), DCID, decoder)


def test_open_rejects_foreign_dcid_and_bad_arguments(codec: ModuleType) -> None:
    packet = _sample_packet(codec)
    decoder = codec.FrameDecoder()
    with pytest.raises(ForeignPacketError):
        codec.open_short_packet(packet, bytes(8), decoder)
    with pytest.raises(FieldValueError):
        codec.open_short_packet(packet, bytes(21), decoder)
    with pytest.raises(TruncatedError):
        codec.open_short_packet(b"", DCID, decoder)
    with pytest.raises(FieldValueError):
        codec.open_short_packet(bytes([0xC0]) + packet[1:], DCID, decoder)  # long form
    with pytest.raises(FieldValueError):
        codec.open_short_packet(bytes(70_000), DCID, decoder)
    # A shorter expected CID that is a prefix matches; the rest is read as
    # packet number and frames, so the outcome is a result or a WireError.
    with contextlib.suppress(WireError):
        codec.open_short_packet(packet, DCID[:4], decoder)


def test_open_without_crc_ignores_trailer(codec: ModuleType) -> None:
    packet = _sample_packet(codec, crc=False)
    decoder = codec.FrameDecoder()
    assert codec.open_short_packet(packet, DCID, decoder, False)[3] == 2
    with pytest.raises(WireError):
        codec.open_short_packet(packet, DCID, decoder, True)


def test_open_capacity_errors(codec: ModuleType) -> None:
    packet = _sample_packet(codec)
    with pytest.raises(FieldValueError):
        codec.open_short_packet(packet, DCID, codec.FrameDecoder(1, 16))
    with pytest.raises(FieldValueError):
        codec.open_short_packet(packet, DCID, codec.FrameDecoder(8, 2))


def test_native_open_accepts_a_pure_decoder() -> None:
    packet = _sample_packet(native)
    decoder = pure.FrameDecoder()
    assert native.open_short_packet(packet, DCID, decoder) == pure.open_short_packet(
        packet, DCID, pure.FrameDecoder())
    assert decoder.ranges[decoder.frames[0].c:decoder.frames[0].c + 4] == [90, 100, 10, 80]


@given(st.binary(max_size=60), st.sampled_from([b"", DCID[:1], DCID]), st.booleans())
def test_open_native_matches_pure_on_random_bytes(buf: bytes, dcid: bytes, crc: bool) -> None:
    if crc and len(buf) > 4:  # give the CRC a chance to pass so frames get decoded
        buf = buf[:-4] + pure.crc32c(buf[:-4]).to_bytes(4, "big")
    if len(buf) > 1 + len(dcid):
        buf = bytes([0x40 | buf[0] & 0x3F]) + dcid + buf[1 + len(dcid):]
    results = [_open_outcome(codec, buf, dcid, crc) for codec in (pure, native)]
    assert results[0] == results[1]
    if results[0][0] == "error":
        assert issubclass(results[0][1], WireError)


@given(packet_args(), st.integers(0, 400), st.integers(0, 255))
def test_open_native_matches_pure_on_damaged_packets(
    args: dict[str, Any], index: int, value: int
) -> None:
    packet = bytearray(_seal(pure, args))
    if packet:
        packet[index % len(packet)] = value
    if args["crc"]:  # re-seal so the damage reaches the frame decoder
        packet[-4:] = pure.crc32c(bytes(packet[:-4])).to_bytes(4, "big")
    results = [_open_outcome(codec, bytes(packet), args["dcid"], args["crc"])
               for codec in (pure, native)]
    assert results[0] == results[1]
    if results[0][0] == "error":
        assert issubclass(results[0][1], WireError)


def test_fast_paths_are_exported() -> None:
    assert wire.seal_stream_packet is wire.codec.seal_stream_packet
    assert wire.open_short_packet is wire.codec.open_short_packet
