"""Compact STREAM frames (0x38..0x3f, docs/wire-format.md 10.25).

The offset rules (transport/wire/compact.py) against their C twins
(``tp_compact_offset``, ``tp_compact_ok``) and against the property they
exist for: every offset the sender compacts is rebuilt exactly by every
receiver reference between its lower and upper bound, and just outside the
window the sender refuses. Then the codec (both backends, byte for byte),
the seal / open run paths against their twins, and connections: bulk
packets are compact only when the peer announced COMPACT_STREAM, the data
arrives intact through the batch and per-packet receive paths, and a
malformed or unannounced compact frame closes with FRAME_ENCODING_ERROR.
"""

from __future__ import annotations

import random

import pytest
from helpers import CLIENT_ADDR, SERVER_ADDR, Pair, forge_short_packet, make_config
from hypothesis import given, settings
from hypothesis import strategies as st

from transport.crypto.aead import PacketProtection
from transport.crypto.packet_aead import NATIVE_AVAILABLE
from transport.crypto.packet_runs import (
    open_stream_run,
    open_stream_run_pure,
    seal_stream_run,
    seal_stream_run_pure,
)
from transport.errors import FieldValueError, RemoteProtocolError
from transport.events import ConnectionTerminated
from transport.params import TransportParameters
from transport.streams import compact_stream_offset
from transport.wire import FrameDecoder, codec_pure
from transport.wire.compact import compact_offset_ok, decode_compact_offset
from transport.wire.constants import (
    COMPACT_OFFSET_HALF,
    COMPACT_OFFSET_WINDOW,
    MAX_VARINT,
    SEAL_COMPACT,
    ErrorCode,
)

HALF = COMPACT_OFFSET_HALF
WINDOW = COMPACT_OFFSET_WINDOW
MASK = WINDOW - 1
DCID = bytes.fromhex("0011223344556677")

native_only = pytest.mark.skipif(not NATIVE_AVAILABLE, reason="needs the native backend")


def _lib():  # type: ignore[no-untyped-def]
    from transport.wire import codec_native

    return codec_native.lib


# ------------------------------------------------------------ the window ---
@settings(max_examples=400, deadline=None)
@given(
    low=st.integers(0, 1 << 40),
    below=st.integers(0, HALF - 1),
    above=st.integers(0, HALF - 1),
    d=st.data(),
)
def test_compacted_offsets_always_rebuild(
    low: int, below: int, above: int, d: st.DataObject
) -> None:
    """Random L <= r <= H and an offset meeting the sender's condition: every
    receiver reference in [L, H] rebuilds the offset exactly."""
    offset = max(0, low - below) if d.draw(st.booleans()) else low + above
    high = d.draw(st.integers(max(low, offset), offset + HALF - 1))
    assert compact_offset_ok(0, offset, low, high)
    for reference in (low, high, d.draw(st.integers(low, high))):
        assert decode_compact_offset(offset & MASK, reference) == offset


def test_just_outside_the_window_is_refused() -> None:
    low = 5 * WINDOW + 12345
    # H - offset = 2^23: a receiver already at H would rebuild offset + 2^24
    offset = low
    high = offset + HALF
    assert not compact_offset_ok(0, offset, low, high)
    assert decode_compact_offset(offset & MASK, high) == offset + WINDOW
    assert compact_offset_ok(0, offset, low, high - 1)
    # offset - L = 2^23 + 1: a receiver still at L would rebuild offset - 2^24
    offset = low + HALF + 1
    assert not compact_offset_ok(0, offset, low, offset)
    assert decode_compact_offset(offset & MASK, low) == offset - WINDOW
    assert compact_offset_ok(0, low + HALF - 1, low, low + HALF - 1)
    # (offset - L = 2^23 exactly still rebuilds at L; the sender keeps one byte spare)
    assert not compact_offset_ok(0, low + HALF, low, low + HALF)
    # stream IDs 4 and up have no compact type
    assert not compact_offset_ok(4, low, low, low)


def test_decode_boundaries() -> None:
    assert decode_compact_offset(0, 0) == 0
    assert decode_compact_offset(HALF, 0) == HALF  # (r - 2^23, r + 2^23]: r + 2^23 is in
    assert decode_compact_offset(HALF + 1, 0) == -1  # would be 2^23 + 1 - 2^24 < 0
    assert decode_compact_offset(MASK, WINDOW) == WINDOW - 1
    assert decode_compact_offset(MAX_VARINT & MASK, MAX_VARINT) == MAX_VARINT
    assert decode_compact_offset(0, MAX_VARINT + 1) == -1
    with pytest.raises(RemoteProtocolError) as info:
        compact_stream_offset(HALF + 1, 10, 0)
    assert info.value.error_code == ErrorCode.FRAME_ENCODING_ERROR
    with pytest.raises(RemoteProtocolError):  # data would end beyond 2^62 - 1
        compact_stream_offset(MAX_VARINT & MASK, 1, MAX_VARINT)
    assert compact_stream_offset(MAX_VARINT & MASK, 0, MAX_VARINT) == MAX_VARINT


@native_only
@settings(max_examples=400, deadline=None)
@given(
    truncated=st.integers(0, MASK),
    reference=st.one_of(st.integers(0, MAX_VARINT + 5),
                        st.sampled_from([0, HALF - 1, HALF, HALF + 1, WINDOW, MAX_VARINT])),
)
def test_c_decode_equals_twin(truncated: int, reference: int) -> None:
    assert _lib().tp_compact_offset(truncated, reference) == decode_compact_offset(
        truncated, reference)


@native_only
@settings(max_examples=400, deadline=None)
@given(
    stream_id=st.integers(0, 6),
    low=st.integers(0, 1 << 40),
    d_offset=st.integers(-(HALF + 2), HALF + 2),
    d_high=st.integers(-(HALF + 2), HALF + 2),
)
def test_c_ok_equals_twin(stream_id: int, low: int, d_offset: int, d_high: int) -> None:
    offset = max(0, low + d_offset)
    high = max(0, offset + d_high)
    assert bool(_lib().tp_compact_ok(stream_id, offset, low, high)) == compact_offset_ok(
        stream_id, offset, low, high)


# ----------------------------------------------------------------- codec ---
def _backends() -> list:  # type: ignore[type-arg]
    mods = [codec_pure]
    if NATIVE_AVAILABLE:
        from transport.wire import codec_native

        mods.append(codec_native)
    return mods


@pytest.mark.parametrize("codec", _backends(), ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_codec_round_trip_and_rejections(codec) -> None:  # type: ignore[no-untyped-def]
    out = bytearray(64)
    end = codec.encode_frames([(0x3D, 2, 0xA1B2C3, 0, 0, b"tail")], out, 0)
    assert bytes(out[:end]) == bytes.fromhex("3da1b2c3") + b"tail"
    assert codec.decode_frames(out, 0, end) == [(0x3D, 2, 0xA1B2C3, 0, 0, b"tail")]
    for bad in [(0x3D, 1, 0, 0, 0, b""), (0x38, 0, WINDOW, 0, 0, b""),
                (0x38, 0, 0, MAX_VARINT, 0, b"x")]:
        with pytest.raises(FieldValueError):
            codec.encode_frames([bad], out, 0)
    with pytest.raises(FieldValueError):  # runs to the end: must be the last frame
        codec.encode_frames([(0x38, 0, 1, 0, 0, b"x"), (0x01, 0, 0, 0, 0, None)], out, 0)


@native_only
@settings(max_examples=150, deadline=None)
@given(
    stream_id=st.integers(0, 5),
    offset=st.one_of(st.integers(0, 1 << 40), st.just(MAX_VARINT - 3)),
    data=st.binary(max_size=40),
    fin=st.booleans(),
    ack=st.one_of(st.none(), st.just([3, 9]), st.just([3, 9, 1, 2, 3])),
    crc=st.booleans(),
    room=st.integers(10, 90),
)
def test_seal_packet_compact_equals_twin(stream_id: int, offset: int, data: bytes, fin: bool,
                                         ack: list[int] | None, crc: bool, room: int) -> None:
    from transport.wire import codec_native

    flags = SEAL_COMPACT | int(fin)
    results = []
    for codec in (codec_pure, codec_native):
        out = bytearray(room)
        try:
            n = codec.seal_stream_packet(out, DCID, 7, 2, ack, 0, stream_id, offset, data,
                                         flags, crc)
            results.append(bytes(out[:n]))
        except Exception as exc:
            results.append(type(exc))
    assert results[0] == results[1]
    if isinstance(results[0], bytes) and crc:
        decoder = codec_pure.FrameDecoder()
        _f, _pn, _len, count = codec_pure.open_short_packet(results[0], DCID, decoder)
        frame = decoder.frames[count - 1]
        assert frame.type == 0x38 | stream_id << 1 | int(fin)
        assert (frame.a, frame.b, frame.data_len) == (stream_id, offset & MASK, len(data))


# ------------------------------------------------------------------ runs ---
def _protections(kind: str) -> tuple[PacketProtection | None, PacketProtection | None]:
    if kind == "crc":
        return None, None
    secret = random.Random(3).randbytes(32)
    return (PacketProtection(secret, kind, native=True),
            PacketProtection(secret, kind, native=False))


RUN_CASES = [
    # stream_id, offset, compact_low, compact_high, size: the window's edge inside the run
    (0, 5000, 0, 5000, 20000),
    (1, HALF - 4000, 0, HALF - 4000, 9000),  # crosses offset - low = 2^23: ordinary after
    (2, 3 * WINDOW, 3 * WINDOW - 10, 3 * WINDOW + HALF + 100, 6000),  # high too far: ordinary
    (3, 2**30 - 3000, 2**30 - 3000, 2**30 - 3000, 9000),
    (4, 100, 0, 100, 5000),  # stream 4: never compact
]


@native_only
@pytest.mark.parametrize("kind", ["crc", "aes128gcm", "chacha20"])
@pytest.mark.parametrize("case", RUN_CASES)
def test_seal_run_compact_equals_twin(kind: str, case: tuple) -> None:  # type: ignore[type-arg]
    sid, offset, low, high, size = case
    native, pure = _protections(kind)
    data = random.Random(size).randbytes(size)
    out_c, out_p = bytearray(65536), bytearray(65536)
    args = (DCID, 40, 30, sid, offset)
    flags = SEAL_COMPACT | 1
    got = seal_stream_run(native, out_c, *args, memoryview(data), 1363, flags, False, 64,
                          low, high)
    want = seal_stream_run_pure(pure, out_p, *args, data, 1363, flags, False, 64, low, high)
    assert got == want
    end = sum(s for s, _ in want)
    assert out_c[:end] == out_p[:end]
    assert sum(n for _, n in want) == size
    if pure is not None:
        return
    # every packet fills the datagram; compact exactly where the rule allows
    pos = done = 0
    refs = [low] * 4
    for wire, length in want:
        packet = bytes(out_p[pos : pos + wire])
        decoder = FrameDecoder()
        codec_pure.open_short_packet(packet, DCID, decoder)
        frame = decoder.frames[0]
        at = offset + done
        compact = compact_offset_ok(sid, at, low, max(high, at))
        assert (0x38 <= frame.type <= 0x3F) == compact
        if compact:
            assert decode_compact_offset(frame.b, refs[sid]) == at
            refs[sid] = at + length
        else:
            assert frame.b == at
        if done + length < size:
            assert wire == 1 + len(DCID) + 1 + 1363 + 3 + 4  # full: room + 4 - pn length
        pos += wire
        done += length


@native_only
@pytest.mark.parametrize("kind", ["crc", "aes128gcm"])
def test_open_run_rebuilds_offsets_like_twin(kind: str) -> None:
    native, pure = _protections(kind)
    start = 7 * WINDOW - 3000  # the low 24 bits wrap inside the run
    data = random.Random(1).randbytes(30000)
    out = bytearray(65536)
    sealer = native if native is not None else None
    runs = seal_stream_run(sealer, out, DCID, 10, 9, 1, start, data, 1363, SEAL_COMPACT, False,
                           64, start, start)
    datagrams, pos = [], 0
    for wire, _ in runs:
        datagrams.append(bytes(out[pos : pos + wire]))
        pos += wire
    opener_c = None if native is None else PacketProtection(random.Random(3).randbytes(32), kind,
                                                            native=True)
    refs_c = [0, start, 0, 0]
    refs_p = [0, start, 0, 0]
    got = open_stream_run(opener_c, datagrams, DCID, 10, refs=refs_c)
    want = open_stream_run_pure(pure, datagrams, DCID, 10, refs=refs_p)
    assert got == want and refs_c == refs_p == [0, start + len(data), 0, 0]
    assert [o for _, _, o, _, _ in want][:2] == [start, start + len(want[0][3])]
    assert b"".join(d for _, _, _, d, _ in want) == data
    # without refs (compact not accepted) a compact frame ends the run at once
    assert open_stream_run(opener_c, datagrams, DCID, 10) == []
    assert open_stream_run_pure(pure, datagrams, DCID, 10) == []
    # a reference 2^24 behind: the second packet onwards would rebuild wrong, so
    # the first rebuilds against the stale reference, the C and pure runs agree
    refs_c, refs_p = [0, 0, 0, 0], [0, 0, 0, 0]
    assert open_stream_run(opener_c, datagrams, DCID, 10, refs=refs_c) == open_stream_run_pure(
        pure, datagrams, DCID, 10, refs=refs_p)
    assert refs_c == refs_p


# ---------------------------------------------------------- connections ---
def test_parameter_round_trip() -> None:
    assert TransportParameters.decode(TransportParameters(compact_stream=True).encode()
                                      ).compact_stream
    assert not TransportParameters.decode(TransportParameters().encode()).compact_stream
    with pytest.raises(RemoteProtocolError) as info:
        TransportParameters.decode(bytes.fromhex("4043" "01" "00"))
    assert info.value.error_code == ErrorCode.TRANSPORT_PARAMETER_ERROR


class BatchPair(Pair):
    """A Pair that hands the datagrams arriving at one instant to each side as
    one ``receive_datagrams`` batch (the drivers' way: runs of bulk packets
    are opened in one C call)."""

    poll_each = False

    def _pop_due(self) -> list:  # type: ignore[override]
        groups: list[tuple[bool, list[bytes]]] = []
        for _at, _seq, to_server, data in super()._pop_due():
            if groups and groups[-1][0] == to_server:
                groups[-1][1].append(data)
            else:
                groups.append((to_server, [data]))
        return groups

    def _deliver(self, item: tuple[bool, list[bytes]]) -> None:  # type: ignore[override]
        to_server, datagrams = item
        if to_server:
            self.server.receive_datagrams(datagrams, CLIENT_ADDR, self.now)
        else:
            self.client.receive_datagrams(datagrams, SERVER_ADDR, self.now)


def _transfer(size: int, *, server_accepts: bool = True, batch: bool = False,
              seed: int = 1) -> tuple[Pair, list[bytes], bytes]:
    kind = BatchPair if batch else Pair
    pair = kind(make_config(seed),
                make_config(seed + 1, compact_stream_frames=server_accepts))
    pair.handshake()
    start = len(pair.sent)
    payload = random.Random(seed).randbytes(size)
    sid = pair.client.open_stream()
    assert sid == 0
    sent = 0
    got = bytearray()
    finished = False

    def step() -> bool:
        nonlocal sent, finished
        if sent < size:
            sent += pair.client.send_stream_data(sid, payload[sent:], end_stream=True)
        while not finished:
            try:
                chunk, finished = pair.server.recv_stream_data(sid)
            except Exception:
                break
            got.extend(chunk)
            if not chunk:
                break
        return finished

    assert pair.run_until(step, pair.now + 60.0)
    assert bytes(got) == payload
    c2s = [d for _t, way, d in pair.sent[start:] if way == "c2s" and not d[0] & 0x80]
    return pair, c2s, payload


def _stream_frame_types(packets: list[bytes], dcid: bytes) -> list[int]:
    types = []
    for packet in packets:
        decoder = FrameDecoder()
        _f, _pn, _len, count = codec_pure.open_short_packet(packet, dcid, decoder)
        types += [f.type for f in decoder.frames[:count]
                  if 0x08 <= f.type <= 0x0F or 0x38 <= f.type <= 0x3F]
    return types


@pytest.mark.parametrize("batch", [False, True])
def test_bulk_packets_are_compact_when_the_peer_accepts(
    batch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    if NATIVE_AVAILABLE:
        from transport.crypto.packet_runs import StreamRunBuffers

        real = StreamRunBuffers.open_sizes

        def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            n = real(self, *args, **kwargs)
            runs.append(n)
            return n

        monkeypatch.setattr(StreamRunBuffers, "open_sizes", counted)
    pair, c2s, _ = _transfer(600_000, batch=batch)
    if batch and NATIVE_AVAILABLE:  # runs of compact bulk packets were opened in C
        assert sum(n for n in runs if n > 1) > 200
    assert pair.client.peer_params is not None and pair.client.peer_params.compact_stream
    types = _stream_frame_types(c2s, pair.server.local_cid)
    # (the generic path's frames stay ordinary: the stream's announcement)
    ordinary = [t for t in types if not 0x38 <= t <= 0x3F]
    assert len(ordinary) <= 2, ordinary
    assert set(types) - set(ordinary) == {0x38, 0x39}  # FIN on the last
    full = max(len(p) for p in c2s)
    bulk = [p for p in c2s if len(p) == full]
    assert len(bulk) > 300
    assert _stream_frame_types(bulk, pair.server.local_cid) == [0x38] * len(bulk)
    assert not pair.events_of("server", ConnectionTerminated)


def test_no_compact_frames_without_the_parameter() -> None:
    pair, c2s, _ = _transfer(300_000, server_accepts=False)
    assert pair.client.peer_params is not None and not pair.client.peer_params.compact_stream
    types = _stream_frame_types(c2s, pair.server.local_cid)
    assert types and all(0x08 <= t <= 0x0F for t in types)


def _forged(pair: Pair, frames: list[tuple]) -> None:  # type: ignore[type-arg]
    pair.drop_to_client = lambda data, now: True
    packet = forge_short_packet(pair.server.local_cid, 1_000, frames)
    pair.inject(packet, to_server=True)


@pytest.mark.parametrize("batch", [False, True])
def test_unannounced_compact_frame_is_frame_encoding_error(batch: bool) -> None:
    pair = Pair(make_config(5), make_config(6, compact_stream_frames=False))
    pair.handshake()
    assert pair.client.peer_params is not None and not pair.client.peer_params.compact_stream
    packet = forge_short_packet(pair.server.local_cid, 1_000, [(0x38, 0, 0, 0, 0, b"hi")])
    if batch:
        pair.server.receive_datagrams([packet, packet], ("10.0.0.1", 50000), pair.now)
    else:
        pair.server.receive_datagram(packet, ("10.0.0.1", 50000), pair.now)
    pair.poll()
    ends = pair.events_of("server", ConnectionTerminated)
    assert ends and ends[0].error_code == ErrorCode.FRAME_ENCODING_ERROR


@pytest.mark.parametrize("batch", [False, True])
def test_negative_rebuilt_offset_is_frame_encoding_error(batch: bool) -> None:
    pair = Pair(make_config(7), make_config(8))
    pair.handshake()
    # a new stream: reference 0, so a truncated offset above 2^23 rebuilds below 0
    frame = (0x38, 0, HALF + 5, 0, 0, b"xyz")
    packet = forge_short_packet(pair.server.local_cid, 1_000, [frame])
    if batch:
        packets = [packet, forge_short_packet(pair.server.local_cid, 1_001, [frame])]
        pair.server.receive_datagrams(packets, ("10.0.0.1", 50000), pair.now)
    else:
        pair.server.receive_datagram(packet, ("10.0.0.1", 50000), pair.now)
    pair.poll()
    ends = pair.events_of("server", ConnectionTerminated)
    assert ends and ends[0].error_code == ErrorCode.FRAME_ENCODING_ERROR


def test_compact_frame_opens_a_stream_and_rebuilds_against_it() -> None:
    pair = Pair(make_config(9), make_config(10))
    pair.handshake()
    cid = pair.server.local_cid
    pair.drop_to_client = lambda data, now: True
    pair.inject(forge_short_packet(cid, 1_000, [(0x38, 0, 0, 0, 0, b"abc")]), to_server=True)
    pair.inject(forge_short_packet(cid, 1_001, [(0x39, 0, 3, 0, 0, b"def")]), to_server=True)
    data, fin = pair.server.recv_stream_data(0)
    assert (data, fin) == (b"abcdef", True)
    assert not pair.events_of("server", ConnectionTerminated)


@native_only
@settings(max_examples=120, deadline=None)
@given(
    kind=st.sampled_from(["crc", "aes128gcm"]),
    dcid=st.binary(max_size=20),
    stream_id=st.integers(0, 5),
    offset=st.one_of(st.integers(0, 1 << 26), st.integers(0, 1 << 50)),
    back=st.integers(0, HALF + 3000),
    ahead=st.integers(0, HALF + 3000),
    size=st.integers(0, 9000),
    fin=st.booleans(),
    d=st.data(),
)
def test_compact_run_round_trip(kind: str, dcid: bytes, stream_id: int, offset: int, back: int,
                                ahead: int, size: int, fin: bool, d: st.DataObject) -> None:
    """Runs with the window edge anywhere: C equals the twin byte for byte, and
    a receiver whose reference lies anywhere in [low, high] gets every slice
    back at its offset (compact or not, per packet)."""
    low = max(0, offset - back)
    high = offset + ahead
    secret = random.Random(11).randbytes(32)

    def keys() -> tuple[PacketProtection | None, PacketProtection | None]:
        if kind == "crc":
            return None, None
        return (PacketProtection(secret, kind, native=True),
                PacketProtection(secret, kind, native=False))

    data = random.Random(size).randbytes(size)
    seal_c, seal_p = keys()
    out_c, out_p = bytearray(65536), bytearray(65536)
    flags = SEAL_COMPACT | int(fin)
    got = seal_stream_run(seal_c, out_c, dcid, 100, 90, stream_id, offset, data, 1300, flags,
                          False, 40, low, high)
    want = seal_stream_run_pure(seal_p, out_p, dcid, 100, 90, stream_id, offset, data, 1300,
                                flags, False, 40, low, high)
    assert got == want
    end = sum(wire for wire, _ in want)
    assert out_c[:end] == out_p[:end]
    packets, pos = [], 0
    for wire, _ in want:
        packets.append(bytes(out_p[pos : pos + wire]))
        pos += wire
    reference = d.draw(st.integers(low, high))
    refs_c = [reference] * 4
    refs_p = [reference] * 4
    open_c, open_p = keys()
    opened = open_stream_run(open_c, packets, dcid, 100, refs=refs_c)
    assert opened == open_stream_run_pure(open_p, packets, dcid, 100, refs=refs_p)
    assert refs_c == refs_p
    assert len(opened) == len(packets)
    done = 0
    for (_pn, sid, off, body, last), (_wire, length) in zip(opened, want, strict=True):
        assert (sid, off, body) == (stream_id, offset + done, data[done : done + length])
        done += length
        assert last == (fin and done == size)


def _late_pair(seed: int) -> Pair:
    big = {"initial_max_stream_data": 1 << 25, "initial_max_data": 1 << 25,
           "max_stream_window": 1 << 25, "max_connection_window": 1 << 25}
    pair = Pair(make_config(seed), make_config(seed + 1, **big))
    pair.handshake()
    pair.drop_to_client = lambda data, now: True
    return pair


def test_a_late_packet_rebuilds_against_the_data_before_it() -> None:
    """Reordered: pn 1001 raises the stream's highest offset first; pn 1000,
    one packet behind, still rebuilds exactly (the slack is one datagram)."""
    pair = _late_pair(21)
    cid = pair.server.local_cid
    data = random.Random(2).randbytes(1400)
    ordinary = (0x0E, 0, 700, 0, 0, data[700:])  # STREAM OFF|LEN
    compact = (0x38, 0, 0, 0, 0, data[:700])
    pair.inject(forge_short_packet(cid, 1_001, [ordinary]), to_server=True)
    pair.inject(forge_short_packet(cid, 1_000, [compact]), to_server=True)
    got = bytearray()
    while True:
        chunk, _fin = pair.server.recv_stream_data(0)
        if not chunk:
            break
        got += chunk
    assert bytes(got) == data
    assert pair.server.counters.datagrams_dropped_malformed == 0
    assert not pair.events_of("server", ConnectionTerminated)


def test_an_ambiguous_late_packet_is_dropped_unacknowledged() -> None:
    """A compact frame in a packet far behind the largest received one, whose
    offset rebuilds differently across the references the later packets'
    data allow: dropped (not acknowledged, so resent), not misplaced."""
    pair = _late_pair(23)
    cid = pair.server.local_cid
    # pn 2000 brings the stream's highest offset to 2^23 + 100
    pair.inject(forge_short_packet(cid, 2_000, [(0x0E, 0, HALF + 99, 0, 0, b"x")]),
                to_server=True)
    # pn 1000 (1000 packets behind: up to ~1.4 MB of that data may be newer than
    # it) with truncated offset 0: 0 or 2^24 depending on the reference
    before = pair.server.counters.datagrams_dropped_malformed
    pair.inject(forge_short_packet(cid, 1_000, [(0x38, 0, 0, 0, 0, b"y")]), to_server=True)
    assert pair.server.counters.datagrams_dropped_malformed == before + 1
    assert not pair.server._acks.is_duplicate(1_000)  # not recorded: it will come again
    assert not pair.events_of("server", ConnectionTerminated)
    # one packet behind instead: unambiguous (the reference is within two datagrams)
    pair.inject(forge_short_packet(cid, 1_999, [(0x38, 0, HALF + 50, 0, 0, b"z")]),
                to_server=True)
    assert pair.server.counters.datagrams_dropped_malformed == before + 1
    assert pair.server._acks.is_duplicate(1_999)
