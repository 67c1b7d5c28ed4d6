"""Bulk data packets as the send fast path writes them: STREAM without Length.

Round trips with hypothesis, native against pure on both sides: a run sealed
by ``seal_stream_run`` (C) equals the pure twin's byte for byte, whatever the
DCID length (0 included), offsets, packet-number lengths and room; opened by
``open_stream_run`` (C and pure) it gives back every slice of data at its
offset, each packet holding one STREAM frame with OFF and without LEN, and
every full packet filling exactly ``1 + DCID + 4 + frame_room + trailer``
bytes (the room a 4-byte packet number would take goes to data). The scapy
dissector shows the LEN-less frame of a sealed packet, after an ACK too, with
8-byte and zero-length DCIDs.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
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
from transport.wire import codec_pure

pytestmark = pytest.mark.skipif(not NATIVE_AVAILABLE, reason="needs the native backend")

_SECRET = random.Random(5).randbytes(32)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["crc", "aes128gcm"]),
    dcid=st.binary(max_size=20),
    pn0=st.integers(0, 1 << 40),
    behind=st.integers(1, 1 << 24),
    stream_id=st.integers(0, (1 << 62) - 1),
    offset=st.one_of(st.integers(0, 1 << 20), st.integers(0, (1 << 62) - (1 << 20))),
    size=st.integers(0, 12_000),
    frame_room=st.integers(20, 1500),
    fin=st.booleans(),
)
def test_run_round_trip_native_equals_pure(kind: str, dcid: bytes, pn0: int, behind: int,
                                           stream_id: int, offset: int, size: int,
                                           frame_room: int, fin: bool) -> None:
    def keys() -> tuple[Any, Any]:
        if kind == "crc":
            return None, None
        return (PacketProtection(_SECRET, kind, native=True),
                PacketProtection(_SECRET, kind, native=False))

    largest_acked = max(pn0 - behind, -1)
    data = random.Random(size).randbytes(size)
    seal_c, seal_p = keys()
    out_c, out_p = bytearray(65536), bytearray(65536)
    got = seal_stream_run(seal_c, out_c, dcid, pn0, largest_acked, stream_id, offset, data,
                          frame_room, fin, False, 40)
    want = seal_stream_run_pure(seal_p, out_p, dcid, pn0, largest_acked, stream_id, offset,
                                data, frame_room, fin, False, 40)
    assert got == want
    end = sum(wire for wire, _ in want)
    assert out_c[:end] == out_p[:end]
    trailer = 4 if kind == "crc" else 16
    packets, pos = [], 0
    for i, (wire, _length) in enumerate(want):
        packets.append(bytes(out_p[pos : pos + wire]))
        pos += wire
        if i < len(want) - 1:
            assert wire == 1 + len(dcid) + 4 + frame_room + trailer
    open_c, open_p = keys()
    opened = open_stream_run(open_c, packets, dcid, pn0)
    assert opened == open_stream_run_pure(open_p, packets, dcid, pn0)
    assert len(opened) == len(packets)
    done = 0
    for i, ((pn, sid, off, body, last), (_wire, length)) in enumerate(zip(opened, want,
                                                                           strict=True)):
        assert (pn, sid, off, len(body)) == (pn0 + i, stream_id, offset + done, length)
        assert body == data[done : done + length]
        done += length
        assert last == (fin and done == size)
    if kind == "crc":  # plaintext: the frame type is readable
        for packet in packets:
            decoder = codec_pure.FrameDecoder()
            _first, _pn, _len, count = codec_pure.open_short_packet(packet, dcid, decoder)
            assert count == 1 and decoder.frames[0].type & 0x06 == 0x04  # OFF, no LEN


@pytest.mark.parametrize("cid_length", [8, 0])
@pytest.mark.parametrize("ack", [None, [90, 100]])
def test_dissector_shows_the_lenless_stream_frame(cid_length: int, ack: list[int] | None) -> None:
    pytest.importorskip("scapy")
    from transport import dissect as d

    dcid = bytes(range(1, cid_length + 1))
    body = b"bulk data to the end of the payload" * 20
    out = bytearray(1472)
    n = codec_pure.seal_stream_packet(out, dcid, 300, 2, ack, 3, 4, 70_000, body, True, True)
    d.bind(port=4433, short_cid_length=cid_length)
    try:
        pkt = d.ShortHeaderPacket(bytes(out[:n]))
    finally:
        d.unbind()
    assert pkt.dcid == dcid and pkt.pn_length == 2
    stream = pkt.frames[-1]
    assert len(pkt.frames) == (1 if ack is None else 2)
    assert isinstance(stream, d.StreamFrame)
    assert stream.frame_type == 0x0D  # OFF | FIN, no LEN
    assert (stream.stream_id, stream.offset, stream.data) == (4, 70_000, body)
    assert stream.getfieldval("length") is None


@pytest.mark.parametrize("unacked", [1, 127, 128, 129, 32768, 32769, 8388608, 8388609])
def test_run_packet_number_length_is_the_shortest_allowed(unacked: int) -> None:
    """Each packet of a run uses ``packet_number_length`` (RFC 9000 A.2: the
    smallest b with 2 * unacked <= 2^(8b)), in C and in the twin."""
    from transport.wire import packet_number_length

    pn0 = 10_000_000
    largest = pn0 - unacked
    for seal in (seal_stream_run, seal_stream_run_pure):
        out = bytearray(65536)
        run = seal(None, out, b"\x07" * 8, pn0, largest, 0, 0, bytes(5000), 1300, False,
                   False, 3)
        pos = 0
        for i, (wire, _length) in enumerate(run):
            assert (out[pos] & 3) + 1 == packet_number_length(pn0 + i, largest)
            pos += wire
        assert len(run) == 3
