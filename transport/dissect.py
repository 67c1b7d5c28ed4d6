"""Scapy dissector for the transport wire format (docs/wire-format.md).

How this works
--------------
Every packet layout of ``docs/wire-format.md`` is a scapy ``Packet`` class and
every frame is one too, so a capture can be read with ``rdpcap`` and packets
(well-formed or deliberately broken) can be built field by field::

    from scapy.all import rdpcap
    from transport import dissect
    dissect.bind(port=4433, short_cid_length=8)
    for pkt in rdpcap("capture.pcap"):
        pkt.show()

* :class:`VarIntField` / :class:`VarLenField` encode QUIC-style variable-length
  integers (RFC 9000 section 16); length and count fields left at ``None`` are
  computed when the packet is built, and any explicit value is written as given,
  which is how malformed packets are crafted.
* :class:`TransportPacket` is a dispatcher bound to UDP: it looks at the first
  byte (and the version) and returns an :class:`InitialPacket`,
  :class:`HandshakePacket`, :class:`RetryPacket`,
  :class:`VersionNegotiationPacket`, :class:`LongHeaderPacket` (unknown
  version) or :class:`ShortHeaderPacket`. INITIAL and HANDSHAKE packets end at
  their Length field, so a coalesced packet after them becomes their payload.
* Frames live in a ``frames`` list dispatched on the type byte. STREAM
  (0x08-0x0f) is one class honouring the OFF/LEN/FIN bits; ACK/ACK_ECN carry a
  list of :class:`AckRange` (gap, length) pairs; unknown types become
  :class:`UnknownFrame` holding the rest of the payload.
* The CRC32C trailer (``crc``) is computed on build when left at ``None``.
  Short-header packets hold frames plus a CRC only when ``bind(...,
  security="none")``; otherwise their payload is opaque AEAD ciphertext.

scapy is an optional dependency (the ``scapy`` extra); importing this module
without it raises ImportError saying so. Nothing here is on the hot path.
"""

from __future__ import annotations

from typing import Any

try:
    from scapy.base_classes import Packet_metaclass
    from scapy.config import conf
    from scapy.fields import (
        BitEnumField,
        BitField,
        ConditionalField,
        Field,
        FieldLenField,
        FieldListField,
        MultipleTypeField,
        PacketListField,
        StrField,
        StrFixedLenField,
        StrLenField,
        XIntField,
        XLongField,
    )
    from scapy.layers.inet import UDP
    from scapy.packet import Packet, bind_bottom_up, bind_top_down, split_layers
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "transport.dissect needs scapy, which is an optional dependency: "
        "install it with `pip install 'transport[scapy]'` (or `pip install scapy`)"
    ) from exc

from transport.wire.constants import (
    CRC_LENGTH,
    DEFAULT_CID_LENGTH,
    MAX_VARINT,
    PATH_CHALLENGE_LENGTH,
    RETRY_INTEGRITY_TAG_LENGTH,
    STATELESS_RESET_TOKEN_LENGTH,
    STREAM_FLAG_LEN,
    STREAM_FLAG_OFF,
    STREAM_TYPE_MAX,
    STREAM_TYPE_MIN,
    SUPPORTED_VERSIONS,
    VERSION_1,
    VERSION_NEGOTIATION,
    FrameType,
    PacketType,
)

__all__ = [
    "AckFrame", "AckFrequencyFrame", "AckRange", "ApplicationCloseFrame",
    "ConnectionCloseFrame", "CryptoFrame", "DataBlockedFrame", "DatagramFrame",
    "FecRecoveredFrame", "FecSourceFrame", "FecSourceSymbol", "HandshakeDoneFrame",
    "HandshakePacket", "InitialPacket", "LongHeaderPacket", "MaxDataFrame",
    "MaxStreamDataFrame", "MaxStreamsFrame", "NewConnectionIdFrame", "NewTokenFrame",
    "PaddingFrame", "PathChallengeFrame", "PathResponseFrame", "PingFrame", "RepairFrame",
    "ResetStreamFrame", "RetireConnectionIdFrame", "RetryPacket", "ShortHeaderPacket",
    "StatelessReset", "StopSendingFrame", "StreamDataBlockedFrame", "StreamFrame",
    "StreamsBlockedFrame", "TransportPacket", "UnknownFrame", "VarIntField", "VarLenField",
    "bind", "crc32c", "frame_class", "unbind", "varint",
]


# --------------------------------------------------------------------------
# configuration and helpers
# --------------------------------------------------------------------------
class _Config:
    __slots__ = ("port", "security", "short_cid_length")

    def __init__(self) -> None:
        self.port: int | None = None
        self.short_cid_length = DEFAULT_CID_LENGTH
        self.security = "none"


_config = _Config()


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes, value: int = 0) -> int:
    """CRC32C (Castagnoli) of ``data``, continuing from ``value`` (slow; tooling only)."""
    crc = value ^ 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def varint(value: int, size: int | None = None) -> bytes:
    """Encode ``value`` as a varint; ``size`` (1, 2, 4 or 8) forces a longer,
    non-minimal encoding for crafting test input."""
    if not 0 <= value <= MAX_VARINT:
        raise ValueError(f"varint out of range: {value}")
    if size is None:
        size = 1 if value < 0x40 else 2 if value < 0x4000 else 4 if value < 0x40000000 else 8
    prefix = {1: 0, 2: 1, 4: 2, 8: 3}.get(size)
    if prefix is None or value >= 1 << (size * 8 - 2):
        raise ValueError(f"cannot encode {value} in {size} bytes")
    return (value | (prefix << (size * 8 - 2))).to_bytes(size, "big")


class VarIntField(Field):
    """A QUIC variable-length integer (2-bit length prefix, 1/2/4/8 bytes)."""

    __slots__ = ("names",)

    def __init__(self, name: str, default: int | None, names: dict[int, str] | None = None):
        super().__init__(name, default, "!Q")
        self.names = names or {}

    def addfield(self, pkt: Any, s: bytes, val: int | None) -> bytes:
        return s + varint(self.i2m(pkt, val))

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, int]:
        if not s:
            raise ValueError("truncated varint")
        size = 1 << (s[0] >> 6)
        if len(s) < size:
            raise ValueError("truncated varint")
        value = int.from_bytes(s[:size], "big") & ((1 << (size * 8 - 2)) - 1)
        return s[size:], self.m2i(pkt, value)

    def i2m(self, pkt: Any, x: int | None) -> int:
        return 0 if x is None else int(x)

    def i2len(self, pkt: Any, x: int | None) -> int:
        return len(varint(self.i2m(pkt, x)))

    def i2repr(self, pkt: Any, x: int | None) -> str:
        if x is None:
            return "None"
        name = self.names.get(x)
        return f"{name} (0x{x:02x})" if name else repr(x)


class VarLenField(VarIntField):
    """A varint holding the length (or count) of another field; ``None`` means
    compute it on build, like scapy's FieldLenField."""

    __slots__ = ("adjust", "count_of", "length_of")

    def __init__(
        self,
        name: str,
        default: int | None,
        length_of: str | None = None,
        count_of: str | None = None,
        adjust: Any = None,
    ):
        super().__init__(name, default)
        self.length_of = length_of
        self.count_of = count_of
        self.adjust = adjust or (lambda pkt, x: x)

    def i2m(self, pkt: Any, x: int | None) -> int:
        if x is not None:
            return int(x)
        if pkt is None:
            return 0
        if self.length_of is not None:
            fld, fval = pkt.getfield_and_val(self.length_of)
            return int(self.adjust(pkt, fld.i2len(pkt, fval)))
        fld, fval = pkt.getfield_and_val(self.count_of)
        return int(self.adjust(pkt, fld.i2count(pkt, fval)))


class _PacketNumberField(Field):
    """The truncated packet number: the low ``pn_length`` bytes, big-endian."""

    def __init__(self, name: str, default: int):
        super().__init__(name, default, "!I")

    def addfield(self, pkt: Any, s: bytes, val: int | None) -> bytes:
        size = _pn_length(pkt)
        return s + ((val or 0) & ((1 << (8 * size)) - 1)).to_bytes(size, "big")

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, int]:
        size = _pn_length(pkt)
        if len(s) < size:
            raise ValueError("truncated packet number")
        return s[size:], int.from_bytes(s[:size], "big")


class _PnLengthField(BitField):
    """Two bits holding packet-number length - 1; the field value is the length
    (1..4). ``None`` picks the fewest bytes that hold ``pn``."""

    def __init__(self, name: str, default: int | None):
        super().__init__(name, default, 2)

    def i2m(self, pkt: Any, x: int | None) -> int:
        return (_pn_length(pkt) if x is None else int(x)) - 1

    def m2i(self, pkt: Any, x: int) -> int:
        return int(x) + 1


def _pn_length(pkt: Any) -> int:
    size = pkt.getfieldval("pn_length")
    if size is None:
        pn = pkt.getfieldval("pn") or 0
        size = min(4, max(1, (pn.bit_length() + 7) // 8))
    return int(size)


class _ZeroRunField(Field):
    """PADDING run length: the frame's own zero byte plus the zeros after it."""

    def __init__(self, name: str, default: int):
        super().__init__(name, default, "!I")

    def addfield(self, pkt: Any, s: bytes, val: int | None) -> bytes:
        return s + bytes(max(0, (val or 1) - 1))

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, int]:
        run = len(s) - len(s.lstrip(b"\x00"))
        return s[run:], run + 1


class _FrameListField(PacketListField):
    """Frames of a packet: a region given by ``length_from`` or, failing that,
    everything but the last ``reserve`` bytes."""

    __slots__ = ("frames_length_from", "reserve")

    def __init__(self, name: str, length_from: Any = None, reserve: int = 0):
        super().__init__(name, [], _dispatch_frame)
        self.frames_length_from = length_from
        self.reserve = reserve

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, list[Any]]:
        if self.frames_length_from is not None:
            size = self.frames_length_from(pkt)
        else:
            size = len(s) - self.reserve
        size = max(0, min(size, len(s)))
        _, frames = super().getfield(pkt, s[:size])
        return s[size:], frames


# --------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------
_FRAME_NAMES = {int(t): t.name for t in FrameType}
for _t in range(STREAM_TYPE_MIN, STREAM_TYPE_MAX + 1):
    _FRAME_NAMES[_t] = "STREAM"
_FRAME_NAMES[0x13] = "MAX_STREAMS_UNI"
_FRAME_NAMES[0x17] = "STREAMS_BLOCKED_UNI"


def _type_field(default: int) -> VarIntField:
    return VarIntField("frame_type", default, _FRAME_NAMES)


class _Frame(Packet):
    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


def _frame(name: str, frame_type: int, varints: str = "") -> Any:
    """A frame class (named after ``name``) whose fields after the type are varints."""
    fields = [_type_field(frame_type), *[VarIntField(n, 0) for n in varints.split()]]
    cls_name = "".join(w.capitalize() for w in name.split("_")) + "Frame"
    ns = {"name": name, "fields_desc": fields, "__module__": __name__, "__qualname__": cls_name}
    return Packet_metaclass(cls_name, (_Frame,), ns)


# MAX_STREAMS / STREAMS_BLOCKED: frame_type 0x12/0x16 bidirectional, 0x13/0x17 unidirectional.
PingFrame = _frame("PING", FrameType.PING)
HandshakeDoneFrame = _frame("HANDSHAKE_DONE", FrameType.HANDSHAKE_DONE)
ResetStreamFrame = _frame("RESET_STREAM", FrameType.RESET_STREAM, "stream_id error_code final_size")
StopSendingFrame = _frame("STOP_SENDING", FrameType.STOP_SENDING, "stream_id error_code")
MaxDataFrame = _frame("MAX_DATA", FrameType.MAX_DATA, "maximum")
MaxStreamDataFrame = _frame("MAX_STREAM_DATA", FrameType.MAX_STREAM_DATA, "stream_id maximum")
MaxStreamsFrame = _frame("MAX_STREAMS", FrameType.MAX_STREAMS_BIDI, "maximum")
DataBlockedFrame = _frame("DATA_BLOCKED", FrameType.DATA_BLOCKED, "limit")
StreamDataBlockedFrame = _frame(
    "STREAM_DATA_BLOCKED", FrameType.STREAM_DATA_BLOCKED, "stream_id limit"
)
StreamsBlockedFrame = _frame("STREAMS_BLOCKED", FrameType.STREAMS_BLOCKED_BIDI, "limit")
RetireConnectionIdFrame = _frame("RETIRE_CONNECTION_ID", FrameType.RETIRE_CONNECTION_ID, "sequence")
AckFrequencyFrame = _frame(
    "ACK_FREQUENCY", FrameType.ACK_FREQUENCY, "sequence ack_eliciting_threshold max_ack_delay_us"
)
FecSourceFrame = _frame("FEC_SOURCE", FrameType.FEC_SOURCE, "block_id index")


class PaddingFrame(_Frame):
    name = "PADDING"
    fields_desc = [_type_field(FrameType.PADDING), _ZeroRunField("run_length", 1)]


class AckRange(_Frame):
    """One additional ACK range: ``gap`` then ``length`` (RFC 9000 section 19.3.1)."""

    name = "AckRange"
    fields_desc = [VarIntField("gap", 0), VarIntField("length", 0)]


def _ack_fields(default_type: int, with_delay: bool) -> list[Any]:
    fields: list[Any] = [_type_field(default_type), VarIntField("largest", 0)]
    if with_delay:
        fields.append(VarIntField("ack_delay", 0))
    fields += [
        VarLenField("range_count", None, count_of="ranges"),
        VarIntField("first_range", 0),
        PacketListField("ranges", [], AckRange, count_from=lambda p: p.range_count),
    ]
    return fields


class AckFrame(_Frame):
    """ACK (0x02) or ACK_ECN (0x03; then ``ect0``, ``ect1``, ``ce``)."""

    name = "ACK"
    fields_desc = [
        *_ack_fields(FrameType.ACK, True),
        *[
            ConditionalField(VarIntField(n, 0), lambda p: p.frame_type == FrameType.ACK_ECN)
            for n in ("ect0", "ect1", "ce")
        ],
    ]


class FecRecoveredFrame(_Frame):
    name = "FEC_RECOVERED"
    fields_desc = _ack_fields(FrameType.FEC_RECOVERED, False)


class CryptoFrame(_Frame):
    name = "CRYPTO"
    fields_desc = [
        _type_field(FrameType.CRYPTO),
        VarIntField("offset", 0),
        VarLenField("length", None, length_of="data"),
        StrLenField("data", b"", length_from=lambda p: p.length),
    ]


class NewTokenFrame(_Frame):
    name = "NEW_TOKEN"
    fields_desc = [
        _type_field(FrameType.NEW_TOKEN),
        VarLenField("length", None, length_of="token"),
        StrLenField("token", b"", length_from=lambda p: p.length),
    ]


def _has_off(p: Any) -> bool:
    return bool(p.frame_type & STREAM_FLAG_OFF)


def _has_len(p: Any) -> bool:
    return bool(p.frame_type & STREAM_FLAG_LEN)


class StreamFrame(_Frame):
    """STREAM 0x08-0x0f: ``frame_type`` bits 0x04 OFF, 0x02 LEN, 0x01 FIN decide
    which fields are present; without LEN the data runs to the end of the frames."""

    name = "STREAM"
    fields_desc = [
        _type_field(FrameType.STREAM | STREAM_FLAG_LEN),
        VarIntField("stream_id", 0),
        ConditionalField(VarIntField("offset", 0), _has_off),
        ConditionalField(VarLenField("length", None, length_of="data"), _has_len),
        MultipleTypeField(
            [(StrLenField("data", b"", length_from=lambda p: p.length), _has_len)],
            StrField("data", b""),
        ),
    ]


class NewConnectionIdFrame(_Frame):
    name = "NEW_CONNECTION_ID"
    fields_desc = [
        _type_field(FrameType.NEW_CONNECTION_ID),
        VarIntField("sequence", 0),
        VarIntField("retire_prior_to", 0),
        FieldLenField("cid_length", None, length_of="cid", fmt="B"),
        StrLenField("cid", b"", length_from=lambda p: p.cid_length),
        StrFixedLenField("stateless_reset_token", bytes(16), STATELESS_RESET_TOKEN_LENGTH),
    ]


class PathChallengeFrame(_Frame):
    name = "PATH_CHALLENGE"
    fields_desc = [
        _type_field(FrameType.PATH_CHALLENGE),
        StrFixedLenField("data", bytes(8), PATH_CHALLENGE_LENGTH),
    ]


class PathResponseFrame(_Frame):
    name = "PATH_RESPONSE"
    fields_desc = [
        _type_field(FrameType.PATH_RESPONSE),
        StrFixedLenField("data", bytes(8), PATH_CHALLENGE_LENGTH),
    ]


class ConnectionCloseFrame(_Frame):
    name = "CONNECTION_CLOSE"
    fields_desc = [
        _type_field(FrameType.CONNECTION_CLOSE),
        VarIntField("error_code", 0),
        VarIntField("offending_frame_type", 0, _FRAME_NAMES),
        VarLenField("reason_length", None, length_of="reason"),
        StrLenField("reason", b"", length_from=lambda p: p.reason_length),
    ]


class ApplicationCloseFrame(_Frame):
    name = "APPLICATION_CLOSE"
    fields_desc = [
        _type_field(FrameType.APPLICATION_CLOSE),
        VarIntField("error_code", 0),
        VarLenField("reason_length", None, length_of="reason"),
        StrLenField("reason", b"", length_from=lambda p: p.reason_length),
    ]


class RepairFrame(_Frame):
    name = "REPAIR"
    fields_desc = [
        _type_field(FrameType.REPAIR),
        VarIntField("block_id", 0),
        VarIntField("k", 1),
        VarIntField("m", 1),
        VarIntField("repair_index", 0),
        VarLenField("length", None, length_of="symbol"),
        StrLenField("symbol", b"", length_from=lambda p: p.length),
    ]


def _dgram_len(p: Any) -> bool:
    return bool(p.frame_type & 1)


class DatagramFrame(_Frame):
    """DATAGRAM: 0x30 data to the end of the frames, 0x31 with a length."""

    name = "DATAGRAM"
    fields_desc = [
        _type_field(FrameType.DATAGRAM_LEN),
        ConditionalField(
            VarLenField("length", None, length_of="data"), _dgram_len
        ),
        MultipleTypeField(
            [(StrLenField("data", b"", length_from=lambda p: p.length), _dgram_len)],
            StrField("data", b""),
        ),
    ]


class UnknownFrame(_Frame):
    """A frame type this version does not define; the rest of the payload."""

    name = "UNKNOWN_FRAME"
    fields_desc = [_type_field(0x3F), StrField("data", b"")]


_FRAME_CLASSES: dict[int, type[Any]] = {
    FrameType.PADDING: PaddingFrame,
    FrameType.PING: PingFrame,
    FrameType.ACK: AckFrame,
    FrameType.ACK_ECN: AckFrame,
    FrameType.RESET_STREAM: ResetStreamFrame,
    FrameType.STOP_SENDING: StopSendingFrame,
    FrameType.CRYPTO: CryptoFrame,
    FrameType.NEW_TOKEN: NewTokenFrame,
    FrameType.MAX_DATA: MaxDataFrame,
    FrameType.MAX_STREAM_DATA: MaxStreamDataFrame,
    FrameType.MAX_STREAMS_BIDI: MaxStreamsFrame,
    FrameType.MAX_STREAMS_UNI: MaxStreamsFrame,
    FrameType.DATA_BLOCKED: DataBlockedFrame,
    FrameType.STREAM_DATA_BLOCKED: StreamDataBlockedFrame,
    FrameType.STREAMS_BLOCKED_BIDI: StreamsBlockedFrame,
    FrameType.STREAMS_BLOCKED_UNI: StreamsBlockedFrame,
    FrameType.NEW_CONNECTION_ID: NewConnectionIdFrame,
    FrameType.RETIRE_CONNECTION_ID: RetireConnectionIdFrame,
    FrameType.PATH_CHALLENGE: PathChallengeFrame,
    FrameType.PATH_RESPONSE: PathResponseFrame,
    FrameType.CONNECTION_CLOSE: ConnectionCloseFrame,
    FrameType.APPLICATION_CLOSE: ApplicationCloseFrame,
    FrameType.HANDSHAKE_DONE: HandshakeDoneFrame,
    FrameType.ACK_FREQUENCY: AckFrequencyFrame,
    FrameType.FEC_SOURCE: FecSourceFrame,
    FrameType.REPAIR: RepairFrame,
    FrameType.FEC_RECOVERED: FecRecoveredFrame,
    FrameType.DATAGRAM: DatagramFrame,
    FrameType.DATAGRAM_LEN: DatagramFrame,
}
for _t in range(STREAM_TYPE_MIN, STREAM_TYPE_MAX + 1):
    _FRAME_CLASSES[_t] = StreamFrame


def frame_class(frame_type: int) -> type[Any]:
    """The Packet class for ``frame_type`` (UnknownFrame when undefined)."""
    return _FRAME_CLASSES.get(frame_type, UnknownFrame)


def _dispatch_frame(s: bytes, _parent: Any = None) -> Any:
    _, frame_type = VarIntField("t", 0).getfield(None, s)
    return frame_class(frame_type)(s, _parent=_parent)


# --------------------------------------------------------------------------
# packets
# --------------------------------------------------------------------------
_LONG_TYPE_NAMES = {int(t): t.name for t in PacketType}


def _long_prefix(packet_type: int) -> list[Any]:
    pn_bits = (
        BitField("pn_bits", 0, 2)
        if packet_type == PacketType.RETRY
        else _PnLengthField("pn_length", None)
    )
    return [
        BitField("header_form", 1, 1),
        BitField("fixed_bit", 1, 1),
        BitEnumField("packet_type", packet_type, 2, _LONG_TYPE_NAMES),
        BitField("reserved", 0, 2),
        pn_bits,
        XIntField("version", VERSION_1),
        FieldLenField("dcid_len", None, length_of="dcid", fmt="B"),
        StrLenField("dcid", b"", length_from=lambda p: p.dcid_len),
        FieldLenField("scid_len", None, length_of="scid", fmt="B"),
        StrLenField("scid", b"", length_from=lambda p: p.scid_len),
    ]


def _length_adjust(pkt: Any, frames_len: int) -> int:
    return frames_len + _pn_length(pkt) + CRC_LENGTH


def _long_body() -> list[Any]:
    return [
        VarLenField("length", None, length_of="frames", adjust=_length_adjust),
        _PacketNumberField("pn", 0),
        _FrameListField(
            "frames", length_from=lambda p: p.length - _pn_length(p) - CRC_LENGTH
        ),
        XIntField("crc", None),
    ]


class _CrcPacket(Packet):
    """Fills a ``crc`` field left at None with the CRC32C of the bytes before it."""

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.getfieldval("crc") is None and len(pkt) >= CRC_LENGTH:
            body = pkt[:-CRC_LENGTH]
            pkt = body + crc32c(body).to_bytes(CRC_LENGTH, "big")
        return bytes(pkt) + bytes(pay)


class _LongPacket(_CrcPacket):
    def guess_payload_class(self, payload: bytes) -> Any:
        return TransportPacket if payload else conf.padding_layer


class InitialPacket(_LongPacket):
    name = "INITIAL"
    fields_desc = [
        *_long_prefix(PacketType.INITIAL),
        VarLenField("token_len", None, length_of="token"),
        StrLenField("token", b"", length_from=lambda p: p.token_len),
        *_long_body(),
    ]


class HandshakePacket(_LongPacket):
    name = "HANDSHAKE"
    fields_desc = [*_long_prefix(PacketType.HANDSHAKE), *_long_body()]


class RetryPacket(Packet):
    """RETRY: the token is everything up to the last 16 bytes (the integrity tag)."""

    name = "RETRY"
    fields_desc = [
        *_long_prefix(PacketType.RETRY),
        StrField("token", b"", remain=RETRY_INTEGRITY_TAG_LENGTH),
        StrFixedLenField("integrity_tag", bytes(16), RETRY_INTEGRITY_TAG_LENGTH),
    ]


class VersionNegotiationPacket(Packet):
    name = "VERSION_NEGOTIATION"
    fields_desc = [
        BitField("header_form", 1, 1),
        BitField("unused", 0x40, 7),
        XIntField("version", VERSION_NEGOTIATION),
        FieldLenField("dcid_len", None, length_of="dcid", fmt="B"),
        StrLenField("dcid", b"", length_from=lambda p: p.dcid_len),
        FieldLenField("scid_len", None, length_of="scid", fmt="B"),
        StrLenField("scid", b"", length_from=lambda p: p.scid_len),
        FieldListField("versions", [], XIntField("v", 0)),
    ]


class LongHeaderPacket(Packet):
    """A long header of an unsupported version: only the invariant fields."""

    name = "LONG_HEADER"
    fields_desc = [
        BitField("header_form", 1, 1),
        BitField("type_specific", 0x40, 7),
        XIntField("version", 0x0A0A0A0A),
        FieldLenField("dcid_len", None, length_of="dcid", fmt="B"),
        StrLenField("dcid", b"", length_from=lambda p: p.dcid_len),
        FieldLenField("scid_len", None, length_of="scid", fmt="B"),
        StrLenField("scid", b"", length_from=lambda p: p.scid_len),
        StrField("rest", b""),
    ]


def _unprotected(pkt: Any) -> bool:
    return _config.security == "none"


class ShortHeaderPacket(_CrcPacket):
    """1-RTT packet. The DCID length is ``bind(short_cid_length=...)``; with
    security="none" the payload is frames + CRC32C, otherwise opaque ciphertext."""

    name = "SHORT_HEADER"
    fields_desc = [
        BitField("header_form", 0, 1),
        BitField("fixed_bit", 1, 1),
        BitField("spin", 0, 1),
        BitField("reserved", 0, 2),
        BitField("key_phase", 0, 1),
        _PnLengthField("pn_length", None),
        StrLenField("dcid", bytes(8), length_from=lambda p: _config.short_cid_length),
        _PacketNumberField("pn", 0),
        ConditionalField(_FrameListField("frames", reserve=CRC_LENGTH), _unprotected),
        ConditionalField(XIntField("crc", None), _unprotected),
        ConditionalField(StrField("protected_payload", b""), lambda p: not _unprotected(p)),
    ]


class StatelessReset(Packet):
    """For crafting: looks like a short header; the last 16 bytes are the token.
    A receiver cannot tell it from a 1-RTT packet without knowing the token, so
    dissection never produces this class."""

    name = "STATELESS_RESET"
    fields_desc = [
        BitField("header_form", 0, 1),
        BitField("fixed_bit", 1, 1),
        BitField("unpredictable_bits", 0, 6),
        StrField("unpredictable", bytes(4), remain=STATELESS_RESET_TOKEN_LENGTH),
        StrFixedLenField("token", bytes(16), STATELESS_RESET_TOKEN_LENGTH),
    ]


class FecSourceSymbol(Packet):
    """FEC source symbol: packet number u64, u16 frames length, frames, zero padding."""

    name = "FEC_SOURCE_SYMBOL"
    fields_desc = [
        XLongField("pn", 0),
        FieldLenField("frames_length", None, length_of="frames", fmt="H"),
        _FrameListField("frames", length_from=lambda p: p.frames_length),
        StrField("padding", b""),
    ]


class TransportPacket(Packet):
    """Dispatcher bound to UDP: instantiating it with bytes returns the class the
    first byte and version call for."""

    name = "TRANSPORT"
    fields_desc = [StrField("data", b"")]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> Any:
        if not _pkt:
            return cls
        if not _pkt[0] & 0x80:
            return ShortHeaderPacket
        if len(_pkt) < 5:
            return LongHeaderPacket
        version = int.from_bytes(_pkt[1:5], "big")
        if version == VERSION_NEGOTIATION:
            return VersionNegotiationPacket
        if version not in SUPPORTED_VERSIONS:
            return LongHeaderPacket
        long_type = (_pkt[0] >> 4) & 3
        if long_type == PacketType.INITIAL:
            return InitialPacket
        if long_type == PacketType.HANDSHAKE:
            return HandshakePacket
        if long_type == PacketType.RETRY:
            return RetryPacket
        return LongHeaderPacket


_PACKET_CLASSES = (
    TransportPacket,
    InitialPacket,
    HandshakePacket,
    RetryPacket,
    VersionNegotiationPacket,
    LongHeaderPacket,
    ShortHeaderPacket,
    StatelessReset,
)


def unbind() -> None:
    """Undo the previous :func:`bind` (no-op when nothing is bound)."""
    if _config.port is None:
        return
    for cls in _PACKET_CLASSES:
        for key in ("dport", "sport"):
            split_layers(UDP, cls, **{key: _config.port})
    _config.port = None


def bind(port: int = 4433, short_cid_length: int = DEFAULT_CID_LENGTH,
         security: str = "none") -> None:
    """Dissect UDP traffic to or from ``port`` as transport packets.

    ``short_cid_length`` is the DCID length of short-header packets (a receiver
    knows it; the wire does not say). ``security`` is "none" (short-header
    payload = frames + CRC32C) or anything else (payload + 16-byte AEAD tag,
    shown undecoded as ``protected_payload``). Replaces any previous binding.
    """
    if not 0 <= short_cid_length <= 20:
        raise ValueError("short_cid_length must be 0..20")
    unbind()
    _config.short_cid_length = short_cid_length
    _config.security = security
    _config.port = port
    bind_bottom_up(UDP, TransportPacket, dport=port)
    bind_bottom_up(UDP, TransportPacket, sport=port)
    for cls in _PACKET_CLASSES:
        bind_top_down(UDP, cls, dport=port, sport=port)
