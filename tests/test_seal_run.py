"""``seal_stream_run`` (one C call for a run of STREAM packets, csrc/aead.c
``tp_seal_stream_run``) against its pure twin ``seal_stream_run_pure``, and the
twin against packet-at-a-time sealing.

Same inputs must give the same packets byte for byte (CRC32C and both AEADs),
the same (size, data bytes) records and the same error class; every packet of
a run must decode to the STREAM frame the twin says it carries.
"""

from __future__ import annotations

import random

import pytest

from transport.crypto.aead import PacketProtection
from transport.crypto.packet_aead import (
    NATIVE_AVAILABLE,
    seal_stream_run,
    seal_stream_run_pure,
)
from transport.errors import WireError
from transport.wire import FrameDecoder, codec_pure

pytestmark = pytest.mark.skipif(not NATIVE_AVAILABLE, reason="needs the native backend")

DCID = bytes.fromhex("0011223344556677")


def _protections(kind: str, seed: int) -> tuple[PacketProtection | None, PacketProtection | None]:
    if kind == "crc":
        return None, None
    secret = random.Random(seed).randbytes(32)
    return (PacketProtection(secret, kind, native=True),
            PacketProtection(secret, kind, native=False))


CASES = [
    # pn0, largest_acked, stream_id, offset, data_len, frame_room, fin, cut, max_packets, out
    (0, -1, 0, 0, 5000, 1363, False, False, 64, 65536),
    (5, 3, 4, 100, 1363 * 3, 1363, True, False, 64, 65536),
    (120, 0, 63, 16000, 20000, 1363, True, True, 64, 65536),  # pn length grows in the run
    (32760, 10, 16383, 2**30 - 3000, 9000, 1200, False, False, 5, 65536),  # offset varint 4 -> 8
    (2**40, 2**40 - 40000, 2**31, 7, 70000, 1400, True, False, 64, 65536),  # buffer runs out
    (1, 0, 8, 0, 100, 1363, True, False, 64, 65536),  # one short packet with FIN
    (1, 0, 8, 0, 100, 1363, True, True, 64, 65536),  # the same, cut: nothing
    (9, 2, 12, 50, 3000, 1363, False, False, 0, 65536),  # no packets wanted
    (9, 2, 12, 50, 3000, 1363, False, False, 3, 2000),  # room for one packet only
    (9, 2, 12, 50, 3000, 5, False, False, 3, 65536),  # frame room below the overhead
    (9, 2, 12, 50, 3000, 1363, False, False, 3, 100),  # no room at all
]


@pytest.mark.parametrize("kind", ["crc", "aes128gcm", "chacha20"])
@pytest.mark.parametrize("case", CASES)
def test_run_equals_twin(kind: str, case: tuple) -> None:
    pn0, largest, sid, offset, size, room, fin, cut, max_packets, out_len = case
    native, pure = _protections(kind, 5)
    data = random.Random(size).randbytes(size)
    out_c, out_p = bytearray(out_len), bytearray(out_len)
    got = seal_stream_run(native, out_c, DCID, pn0, largest, sid, offset, memoryview(data),
                          room, fin, cut, max_packets)
    want = seal_stream_run_pure(pure, out_p, DCID, pn0, largest, sid, offset, data, room, fin,
                                cut, max_packets)
    assert got == want
    end = sum(s for s, _ in want)
    assert out_c[:end] == out_p[:end]
    if native is not None and pure is not None:
        assert native.sealed_count == pure.sealed_count == len(want)
    # each packet carries the next slice of data at the next offset
    pos = done = 0
    for i, (wire, length) in enumerate(want):
        packet = bytes(out_p[pos : pos + wire])
        if pure is None:
            decoder = FrameDecoder()
            _first, truncated, pn_len, count = codec_pure.open_short_packet(packet, DCID, decoder)
            assert count == 1
            frame = decoder.frames[0]
            assert (frame.a, frame.b, frame.data_len) == (sid, offset + done, length)
            assert packet[frame.data_off : frame.data_off + length] == data[done : done + length]
            assert bool(frame.type & 1) == (fin and done + length == size)
            assert truncated == (pn0 + i) & ((1 << (8 * pn_len)) - 1)
        pos += wire
        done += length
    assert done <= size
    if want and not cut and done < size and len(want) < max_packets:
        assert out_len - pos < room + 1 + len(DCID) + 4 + 16  # stopped only for buffer room


@pytest.mark.parametrize("kind", ["crc", "aes128gcm"])
def test_run_equals_packets_one_at_a_time(kind: str) -> None:
    """The twin against the per-packet sealer the send loop used before runs."""
    from transport.crypto.packet_aead import seal_stream_packet_pure

    _, pure = _protections(kind, 9)
    _, single = _protections(kind, 9)
    data = random.Random(3).randbytes(6000)
    out = bytearray(65536)
    run = seal_stream_run_pure(pure, out, DCID, 200, 150, 4, 1000, data, 1363, True, False, 64)
    pos = done = 0
    for i, (wire, length) in enumerate(run):
        one = bytearray(65536)
        chunk = data[done : done + length]
        last = done + length == len(data)
        if single is None:
            n = codec_pure.seal_stream_packet(one, DCID, 200 + i, 1, None, 0, 4, 1000 + done,
                                              chunk, last, True)
        else:
            n = seal_stream_packet_pure(single, one, DCID, 200 + i, 1, None, 0, 4, 1000 + done,
                                        chunk, last)
        assert bytes(one[:n]) == bytes(out[pos : pos + wire])
        pos += wire
        done += length
    assert done == len(data)


@pytest.mark.parametrize("bad", [
    {"dcid": bytes(21)},
    {"offset": 2**62},
    {"room": 70000},
])
def test_run_rejects_the_same(bad: dict) -> None:
    dcid = bad.get("dcid", DCID)
    offset = bad.get("offset", 0)
    room = bad.get("room", 1363)
    errors = []
    for seal in (seal_stream_run, seal_stream_run_pure):
        with pytest.raises(WireError) as info:
            seal(None, bytearray(65536), dcid, 0, -1, 0, offset, b"x" * 3000, room, False,
                 False, 8)
        errors.append(type(info.value))
    assert errors[0] is errors[1]
