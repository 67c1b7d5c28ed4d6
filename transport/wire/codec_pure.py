"""Pure-Python reference codec: CRC32C, varints, packet headers, packet numbers, frames.

How this works
--------------
This backend *defines* the codec's behaviour; ``codec_native`` (C, in
``csrc/``) must match it value for value and error class for error class. The
wire layout is ``docs/wire-format.md`` (numbers in ``constants.py``). Varints
live in ``_varint_pure``, frame decoding in ``_frames_pure`` and frame encoding
in ``_frame_writers_pure``; this module holds the CRC, the packet headers and the
packet-number arithmetic, and re-exports the rest.

* CRC32C (Castagnoli, RFC 3720 appendix B.4; reflected polynomial 0x82F63B78,
  init and final xor 0xFFFFFFFF). ``crc32c(b, crc32c(a)) == crc32c(a + b)``.
  Short inputs go through a byte-at-a-time 256-entry table; inputs of 64 bytes
  or more are read as little-endian 32-bit words, each folded with two lookups in
  65536-entry tables (built on first use, ~25 ms, 512 KiB) -- about twice as fast.
* Headers (RFC 9000 section 17, our variant): ``decode_header`` checks, in this
  order, and raises the first failure: empty buffer or one over
  ``MAX_DATAGRAM_SIZE`` (Truncated / FieldValue); for long headers the version
  (Truncated when the buffer is shorter than 5 bytes), then the fixed bit
  (FieldValue, not required for version negotiation), each CID length (> 20 is
  FieldValue, missing bytes Truncated), then the type-specific part. For short
  headers the fixed bit, then ``short_cid_length`` (0..20, else FieldValue),
  then that the CID and packet number fit (Truncated).
* Packet-level fast paths for 1-RTT data packets: ``seal_stream_packet`` writes
  short header + optional ACK + one STREAM frame (OFF|LEN) + CRC32C trailer in
  one call; ``open_short_packet`` checks a short-header datagram (form and fixed
  bits, DCID, CRC32C trailer) and decodes its frames into a ``FrameDecoder``.
  Their bytes and check order are spelled out in their docstrings; the native
  backend does each in a single C call.
* Packet numbers: RFC 9000 appendix A.2 (how many bytes to send) and A.3 (how to
  expand a truncated number), with -1 standing for "nothing acked/received".

Decisions where the agreed spec left room (the native backend follows them):

* ``Header.packet_type`` is a plain int. ``pn_length`` is always
  ``(first_byte & 3) + 1``, even for packets that carry no packet number; their
  ``pn_offset`` is 0 (RETRY, version negotiation, unsupported version).
* INITIAL/HANDSHAKE: ``length < pn_length + CRC_LENGTH`` is FieldValueError
  (there must be room for the packet number and the CRC trailer); checked before
  the "length beyond the buffer" TruncatedError. The encoder rejects the same.
* A long header with type RESERVED (3) and a supported version: FieldValueError.
  An unsupported version reports the type bits as they are, RESERVED included.
* Version negotiation: at least one version must follow the source CID, and the
  remainder must be a multiple of 4 bytes; otherwise TruncatedError. Listed
  versions may take any u32 value. The CID lengths are capped at 20 here too.
* RETRY: fewer than 16 bytes after the source CID is TruncatedError; an empty
  retry token is accepted (the connection decides whether it is acceptable).
* ``encode_long_header``: version 0 (version negotiation) and type RESERVED are
  FieldValueError (version negotiation has no encoder in the codec API); a
  non-empty token with HANDSHAKE is FieldValueError; RETRY writes 0 in the
  packet-number-length bits and ignores ``pn``, ``pn_length`` and ``length``.
* ``packet_number_length`` raises FieldValueError when ``pn <= largest_acked``
  or when more than 4 bytes would be needed (2**31 or more packets in flight).
* ``decode_packet_number`` raises FieldValueError when ``truncated`` does not fit
  in ``pn_length`` bytes.
* Inputs may be bytes, bytearray or memoryview (any 1-D format is cast to
  bytes); encoders write into a bytearray or writable memoryview that is never
  resized. Wrong Python types (a str for a buffer, a float for an int) are
  programming errors, not bad wire input: they raise TypeError or another
  built-in exception, never a WireError.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence

from transport.errors import (
    BufferTooSmallError,
    ChecksumError,
    FieldValueError,
    ForeignPacketError,
    TruncatedError,
)
from transport.wire._frame_writers_pure import (
    encode_frames,
    write_ack_head,
    write_stream_compact_head,
    write_stream_head,
)
from transport.wire._frames_pure import FrameDecoder, FrameRecord, decode_frames
from transport.wire._varint_pure import (
    Buffer,
    as_view,
    decode_varint,
    encode_varint,
    read_varint,
    varint_size,
)
from transport.wire.constants import (
    CRC_LENGTH,
    DEFAULT_CID_LENGTH,
    FIXED_BIT,
    HEADER_FORM_LONG,
    KEY_PHASE_BIT,
    LONG_TYPE_MASK,
    LONG_TYPE_SHIFT,
    MAX_CID_LENGTH,
    MAX_DATAGRAM_SIZE,
    MAX_VARINT,
    PACKET_TYPE_SHORT,
    PACKET_TYPE_VERSION_NEGOTIATION,
    PN_LENGTH_MASK,
    RETRY_INTEGRITY_TAG_LENGTH,
    SEAL_COMPACT,
    SPIN_BIT,
    SUPPORTED_VERSIONS,
    PacketType,
)

__all__ = [
    "FrameDecoder",
    "FrameRecord",
    "Header",
    "crc32c",
    "decode_frames",
    "decode_header",
    "decode_packet_number",
    "decode_varint",
    "encode_frames",
    "encode_long_header",
    "encode_short_header",
    "encode_varint",
    "open_short_packet",
    "packet_number_length",
    "seal_stream_packet",
    "varint_size",
]

# ------------------------------------------------------------------ CRC32C ---
_CRC_POLY = 0x82F63B78  # Castagnoli, bit-reflected


def _byte_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_T8 = _byte_table()
# (low-half table, high-half table) for the word path; built on first use.
_word_tables: tuple[array[int], array[int]] | None = None
_WORD_PATH_MIN_BYTES = 64


def _build_word_tables() -> tuple[array[int], array[int]]:
    """Tables folding a 32-bit word into the CRC state with two lookups.

    The CRC without pre/post conditioning is linear over GF(2), so four
    byte-steps of the state ``x = crc ^ word`` equal ``F4(x & 0xFFFF) ^
    F2(x >> 16)``, where ``Fn`` is n byte-steps with zero input bytes.
    """
    t8 = _T8

    def step(crc: int) -> int:
        return t8[crc & 0xFF] ^ (crc >> 8)

    two_steps = [step(step(x)) for x in range(65536)]
    four_steps = array("I", [step(step(v)) for v in two_steps])
    return four_steps, array("I", two_steps)


def crc32c(data: Buffer, value: int = 0) -> int:
    """CRC32C of ``data``, continuing from a previous result ``value`` (0 to start)."""
    global _word_tables
    data = as_view(data)
    if not 0 <= value <= 0xFFFFFFFF:
        raise FieldValueError(f"CRC32C start value {value} is not a u32")
    crc = value ^ 0xFFFFFFFF
    size = len(data)
    done = 0
    if size >= _WORD_PATH_MIN_BYTES:
        if _word_tables is None:
            _word_tables = _build_word_tables()
        low, high = _word_tables
        words = size >> 2
        for word in struct.unpack_from(f"<{words}I", data):
            crc ^= word
            crc = low[crc & 0xFFFF] ^ high[crc >> 16]
        done = words << 2
    t8 = _T8
    for byte in data[done:]:
        crc = t8[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ----------------------------------------------------------------- headers ---
class Header:
    """A decoded packet header (see the module docstring of ``transport.wire``).

    ``dcid``, ``scid``, ``token``, ``integrity_tag`` are bytes copies;
    ``pn_offset`` and ``packet_end`` are absolute indexes into the decoded buffer.
    """

    __slots__ = (
        "dcid",
        "first_byte",
        "integrity_tag",
        "packet_end",
        "packet_type",
        "pn_length",
        "pn_offset",
        "scid",
        "token",
        "version",
        "versions",
    )

    def __init__(
        self,
        first_byte: int,
        packet_type: int,
        version: int,
        dcid: bytes,
        scid: bytes,
        token: bytes,
        pn_offset: int,
        pn_length: int,
        packet_end: int,
        versions: tuple[int, ...],
        integrity_tag: bytes,
    ) -> None:
        self.first_byte = first_byte
        self.packet_type = packet_type
        self.version = version
        self.dcid = dcid
        self.scid = scid
        self.token = token
        self.pn_offset = pn_offset
        self.pn_length = pn_length
        self.packet_end = packet_end
        self.versions = versions
        self.integrity_tag = integrity_tag

    def _fields(self) -> tuple[object, ...]:
        return (
            self.first_byte, self.packet_type, self.version, self.dcid, self.scid,
            self.token, self.pn_offset, self.pn_length, self.packet_end, self.versions,
            self.integrity_tag,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Header):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        names = (
            "first_byte", "packet_type", "version", "dcid", "scid", "token", "pn_offset",
            "pn_length", "packet_end", "versions", "integrity_tag",
        )
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True))
        return f"Header({inner})"


def _check_cid(cid: Buffer, what: str) -> None:
    if len(cid) > MAX_CID_LENGTH:
        raise FieldValueError(f"{what} is {len(cid)} bytes, more than {MAX_CID_LENGTH}")


def _check_pn(pn: int, pn_length: int) -> None:
    if not 1 <= pn_length <= 4:
        raise FieldValueError(f"packet number length {pn_length} is not 1..4")
    if not 0 <= pn <= MAX_VARINT:
        raise FieldValueError(f"packet number {pn} is out of range")


def _write(out: bytearray | memoryview, pos: int, data: bytes) -> int:
    if pos < 0:
        raise FieldValueError(f"negative position {pos}")
    stop = pos + len(data)
    if stop > len(out):
        raise BufferTooSmallError(f"{len(data)} bytes do not fit at {pos} (buffer {len(out)})")
    out[pos:stop] = data
    return stop


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
    """Write a long header (byte0 .. packet number) at ``out[pos]``; return the next position.

    ``length`` counts packet number + payload + CRC trailer. For RETRY this
    writes byte0, version, CIDs and the token; the caller appends the 16-byte tag.
    """
    if not 0 < version <= 0xFFFFFFFF:
        raise FieldValueError(f"version {version} cannot be encoded in a long header")
    _check_cid(dcid, "destination CID")
    _check_cid(scid, "source CID")
    first = HEADER_FORM_LONG | FIXED_BIT | (packet_type << LONG_TYPE_SHIFT)
    cids = (
        bytes((len(dcid),)) + bytes(dcid) + bytes((len(scid),)) + bytes(scid)
    )
    if packet_type == PacketType.RETRY:
        data = bytes((first,)) + version.to_bytes(4, "big") + cids + bytes(token)
        return _write(out, pos, data)
    if packet_type not in (PacketType.INITIAL, PacketType.HANDSHAKE):
        raise FieldValueError(f"long packet type {packet_type} cannot be encoded")
    _check_pn(pn, pn_length)
    if length < pn_length + CRC_LENGTH:
        raise FieldValueError(f"length {length} leaves no room for packet number and CRC")
    if packet_type == PacketType.INITIAL:
        token_part = encode_varint(len(token)) + bytes(token)
    elif len(token):
        raise FieldValueError("only INITIAL packets carry a token")
    else:
        token_part = b""
    data = (
        bytes((first | (pn_length - 1),))
        + version.to_bytes(4, "big")
        + cids
        + token_part
        + encode_varint(length)
        + (pn & ((1 << (8 * pn_length)) - 1)).to_bytes(pn_length, "big")
    )
    return _write(out, pos, data)


def encode_short_header(
    out: bytearray | memoryview,
    pos: int,
    dcid: Buffer,
    pn: int,
    pn_length: int,
    key_phase: int = 0,
    spin: int = 0,
) -> int:
    """Write a short header (byte0, DCID, packet number) at ``out[pos]``; return the next pos."""
    _check_cid(dcid, "destination CID")
    _check_pn(pn, pn_length)
    if key_phase not in (0, 1) or spin not in (0, 1):
        raise FieldValueError("key_phase and spin must be 0 or 1")
    first = FIXED_BIT | (pn_length - 1)
    if key_phase:
        first |= KEY_PHASE_BIT
    if spin:
        first |= SPIN_BIT
    data = (
        bytes((first,))
        + bytes(dcid)
        + (pn & ((1 << (8 * pn_length)) - 1)).to_bytes(pn_length, "big")
    )
    return _write(out, pos, data)


def decode_header(buf: Buffer, short_cid_length: int = DEFAULT_CID_LENGTH) -> Header:
    """Decode the header of the packet at the start of ``buf`` (see module docstring)."""
    buf = as_view(buf)
    size = len(buf)
    if size == 0:
        raise TruncatedError("empty datagram")
    if size > MAX_DATAGRAM_SIZE:
        raise FieldValueError(f"datagram of {size} bytes exceeds {MAX_DATAGRAM_SIZE}")
    first = buf[0]
    pn_length = (first & PN_LENGTH_MASK) + 1
    if not first & HEADER_FORM_LONG:
        return _decode_short(buf, first, pn_length, short_cid_length)

    if size < 5:
        raise TruncatedError("long header ends inside the version")
    version = int.from_bytes(buf[1:5], "big")
    if version and not first & FIXED_BIT:
        raise FieldValueError("fixed bit is 0")
    dcid, pos = _read_cid(buf, 5, size, "destination")
    scid, pos = _read_cid(buf, pos, size, "source")

    if version == 0:
        rest = size - pos
        if rest == 0 or rest % 4:
            raise TruncatedError("version list is empty or ends inside a version")
        versions = struct.unpack_from(f">{rest // 4}I", buf, pos)
        return Header(first, PACKET_TYPE_VERSION_NEGOTIATION, 0, dcid, scid, b"", 0,
                      pn_length, size, versions, b"")

    packet_type = (first & LONG_TYPE_MASK) >> LONG_TYPE_SHIFT
    if version not in SUPPORTED_VERSIONS:
        return Header(first, packet_type, version, dcid, scid, b"", 0, pn_length, size, (), b"")
    if packet_type == PacketType.RETRY:
        tag_start = size - RETRY_INTEGRITY_TAG_LENGTH
        if tag_start < pos:
            raise TruncatedError("RETRY ends inside the integrity tag")
        return Header(first, packet_type, version, dcid, scid, bytes(buf[pos:tag_start]), 0,
                      pn_length, size, (), bytes(buf[tag_start:]))
    if packet_type == PacketType.RESERVED:
        raise FieldValueError("reserved long packet type")

    token = b""
    if packet_type == PacketType.INITIAL:
        token_length, pos = read_varint(buf, pos, size)
        if token_length > size - pos:
            raise TruncatedError("INITIAL ends inside the token")
        token = bytes(buf[pos:pos + token_length])
        pos += token_length
    length, pos = read_varint(buf, pos, size)
    if length < pn_length + CRC_LENGTH:
        raise FieldValueError(f"length {length} leaves no room for packet number and CRC")
    if length > size - pos:
        raise TruncatedError(f"length {length} runs past the datagram")
    return Header(first, packet_type, version, dcid, scid, token, pos, pn_length,
                  pos + length, (), b"")


def _read_cid(buf: Buffer, pos: int, size: int, what: str) -> tuple[bytes, int]:
    if pos >= size:
        raise TruncatedError(f"header ends before the {what} CID length")
    cid_length = buf[pos]
    if cid_length > MAX_CID_LENGTH:
        raise FieldValueError(f"{what} CID length {cid_length} exceeds {MAX_CID_LENGTH}")
    start = pos + 1
    stop = start + cid_length
    if stop > size:
        raise TruncatedError(f"header ends inside the {what} CID")
    return bytes(buf[start:stop]), stop


def _decode_short(buf: Buffer, first: int, pn_length: int, cid_length: int) -> Header:
    if not first & FIXED_BIT:
        raise FieldValueError("fixed bit is 0")
    if not 0 <= cid_length <= MAX_CID_LENGTH:
        raise FieldValueError(f"short-header CID length {cid_length} is not 0..20")
    pn_offset = 1 + cid_length
    if pn_offset + pn_length > len(buf):
        raise TruncatedError("short header ends inside the CID or packet number")
    return Header(first, PACKET_TYPE_SHORT, 0, bytes(buf[1:pn_offset]), b"", b"", pn_offset,
                  pn_length, len(buf), (), b"")


# ---------------------------------------------------------- packet numbers ---
def packet_number_length(pn: int, largest_acked: int) -> int:
    """Bytes (1..4) to send ``pn`` with, given the largest acknowledged number (RFC 9000 A.2).

    The window must cover twice the unacknowledged range: with ``n = pn -
    largest_acked`` (or ``pn + 1`` when ``largest_acked == -1``), the result is the
    smallest ``b`` with ``2 * n <= 2 ** (8 * b)``.
    """
    if not 0 <= pn <= MAX_VARINT or not -1 <= largest_acked < pn:
        raise FieldValueError(f"packet number {pn} with largest acked {largest_acked}")
    unacked = pn - largest_acked  # also right for -1: pn + 1
    bits = (2 * unacked - 1).bit_length()
    length = (bits + 7) >> 3
    if length > 4:
        raise FieldValueError(f"{unacked} unacknowledged packets need more than 4 bytes")
    return max(length, 1)


def decode_packet_number(truncated: int, pn_length: int, largest_received: int) -> int:
    """Expand a ``pn_length``-byte packet number (RFC 9000 appendix A.3)."""
    if not 1 <= pn_length <= 4:
        raise FieldValueError(f"packet number length {pn_length} is not 1..4")
    window = 1 << (8 * pn_length)
    if not 0 <= truncated < window:
        raise FieldValueError(f"truncated packet number {truncated} needs > {pn_length} bytes")
    if not -1 <= largest_received <= MAX_VARINT:
        raise FieldValueError(f"largest received {largest_received} is out of range")
    expected = largest_received + 1
    half_window = window >> 1
    candidate = (expected & ~(window - 1)) | truncated
    if candidate <= expected - half_window and candidate < (1 << 62) - window:
        return candidate + window
    if candidate > expected + half_window and candidate >= window:
        return candidate - window
    return candidate


# ------------------------------------------------- packet-level fast paths ---
_ACK_TYPE = 0x02
_ACK_ECN_TYPE = 0x03
#: STREAM with the OFF bit and no LEN bit (| 0x01 for FIN): the frame is the
#: packet's last, its data runs to the end of the payload (2 bytes less)
_STREAM_OFF = 0x0C


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
    """Write a whole short-header data packet at ``out[0]``; return its length.

    ``fin``: bit 0 (or True) the FIN; bit 1 (``SEAL_COMPACT``) writes the
    compact STREAM frame instead (type ``0x38 | stream_id << 1 | FIN``, the
    low 24 bits of ``offset``; docs/wire-format.md 10.25), which needs
    ``stream_id`` < 4 (FieldValueError otherwise).

    The bytes are ``encode_short_header(out, 0, dcid, pn, pn_length)``, then --
    when ``ack_ranges`` is not None -- the ACK frame ``encode_frames`` writes for
    ``(ACK, ack_ranges[1], ack_delay, 0, 0, ack_ranges)`` (flat inclusive
    ``(low, high)`` pairs, highest first; an odd number of ints means the
    pairs plus the ECT(0), ECT(1) and CE counts, written as ACK_ECN), then a
    STREAM frame with the OFF bit and without the LEN bit -- it is the last
    frame, its data runs to the end of the payload -- (and FIN when ``fin``),
    then, when ``crc``, the big-endian CRC32C of
    everything before it. Failures come in that order, each frame's value checks
    (FieldValueError) before its room check (BufferTooSmallError); with ``crc``
    the frames must end 4 bytes before ``len(out)``.
    """
    pos = encode_short_header(out, 0, dcid, pn, pn_length)
    end = len(out) - CRC_LENGTH if crc else len(out)
    if ack_ranges is not None:
        if not isinstance(ack_ranges, (list, tuple)):
            ack_ranges = list(ack_ranges)
        largest = ack_ranges[1] if len(ack_ranges) >= 2 else 0
        ack_type = _ACK_ECN_TYPE if len(ack_ranges) & 1 else _ACK_TYPE
        head = write_ack_head(ack_type, largest, ack_delay, ack_ranges)
        stop = pos + len(head)
        if stop > end:
            raise BufferTooSmallError(f"ACK frame of {len(head)} bytes does not fit at {pos}")
        out[pos:stop] = head
        pos = stop
    if fin & SEAL_COMPACT:
        head, body = write_stream_compact_head(stream_id, offset, data, bool(fin & 1))
    else:
        frame_type = (_STREAM_OFF | 1) if fin & 1 else _STREAM_OFF
        head, body = write_stream_head(frame_type, stream_id, offset, data)
    head_stop = pos + len(head)
    stop = head_stop + len(body)
    if stop > end:
        raise BufferTooSmallError(f"STREAM frame of {stop - pos} bytes does not fit at {pos}")
    out[pos:head_stop] = head
    out[head_stop:stop] = body
    if not crc:
        return stop
    checksum = crc32c(memoryview(out)[:stop])
    out[stop:stop + CRC_LENGTH] = checksum.to_bytes(CRC_LENGTH, "big")
    return stop + CRC_LENGTH


def open_short_packet(
    buf: Buffer, dcid: Buffer, decoder: FrameDecoder, crc: bool = True
) -> tuple[int, int, int, int]:
    """Check a whole short-header datagram and decode its frames into ``decoder``.

    Returns ``(first_byte, truncated_pn, pn_length, frame_count)``. Checks, in
    order: empty buffer (TruncatedError) or one over ``MAX_DATAGRAM_SIZE``
    (FieldValueError); the form bit must be 0 and the fixed bit 1, and
    ``len(dcid)`` at most 20 (FieldValueError); the DCID and packet number must
    fit (TruncatedError); the ``len(dcid)`` bytes after byte 0 must equal
    ``dcid`` (ForeignPacketError); with ``crc``, the 4 bytes after the packet
    number must exist (TruncatedError) and the last 4 bytes must be the
    big-endian CRC32C of the rest (ChecksumError). Then the frames between the
    packet number and the trailer are decoded as by ``decoder.decode(buf, start,
    end)``, with its errors.
    """
    buf = as_view(buf)
    if type(dcid) is not bytes:
        dcid = bytes(as_view(dcid))
    size = len(buf)
    if size == 0:
        raise TruncatedError("empty datagram")
    if size > MAX_DATAGRAM_SIZE:
        raise FieldValueError(f"datagram of {size} bytes exceeds {MAX_DATAGRAM_SIZE}")
    first = buf[0]
    if first & (HEADER_FORM_LONG | FIXED_BIT) != FIXED_BIT:
        raise FieldValueError("not a short header (form bit 1 or fixed bit 0)")
    cid_length = len(dcid)
    if cid_length > MAX_CID_LENGTH:
        raise FieldValueError(f"short-header CID length {cid_length} is not 0..20")
    pn_length = (first & PN_LENGTH_MASK) + 1
    pn_offset = 1 + cid_length
    pn_end = pn_offset + pn_length
    if pn_end > size:
        raise TruncatedError("short header ends inside the CID or packet number")
    if buf[1:pn_offset] != dcid:
        raise ForeignPacketError("destination CID is not this connection's")
    end = size
    if crc:
        end = size - CRC_LENGTH
        if end < pn_end:
            raise TruncatedError("packet ends inside the CRC32C trailer")
        if crc32c(buf[:end]) != int.from_bytes(buf[end:size], "big"):
            raise ChecksumError("CRC32C trailer does not match")
    truncated_pn = int.from_bytes(buf[pn_offset:pn_end], "big")
    return first, truncated_pn, pn_length, decoder.decode(buf, pn_end, end)
