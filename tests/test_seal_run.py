"""The run functions of transport/crypto/packet_runs.py against their pure twins.

``seal_stream_run`` (one C call for a run of STREAM packets, csrc/aead.c
``tp_seal_stream_run``) against ``seal_stream_run_pure``, and the twin against
packet-at-a-time sealing: same packets byte for byte (CRC32C and both AEADs),
same (size, data bytes) records, same error class; every packet of a run must
decode to the STREAM frame the twin says it carries. ``open_stream_run``
(``tp_open_stream_run``) against ``open_stream_run_pure`` on clean runs and on
runs broken by every kind of packet that must end them.
"""

from __future__ import annotations

import random

import pytest

from transport.crypto.aead import PacketProtection
from transport.crypto.packet_aead import NATIVE_AVAILABLE
from transport.crypto.packet_runs import seal_stream_run, seal_stream_run_pure
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
            assert frame.type & 0x06 == 0x04  # OFF, no LEN: the data runs to the end
            assert packet[frame.data_off : frame.data_off + length] == data[done : done + length]
            assert bool(frame.type & 1) == (fin and done + length == size)
            assert truncated == (pn0 + i) & ((1 << (8 * pn_len)) - 1)
        if i < len(want) - 1:  # not the run's last: a full packet fills the datagram,
            # whatever its packet-number length (frame_room assumes 4 bytes)
            assert wire == 1 + len(DCID) + 4 + room + (4 if pure is None else 16)
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


# ------------------------------------------------------- open_stream_run ----
def _packets(kind: str, count: int, pn0: int = 10) -> tuple[list[bytes], PacketProtection | None,
                                                             PacketProtection | None]:
    """``count`` sealed bulk packets (pns from pn0) and the two receive keys."""
    native, pure = _protections(kind, 11)
    sender, _ = _protections(kind, 11)
    out = bytearray(65536)
    data = random.Random(count).randbytes(1200 * count)
    run = seal_stream_run_pure(sender, out, DCID, pn0, pn0 - 1, 4, 5000, data, 1300, True,
                               False, count)
    packets, pos = [], 0
    for wire, _ in run:
        packets.append(bytes(out[pos : pos + wire]))
        pos += wire
    return packets, native, pure


def _with_ack(kind: str, pn: int) -> bytes:
    """A packet carrying an ACK and a STREAM frame (two frames: not a bulk one)."""
    from transport.crypto.packet_aead import seal_stream_packet_pure

    _, sender = _protections(kind, 11)
    out = bytearray(2000)
    if sender is None:
        n = codec_pure.seal_stream_packet(out, DCID, pn, 2, [0, 3], 0, 4, 99, b"x" * 50,
                                          False, True)
    else:
        n = seal_stream_packet_pure(sender, out, DCID, pn, 2, [0, 3], 0, 4, 99, b"x" * 50,
                                    False)
    return bytes(out[:n])


def _flip(packet: bytes, index: int, mask: int) -> bytes:
    return packet[:index] + bytes([packet[index] ^ mask]) + packet[index + 1 :]


@pytest.mark.parametrize("kind", ["crc", "aes128gcm", "chacha20"])
@pytest.mark.parametrize("variant", ["clean", "ack_inside", "corrupt", "reorder", "reserved",
                                     "phase", "foreign", "out_full", "late_start"])
def test_open_run_equals_twin(kind: str, variant: str) -> None:
    from transport.crypto.packet_runs import open_stream_run, open_stream_run_pure

    packets, native, pure = _packets(kind, 9)
    expected, out_bytes = 10, 1 << 17
    if variant == "ack_inside":
        packets.insert(4, _with_ack(kind, 14))
    elif variant == "corrupt":
        packets[5] = _flip(packets[5], 200, 0x01)
    elif variant == "reorder":
        packets[3], packets[4] = packets[4], packets[3]
    elif variant == "reserved":
        packets[2] = _flip(packets[2], 0, 0x08)
    elif variant == "phase":
        packets[6] = _flip(packets[6], 0, 0x04)
    elif variant == "foreign":
        packets[1] = _flip(packets[1], 3, 0xFF)
    elif variant == "out_full":
        out_bytes = 3 * 1300
    elif variant == "late_start":
        expected = 12  # the first two are below the expected number
    got = open_stream_run(native, packets, DCID, expected, out_bytes)
    want = open_stream_run_pure(pure, packets, DCID, expected, out_bytes)
    assert got == want
    stops = {"clean": 9, "ack_inside": 4, "corrupt": 5, "reorder": 4, "phase": 6,
             "foreign": 1, "out_full": 3, "late_start": 0}
    if variant == "reserved":
        # (with AEAD the flipped bit is authenticated: the packet fails to open)
        assert len(want) == 2
    else:
        assert len(want) == stops[variant]
    if variant == "reorder":  # the later packet is taken (a gap), the earlier one is not
        assert [item[0] for item in want] == [10, 11, 12, 14]
        return
    offset = 5000
    for i, (pn, sid, off, body, fin) in enumerate(want):
        assert (pn, sid, off) == (10 + i, 4, offset)
        assert fin == (i == 8)
        offset += len(body)
