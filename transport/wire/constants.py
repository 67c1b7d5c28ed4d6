"""Wire-format constants: packet types, frame types, field layout, error codes.

How this works
--------------
This module is the single source of the numbers that ``docs/wire-format.md``
describes in prose. Both codec backends (pure Python in ``codec_pure`` and C in
``csrc/codec.c``) decode a datagram's frames into a *compact record* per frame:

    (type, a, b, c, d, data_off, data_len)

``type`` is the frame type as it appeared on the wire; ``a``..``d`` are the
frame's integer fields in the order given by ``FRAME_FIELDS`` below; ``data_off``
and ``data_len`` locate the frame's variable-length body (stream data, reason
phrase, token, ...) inside the decoded buffer, so no bytes are copied while
decoding. ACK-like frames (ACK, ACK_ECN, FEC_RECOVERED) put their ranges in a
separate integer array: ``c`` is the index of the first range there and ``d`` the
number of ranges; each range is a pair ``(low, high)`` of absolute packet
numbers, inclusive, highest range first. ACK_ECN's three counters (ECT0, ECT1,
CE) follow its ranges in the same array.

Encoding takes the same shape: a frame spec is ``(type, a, b, c, d, body)``
where ``body`` is a bytes-like object for frames with a body, a flat sequence of
ints ``[low0, high0, low1, high1, ...(, ect0, ect1, ce)]`` for ACK-like frames
(``c`` and ``d`` are ignored there), and ``None`` otherwise.
"""

from __future__ import annotations

from enum import IntEnum

# --------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------
#: The only version this implementation speaks ("TRP" + 1).
VERSION_1 = 0x54525001
#: Version value that marks a version-negotiation packet.
VERSION_NEGOTIATION = 0x00000000
SUPPORTED_VERSIONS = (VERSION_1,)

# --------------------------------------------------------------------------
# Packet header
# --------------------------------------------------------------------------
HEADER_FORM_LONG = 0x80  # first byte bit 7
FIXED_BIT = 0x40  # first byte bit 6, always 1 (datagrams without it are dropped)
# long header: bits 5-4 carry the packet type, bits 3-2 reserved (0), bits 1-0 = pn length - 1
LONG_TYPE_MASK = 0x30
LONG_TYPE_SHIFT = 4
# short header: bit 5 spin, bits 4-3 reserved (0), bit 2 key phase, bits 1-0 = pn length - 1
SPIN_BIT = 0x20
RESERVED_SHORT_MASK = 0x18
RESERVED_LONG_MASK = 0x0C
KEY_PHASE_BIT = 0x04
PN_LENGTH_MASK = 0x03

MAX_CID_LENGTH = 20
DEFAULT_CID_LENGTH = 8
#: Length of the trailing CRC32C in packets that carry one (long headers always,
#: short headers when security="none").
CRC_LENGTH = 4
#: AEAD tag length for protected short-header packets.
AEAD_TAG_LENGTH = 16
STATELESS_RESET_TOKEN_LENGTH = 16
#: Smallest datagram that carries a client INITIAL (padding enforced).
MIN_INITIAL_DATAGRAM_SIZE = 1200
#: Largest UDP payload the codec accepts.
MAX_DATAGRAM_SIZE = 65527
RETRY_INTEGRITY_TAG_LENGTH = 16
PATH_CHALLENGE_LENGTH = 8


class PacketType(IntEnum):
    """Long-header packet types (value of first-byte bits 5-4)."""

    INITIAL = 0
    HANDSHAKE = 1
    RETRY = 2
    RESERVED = 3


# Not on the wire: how decoded headers report a short-header (1-RTT) packet.
PACKET_TYPE_SHORT = 0xFF
PACKET_TYPE_VERSION_NEGOTIATION = 0xFE


# --------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------
class FrameType(IntEnum):
    PADDING = 0x00
    PING = 0x01
    ACK = 0x02
    ACK_ECN = 0x03
    RESET_STREAM = 0x04
    STOP_SENDING = 0x05
    CRYPTO = 0x06
    NEW_TOKEN = 0x07
    STREAM = 0x08  # 0x08..0x0f: bit 0x04 OFF, 0x02 LEN, 0x01 FIN
    MAX_DATA = 0x10
    MAX_STREAM_DATA = 0x11
    MAX_STREAMS_BIDI = 0x12
    MAX_STREAMS_UNI = 0x13
    DATA_BLOCKED = 0x14
    STREAM_DATA_BLOCKED = 0x15
    STREAMS_BLOCKED_BIDI = 0x16
    STREAMS_BLOCKED_UNI = 0x17
    NEW_CONNECTION_ID = 0x18
    RETIRE_CONNECTION_ID = 0x19
    PATH_CHALLENGE = 0x1A
    PATH_RESPONSE = 0x1B
    CONNECTION_CLOSE = 0x1C
    APPLICATION_CLOSE = 0x1D
    HANDSHAKE_DONE = 0x1E
    ACK_FREQUENCY = 0x20
    FEC_SOURCE = 0x21
    REPAIR = 0x22
    FEC_RECOVERED = 0x23
    DATAGRAM = 0x30  # no length: runs to the end of the packet
    DATAGRAM_LEN = 0x31
    STREAM_COMPACT = 0x38  # 0x38..0x3f: (stream_id << 1) | FIN; needs COMPACT_STREAM



STREAM_FLAG_OFF = 0x04
STREAM_FLAG_LEN = 0x02
STREAM_FLAG_FIN = 0x01
STREAM_TYPE_MIN = 0x08
STREAM_TYPE_MAX = 0x0F
#: Compact STREAM frames (docs/wire-format.md 10.25): type 0x38 | (stream_id << 1) | FIN
#: for stream IDs 0..3, a 3-byte truncated offset, data to the end of the payload.
STREAM_COMPACT_MIN = 0x38
STREAM_COMPACT_MAX = 0x3F
COMPACT_STREAM_ID_LIMIT = 4
COMPACT_OFFSET_BYTES = 3
COMPACT_OFFSET_WINDOW = 1 << 24  # the truncated offset's range
COMPACT_OFFSET_HALF = 1 << 23  # a sender keeps offsets within this of the receiver's reference
#: Frame header of a compact STREAM frame: type byte + truncated offset.
COMPACT_FRAME_OVERHEAD = 1 + COMPACT_OFFSET_BYTES
#: The seal fast paths' ``fin`` argument: bit 0 FIN, this bit = write the compact frame.
SEAL_COMPACT = 0x02

#: Integer fields per frame type, in the order they fill a, b, c, d, and whether
#: the frame has a body. Varint fields are QUIC-style variable-length integers.
#: The layout on the wire for every type is given in docs/wire-format.md.
FRAME_FIELDS: dict[int, tuple[tuple[str, ...], bool]] = {
    FrameType.PADDING: (("run_length",), False),  # a = bytes of consecutive padding
    FrameType.PING: ((), False),
    FrameType.ACK: (("largest", "ack_delay", "ranges_index", "range_count"), False),
    FrameType.ACK_ECN: (("largest", "ack_delay", "ranges_index", "range_count"), False),
    FrameType.RESET_STREAM: (("stream_id", "error_code", "final_size"), False),
    FrameType.STOP_SENDING: (("stream_id", "error_code"), False),
    FrameType.CRYPTO: (("offset",), True),
    FrameType.NEW_TOKEN: ((), True),
    FrameType.STREAM: (("stream_id", "offset"), True),  # FIN is type & 1
    FrameType.MAX_DATA: (("maximum",), False),
    FrameType.MAX_STREAM_DATA: (("stream_id", "maximum"), False),
    FrameType.MAX_STREAMS_BIDI: (("maximum",), False),
    FrameType.MAX_STREAMS_UNI: (("maximum",), False),
    FrameType.DATA_BLOCKED: (("limit",), False),
    FrameType.STREAM_DATA_BLOCKED: (("stream_id", "limit"), False),
    FrameType.STREAMS_BLOCKED_BIDI: (("limit",), False),
    FrameType.STREAMS_BLOCKED_UNI: (("limit",), False),
    # body = connection ID (1..20 bytes) followed by the 16-byte reset token;
    # data_len covers both, c = connection-ID length
    FrameType.NEW_CONNECTION_ID: (("sequence", "retire_prior_to", "cid_length"), True),
    FrameType.RETIRE_CONNECTION_ID: (("sequence",), False),
    FrameType.PATH_CHALLENGE: ((), True),  # body is exactly 8 bytes
    FrameType.PATH_RESPONSE: ((), True),
    FrameType.CONNECTION_CLOSE: (("error_code", "frame_type"), True),  # body = reason
    FrameType.APPLICATION_CLOSE: (("error_code",), True),  # body = reason
    FrameType.HANDSHAKE_DONE: ((), False),
    FrameType.ACK_FREQUENCY: (("sequence", "ack_eliciting_threshold", "max_ack_delay_us"), False),
    FrameType.FEC_SOURCE: (("block_id", "index"), False),
    # body = repair symbol; a = block, b = source symbols k, c = repair symbols m,
    # d = this symbol's repair index (0..m-1)
    FrameType.REPAIR: (("block_id", "k", "m", "repair_index"), True),
    FrameType.FEC_RECOVERED: (("largest", "unused", "ranges_index", "range_count"), False),
    FrameType.DATAGRAM: ((), True),
    FrameType.DATAGRAM_LEN: ((), True),
    # a = stream ID (from the type byte), b = the low 24 bits of the offset; the
    # receiver rebuilds the offset (transport.wire.compact.decode_compact_offset)
    FrameType.STREAM_COMPACT: (("stream_id", "truncated_offset"), True),
}

ACK_LIKE_TYPES = frozenset({FrameType.ACK, FrameType.ACK_ECN, FrameType.FEC_RECOVERED})
#: Frames whose receipt obliges the peer to acknowledge the packet.
NON_ACK_ELICITING_TYPES = frozenset(
    {FrameType.PADDING, FrameType.ACK, FrameType.ACK_ECN, FrameType.CONNECTION_CLOSE,
     FrameType.APPLICATION_CLOSE}
)

#: Upper bound on frames in one datagram and ranges in one ACK the decoders accept.
MAX_FRAMES_PER_PACKET = 256
MAX_ACK_RANGES = 256
MAX_VARINT = (1 << 62) - 1


# --------------------------------------------------------------------------
# Transport error codes (CONNECTION_CLOSE error_code)
# --------------------------------------------------------------------------
class ErrorCode(IntEnum):
    NO_ERROR = 0x00
    INTERNAL_ERROR = 0x01
    CONNECTION_REFUSED = 0x02
    FLOW_CONTROL_ERROR = 0x03
    STREAM_LIMIT_ERROR = 0x04
    STREAM_STATE_ERROR = 0x05
    FINAL_SIZE_ERROR = 0x06
    FRAME_ENCODING_ERROR = 0x07
    TRANSPORT_PARAMETER_ERROR = 0x08
    CONNECTION_ID_LIMIT_ERROR = 0x09
    PROTOCOL_VIOLATION = 0x0A
    INVALID_TOKEN = 0x0B
    APPLICATION_ERROR = 0x0C
    CRYPTO_BUFFER_EXCEEDED = 0x0D
    KEY_UPDATE_ERROR = 0x0E
    AEAD_LIMIT_REACHED = 0x0F
    NO_VIABLE_PATH = 0x10
    HANDSHAKE_FAILED = 0x11
    VERSION_NEGOTIATION_ERROR = 0x12
    IDLE_TIMEOUT = 0x13  # never sent; reported locally when the idle timer fires


# --------------------------------------------------------------------------
# Transport parameters (TLV inside the handshake payload: id varint, length varint, value)
# --------------------------------------------------------------------------
class TransportParameter(IntEnum):
    ORIGINAL_DESTINATION_CID = 0x00
    MAX_IDLE_TIMEOUT_MS = 0x01
    STATELESS_RESET_TOKEN = 0x02
    MAX_UDP_PAYLOAD_SIZE = 0x03
    INITIAL_MAX_DATA = 0x04
    INITIAL_MAX_STREAM_DATA_BIDI_LOCAL = 0x05
    INITIAL_MAX_STREAM_DATA_BIDI_REMOTE = 0x06
    INITIAL_MAX_STREAM_DATA_UNI = 0x07
    INITIAL_MAX_STREAMS_BIDI = 0x08
    INITIAL_MAX_STREAMS_UNI = 0x09
    ACK_DELAY_EXPONENT = 0x0A
    MAX_ACK_DELAY_MS = 0x0B
    ACTIVE_CONNECTION_ID_LIMIT = 0x0E
    INITIAL_SOURCE_CID = 0x0F
    RETRY_SOURCE_CID = 0x10
    MAX_DATAGRAM_FRAME_SIZE = 0x20
    FEC_CAPABILITY = 0x40  # value: varint bitmask (1 = XOR, 2 = Reed-Solomon GF(256))
    AEAD_ALGORITHM = 0x41  # value: varint (0 = none/CRC32C, 1 = AES-128-GCM, 2 = ChaCha20-Poly1305)
    HEADER_PROTECTION = 0x42  # empty value: header protection on when both sides send it
    COMPACT_STREAM = 0x43  # empty value: the sender accepts compact STREAM frames (0x38..0x3f)


DEFAULT_ACK_DELAY_EXPONENT = 3
