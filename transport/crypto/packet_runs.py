"""Runs of 1-RTT STREAM packets in one C call each way (C and pure twins).

How this works
--------------
The bulk of a transfer is packets that each carry one STREAM frame of one
stream. Crossing into C once per *run* of them, not once per packet, is what
these functions are for:

* :func:`seal_stream_run` builds up to :data:`RUN_MAX_PACKETS` such packets
  back to back in one buffer (``csrc/aead.c`` ``tp_seal_stream_run``), sized as
  the packetizer's send loop sizes them, each ending in CRC32C
  (``security="none"``) or sealed with the AEAD.
* :func:`open_stream_run` / :class:`StreamRunBuffers` open and decode a batch
  of received datagrams (``tp_open_stream_run``) for as long as each is such a
  packet, in order; the frame data lands back to back in one buffer.

The ``*_pure`` functions are the reference behaviour, built from the
per-packet functions of :mod:`transport.crypto.packet_aead` and
:mod:`transport.wire.codec_pure`; tests/test_seal_run.py compares the C path
with them byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from transport.crypto.packet_aead import (
    RUN_MAX_PACKETS,
    _codec,
    open_short_packet_pure,
    seal_stream_packet_pure,
)
from transport.errors import DecryptionError, FieldValueError, RemoteProtocolError, WireError
from transport.wire import codec_pure as _pure
from transport.wire import decode_packet_number
from transport.wire.compact import compact_offset_ok, decode_compact_offset
from transport.wire.constants import (
    AEAD_TAG_LENGTH,
    COMPACT_FRAME_OVERHEAD,
    MAX_CID_LENGTH,
    MAX_VARINT,
    RESERVED_SHORT_MASK,
    SEAL_COMPACT,
    STREAM_COMPACT_MAX,
    STREAM_COMPACT_MIN,
)

if TYPE_CHECKING:
    from transport.crypto.aead import PacketProtection

__all__ = [
    "OPEN_RUN_DATA_BYTES",
    "OPEN_RUN_MAX_PACKETS",
    "RUN_MAX_PACKETS",
    "StreamRunBuffers",
    "open_stream_run",
    "open_stream_run_pure",
    "seal_stream_run",
    "seal_stream_run_pure",
]

_MASK64 = (1 << 64) - 1
_MAX_DATAGRAM = 65527


def _varint_len(value: int) -> int:
    return 1 if value < 64 else 2 if value < 16384 else 4 if value < 1 << 30 else 8


def _run_overhead(stream_id: int, offset: int) -> int:
    """STREAM frame header as the packetizer sizes it: type + varint(stream_id)
    + varint(offset) (no Length field: the frame is the packet's last)."""
    return 1 + _varint_len(stream_id) + _varint_len(offset)


def seal_stream_run_pure(
    protection: PacketProtection | None, out: bytearray, dcid: bytes, pn0: int,
    largest_acked: int, stream_id: int, offset: int, data: bytes | memoryview,
    frame_room: int, fin: bool | int, cut: bool, max_packets: int,
    compact_low: int = 0, compact_high: int = 0,
) -> list[tuple[int, int]]:
    """The reference of ``tp_seal_stream_run`` (csrc/aead.c): up to
    ``max_packets`` packets of ``stream_id`` carrying ``data`` (stream offsets
    from ``offset``), back to back from ``out[0]``; ``protection`` None means a
    CRC32C trailer (security="none"). Packet i has number ``pn0 + i`` and the
    packet-number length for ``pn0 + i - largest_acked`` unacknowledged;
    ``frame_room`` assumes a 4-byte packet number, so packet i has ``room =
    frame_room + 4 - pn_length``; its frame takes ``min(rest, room -
    overhead)`` bytes; FIN goes on the
    frame that ends ``data`` when ``fin``; with ``cut`` a packet that would be
    short is left out. ``fin`` bit 1 (``SEAL_COMPACT``: the peer accepts
    compact STREAM frames) makes a packet's frame compact (type + 3-byte
    offset) when ``compact_offset_ok(stream_id, its offset, compact_low,
    max(compact_high, its offset))``. Returns ``[(wire_size, data_bytes), ...]``."""
    if (
        len(dcid) > MAX_CID_LENGTH
        or frame_room > _MAX_DATAGRAM
        or not 0 <= offset <= MAX_VARINT
        or len(data) > MAX_VARINT - offset
    ):
        raise FieldValueError("stream run out of range")
    if protection is not None:
        max_packets = min(max_packets, protection.confidentiality_limit - protection.sealed_count)
        if max_packets <= 0:
            protection.check_seal_allowed()  # raises
    per_packet = 1 + len(dcid) + 4 + frame_room + AEAD_TAG_LENGTH
    total = len(data)
    result: list[tuple[int, int]] = []
    pos = done = 0
    with memoryview(data) as view, memoryview(out) as oview:
        while len(result) < max_packets and done < total and len(out) - pos >= per_packet:
            pn = pn0 + len(result)
            unacked = pn - largest_acked
            pn_length = (
                1 if unacked <= 128 else 2 if unacked <= 32768 else 3 if unacked <= 8388608 else 4
            )
            room = frame_room + 4 - pn_length
            frame_offset = offset + done
            compact = bool(fin & SEAL_COMPACT) and compact_offset_ok(
                stream_id, frame_offset, compact_low, max(compact_high, frame_offset))
            overhead = (COMPACT_FRAME_OVERHEAD if compact
                        else _run_overhead(stream_id, frame_offset))
            if overhead >= room:
                break
            want = room - overhead
            take = min(total - done, want)
            if cut and take < want:
                break
            last = (1 if fin & 1 and done + take == total else 0) | (
                SEAL_COMPACT if compact else 0)
            chunk = view[done : done + take]
            try:
                if protection is None:
                    size = _pure.seal_stream_packet(oview[pos:], dcid, pn, pn_length, None, 0,
                                                    stream_id, offset + done, chunk, last, True)
                else:
                    size = seal_stream_packet_pure(
                        protection, oview[pos:], dcid, pn, pn_length,  # type: ignore[arg-type]
                        None, 0, stream_id, offset + done, chunk, last)
            except WireError:
                if result:
                    break
                raise
            result.append((size, take))
            pos += size
            done += take
    return result


def seal_stream_run(
    protection: PacketProtection | None, out: bytearray, dcid: bytes, pn0: int,
    largest_acked: int, stream_id: int, offset: int, data: bytes | memoryview,
    frame_room: int, fin: bool | int, cut: bool, max_packets: int,
    compact_low: int = 0, compact_high: int = 0,
) -> list[tuple[int, int]]:
    """:func:`seal_stream_run_pure` in one C call (the pure one on the pure
    backend or without a native key)."""
    if _codec is None or (protection is not None and protection.native is None):
        return seal_stream_run_pure(protection, out, dcid, pn0, largest_acked, stream_id,
                                    offset, data, frame_room, fin, cut, max_packets,
                                    compact_low, compact_high)
    ffi = _codec.ffi
    if protection is not None:
        max_packets = min(max_packets, protection.confidentiality_limit - protection.sealed_count)
        if max_packets <= 0:
            protection.check_seal_allowed()  # raises
    count = max(0, min(max_packets, RUN_MAX_PACKETS))
    sizes = ffi.new("uint32_t[]", RUN_MAX_PACKETS)
    lengths = ffi.new("uint32_t[]", RUN_MAX_PACKETS)
    ctx = ffi.NULL if protection is None else protection.native._ctx  # type: ignore[union-attr]
    phase = 0 if protection is None else protection.key_phase
    cdata = data if type(data) is bytes else ffi.from_buffer(data)
    try:
        result = _codec.lib.tp_seal_stream_run(
            ctx, ffi.from_buffer(out), len(out), dcid, len(dcid), pn0, largest_acked & _MASK64,
            stream_id, offset, cdata, len(data), frame_room, int(fin), 1 if cut else 0,
            phase, count, sizes, lengths, compact_low, compact_high)
    except _codec._ABI_ERRORS:
        raise FieldValueError("stream run out of range") from None
    if result < 0:
        _codec._raise(result, "the packet")
    if protection is not None:
        protection.sealed_count += result
    return [(sizes[i], lengths[i]) for i in range(result)]


#: Most datagrams one :func:`open_stream_run` call takes, and the bytes of
#: stream data it can copy out (a run stops early when they are used up).
OPEN_RUN_MAX_PACKETS = 128
OPEN_RUN_DATA_BYTES = 1 << 17

Opened = tuple[int, int, int, bytes, bool]  # (pn, stream_id, offset, data, fin)


def open_stream_run_pure(
    protection: PacketProtection | None, datagrams: Sequence[bytes], dcid: bytes,
    expected_pn: int, out_bytes: int = OPEN_RUN_DATA_BYTES, refs: list[int] | None = None,
) -> list[Opened]:
    """The reference of ``tp_open_stream_run`` (csrc/aead.c): open
    ``datagrams`` in order (``protection`` None: CRC32C, security="none") for as
    long as each is the bulk packet -- it opens, holds exactly one frame, a
    STREAM frame, has the reserved header bits clear and a packet number
    (recovered against ``expected_pn``, which then moves past it) not below
    ``expected_pn``, and its data still fits ``out_bytes`` -- and return
    ``(pn, stream_id, offset, data, fin)`` for each. The first datagram that
    does not qualify ends the run (it is left to the caller). With ``refs``
    (four receive references, stream IDs 0..3: compact STREAM frames are
    accepted) a compact frame qualifies too: its offset is rebuilt with
    ``decode_compact_offset`` against ``refs[stream_id]``, which then moves to
    the frame's end when that is higher (updated in place); one that does
    not rebuild ends the run."""
    decoder = _pure.FrameDecoder()
    result: list[Opened] = []
    used = 0
    if expected_pn > MAX_VARINT + 1:
        raise FieldValueError("expected packet number out of range")
    for data in datagrams:
        try:
            if protection is None:
                first, truncated, pn_length, count = _pure.open_short_packet(
                    data, dcid, decoder, True)
                pn = decode_packet_number(truncated, pn_length, expected_pn - 1)
                payload: bytes | memoryview = data
            else:
                count, pn, first, payload = open_short_packet_pure(
                    protection, data, dcid, decoder, expected_pn)
        except (WireError, RemoteProtocolError, DecryptionError):
            break
        if count != 1 or first & RESERVED_SHORT_MASK or pn < expected_pn:
            break
        frame = decoder.frames[0]
        if out_bytes - used < frame.data_len:
            break
        if STREAM_COMPACT_MIN <= frame.type <= STREAM_COMPACT_MAX:
            if refs is None:
                break
            offset = decode_compact_offset(frame.b, refs[frame.a])
            if offset < 0 or offset + frame.data_len > MAX_VARINT:
                break
            refs[frame.a] = max(refs[frame.a], offset + frame.data_len)
        elif 0x08 <= frame.type <= 0x0F:
            offset = frame.b
        else:
            break
        used += frame.data_len
        body = bytes(payload[frame.data_off : frame.data_off + frame.data_len])
        result.append((pn, frame.a, offset, body, bool(frame.type & 1)))
        expected_pn = pn + 1
    return result


def open_stream_run(
    protection: PacketProtection | None, datagrams: Sequence[bytes], dcid: bytes,
    expected_pn: int, out_bytes: int = OPEN_RUN_DATA_BYTES, refs: list[int] | None = None,
) -> list[Opened]:
    """:func:`open_stream_run_pure` in one C call (the pure one on the pure
    backend or without a native key; at most :data:`OPEN_RUN_MAX_PACKETS`)."""
    if _codec is None or (protection is not None and protection.native is None):
        return open_stream_run_pure(protection, datagrams, dcid, expected_pn, out_bytes, refs)
    if expected_pn > MAX_VARINT + 1:
        raise FieldValueError("expected packet number out of range")
    runs = StreamRunBuffers(out_bytes)
    datagrams = list(datagrams[:OPEN_RUN_MAX_PACKETS])
    if refs is not None:
        runs.refs[0:4] = refs
    count = runs.open(protection, b"".join(datagrams), datagrams, dcid, expected_pn,
                      _codec.FrameDecoder(), refs is not None)
    if refs is not None:
        refs[:] = runs.refs[0:4]
    result: list[Opened] = []
    pos = 0
    for i in range(count):
        length = runs.data_lens[i]
        result.append((runs.pns[i], runs.stream_ids[i], runs.offsets[i],
                       bytes(runs.view[pos : pos + length]), bool(runs.fins[i])))
        pos += length
    return result


class StreamRunBuffers:
    """The output arrays and data buffer of ``tp_open_stream_run`` (one set per
    thread, in :mod:`transport.scratch`), and the call itself."""

    __slots__ = (
        "_c_out",
        "_call",
        "_ffi",
        "_lens",
        "data_lens",
        "fins",
        "offsets",
        "plain",
        "plain_c",
        "pns",
        "refs",
        "stream_ids",
        "unpack",
        "view",
    )

    def __init__(self, out_bytes: int = OPEN_RUN_DATA_BYTES) -> None:
        if _codec is None:  # pragma: no cover - callers check NATIVE_AVAILABLE
            raise RuntimeError("the native backend is not in use")
        ffi = self._ffi = _codec.ffi
        self._call = _codec.lib.tp_open_stream_run
        n = OPEN_RUN_MAX_PACKETS
        self.pns = ffi.new("uint64_t[]", n)
        self.stream_ids = ffi.new("uint64_t[]", n)
        self.offsets = ffi.new("uint64_t[]", n)
        self.data_lens = ffi.new("uint32_t[]", n)
        self.fins = ffi.new("uint8_t[]", n)
        #: compact STREAM references of stream IDs 0..3 (in and out of a call)
        self.refs = ffi.new("uint64_t[]", 4)
        self._lens = ffi.new("uint32_t[]", n)
        out = bytearray(out_bytes)
        self._c_out = ffi.from_buffer(out)
        self.view = memoryview(out)
        self.plain = bytearray(65536)
        self.plain_c = ffi.from_buffer(self.plain)
        self.unpack = ffi.unpack

    def open(self, protection: PacketProtection | None, joined: bytes,
             datagrams: Sequence[bytes], dcid: bytes, expected_pn: int, decoder: Any,
             compact: bool = False) -> int:
        """``tp_open_stream_run`` over ``joined`` (the datagrams concatenated;
        at most :data:`OPEN_RUN_MAX_PACKETS`): how many qualified. Their records
        are in the arrays, their data back to back in ``view``. With ``compact``
        compact STREAM frames qualify, rebuilt against (and updating) ``refs``."""
        return self.open_sizes(protection, joined, 0, list(map(len, datagrams)), dcid,
                               expected_pn, decoder, compact)

    def open_sizes(self, protection: PacketProtection | None, buf: bytes, pos: int,
                   sizes: list[int], dcid: bytes, expected_pn: int, decoder: Any,
                   compact: bool = False) -> int:
        """:meth:`open` for datagrams of ``sizes`` bytes back to back in ``buf``
        from ``pos`` (a GRO buffer is opened where it lies, uncut)."""
        ffi = self._ffi
        n = len(sizes)
        if n > OPEN_RUN_MAX_PACKETS:
            raise FieldValueError("too many datagrams for one run")
        if type(buf) is not bytes:
            raise TypeError("a run is opened from bytes")
        if pos < 0 or pos + sum(sizes) > len(buf):  # (a negative size: OverflowError)
            raise FieldValueError("datagram sizes beyond the buffer")
        start: Any = ffi.from_buffer("uint8_t[]", buf) + pos if pos else buf
        lens = self._lens
        lens[0:n] = sizes
        if protection is None:
            ctx, phase = ffi.NULL, 0
        else:
            ctx = protection.native._ctx  # type: ignore[union-attr]
            phase = protection.generation & 1
        return int(self._call(decoder._dec, ctx, start, lens, n, dcid, len(dcid), expected_pn,
                              phase, self.plain_c, len(self.plain), self._c_out,
                              len(self.view), self.pns, self.stream_ids, self.offsets,
                              self.data_lens, self.fins, self.refs if compact else ffi.NULL))
