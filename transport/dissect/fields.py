"""Varint and CRC32C helpers and the custom scapy fields of the dissector.

How this works
--------------
:func:`varint` and :func:`crc32c` are slow pure-Python encoders for tooling
(the codec has the fast ones). :class:`VarIntField` / :class:`VarLenField`
read and write QUIC varints; a ``VarLenField`` left at ``None`` computes the
length or count of another field on build. The private fields handle the
truncated packet number and its 2-bit length, and PADDING runs.
:func:`_varint_prefixed` / :func:`_byte_prefixed` give the two fields of a
length-prefixed byte string.
"""

from __future__ import annotations

from typing import Any

from scapy.fields import BitField, Field, FieldLenField, StrLenField

from transport.wire.constants import MAX_VARINT


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


def _varint_prefixed(length_name: str, data_name: str) -> list[Any]:
    """A varint length (computed on build when None) and the bytes it counts."""
    return [
        VarLenField(length_name, None, length_of=data_name),
        StrLenField(data_name, b"", length_from=lambda p: getattr(p, length_name)),
    ]


def _byte_prefixed(length_name: str, data_name: str) -> list[Any]:
    """A one-byte length (computed on build when None) and the bytes it counts."""
    return [
        FieldLenField(length_name, None, length_of=data_name, fmt="B"),
        StrLenField(data_name, b"", length_from=lambda p: getattr(p, length_name)),
    ]
