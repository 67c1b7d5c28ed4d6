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

Layout: :mod:`transport.dissect.fields` (varint and CRC32C helpers, custom
scapy fields), :mod:`transport.dissect.frames` (frame classes and dispatch on
the frame type), :mod:`transport.dissect.packets` (packet classes, the UDP
dispatcher, :func:`bind` / :func:`unbind`). Import everything from
``transport.dissect``.
"""

from __future__ import annotations

try:
    import scapy.packet  # noqa: F401  (fail early, naming the optional extra)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "transport.dissect needs scapy, which is an optional dependency: "
        "install it with `pip install 'transport[scapy]'` (or `pip install scapy`)"
    ) from exc

from transport.dissect.fields import (
    VarIntField,
    VarLenField,
    crc32c,
    varint,
)
from transport.dissect.frames import (
    AckFrame,
    AckFrequencyFrame,
    AckRange,
    ApplicationCloseFrame,
    ConnectionCloseFrame,
    CryptoFrame,
    DataBlockedFrame,
    DatagramFrame,
    FecRecoveredFrame,
    FecSourceFrame,
    HandshakeDoneFrame,
    MaxDataFrame,
    MaxStreamDataFrame,
    MaxStreamsFrame,
    NewConnectionIdFrame,
    NewTokenFrame,
    PaddingFrame,
    PathChallengeFrame,
    PathResponseFrame,
    PingFrame,
    RepairFrame,
    ResetStreamFrame,
    RetireConnectionIdFrame,
    StopSendingFrame,
    StreamCompactFrame,
    StreamDataBlockedFrame,
    StreamFrame,
    StreamsBlockedFrame,
    UnknownFrame,
    frame_class,
)
from transport.dissect.packets import (
    FecSourceSymbol,
    HandshakePacket,
    InitialPacket,
    LongHeaderPacket,
    RetryPacket,
    ShortHeaderPacket,
    StatelessReset,
    TransportPacket,
    VersionNegotiationPacket,
    bind,
    unbind,
)

__all__ = [
    "AckFrame", "AckFrequencyFrame", "AckRange", "ApplicationCloseFrame",
    "ConnectionCloseFrame", "CryptoFrame", "DataBlockedFrame", "DatagramFrame",
    "FecRecoveredFrame", "FecSourceFrame", "FecSourceSymbol", "HandshakeDoneFrame",
    "HandshakePacket", "InitialPacket", "LongHeaderPacket", "MaxDataFrame",
    "MaxStreamDataFrame", "MaxStreamsFrame", "NewConnectionIdFrame", "NewTokenFrame",
    "PaddingFrame", "PathChallengeFrame", "PathResponseFrame", "PingFrame", "RepairFrame",
    "ResetStreamFrame", "RetireConnectionIdFrame", "RetryPacket", "ShortHeaderPacket",
    "StatelessReset", "StopSendingFrame", "StreamCompactFrame", "StreamDataBlockedFrame",
    "StreamFrame",
    "StreamsBlockedFrame", "TransportPacket", "UnknownFrame", "VarIntField", "VarLenField",
    "VersionNegotiationPacket", "bind", "crc32c", "frame_class", "unbind", "varint",
]
