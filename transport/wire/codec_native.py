"""Native codec backend: the C99 code in ``csrc/`` behind the ``codec_pure`` API.

How this works
--------------
``transport._native`` is built by cffi (out-of-line API mode) from
``csrc/ffi_build.py``. Each public function crosses the C boundary once:

* ``FrameDecoder.decode`` makes one ``tp_decode_frames`` call per datagram that
  fills a preallocated ``tp_frame`` array and a ``uint64`` range array.
  ``.frames`` is a list of per-record views into that array (created once, so
  ``decoder.frames[0]`` is the same object after every decode; attribute reads go
  straight to C memory); ``.c_frames`` is the raw cdata array. ``.ranges`` is a
  ``memoryview`` (format ``Q``) over the C ``uint64_t[max_ranges]`` array, so it
  slices like a list; only the first ``n_ranges`` ints are meaningful.
* ``encode_frames`` packs the specs into a reused ``tp_frame_spec`` array
  (``struct.pack_into``) with body pointers from ``ffi.from_buffer`` and makes a
  single ``tp_encode_frames`` call.
* Headers, CRC32C: one call each.
* ``seal_stream_packet`` / ``open_short_packet`` (whole 1-RTT data packets):
  one call each (``tp_seal_stream_packet`` / ``tp_open_short_packet`` in
  ``csrc/packet.c``). ACK ranges are packed (``struct``) into a reused
  ``uint64`` array from a small free-list; the open call returns ``(pn << 20) | frame_count`` so no
  result memory is read back.

Behaviour matches ``codec_pure`` exactly: C status codes map to the same
:mod:`transport.errors` classes. Python values the C ABI cannot carry (negative
or >= 2**64 ints, wrong types) are caller errors; for them the call is handed to
``codec_pure`` so the exception (or result, where the reference ignores the
field) is the reference's own. Scratch memory comes from a small free-list, so
concurrent threads never share it (cffi releases the GIL during calls).

``TRANSPORT_NATIVE_PATH=DIR`` imports ``_native`` from ``DIR`` instead of the
installed ``transport._native`` (used by ``make sanitize``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

from transport._cffi_load import load_cffi_module
from transport.errors import (
    BufferTooSmallError,
    ChecksumError,
    ConfigurationError,
    FieldValueError,
    ForeignPacketError,
    TruncatedError,
    UnknownFrameError,
    WireError,
)
from transport.wire import codec_pure as _pure
from transport.wire._varint_pure import Buffer, as_view
from transport.wire.codec_pure import (
    Header,
    decode_packet_number,
    decode_varint,
    encode_varint,
    packet_number_length,
    varint_size,
)
from transport.wire.constants import (
    DEFAULT_CID_LENGTH,
    FIXED_BIT,
    FRAME_FIELDS,
    MAX_CID_LENGTH,
    MAX_DATAGRAM_SIZE,
    MAX_FRAMES_PER_PACKET,
    PACKET_TYPE_SHORT,
    PN_LENGTH_MASK,
    STREAM_COMPACT_MAX,
    STREAM_COMPACT_MIN,
    STREAM_TYPE_MAX,
    STREAM_TYPE_MIN,
    FrameType,
)

_native = load_cffi_module("_native", "TRANSPORT_NATIVE_PATH")
ffi = _native.ffi
lib = _native.lib

__all__ = [
    "FrameDecoder",
    "Header",
    "crc32c",
    "crc32c_path",
    "decode_frames",
    "decode_header",
    "decode_packet_number",
    "decode_varint",
    "encode_frames",
    "encode_long_header",
    "encode_short_header",
    "encode_varint",
    "ffi",
    "lib",
    "open_short_packet",
    "packet_number_length",
    "seal_stream_packet",
    "varint_size",
]

_ERRORS: dict[int, type[WireError]] = {
    lib.TP_ERR_TRUNCATED: TruncatedError,
    lib.TP_ERR_UNKNOWN_FRAME: UnknownFrameError,
    lib.TP_ERR_FIELD_VALUE: FieldValueError,
    lib.TP_ERR_BUFFER_TOO_SMALL: BufferTooSmallError,
    lib.TP_ERR_FOREIGN_PACKET: ForeignPacketError,
    lib.TP_ERR_CHECKSUM: ChecksumError,
}
_MESSAGES = {
    lib.TP_ERR_TRUNCATED: "input ended inside {}",
    lib.TP_ERR_UNKNOWN_FRAME: "unknown frame type in {}",
    lib.TP_ERR_FIELD_VALUE: "invalid field value in {}",
    lib.TP_ERR_BUFFER_TOO_SMALL: "output buffer too small for {}",
    lib.TP_ERR_FOREIGN_PACKET: "destination CID of {} is not this connection's",
    lib.TP_ERR_CHECKSUM: "CRC32C trailer does not match {}",
}
# Errors a Python value raises on its way into a C argument or struct field.
_ABI_ERRORS = (TypeError, OverflowError, ValueError, BufferError, struct.error)


def _raise(status: int, what: str) -> None:
    raise _ERRORS[status](_MESSAGES[status].format(what) + " (native codec)")


def _cbuf(buf: Buffer) -> tuple[Any, int]:
    """A C view of ``buf`` and its length in bytes (bytes pass through uncopied)."""
    if type(buf) is bytes:
        return buf, len(buf)
    view = ffi.from_buffer(as_view(buf))
    return view, len(view)


def _writable(out: Any) -> Any:
    """A C view of a writable output buffer (bytearray or writable memoryview)."""
    if type(out) is bytearray:
        return ffi.from_buffer(out)  # always writable; the cheap path
    return ffi.from_buffer(out, require_writable=True)


# ------------------------------------------------------------------ CRC32C ---
_crc32c = lib.tp_crc32c


def crc32c(data: Buffer, value: int = 0) -> int:
    """CRC32C of ``data``, continuing from a previous result ``value`` (0 to start)."""
    try:
        if type(data) is bytes:
            return _crc32c(value, data, len(data))
        view = _from_buffer(data if type(data) is bytearray else as_view(data))
        return _crc32c(value, view, len(view))
    except _ABI_ERRORS:
        # value outside u32 (FieldValueError) or not a buffer: the reference decides.
        return _pure.crc32c(data, value)


def crc32c_path() -> str:
    """Which CRC32C implementation the C code uses ("sse4.2-3way" or "slice-by-8")."""
    return str(ffi.string(lib.tp_crc32c_path()).decode())


# ----------------------------------------------------------------- headers ---
_HEADER_FIELDS = 16
_header_pool: list[Any] = []
_decode_header_c = lib.tp_decode_header
_unpack = ffi.unpack


def decode_header(buf: Buffer, short_cid_length: int = DEFAULT_CID_LENGTH) -> Header:
    """Decode the header of the packet at the start of ``buf`` (see ``codec_pure``)."""
    if type(buf) is not bytes:
        buf = as_view(buf)
    if buf and not buf[0] & 0x80:
        # Short header: three fields, no loop; one cffi call plus reading the
        # result costs more than these few operations, so the rule is applied
        # here (identical to codec_pure, and to the C tp_decode_header).
        first = buf[0]
        size = len(buf)
        pn_offset = 1 + short_cid_length
        if (size <= MAX_DATAGRAM_SIZE and first & FIXED_BIT and 0 <= short_cid_length <= 20
                and pn_offset + (first & 3) < size):
            dcid = buf[1:pn_offset]
            return Header(first, PACKET_TYPE_SHORT, 0,
                          dcid if type(dcid) is bytes else bytes(dcid), b"", b"",
                          pn_offset, (first & 3) + 1, size, (), b"")
        return _decode_short(buf, short_cid_length)  # raises the reference's error
    cbuf, size = _cbuf(buf)
    cid_length = short_cid_length if 0 <= short_cid_length <= 255 else 255
    h = _header_pool.pop() if _header_pool else ffi.new("tp_header *")
    try:
        status = _decode_header_c(cbuf, size, cid_length, h)
        if status:
            _raise(status, "the packet header")
        (first, ptype, version, d_off, d_len, s_off, s_len, t_off, t_len, pn_off, pn_len,
         pend, v_off, n_ver, g_off, g_len) = _unpack(ffi.cast("uint32_t *", h), _HEADER_FIELDS)
    finally:
        _header_pool.append(h)
    versions: tuple[int, ...] = ()
    if n_ver:
        versions = struct.unpack_from(f">{n_ver}I", buf, v_off)
    return Header(
        first, ptype, version,
        bytes(buf[d_off:d_off + d_len]),
        bytes(buf[s_off:s_off + s_len]) if s_len else b"",
        bytes(buf[t_off:t_off + t_len]) if t_len else b"",
        pn_off, pn_len, pend, versions,
        bytes(buf[g_off:g_off + g_len]) if g_len else b"",
    )


def _decode_short(buf: Buffer, cid_length: int) -> Header:
    size = len(buf)
    if size > MAX_DATAGRAM_SIZE:
        raise FieldValueError(f"datagram of {size} bytes exceeds {MAX_DATAGRAM_SIZE}")
    first = buf[0]
    if not first & FIXED_BIT:
        raise FieldValueError("fixed bit is 0")
    if not 0 <= cid_length <= MAX_CID_LENGTH:
        raise FieldValueError(f"short-header CID length {cid_length} is not 0..20")
    pn_length = (first & PN_LENGTH_MASK) + 1
    pn_offset = 1 + cid_length
    if pn_offset + pn_length > size:
        raise TruncatedError("short header ends inside the CID or packet number")
    return Header(first, PACKET_TYPE_SHORT, 0, bytes(buf[1:pn_offset]), b"", b"", pn_offset,
                  pn_length, size, (), b"")


_encode_short_c = lib.tp_encode_short_header
_encode_long_c = lib.tp_encode_long_header


def encode_short_header(
    out: bytearray | memoryview,
    pos: int,
    dcid: Buffer,
    pn: int,
    pn_length: int,
    key_phase: int = 0,
    spin: int = 0,
) -> int:
    """Write a short header (byte0, DCID, packet number) at ``out[pos]``; return the new pos."""
    try:
        cout = _writable(out)
        if type(dcid) is not bytes:
            dcid = bytes(as_view(dcid))
        result = _encode_short_c(cout, len(cout), pos, dcid, len(dcid), pn, pn_length,
                                 key_phase, spin)
    except _ABI_ERRORS:
        return _pure.encode_short_header(out, pos, dcid, pn, pn_length, key_phase, spin)
    if result < 0:
        _raise(result, "the short header")
    return int(result)


def encode_long_header(
    out: bytearray | memoryview,
    pos: int,
    packet_type: int,
    version: int,
    dcid: Buffer,
    scid: Buffer,
    token: Buffer,
    pn: int,
    pn_length: int,
    length: int,
) -> int:
    """Write a long header at ``out[pos]`` (see ``codec_pure.encode_long_header``)."""
    try:
        cout = _writable(out)
        cdcid, dcid_len = _cbuf(dcid)
        cscid, scid_len = _cbuf(scid)
        ctoken, token_len = _cbuf(token)
        if packet_type == 2:  # RETRY ignores these; keep them inside the C types
            pn, pn_length, length = 0, 1, 0
        result = _encode_long_c(cout, len(cout), pos, packet_type, version, cdcid, dcid_len,
                                cscid, scid_len, ctoken, token_len, pn, pn_length, length)
    except _ABI_ERRORS:
        return _pure.encode_long_header(out, pos, packet_type, version, dcid, scid, token,
                                        pn, pn_length, length)
    if result < 0:
        _raise(result, "the long header")
    return int(result)


# ------------------------------------------------------------------ frames ---
DEFAULT_MAX_RANGES = 1024
_decode_frames_c = lib.tp_decode_frames


class FrameDecoder:
    """Decodes the frames of one packet into reusable C records (one C call per packet).

    Not safe to share between threads (its record arrays are its state).
    """

    __slots__ = (
        "_dec", "_range_buffer", "c_frames", "frames", "max_frames", "max_ranges", "ranges"
    )

    def __init__(
        self, max_frames: int = MAX_FRAMES_PER_PACKET, max_ranges: int = DEFAULT_MAX_RANGES
    ) -> None:
        if max_frames < 1 or max_ranges < 0:
            raise ConfigurationError("max_frames must be >= 1 and max_ranges >= 0")
        if max_frames > 0xFFFFFFFF or max_ranges > 0xFFFFFFFF:
            raise ConfigurationError("max_frames and max_ranges must fit in 32 bits")
        self.max_frames = max_frames
        self.max_ranges = max_ranges
        self.c_frames = ffi.new("tp_frame[]", max_frames)
        self.frames = [self.c_frames[i] for i in range(max_frames)]
        # The range array lives in a bytearray so that .ranges can be a memoryview
        # of native uint64 (Python slicing, fast int indexing) over the C memory.
        storage = bytearray(8 * max(max_ranges, 1))
        self._range_buffer = ffi.from_buffer(storage)
        self.ranges = memoryview(storage).cast("Q")
        dec = ffi.new("tp_decoder *")
        dec.frames = self.c_frames
        dec.ranges = ffi.cast("uint64_t *", self._range_buffer)
        dec.max_frames = max_frames
        dec.max_ranges = max_ranges
        self._dec = dec

    def open_direct(self) -> tuple[Any, Any, Any]:
        """``(tp_open_short_packet, this decoder's C struct, its first frame
        record)`` for a receive loop that makes :func:`open_short_packet`'s C
        call itself (the common packet, a ``bytes`` datagram)."""
        return _open_c, self._dec, self.frames[0]

    @property
    def n_ranges(self) -> int:
        """How many ints of ``ranges`` the last decode filled."""
        return int(self._dec.n_ranges)

    def decode(self, buf: Buffer, start: int = 0, end: int = -1) -> int:
        """Decode every frame in ``buf[start:end]`` (``end=-1``: to the end); return the count."""
        if type(buf) is bytes:
            size = len(buf)
        else:
            buf = ffi.from_buffer(as_view(buf))
            size = len(buf)
        if end == -1:
            end = size
        if not 0 <= start <= end <= size:
            raise FieldValueError(f"bad frame span {start}..{end} of a {size}-byte buffer")
        count = _decode_frames_c(self._dec, buf, start, end)
        if count < 0:
            _raise(count, "a frame")
        return int(count)


_ACK = FrameType.ACK.value
_ACK_ECN = FrameType.ACK_ECN.value
_FEC_RECOVERED = FrameType.FEC_RECOVERED.value
_ACK_LIKE = frozenset((_ACK, _ACK_ECN, _FEC_RECOVERED))


def _wire_type(frame_type: int) -> int:
    if STREAM_TYPE_MIN <= frame_type <= STREAM_TYPE_MAX:
        return FrameType.STREAM.value
    if STREAM_COMPACT_MIN <= frame_type <= STREAM_COMPACT_MAX:
        return FrameType.STREAM_COMPACT.value
    return frame_type


# Body kind per one-byte type: 0 none, 1 bytes-like body, 2 ACK-like int list.
_BODY_KIND = tuple(
    2 if t in _ACK_LIKE
    else (1 if _wire_type(t) in FRAME_FIELDS and FRAME_FIELDS[_wire_type(t)][1] else 0)
    for t in range(64)
)
_decoder_pool: list[FrameDecoder] = []


def decode_frames(buf: Buffer, start: int = 0, end: int = -1) -> list[tuple[Any, ...]]:
    """Decode the frames in ``buf[start:end]`` into ``(type, a, b, c, d, body)`` specs."""
    view = buf if type(buf) is bytes else as_view(buf)
    decoder = _decoder_pool.pop() if _decoder_pool else FrameDecoder()
    try:
        count = decoder.decode(view, start, end)
        ranges = decoder.ranges
        specs: list[tuple[Any, ...]] = []
        for rec in decoder.frames[:count]:
            frame_type = rec.type
            kind = _BODY_KIND[frame_type]
            if kind == 2:
                ints = 2 * rec.d + (3 if frame_type == _ACK_ECN else 0)
                first = rec.c
                flat = tuple(ranges[first:first + ints])
                specs.append((frame_type, rec.a, rec.b, 0, 0, flat))
            elif kind == 1:
                off = rec.data_off
                data = bytes(view[off:off + rec.data_len])
                specs.append((frame_type, rec.a, rec.b, rec.c, rec.d, data))
            else:
                specs.append((frame_type, rec.a, rec.b, rec.c, rec.d, None))
    finally:
        _decoder_pool.append(decoder)
    return specs


# ----------------------------------------------------------- frame encode ---
_SPEC_SIZE = ffi.sizeof("tp_frame_spec")
# type, a, b, c, d, (body pointer skipped: zeroed), body_len, ranges pointer, n_ranges
_SPEC_STRUCT = struct.Struct("@5QPQPQ")
if _SPEC_STRUCT.size != _SPEC_SIZE:  # pragma: no cover - exotic ABI
    raise ImportError("tp_frame_spec layout does not match struct format @5QPQPQ")
_PACK_SPEC = _SPEC_STRUCT.pack_into
# Packs n uint64 (native order) into a bytearray, indexed by n (ACK_ECN needs 2*256+3).
_PACK_INTS = [struct.Struct(f"{n}Q").pack_into for n in range(2 * 256 + 4)]


def _pack_ints(raw: bytearray, offset: int, ints: Sequence[int]) -> None:
    n = len(ints)
    packer = _PACK_INTS[n] if n < len(_PACK_INTS) else struct.Struct(f"{n}Q").pack_into
    packer(raw, offset, *ints)
_encode_frames_c = lib.tp_encode_frames
_from_buffer = ffi.from_buffer


class _EncodeScratch:
    """Reusable spec and range arrays for one encode_frames call at a time.

    Both live in bytearrays filled with ``struct`` (cheaper than cdata field
    stores); ``ranges_address`` is the C address of the range array, so a
    spec's range pointer is packed as a plain integer.
    """

    __slots__ = ("capacity", "keep", "range_capacity", "range_keep", "ranges",
                 "ranges_address", "raw", "specs")

    def __init__(self, capacity: int, range_capacity: int) -> None:
        self.capacity = capacity
        self.raw = bytearray(capacity * _SPEC_SIZE)
        self.keep = _from_buffer(self.raw)
        self.specs = ffi.cast("tp_frame_spec *", self.keep)
        self.range_capacity = range_capacity
        self.ranges = bytearray(8 * range_capacity)
        self.range_keep = _from_buffer(self.ranges)
        self.ranges_address = int(ffi.cast("uintptr_t", self.range_keep))


_scratch_pool: list[_EncodeScratch] = []


def encode_frames(
    frames: Iterable[Sequence[Any]], out: bytearray | memoryview, pos: int, end: int = -1
) -> int:
    """Encode frame specs ``(type, a, b, c, d, body)`` into ``out[pos:end]``; return the new pos."""
    if type(out) is bytearray:
        size = len(out)
    elif isinstance(out, memoryview) and out.format == "B" and out.ndim == 1:
        size = out.nbytes
    else:  # unusual output objects: the reference decides what happens
        return _pure.encode_frames(frames, out, pos, end)
    if end == -1 or end > size:
        end = size
    if pos < 0 or end < 0:
        raise FieldValueError(f"bad output span {pos}..{end}")
    specs = frames if isinstance(frames, (list, tuple)) else list(frames)
    count = len(specs)
    ints = 0
    for spec in specs:
        if type(spec) is tuple and len(spec) == 6 and type(spec[5]) in (tuple, list):
            ints += len(spec[5])
    scratch = _scratch_pool.pop() if _scratch_pool else None
    if scratch is None or scratch.capacity < count or scratch.range_capacity < ints:
        scratch = _EncodeScratch(max(count, 32), max(ints, 1024))
    try:
        raw = scratch.raw
        cspecs = scratch.specs
        ranges_raw = scratch.ranges
        ranges_address = scratch.ranges_address
        keep = []
        offset = 0
        r = 0
        body_kind = _BODY_KIND
        for i, spec in enumerate(specs):
            frame_type, a, b, c, d, body = spec
            kind = body_kind[frame_type] if 0 <= frame_type < 64 else 0
            if kind == 1:
                if type(body) is not bytes:
                    if not isinstance(body, (bytes, bytearray, memoryview)):
                        raise TypeError("frame body must be bytes-like")
                    body = as_view(body)
                view = _from_buffer(body)
                keep.append(view)
                _PACK_SPEC(raw, offset, frame_type, a, b, c, d, 0, len(view), 0, 0)
                cspecs[i].body = view
            elif kind == 2:
                if type(body) not in (tuple, list):
                    raise TypeError("ACK-like body")
                n = len(body)
                _pack_ints(ranges_raw, 8 * r, body)
                _PACK_SPEC(raw, offset, frame_type, a, b, c, d, 0, 0, ranges_address + 8 * r, n)
                r += n
            else:
                _PACK_SPEC(raw, offset, frame_type, a, b, c, d, 0, 0, 0, 0)
            offset += _SPEC_SIZE
        cout = _from_buffer(out) if type(out) is bytearray else _writable(out)
        result = _encode_frames_c(cspecs, count, cout, pos, end)
    except _ABI_ERRORS:
        # A value the C types cannot carry: the reference decides (error or result).
        return _pure.encode_frames(specs, out, pos, end)
    finally:
        _scratch_pool.append(scratch)
    if result < 0:
        _raise(result, "a frame")
    return int(result)


# ------------------------------------------------- packet-level fast paths ---
_ACK_INTS = 2 * 256  # MAX_ACK_RANGES (low, high) pairs
_seal_c = lib.tp_seal_stream_packet
_open_c = lib.tp_open_short_packet
_NULL = ffi.NULL
if lib.TP_OPEN_COUNT_BITS != 20:  # pragma: no cover - the literals below assume 20
    raise ImportError("transport._native packs open results differently; rebuild it")


class _RangeArray:
    """A reusable uint64[_ACK_INTS] for one seal call at a time (bytearray + C view)."""

    __slots__ = ("pointer", "raw", "view")

    def __init__(self) -> None:
        self.raw = bytearray(8 * _ACK_INTS)
        self.view = _from_buffer(self.raw)
        self.pointer = ffi.cast("uint64_t *", self.view)


_range_pool: list[_RangeArray] = []


def seal_stream_packet(
    out: bytearray | memoryview,
    dcid: Buffer,
    pn: int,
    pn_length: int,
    ack_ranges: Sequence[int] | None,
    ack_delay: int,
    stream_id: int,
    offset: int,
    data: Buffer,
    fin: bool | int,
    crc: bool = True,
) -> int:
    """Write header + [ACK] + STREAM + CRC32C at ``out[0]``; return the length.

    Same bytes and errors as ``codec_pure.seal_stream_packet``, in one C call.
    """
    try:
        cout = _from_buffer(out) if type(out) is bytearray else _writable(out)
        if type(data) is not bytes:
            data = _from_buffer(as_view(data))
        if type(dcid) is not bytes:
            dcid = bytes(as_view(dcid))
        if ack_ranges is None:
            result = _seal_c(cout, len(cout), dcid, len(dcid), pn, pn_length, _NULL, 0, 0, 0,
                             stream_id, offset, data, len(data), int(fin),
                             1 if crc else 0)
        else:
            n = len(ack_ranges)
            if n > _ACK_INTS:  # too many ranges: the reference reports it in its order
                raise OverflowError
            ranges = _range_pool.pop() if _range_pool else _RangeArray()
            _PACK_INTS[n](ranges.raw, 0, *ack_ranges)  # struct.error: negative / too big
            result = _seal_c(cout, len(cout), dcid, len(dcid), pn, pn_length, ranges.pointer,
                             n, 1, ack_delay, stream_id, offset, data, len(data),
                             int(fin), 1 if crc else 0)
            _range_pool.append(ranges)  # lost on an exception; a new one is made then
    except _ABI_ERRORS:
        return _pure.seal_stream_packet(out, dcid, pn, pn_length, ack_ranges, ack_delay,
                                        stream_id, offset, data, fin, crc)
    if result < 0:
        _raise(result, "the packet")
    return int(result)


def open_short_packet(
    buf: Buffer, dcid: Buffer, decoder: Any, crc: bool = True
) -> tuple[int, int, int, int]:
    """Check a short-header datagram and decode its frames (see ``codec_pure``).

    Returns ``(first_byte, truncated_pn, pn_length, frame_count)``.
    """
    if type(decoder) is not FrameDecoder:  # e.g. a pure decoder: the reference path
        return _pure.open_short_packet(buf, dcid, decoder, crc)
    if type(buf) is bytes:
        cbuf = buf
    else:
        buf = as_view(buf)
        cbuf = _from_buffer(buf)
    if type(dcid) is not bytes:
        dcid = bytes(as_view(dcid))
    result = _open_c(decoder._dec, cbuf, len(cbuf), dcid, len(dcid), 1 if crc else 0)
    if result < 0:
        _raise(result, "the packet")
    first = buf[0]
    # result = (truncated_pn << TP_OPEN_COUNT_BITS) | frame_count, with 20 bits
    return first, result >> 20, (first & 3) + 1, result & 0xFFFFF
