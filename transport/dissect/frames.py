"""Frame classes of the dissector and dispatch on the frame type.

How this works
--------------
Every frame is a scapy ``Packet`` whose first field is the varint frame type.
Frames whose other fields are all varints are made by :func:`_frame`; the
rest are written out. :func:`frame_class` maps a type byte to its class
(``UnknownFrame`` for undefined types) and :class:`_FrameListField` (used by
the packet classes) parses a region of bytes into a list of frames.
"""

from __future__ import annotations

from typing import Any

from scapy.base_classes import Packet_metaclass
from scapy.fields import (
    ConditionalField,
    MultipleTypeField,
    PacketListField,
    StrField,
    StrFixedLenField,
    StrLenField,
    ThreeBytesField,
)
from scapy.packet import Packet

from transport.dissect.fields import (
    VarIntField,
    VarLenField,
    _byte_prefixed,
    _varint_prefixed,
    _ZeroRunField,
)
from transport.wire.constants import (
    PATH_CHALLENGE_LENGTH,
    STATELESS_RESET_TOKEN_LENGTH,
    STREAM_COMPACT_MAX,
    STREAM_COMPACT_MIN,
    STREAM_FLAG_LEN,
    STREAM_FLAG_OFF,
    STREAM_TYPE_MAX,
    STREAM_TYPE_MIN,
    FrameType,
)

_FRAME_NAMES = {int(t): t.name for t in FrameType}
for _t in range(STREAM_TYPE_MIN, STREAM_TYPE_MAX + 1):
    _FRAME_NAMES[_t] = "STREAM"
for _t in range(STREAM_COMPACT_MIN, STREAM_COMPACT_MAX + 1):
    _FRAME_NAMES[_t] = "STREAM_COMPACT"
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
        *_varint_prefixed("length", "data"),
    ]


class NewTokenFrame(_Frame):
    name = "NEW_TOKEN"
    fields_desc = [
        _type_field(FrameType.NEW_TOKEN),
        *_varint_prefixed("length", "token"),
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


class StreamCompactFrame(_Frame):
    """Compact STREAM 0x38-0x3f (wire format 10.25): ``frame_type`` = 0x38 |
    stream_id << 1 | FIN, the low 24 bits of the offset (the receiver rebuilds
    the rest), data to the end of the frames."""

    name = "STREAM_COMPACT"
    fields_desc = [
        _type_field(FrameType.STREAM_COMPACT),
        ThreeBytesField("truncated_offset", 0),
        StrField("data", b""),
    ]

    @property
    def stream_id(self) -> int:
        """The stream the type byte names (0..3)."""
        return (int(self.frame_type) >> 1) & 3


class NewConnectionIdFrame(_Frame):
    name = "NEW_CONNECTION_ID"
    fields_desc = [
        _type_field(FrameType.NEW_CONNECTION_ID),
        VarIntField("sequence", 0),
        VarIntField("retire_prior_to", 0),
        *_byte_prefixed("cid_length", "cid"),
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
        *_varint_prefixed("reason_length", "reason"),
    ]


class ApplicationCloseFrame(_Frame):
    name = "APPLICATION_CLOSE"
    fields_desc = [
        _type_field(FrameType.APPLICATION_CLOSE),
        VarIntField("error_code", 0),
        *_varint_prefixed("reason_length", "reason"),
    ]


class RepairFrame(_Frame):
    name = "REPAIR"
    fields_desc = [
        _type_field(FrameType.REPAIR),
        VarIntField("block_id", 0),
        VarIntField("k", 1),
        VarIntField("m", 1),
        VarIntField("repair_index", 0),
        *_varint_prefixed("length", "symbol"),
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
    fields_desc = [_type_field(0x37), StrField("data", b"")]


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
for _t in range(STREAM_COMPACT_MIN, STREAM_COMPACT_MAX + 1):
    _FRAME_CLASSES[_t] = StreamCompactFrame


def frame_class(frame_type: int) -> type[Any]:
    """The Packet class for ``frame_type`` (UnknownFrame when undefined)."""
    return _FRAME_CLASSES.get(frame_type, UnknownFrame)


def _dispatch_frame(s: bytes, _parent: Any = None) -> Any:
    _, frame_type = VarIntField("t", 0).getfield(None, s)
    return frame_class(frame_type)(s, _parent=_parent)


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
