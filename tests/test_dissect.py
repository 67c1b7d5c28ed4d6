"""The scapy dissector agrees byte for byte with the reference codec (codec_pure),
reads codec-built packets back into the right fields, survives a pcap round trip
over its bound UDP port, and crafts malformed packets the codec must reject."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("scapy")

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw
from scapy.utils import rdpcap, wrpcap

from transport import dissect as d
from transport.errors import (
    FieldValueError,
    TruncatedError,
    UnknownFrameError,
    WireError,
)
from transport.wire import codec_pure as codec
from transport.wire.constants import (
    CRC_LENGTH,
    MAX_VARINT,
    PACKET_TYPE_SHORT,
    PACKET_TYPE_VERSION_NEGOTIATION,
    VERSION_1,
    FrameType,
    PacketType,
)

PORT = 4433
ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
TOKEN16 = bytes(range(16))


@pytest.fixture(autouse=True)
def bound() -> Iterator[None]:
    d.bind(port=PORT, short_cid_length=8)
    yield
    d.unbind()


# --------------------------------------------------------------- helpers ---
def encode(specs: list[tuple[Any, ...]]) -> bytes:
    out = bytearray(4096)
    end = codec.encode_frames(specs, out, 0, len(out))
    return bytes(out[:end])


def with_crc(packet: bytes) -> bytes:
    return packet + codec.crc32c(packet).to_bytes(CRC_LENGTH, "big")


def codec_long(packet_type: int, dcid: bytes, scid: bytes, token: bytes, pn: int,
               pn_length: int, frames: bytes) -> bytes:
    out = bytearray(4096)
    length = pn_length + len(frames) + CRC_LENGTH
    pos = codec.encode_long_header(
        out, 0, packet_type, VERSION_1, dcid, scid, token, pn, pn_length, length
    )
    return with_crc(bytes(out[:pos]) + frames)


def codec_short(dcid: bytes, pn: int, pn_length: int, frames: bytes, key_phase: int = 0,
                spin: int = 0) -> bytes:
    out = bytearray(64)
    pos = codec.encode_short_header(out, 0, dcid, pn, pn_length, key_phase, spin)
    return with_crc(bytes(out[:pos]) + frames)


# Each pair: a dissector frame, and the codec spec in the form decode_frames returns.
FRAMES: list[tuple[Any, tuple[Any, ...]]] = [
    (d.PaddingFrame(run_length=7), (0x00, 7, 0, 0, 0, None)),
    (d.PingFrame(), (0x01, 0, 0, 0, 0, None)),
    (
        d.AckFrame(largest=100, ack_delay=25, first_range=2,
                   ranges=[d.AckRange(gap=1, length=3), d.AckRange(gap=0, length=0)]),
        (0x02, 100, 25, 0, 0, (98, 100, 92, 95, 90, 90)),
    ),
    (
        d.AckFrame(frame_type=0x03, largest=70000, ack_delay=1, first_range=0,
                   ect0=5, ect1=6, ce=7),
        (0x03, 70000, 1, 0, 0, (70000, 70000, 5, 6, 7)),
    ),
    (d.ResetStreamFrame(stream_id=4, error_code=9, final_size=1 << 20),
     (0x04, 4, 9, 1 << 20, 0, None)),
    (d.StopSendingFrame(stream_id=3, error_code=300), (0x05, 3, 300, 0, 0, None)),
    (d.CryptoFrame(offset=1000, data=b"noise message"), (0x06, 1000, 0, 0, 0, b"noise message")),
    (d.NewTokenFrame(token=b"tok" * 30), (0x07, 0, 0, 0, 0, b"tok" * 30)),
    (d.StreamFrame(frame_type=0x0A, stream_id=8, data=b"abc"), (0x0A, 8, 0, 0, 0, b"abc")),
    (d.StreamFrame(frame_type=0x0F, stream_id=1 << 40, offset=1 << 33, data=b"xyz"),
     (0x0F, 1 << 40, 1 << 33, 0, 0, b"xyz")),
    (d.StreamFrame(frame_type=0x0E, stream_id=0, offset=0, data=b""), (0x0E, 0, 0, 0, 0, b"")),
    (d.MaxDataFrame(maximum=MAX_VARINT), (0x10, MAX_VARINT, 0, 0, 0, None)),
    (d.MaxStreamDataFrame(stream_id=2, maximum=65536), (0x11, 2, 65536, 0, 0, None)),
    (d.MaxStreamsFrame(maximum=100), (0x12, 100, 0, 0, 0, None)),
    (d.MaxStreamsFrame(frame_type=0x13, maximum=1 << 60), (0x13, 1 << 60, 0, 0, 0, None)),
    (d.DataBlockedFrame(limit=16383), (0x14, 16383, 0, 0, 0, None)),
    (d.StreamDataBlockedFrame(stream_id=6, limit=16384), (0x15, 6, 16384, 0, 0, None)),
    (d.StreamsBlockedFrame(limit=63), (0x16, 63, 0, 0, 0, None)),
    (d.StreamsBlockedFrame(frame_type=0x17, limit=64), (0x17, 64, 0, 0, 0, None)),
    (
        d.NewConnectionIdFrame(sequence=3, retire_prior_to=1, cid=b"\xaa" * 8,
                               stateless_reset_token=TOKEN16),
        (0x18, 3, 1, 8, 0, b"\xaa" * 8 + TOKEN16),
    ),
    (d.RetireConnectionIdFrame(sequence=2), (0x19, 2, 0, 0, 0, None)),
    (d.PathChallengeFrame(data=b"12345678"), (0x1A, 0, 0, 0, 0, b"12345678")),
    (d.PathResponseFrame(data=b"87654321"), (0x1B, 0, 0, 0, 0, b"87654321")),
    (d.ConnectionCloseFrame(error_code=0x07, offending_frame_type=0x08, reason=b"bad"),
     (0x1C, 0x07, 0x08, 0, 0, b"bad")),
    (d.ApplicationCloseFrame(error_code=42, reason=b"bye"), (0x1D, 42, 0, 0, 0, b"bye")),
    (d.HandshakeDoneFrame(), (0x1E, 0, 0, 0, 0, None)),
    (d.AckFrequencyFrame(sequence=1, ack_eliciting_threshold=10, max_ack_delay_us=25000),
     (0x20, 1, 10, 25000, 0, None)),
    (d.FecSourceFrame(block_id=77, index=9), (0x21, 77, 9, 0, 0, None)),
    (d.RepairFrame(block_id=77, k=10, m=4, repair_index=3, symbol=b"\x5a" * 40),
     (0x22, 77, 10, 4, 3, b"\x5a" * 40)),
    (d.FecRecoveredFrame(largest=50, first_range=0, ranges=[d.AckRange(gap=3, length=1)]),
     (0x23, 50, 0, 0, 0, (50, 50, 44, 45))),
    (d.DatagramFrame(frame_type=0x31, data=b"unreliable"), (0x31, 0, 0, 0, 0, b"unreliable")),
    (d.DatagramFrame(frame_type=0x30, data=b"to the end"), (0x30, 0, 0, 0, 0, b"to the end")),
    (d.StreamCompactFrame(frame_type=0x3B, truncated_offset=0xABCDEF, data=b"compact"),
     (0x3B, 1, 0xABCDEF, 0, 0, b"compact")),
    (d.StreamCompactFrame(frame_type=0x38, truncated_offset=0, data=b""), (0x38, 0, 0, 0, 0, b"")),
]
IDS = [f"{spec[0]:#04x}" for _, spec in FRAMES]


def norm(frames: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """decode_frames output with bodies as bytes / tuples, for comparison."""
    out = []
    for f in frames:
        body = f[5]
        if body is not None and not isinstance(body, bytes | bytearray | memoryview):
            body = tuple(body)
        elif body is not None:
            body = bytes(body)
        out.append((*f[:5], body))
    return out


# ------------------------------------------------------ frames vs codec ---
def test_every_frame_type_is_covered() -> None:
    covered = {spec[0] for _, spec in FRAMES}
    for t in FrameType:
        if t == FrameType.STREAM:
            continue
        assert int(t) in covered, t.name
    assert any(0x08 <= t <= 0x0F for t in covered)


@pytest.mark.parametrize(("frame", "spec"), FRAMES, ids=IDS)
def test_frame_bytes_equal_codec(frame: Any, spec: tuple[Any, ...]) -> None:
    assert raw(frame) == encode([spec])


@pytest.mark.parametrize(("frame", "spec"), FRAMES, ids=IDS)
def test_codec_decodes_dissector_frame(frame: Any, spec: tuple[Any, ...]) -> None:
    assert norm(codec.decode_frames(raw(frame))) == [spec]


@pytest.mark.parametrize(("frame", "spec"), FRAMES, ids=IDS)
def test_dissector_reads_codec_frame(frame: Any, spec: tuple[Any, ...]) -> None:
    data = encode([spec])
    parsed = d.ShortHeaderPacket(codec_short(b"C" * 8, 1, 1, data)).frames
    assert len(parsed) == 1
    assert type(parsed[0]) is type(frame)
    assert parsed[0].frame_type == spec[0]
    assert raw(parsed[0]) == data
    for name in ("stream_id", "offset", "largest", "maximum", "limit", "sequence"):
        if name in frame.fields:
            assert parsed[0].getfieldval(name) == frame.getfieldval(name), name


def test_dissector_fields_of_codec_frames() -> None:
    data = encode([
        (0x0F, 4, 1000, 0, 0, b"xyz"),
        (0x02, 100, 25, 0, 0, (98, 100, 92, 95)),
        (0x22, 5, 10, 4, 3, b"sym"),
        (0x18, 3, 1, 4, 0, b"\x01\x02\x03\x04" + TOKEN16),
        (0x00, 20, 0, 0, 0, None),
    ])
    stream, ack, repair, ncid, pad = d.ShortHeaderPacket(codec_short(b"C" * 8, 9, 2, data)).frames
    assert (stream.stream_id, stream.offset, stream.length, stream.data) == (4, 1000, 3, b"xyz")
    assert (ack.largest, ack.ack_delay, ack.range_count, ack.first_range) == (100, 25, 1, 2)
    assert [(r.gap, r.length) for r in ack.ranges] == [(1, 3)]
    assert (repair.block_id, repair.k, repair.m, repair.repair_index) == (5, 10, 4, 3)
    assert repair.symbol == b"sym"
    assert (ncid.cid_length, ncid.cid, ncid.stateless_reset_token) == (4, b"\1\2\3\4", TOKEN16)
    assert pad.run_length == 20


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_VARINT))
def test_varint_field_matches_codec(value: int) -> None:
    frame = d.MaxDataFrame(maximum=value)
    assert raw(frame) == b"\x10" + codec.encode_varint(value)
    assert d.MaxDataFrame(raw(frame)).maximum == value


@settings(derandomize=True, max_examples=100, deadline=None)
@given(
    st.integers(min_value=0x08, max_value=0x0F),
    st.integers(min_value=0, max_value=1 << 40),
    st.integers(min_value=0, max_value=1 << 40),
    st.binary(max_size=300),
)
def test_stream_variants_match_codec(frame_type: int, stream_id: int, offset: int,
                                     data: bytes) -> None:
    if not frame_type & 0x04:
        offset = 0
    frame = d.StreamFrame(frame_type=frame_type, stream_id=stream_id, offset=offset, data=data)
    assert raw(frame) == encode([(frame_type, stream_id, offset, 0, 0, data)])


def test_crc32c_agrees() -> None:
    assert d.crc32c(b"123456789") == 0xE3069283 == codec.crc32c(b"123456789")
    assert d.crc32c(b"world", d.crc32c(b"hello ")) == codec.crc32c(b"hello world")


def test_varint_helper_non_minimal() -> None:
    assert d.varint(37) == codec.encode_varint(37)
    assert d.varint(37, 8) == bytes.fromhex("c000000000000025")
    assert codec.decode_varint(d.varint(37, 8), 0) == (37, 8)
    with pytest.raises(ValueError):
        d.varint(64, 1)


# ------------------------------------------------------- packets vs codec ---
def test_initial_equals_codec() -> None:
    frames = [d.CryptoFrame(offset=0, data=b"e" * 48), d.PaddingFrame(run_length=1100)]
    pkt = d.InitialPacket(dcid=b"D" * 8, scid=b"S" * 8, token=b"retry-token", pn=0,
                          pn_length=1, frames=frames)
    frame_bytes = b"".join(raw(f) for f in frames)
    expected = codec_long(PacketType.INITIAL, b"D" * 8, b"S" * 8, b"retry-token", 0, 1,
                          frame_bytes)
    assert raw(pkt) == expected
    header = codec.decode_header(expected, 8)
    assert header.packet_type == PacketType.INITIAL
    assert header.token == b"retry-token"
    assert header.packet_end == len(expected)
    assert header.pn_offset == len(expected) - CRC_LENGTH - len(frame_bytes) - 1


def test_handshake_equals_codec_and_pn_truncation() -> None:
    frames = [d.CryptoFrame(offset=5, data=b"m2"), d.AckFrame(largest=0x1234, first_range=1)]
    pkt = d.HandshakePacket(dcid=b"", scid=b"s" * 20, pn=0x123456, pn_length=2, frames=frames)
    frame_bytes = b"".join(raw(f) for f in frames)
    expected = codec_long(PacketType.HANDSHAKE, b"", b"s" * 20, b"", 0x123456, 2, frame_bytes)
    assert raw(pkt) == expected
    back = d.HandshakePacket(expected)
    assert back.pn == 0x3456  # only the low pn_length bytes travel
    assert back.length == 2 + len(frame_bytes) + CRC_LENGTH
    assert back.crc == codec.crc32c(expected[:-CRC_LENGTH])


def test_short_header_equals_codec() -> None:
    frames = [d.StreamFrame(frame_type=0x0C, stream_id=4, offset=7, data=b"payload to the end")]
    pkt = d.ShortHeaderPacket(dcid=b"c" * 8, pn=0xABCDEF, pn_length=3, key_phase=1, spin=1,
                              frames=frames)
    expected = codec_short(b"c" * 8, 0xABCDEF, 3, raw(frames[0]), key_phase=1, spin=1)
    assert raw(pkt) == expected
    header = codec.decode_header(expected, 8)
    assert header.packet_type == PACKET_TYPE_SHORT
    assert (header.dcid, header.pn_offset, header.pn_length) == (b"c" * 8, 9, 3)
    back = d.ShortHeaderPacket(expected)
    assert (back.key_phase, back.spin, back.pn, back.crc) == (
        1, 1, 0xABCDEF, int.from_bytes(expected[-4:], "big"))
    assert back.frames[0].data == b"payload to the end"


def test_retry_and_version_negotiation_decode() -> None:
    retry = raw(d.RetryPacket(dcid=b"d" * 4, scid=b"s" * 8, token=b"opaque token",
                              integrity_tag=TOKEN16))
    out = bytearray(64)
    pos = codec.encode_long_header(out, 0, PacketType.RETRY, VERSION_1, b"d" * 4, b"s" * 8,
                                   b"opaque token", 0, 1, 0)
    assert retry == bytes(out[:pos]) + TOKEN16
    header = codec.decode_header(retry, 8)
    assert (header.token, header.integrity_tag) == (b"opaque token", TOKEN16)
    back = d.TransportPacket(retry)
    assert isinstance(back, d.RetryPacket)
    assert (back.token, back.integrity_tag) == (b"opaque token", TOKEN16)

    vn = raw(d.VersionNegotiationPacket(dcid=b"x" * 8, scid=b"y" * 8,
                                        versions=[VERSION_1, 0x1A2A3A4A]))
    header = codec.decode_header(vn, 8)
    assert header.packet_type == PACKET_TYPE_VERSION_NEGOTIATION
    assert header.versions == (VERSION_1, 0x1A2A3A4A)
    assert isinstance(d.TransportPacket(vn), d.VersionNegotiationPacket)


def test_unknown_version_keeps_invariants() -> None:
    pkt = raw(d.LongHeaderPacket(version=0x0A0A0A0A, dcid=b"a" * 3, scid=b"b", rest=b"??"))
    header = codec.decode_header(pkt, 8)
    assert (header.version, header.dcid, header.scid) == (0x0A0A0A0A, b"aaa", b"b")
    back = d.TransportPacket(pkt)
    assert isinstance(back, d.LongHeaderPacket)
    assert back.rest == b"??"


def test_stateless_reset_looks_like_short_header() -> None:
    reset = raw(d.StatelessReset(unpredictable_bits=0x15, unpredictable=b"\x33" * 20,
                                 token=TOKEN16))
    assert len(reset) >= 21
    assert reset[-16:] == TOKEN16
    assert reset[0] & 0xC0 == 0x40
    assert codec.decode_header(reset, 8).packet_type == PACKET_TYPE_SHORT


def test_fec_source_symbol_layout() -> None:
    frames = [d.FecSourceFrame(block_id=1, index=0), d.StreamFrame(stream_id=0, data=b"s")]
    symbol = raw(d.FecSourceSymbol(pn=513, frames=frames[1:], padding=bytes(5)))
    body = raw(frames[1])
    assert symbol == (513).to_bytes(8, "big") + len(body).to_bytes(2, "big") + body + bytes(5)


# ------------------------------------------------------------ pcap files ---
def test_pcap_round_trip(tmp_path: Any) -> None:
    d.bind(port=9999, short_cid_length=4)
    initial = d.InitialPacket(dcid=b"D" * 8, scid=b"S" * 4, pn=0, pn_length=1,
                              frames=[d.CryptoFrame(data=b"m1"), d.PaddingFrame(run_length=1170)])
    handshake = d.HandshakePacket(dcid=b"S" * 4, scid=b"T" * 4, pn=0, pn_length=1,
                                  frames=[d.CryptoFrame(data=b"m2")])
    server_initial = d.InitialPacket(dcid=b"S" * 4, scid=b"T" * 4, pn=0, pn_length=1,
                                     frames=[d.AckFrame(largest=0)])
    short = codec_short(b"T" * 4, 3, 1, encode([(0x0B, 0, 0, 0, 0, b"fin"), (0x01, 0, 0, 0, 0,
                                                                            None)]))
    datagrams = [
        ETHER / IP() / UDP(sport=50000, dport=9999) / initial,
        ETHER / IP() / UDP(sport=9999, dport=50000) / Raw(raw(server_initial) + raw(handshake)),
        ETHER / IP() / UDP(sport=50000, dport=9999) / Raw(short),
        ETHER / IP() / UDP(sport=50000, dport=4433) / Raw(short),  # old port: unbound
    ]
    assert len(raw(initial)) >= 1200
    path = tmp_path / "capture.pcap"
    wrpcap(str(path), datagrams)
    first, second, third, fourth = rdpcap(str(path))

    assert first[d.InitialPacket].frames[0].data == b"m1"
    assert first[d.InitialPacket].frames[1].run_length == 1170
    assert raw(first[UDP].payload) == raw(initial)
    # coalesced INITIAL + HANDSHAKE: the second is the payload of the first
    assert isinstance(second[UDP].payload, d.InitialPacket)
    assert second[d.InitialPacket].frames[0].largest == 0
    assert isinstance(second[UDP].payload.payload, d.HandshakePacket)
    assert second[UDP].payload.payload.frames[0].data == b"m2"
    short_pkt = third[d.ShortHeaderPacket]
    assert short_pkt.dcid == b"T" * 4
    assert [f.frame_type for f in short_pkt.frames] == [0x0B, 0x01]
    assert short_pkt.frames[0].data == b"fin"
    assert not fourth.haslayer(d.ShortHeaderPacket)


def test_protected_short_header_is_opaque() -> None:
    d.bind(port=PORT, short_cid_length=8, security="aead")
    blob = raw(d.ShortHeaderPacket(dcid=b"k" * 8, pn=1, pn_length=1)) + b"\x99" * 40
    back = d.ShortHeaderPacket(blob)
    assert back.protected_payload == b"\x99" * 40
    assert "frames" not in back.fields


# -------------------------------------------------------- malformed input ---
def frames_of(*frames: Any) -> bytes:
    return b"".join(raw(f) for f in frames)


MALFORMED: list[tuple[str, bytes, type[WireError]]] = [
    ("crypto length overruns", raw(d.CryptoFrame(length=50, data=b"short")), WireError),
    ("stream length overruns", raw(d.StreamFrame(frame_type=0x0A, length=9, data=b"x")),
     WireError),
    ("new token empty", raw(d.NewTokenFrame(token=b"")), FieldValueError),
    ("ncid cid length 0", raw(d.NewConnectionIdFrame(cid=b"", stateless_reset_token=TOKEN16)),
     FieldValueError),
    ("ncid cid length 21", raw(d.NewConnectionIdFrame(cid=b"c" * 21)), FieldValueError),
    ("ncid retire > sequence", raw(d.NewConnectionIdFrame(sequence=1, retire_prior_to=2,
                                                          cid=b"c" * 8)), FieldValueError),
    ("ack range below zero", raw(d.AckFrame(largest=5, first_range=6)), FieldValueError),
    ("ack gap below zero", raw(d.AckFrame(largest=5, first_range=1,
                                          ranges=[d.AckRange(gap=3, length=0)])),
     FieldValueError),
    ("ack range count lies", raw(d.AckFrame(largest=5, range_count=3)), TruncatedError),
    ("max streams over 2^60", raw(d.MaxStreamsFrame(maximum=(1 << 60) + 1)), FieldValueError),
    ("repair k = 0", raw(d.RepairFrame(k=0, m=1, symbol=b"s")), FieldValueError),
    ("repair index >= m", raw(d.RepairFrame(k=4, m=2, repair_index=2, symbol=b"s")),
     FieldValueError),
    ("stream offset + length > 2^62-1", raw(d.StreamFrame(frame_type=0x0E, offset=MAX_VARINT,
                                                           data=b"x")), FieldValueError),
    ("unknown frame type", raw(d.UnknownFrame(frame_type=0x37, data=b"??")), UnknownFrameError),
    ("compact STREAM without its offset", b"\x39\x01\x02", TruncatedError),
    ("unknown two-byte frame type", raw(d.UnknownFrame(frame_type=0x4000)), WireError),
    ("non-minimal frame type", d.varint(0x01, 2), FieldValueError),
    ("truncated varint", b"\x10\x80\x01", TruncatedError),
    ("path challenge short", raw(d.PathChallengeFrame())[:-3], TruncatedError),
    ("close reason overruns", raw(d.ConnectionCloseFrame(reason_length=10, reason=b"r")),
     WireError),
]


@pytest.mark.parametrize(("data", "error"), [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_codec_rejects_crafted_frames(data: bytes, error: type[WireError]) -> None:
    with pytest.raises(error):
        codec.decode_frames(data)
    with pytest.raises(error):
        codec.FrameDecoder().decode(data)


@pytest.mark.parametrize(("frame", "spec"), FRAMES, ids=IDS)
def test_every_truncation_is_a_wire_error(frame: Any, spec: tuple[Any, ...]) -> None:
    data = raw(frame)
    if spec[0] in (0x00, 0x30) or (0x08 <= spec[0] <= 0x0F and not spec[0] & 0x02):
        return  # these run to the end of the packet: any prefix is a valid frame
    # compact STREAM runs to the end too, once its 3-byte offset is there
    cuts = range(1, 4) if 0x38 <= spec[0] <= 0x3F else range(1, len(data))
    for cut in cuts:
        with pytest.raises(WireError):
            codec.decode_frames(data[:cut])


def test_codec_rejects_crafted_headers() -> None:
    good = d.InitialPacket(dcid=b"D" * 8, scid=b"S" * 8, pn=1, pn_length=1,
                           frames=[d.PingFrame()])
    broken: list[tuple[str, Any, type[Exception]]] = [
        ("dcid", b"D" * 21, FieldValueError),
        ("fixed_bit", 0, FieldValueError),
        ("length", 500, TruncatedError),
        ("length", 2, FieldValueError),  # no room for packet number + CRC
        ("token_len", 1000, TruncatedError),
    ]
    for field_name, value, error in broken:
        bad = good.copy()
        setattr(bad, field_name, value)
        with pytest.raises(error):
            codec.decode_header(raw(bad), 8)

    for cut in range(len(raw(good))):
        with pytest.raises(TruncatedError):
            codec.decode_header(raw(good)[:cut], 8)

    short = raw(d.ShortHeaderPacket(fixed_bit=0, dcid=b"c" * 8, pn=1, pn_length=1))
    with pytest.raises(FieldValueError):
        codec.decode_header(short, 8)

    vn_ragged = raw(d.VersionNegotiationPacket(dcid=b"", scid=b"", versions=[VERSION_1])) + b"\1"
    with pytest.raises(TruncatedError):
        codec.decode_header(vn_ragged, 8)


def test_dissector_survives_garbage() -> None:
    # Lying lengths and stray bytes are shown as they are instead of raising.
    pkt = d.ShortHeaderPacket(raw(d.ShortHeaderPacket(dcid=b"c" * 8, pn=1, pn_length=1,
                                                      frames=[d.CryptoFrame(length=99,
                                                                            data=b"x")])))
    assert (pkt.frames[0].length, pkt.frames[0].data) == (99, b"x")
    cut = d.ShortHeaderPacket(b"\x40" + b"c" * 8 + b"\x01" + b"\x10\x80\x01" + bytes(4))
    assert cut.frames[-1].haslayer(Raw)
    # A header too short for its own fields: via UDP it degrades to Raw, no exception.
    stub = UDP(raw(UDP(sport=1, dport=PORT) / Raw(b"\xc0\x00")))
    assert stub.haslayer(Raw)


def test_appendix_a_initial_of_the_wire_format_doc() -> None:
    pkt = d.InitialPacket(dcid=b"D" * 8, scid=b"S" * 4, pn=0, pn_length=1,
                          frames=[d.CryptoFrame(data=b"m1"), d.PaddingFrame(run_length=1170)])
    data = raw(pkt)
    assert len(data) == 1202
    assert data[:28].hex() == "c0545250010844444444444444440453535353" "00449c00" "0600026d31"
    assert data == codec_long(PacketType.INITIAL, b"D" * 8, b"S" * 4, b"", 0, 1,
                              frames_of(*pkt.frames))
