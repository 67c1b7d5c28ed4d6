"""Wire codec: varints, packet headers, frames and CRC32C, with two backends.

How this works
--------------
``codec_pure`` is the reference implementation in pure Python; it defines the
behaviour. ``codec_native`` wraps the C99 code in ``csrc/`` (compiled through
cffi, out-of-line API mode, into ``transport._native``) behind the identical
API. ``TRANSPORT_BACKEND`` picks one when this package is first imported:

* ``native`` (default): the C backend. If the compiled module is missing this
  import fails loudly with :class:`transport.errors.BackendUnavailableError`.
* ``pure``: the pure-Python backend, always available.

``transport.wire.backend`` names the backend in use. Both backends raise only
:class:`transport.errors.WireError` subclasses for bad input.

Public API (both backends)
--------------------------
``crc32c(data, value=0) -> int``
``varint_size(value) -> int``; ``encode_varint(value) -> bytes``;
``decode_varint(buf, pos) -> (value, next_pos)``
``encode_long_header(out, pos, packet_type, version, dcid, scid, token, pn, pn_length,
length) -> pos``
``encode_short_header(out, pos, dcid, pn, pn_length, key_phase=0, spin=0) -> pos``
``decode_header(buf, short_cid_length) -> Header``
``packet_number_length(pn, largest_acked) -> int``;
``decode_packet_number(truncated, pn_length, largest) -> int``
``FrameDecoder(max_frames, max_ranges)`` with ``.decode(buf, start=0, end=-1) -> count``,
``.frames[i]`` (records with ``type a b c d data_off data_len``) and ``.ranges[j]``
``encode_frames(frames, out, pos, end) -> pos``
``decode_frames(buf, start=0, end=-1) -> list[tuple]`` (convenience, slow path)

Packet-level fast paths (one C call each on the native backend):
``seal_stream_packet(out, dcid, pn, pn_length, ack_ranges, ack_delay, stream_id, offset,
data, fin, crc=True) -> length``: short header + optional ACK (ACK_ECN when
``ack_ranges`` holds an odd number of ints: the ranges, then the ECT(0), ECT(1), CE
counts) + STREAM(OFF[|FIN], no LEN) + CRC32C trailer, byte-identical to the generic encoders;
``fin`` bit 1 (``SEAL_COMPACT``) writes the compact STREAM frame instead (0x38..0x3f, stream
IDs 0..3, the offset's low 24 bits; docs/wire-format.md 10.25, ``transport.wire.compact``).
``open_short_packet(buf, dcid, decoder, crc=True) -> (first_byte, truncated_pn,
pn_length, frame_count)``: checks form/fixed bits, DCID (ForeignPacketError) and the
CRC32C trailer (ChecksumError), then decodes the frames into ``decoder``.
"""

from __future__ import annotations

import os

from transport.errors import BackendUnavailableError

_requested = os.environ.get("TRANSPORT_BACKEND", "native").strip().lower() or "native"
if _requested not in ("native", "pure"):
    raise BackendUnavailableError(
        f"TRANSPORT_BACKEND must be 'native' or 'pure', not {_requested!r}"
    )

if _requested == "pure":
    from transport.wire import codec_pure as codec
else:
    try:
        from transport.wire import codec_native as codec  # type: ignore[no-redef]
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise BackendUnavailableError(
            "the native codec (transport._native) is not built: reinstall the package "
            "with a C compiler available (pip install .), or set TRANSPORT_BACKEND=pure "
            f"to use the pure-Python codec ({exc})"
        ) from exc

backend: str = _requested

crc32c = codec.crc32c
varint_size = codec.varint_size
encode_varint = codec.encode_varint
decode_varint = codec.decode_varint
encode_long_header = codec.encode_long_header
encode_short_header = codec.encode_short_header
decode_header = codec.decode_header
Header = codec.Header
packet_number_length = codec.packet_number_length
decode_packet_number = codec.decode_packet_number
FrameDecoder = codec.FrameDecoder
encode_frames = codec.encode_frames
decode_frames = codec.decode_frames
seal_stream_packet = codec.seal_stream_packet
open_short_packet = codec.open_short_packet

__all__ = [
    "FrameDecoder",
    "Header",
    "backend",
    "codec",
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
