"""Whole protected 1-RTT data packets in one call: codec + AEAD fused (C and pure twins).

How this works
--------------
On the native backend the AEAD runs in C (``csrc/aead.c``, OpenSSL libcrypto
EVP) instead of per packet through the ``cryptography`` package:

* :class:`NativeAead` owns one key generation's C context (``tp_aead``: an
  encrypt and a decrypt ``EVP_CIPHER_CTX`` keyed once). It is freed when the
  object is collected (``ffi.gc``) or at once by :meth:`NativeAead.release`
  (key update, connection close). ``seal`` / ``open`` have the exact
  behaviour of ``cryptography``'s ``AESGCM`` / ``ChaCha20Poly1305`` with the
  nonce of docs/wire-format.md section 9.2.
* :func:`seal_stream_packet` builds a short-header packet with an optional
  ACK and one STREAM frame (``codec.seal_stream_packet`` without the CRC
  trailer), sets the key phase bit and seals the payload in place: one C call.
* :class:`PacketOpener` (one per connection; it owns the plaintext scratch
  buffer) checks a short-header packet, recovers its packet number, opens it
  and decodes its frames into a ``FrameDecoder``: one C call.

Runs of packets (many in one C call, each way) are in
:mod:`transport.crypto.packet_runs`.

The ``*_pure`` functions are the reference behaviour, built from
``codec_pure`` and ``PacketProtection`` with the ``cryptography`` backend;
tests/test_aead_native.py compares the two byte for byte, and the connection
uses the pure path whenever ``TRANSPORT_BACKEND=pure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from transport.errors import DecryptionError, FieldValueError, RemoteProtocolError, WireError
from transport.wire import backend as _backend
from transport.wire import codec_pure as _pure
from transport.wire import decode_packet_number
from transport.wire.constants import (
    AEAD_TAG_LENGTH,
    FIXED_BIT,
    KEY_PHASE_BIT,
    PN_LENGTH_MASK,
    ErrorCode,
)

if TYPE_CHECKING:
    from transport.crypto.aead import PacketProtection
    from transport.security import KeySchedule

__all__ = [
    "NATIVE_AVAILABLE",
    "NativeAead",
    "PacketOpener",
    "PacketSealer",
    "live_contexts",
    "open_short_packet_pure",
    "seal_stream_packet",
    "seal_stream_packet_pure",
]

_codec: Any = None
if _backend == "native":
    from transport.wire import codec_native as _codec

#: True when the C AEAD is in use (the native codec backend).
NATIVE_AVAILABLE = _codec is not None
_MAX_PN = (1 << 62) - 1


def live_contexts() -> int:
    """C AEAD contexts alive in this process (0 on the pure backend)."""
    return int(_codec.lib.tp_aead_live()) if _codec is not None else 0


class NativeAead:
    """One direction's key generation in C: ``seal`` / ``open`` like ``AESGCM``."""

    __slots__ = ("_ctx",)

    def __init__(self, aead_id: int, key: bytes, iv: bytes) -> None:
        if _codec is None:  # pragma: no cover - callers check NATIVE_AVAILABLE
            raise RuntimeError("the native backend is not in use")
        lib, ffi = _codec.lib, _codec.ffi
        self._ctx: Any = None
        ctx = lib.tp_aead_new(aead_id, key, len(key), iv, len(iv))
        if ctx == ffi.NULL:
            raise MemoryError("tp_aead_new failed (unknown AEAD or key length)")
        # a plain pointer freed by release() or __del__ (ffi.gc would add an
        # 80-byte owner object per key generation)
        self._ctx = ctx

    @property
    def ctx(self) -> Any:
        return self._ctx

    def release(self) -> None:
        """Free the C context now (the object must not be used afterwards)."""
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            _codec.lib.tp_aead_free(ctx)

    def __del__(self, _free: Any = _codec.lib.tp_aead_free if _codec is not None else None
                ) -> None:
        # _free is bound at definition: module globals may be gone at shutdown
        ctx = getattr(self, "_ctx", None)  # (unset if __init__ raised early)
        if ctx is not None:
            self._ctx = None
            _free(ctx)

    def seal(self, packet_number: int, header: bytes, payload: bytes | memoryview) -> bytes:
        """Ciphertext || tag; ``header`` is the associated data."""
        if not 0 <= packet_number <= _MAX_PN:
            raise FieldValueError("packet number out of range 0..2**62-1")
        ffi = _codec.ffi
        out = bytearray(len(payload) + AEAD_TAG_LENGTH)
        src = payload if type(payload) is bytes else ffi.from_buffer(payload)
        n = _codec.lib.tp_aead_seal(self._ctx, packet_number, header, len(header), src,
                                    len(payload), ffi.from_buffer(out), len(out))
        if n < 0:  # pragma: no cover - only on OpenSSL failure
            raise RuntimeError(f"tp_aead_seal failed ({n})")
        return bytes(out)

    def open(self, packet_number: int, header: bytes, ciphertext: bytes | memoryview
             ) -> bytes | None:
        """Plaintext, or None when it does not authenticate."""
        if not 0 <= packet_number <= _MAX_PN:
            raise FieldValueError("packet number out of range 0..2**62-1")
        ffi = _codec.ffi
        size = len(ciphertext)
        if size < AEAD_TAG_LENGTH:
            return None
        out = bytearray(size - AEAD_TAG_LENGTH)
        src = ciphertext if type(ciphertext) is bytes else ffi.from_buffer(ciphertext)
        dst = ffi.from_buffer(out) if out else ffi.NULL
        n = _codec.lib.tp_aead_open(self._ctx, packet_number, header, len(header), src, size,
                                    dst, len(out))
        if n < 0:
            return None
        return bytes(out)


# ------------------------------------------------------------------- seal ---
def seal_stream_packet(
    protection: PacketProtection, out: bytearray, dcid: bytes, pn: int, pn_length: int,
    ack_ranges: Sequence[int] | None, ack_delay: int, stream_id: int, offset: int,
    data: bytes | memoryview, fin: bool | int,
) -> int:
    """Header + [ACK] + STREAM sealed with ``protection`` into ``out[0:]``; returns
    the packet length. Counts the packet against the confidentiality limit."""
    protection.check_seal_allowed()
    native = protection.native
    if native is None:
        return seal_stream_packet_pure(protection, out, dcid, pn, pn_length, ack_ranges,
                                       ack_delay, stream_id, offset, data, fin)
    codec = _codec
    ffi = codec.ffi
    cout = ffi.from_buffer(out)
    if type(data) is not bytes:
        data = ffi.from_buffer(data)
    try:
        if ack_ranges is None:
            result = codec.lib.tp_seal_stream_packet_aead(
                native._ctx, cout, len(out), dcid, len(dcid), pn, pn_length, ffi.NULL, 0, 0, 0,
                stream_id, offset, data, len(data), int(fin), protection.key_phase)
        else:
            n = len(ack_ranges)
            if n > codec._ACK_INTS:
                raise OverflowError
            pool = codec._range_pool
            ranges = pool.pop() if pool else codec._RangeArray()
            codec._PACK_INTS[n](ranges.raw, 0, *ack_ranges)
            result = codec.lib.tp_seal_stream_packet_aead(
                native._ctx, cout, len(out), dcid, len(dcid), pn, pn_length, ranges.pointer, n,
                1, ack_delay, stream_id, offset, data, len(data), int(fin),
                protection.key_phase)
            pool.append(ranges)
    except codec._ABI_ERRORS:
        return seal_stream_packet_pure(protection, out, dcid, pn, pn_length, ack_ranges,
                                       ack_delay, stream_id, offset, data, fin)
    if result < 0:
        codec._raise(result, "the packet")
    protection.sealed_count += 1
    return int(result)


def seal_stream_packet_pure(
    protection: PacketProtection, out: bytearray, dcid: bytes, pn: int, pn_length: int,
    ack_ranges: Sequence[int] | None, ack_delay: int, stream_id: int, offset: int,
    data: bytes | memoryview, fin: bool | int,
) -> int:
    """The reference: ``codec_pure.seal_stream_packet`` (no CRC) + ``protection.seal``
    through ``cryptography``."""
    room = max(len(out) - AEAD_TAG_LENGTH, 0)
    with memoryview(out) as view:
        size = _pure.seal_stream_packet(view[:room], dcid, pn, pn_length, ack_ranges,
                                        ack_delay, stream_id, offset, data, fin, False)
    if protection.key_phase:
        out[0] |= KEY_PHASE_BIT
    header_end = 1 + len(dcid) + pn_length
    sealed = protection.seal_python(bytes(out[:header_end]), bytes(out[header_end:size]), pn)
    out[header_end : header_end + len(sealed)] = sealed
    protection.sealed_count += 1
    return header_end + len(sealed)


# ------------------------------------------------------------------- runs ---
#: Most packets one ``seal_stream_run`` call builds (a GSO batch; see
#: :mod:`transport.crypto.packet_runs`).
RUN_MAX_PACKETS = 64


# ------------------------------------------------------------------- open ---
class PacketSealer:
    """Seals STREAM packets into one reused buffer (one per packetizer): the
    lean per-packet form of :func:`seal_stream_packet` (and, for
    security="none", of ``codec.seal_stream_packet`` with its CRC trailer) for
    the send loop."""

    __slots__ = ("_buf", "_cap", "_cbuf", "_run_lengths", "_run_sizes", "_view")

    def __init__(self, buffer: bytearray | None = None) -> None:
        """``buffer``: the scratch memory packets are built in (the packetizer
        shares its own; it must not be resized while the sealer lives)."""
        if _codec is None:  # pragma: no cover - callers check NATIVE_AVAILABLE
            raise RuntimeError("the native backend is not in use")
        self._buf = buffer if buffer is not None else bytearray(65536)
        self._cap = len(self._buf)
        self._cbuf = _codec.ffi.from_buffer(self._buf)
        self._view = memoryview(self._buf)
        self._run_sizes = _codec.ffi.new("uint32_t[]", RUN_MAX_PACKETS)
        self._run_lengths = _codec.ffi.new("uint32_t[]", RUN_MAX_PACKETS)

    def seal(self, protection: PacketProtection, dcid: bytes, pn: int, pn_length: int,
             ack_ranges: Sequence[int] | None, ack_delay: int, stream_id: int, offset: int,
             data: bytes | memoryview, fin: bool | int) -> bytes:
        """The sealed packet (``protection.native`` must be set)."""
        if protection.sealed_count >= protection.confidentiality_limit:
            protection.check_seal_allowed()  # raises
        codec = _codec
        seal_c = codec.lib.tp_seal_stream_packet_aead
        ctx = protection.native._ctx  # type: ignore[union-attr]
        phase = protection.generation & 1
        try:
            cdata = data if type(data) is bytes else codec.ffi.from_buffer(data)
            if ack_ranges is None:
                result = seal_c(ctx, self._cbuf, self._cap, dcid, len(dcid), pn, pn_length,
                                codec.ffi.NULL, 0, 0, 0, stream_id, offset, cdata, len(data),
                                int(fin), phase)
            else:
                n = len(ack_ranges)
                if n > codec._ACK_INTS:
                    raise OverflowError
                pool = codec._range_pool
                ranges = pool.pop() if pool else codec._RangeArray()
                codec._PACK_INTS[n](ranges.raw, 0, *ack_ranges)
                result = seal_c(ctx, self._cbuf, self._cap, dcid, len(dcid), pn, pn_length,
                                ranges.pointer, n, 1, ack_delay, stream_id, offset, cdata,
                                len(data), int(fin), phase)
                pool.append(ranges)
        except codec._ABI_ERRORS:
            out = bytearray(self._cap)
            size = seal_stream_packet_pure(protection, out, dcid, pn, pn_length, ack_ranges,
                                           ack_delay, stream_id, offset, data, fin)
            return bytes(out[:size])
        if result < 0:
            codec._raise(result, "the packet")
        protection.sealed_count += 1
        return bytes(self._view[:result])


    def run_direct(self) -> tuple[Any, Any, int, memoryview, Any, Any, Any, Any, Any]:
        """``(tp_seal_stream_run, C view of the buffer, its capacity, memoryview
        of it, sizes array, lengths array, ffi.from_buffer, NULL, ffi.unpack)``
        for a send loop that seals runs (:func:`seal_stream_run`) into this
        sealer's buffer itself; the arrays hold :data:`RUN_MAX_PACKETS` entries."""
        ffi = _codec.ffi
        return (_codec.lib.tp_seal_stream_run, self._cbuf, self._cap, self._view,
                self._run_sizes, self._run_lengths, ffi.from_buffer, ffi.NULL, ffi.unpack)

    def byte_slicer(self) -> Any:
        """A cffi buffer over this sealer's buffer: ``slicer[a:b]`` is a ``bytes``
        copy of ``buffer[a:b]`` in one step (``bytes(memoryview[a:b])`` makes a
        memoryview object first: about twice the cost per packet)."""
        return _codec.ffi.buffer(self._cbuf)

    def direct(self) -> tuple[Any, Any, Any, memoryview, Any]:
        """``(tp_seal_stream_packet, tp_seal_stream_packet_aead, C view of the
        buffer, memoryview of it, NULL)`` for a send loop that makes the C calls
        of :meth:`seal_crc` / :meth:`seal` itself for packets without an ACK."""
        lib = _codec.lib
        return (lib.tp_seal_stream_packet, lib.tp_seal_stream_packet_aead, self._cbuf,
                self._view, _codec.ffi.NULL)

    def seal_crc(self, dcid: bytes, pn: int, pn_length: int, ack_ranges: Sequence[int] | None,
                 ack_delay: int, stream_id: int, offset: int, data: bytes | memoryview,
                 fin: bool | int) -> bytes:
        """``codec.seal_stream_packet(..., crc=True)`` (security="none") as bytes."""
        codec = _codec
        seal_c = codec.lib.tp_seal_stream_packet
        try:
            cdata = data if type(data) is bytes else codec.ffi.from_buffer(data)
            if ack_ranges is None:
                result = seal_c(self._cbuf, self._cap, dcid, len(dcid), pn, pn_length,
                                codec.ffi.NULL, 0, 0, 0, stream_id, offset, cdata, len(data),
                                int(fin), 1)
            else:
                n = len(ack_ranges)
                if n > codec._ACK_INTS:
                    raise OverflowError
                pool = codec._range_pool
                ranges = pool.pop() if pool else codec._RangeArray()
                codec._PACK_INTS[n](ranges.raw, 0, *ack_ranges)
                result = seal_c(self._cbuf, self._cap, dcid, len(dcid), pn, pn_length,
                                ranges.pointer, n, 1, ack_delay, stream_id, offset, cdata,
                                len(data), int(fin), 1)
                pool.append(ranges)
        except codec._ABI_ERRORS:
            out = bytearray(self._cap)
            size = _pure.seal_stream_packet(out, dcid, pn, pn_length, ack_ranges, ack_delay,
                                            stream_id, offset, data, fin, True)
            return bytes(out[:size])
        if result < 0:
            codec._raise(result, "the packet")
        return bytes(self._view[:result])


class PacketOpener:
    """Opens 1-RTT packets of one connection in one C call each (see module doc).

    After a successful :meth:`open`, ``pn`` is the packet number, ``first`` the
    first byte and ``payload`` a memoryview of the plaintext (valid until the
    next call)."""

    __slots__ = ("_cap", "_out", "_plain", "_plain_c", "_view", "first", "payload", "pn")

    #: :meth:`open` result: the packet is of the other key phase (take the
    #: key-update path).
    OTHER_PHASE = -1

    def __init__(self) -> None:
        if _codec is None:  # pragma: no cover - callers check NATIVE_AVAILABLE
            raise RuntimeError("the native backend is not in use")
        self._out = _codec.ffi.new("uint64_t[3]")
        self.pn = -1
        self.first = 0
        self._grow(1500)

    def _grow(self, size: int) -> None:
        self._cap = max(size, 1500)
        self._plain = bytearray(self._cap)
        self._plain_c = _codec.ffi.from_buffer(self._plain)
        self._view = memoryview(self._plain)
        self.payload = self._view[:0]

    def direct(self) -> tuple[Any, Any, int, memoryview, Any]:
        """``(tp_open_short_packet_aead, C view of the plaintext buffer, its
        capacity, memoryview of it, uint64_t[3] out)`` for a receive loop that
        makes :meth:`open`'s C call itself (datagrams up to that capacity)."""
        return (_codec.lib.tp_open_short_packet_aead, self._plain_c, self._cap, self._view,
                self._out)

    def open(self, keys: KeySchedule, data: bytes, dcid: bytes, decoder: Any,
             expected_pn: int) -> int:
        """Open ``data`` with ``keys.recv_current``; return the frame count, or
        OTHER_PHASE. Raises WireError (not a packet for us), DecryptionError (does
        not authenticate; counted in ``failed_open_count``) and RemoteProtocolError
        (authenticated, but its frames do not decode)."""
        current = keys.recv_current
        size = len(data)
        if size > self._cap:
            self._grow(size)
        out = self._out
        status = _codec.lib.tp_open_short_packet_aead(
            decoder._dec, current.native._ctx, data, size, dcid, len(dcid),  # type: ignore[union-attr]
            expected_pn, current.generation & 1, self._plain_c, self._cap, out)
        if status >= 0:
            pn = self.pn = out[0]
            self.first = out[1]
            self.payload = self._view[: out[2]]
            if pn > keys.largest_opened_current:
                keys.largest_opened_current = pn
            return int(status)
        return self._failed(status, current, keys)

    def _failed(self, status: int, current: PacketProtection, keys: KeySchedule) -> int:
        lib = _codec.lib
        if status == lib.TP_ERR_KEY_PHASE:
            return self.OTHER_PHASE
        if status == lib.TP_ERR_AUTH:
            current.failed_open_count += 1
            raise DecryptionError("packet failed AEAD authentication")
        if status == lib.TP_ERR_FIELD_VALUE:
            raise WireError("not a 1-RTT packet for this connection")
        if status == lib.TP_ERR_TRUNCATED:
            raise WireError("1-RTT packet too short")
        # authenticated, but the frames do not decode
        pn = self._out[0]
        if pn > keys.largest_opened_current:
            keys.largest_opened_current = pn
        try:
            _codec._raise(status + lib.TP_ERR_FRAMES_OFFSET, "a frame")
        except WireError as exc:
            raise RemoteProtocolError(ErrorCode.FRAME_ENCODING_ERROR, str(exc)) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def open_short_packet_pure(
    protection: PacketProtection, data: bytes, dcid: bytes, decoder: Any, expected_pn: int,
) -> tuple[int, int, int, bytes]:
    """The reference of :meth:`PacketOpener.open` for one key generation:
    ``(frame_count, packet_number, first_byte, plaintext)``; raises like it, and
    returns frame count -1 (OTHER_PHASE) for a packet of the other key phase."""
    cid_end = 1 + len(dcid)
    first = data[0] if data else 0
    if not data or not first & FIXED_BIT or data[1:cid_end] != dcid:
        raise WireError("not a 1-RTT packet for this connection")
    pn_length = (first & PN_LENGTH_MASK) + 1
    header_end = cid_end + pn_length
    if len(data) < header_end + AEAD_TAG_LENGTH + 1:
        raise WireError("1-RTT packet too short")
    truncated = int.from_bytes(data[cid_end:header_end], "big")
    pn = decode_packet_number(truncated, pn_length, expected_pn - 1)
    if (1 if first & KEY_PHASE_BIT else 0) != protection.key_phase:
        return PacketOpener.OTHER_PHASE, pn, first, b""
    payload = protection.open_python(data[:header_end], memoryview(data)[header_end:], pn)
    try:
        count = decoder.decode(payload, 0, len(payload))
    except WireError as exc:
        raise RemoteProtocolError(ErrorCode.FRAME_ENCODING_ERROR, str(exc)) from exc
    return count, pn, first, payload
