"""Packet classes of the dissector, the UDP dispatcher and bind/unbind.

How this works
--------------
One scapy ``Packet`` class per packet layout of docs/wire-format.md.
:class:`TransportPacket` is bound to UDP and, given bytes, returns the class
the first byte and version call for. INITIAL and HANDSHAKE end at their Length
field, so a coalesced packet after them becomes their payload. :func:`bind`
keeps the receiver-side knowledge the wire does not carry (short-header DCID
length, whether payloads are encrypted) in the module's ``_config``.
"""

from __future__ import annotations

from typing import Any

from scapy.config import conf
from scapy.fields import (
    BitEnumField,
    BitField,
    ConditionalField,
    FieldLenField,
    FieldListField,
    StrField,
    StrFixedLenField,
    StrLenField,
    XIntField,
    XLongField,
)
from scapy.layers.inet import UDP
from scapy.packet import Packet, bind_bottom_up, bind_top_down, split_layers

from transport.dissect.fields import (
    VarLenField,
    _byte_prefixed,
    _PacketNumberField,
    _pn_length,
    _PnLengthField,
    _varint_prefixed,
    crc32c,
)
from transport.dissect.frames import _FrameListField
from transport.wire.constants import (
    CRC_LENGTH,
    DEFAULT_CID_LENGTH,
    RETRY_INTEGRITY_TAG_LENGTH,
    STATELESS_RESET_TOKEN_LENGTH,
    SUPPORTED_VERSIONS,
    VERSION_1,
    VERSION_NEGOTIATION,
    PacketType,
)


class _Config:
    __slots__ = ("port", "security", "short_cid_length")

    def __init__(self) -> None:
        self.port: int | None = None
        self.short_cid_length = DEFAULT_CID_LENGTH
        self.security = "none"


_config = _Config()


_LONG_TYPE_NAMES = {int(t): t.name for t in PacketType}


def _cids() -> list[Any]:
    """Destination and source connection IDs, each after a one-byte length."""
    return [*_byte_prefixed("dcid_len", "dcid"), *_byte_prefixed("scid_len", "scid")]


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
        *_cids(),
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
        *_varint_prefixed("token_len", "token"),
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
        *_cids(),
        FieldListField("versions", [], XIntField("v", 0)),
    ]


class LongHeaderPacket(Packet):
    """A long header of an unsupported version: only the invariant fields."""

    name = "LONG_HEADER"
    fields_desc = [
        BitField("header_form", 1, 1),
        BitField("type_specific", 0x40, 7),
        XIntField("version", 0x0A0A0A0A),
        *_cids(),
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
