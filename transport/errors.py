"""Exception taxonomy for the whole package.

How this works
--------------
Every exception the package raises derives from :class:`TransportError`. Three
families tell the caller whose fault it was:

* :class:`WireError` -- bytes that do not decode (or an encode that does not
  fit). The codec raises it; ``Connection.receive_datagram`` catches it, drops
  the datagram and counts it, so peer input never reaches the caller as an
  exception.
* :class:`LocalError` -- the caller used the API wrongly (bad argument, wrong
  state, closed connection, exhausted limit). Always raised synchronously from
  the call that was wrong.
* :class:`RemoteProtocolError` -- the peer broke the protocol. The connection
  closes with :attr:`RemoteProtocolError.error_code`; the caller sees a
  ``ConnectionTerminated`` event rather than this exception unless it drives
  internals directly.

If anything else escapes a public call, that is a bug in this package.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "BufferTooSmallError",
    "ChecksumError",
    "ConfigurationError",
    "ConnectionClosedError",
    "DecryptionError",
    "FecDecodeError",
    "FecError",
    "FieldValueError",
    "FlowControlBlockedError",
    "ForeignPacketError",
    "HandshakeError",
    "InvalidStateError",
    "KeyFormatError",
    "LocalError",
    "NetworkError",
    "PortUnreachableError",
    "RemoteProtocolError",
    "StreamError",
    "StreamLimitError",
    "TransportError",
    "TruncatedError",
    "UnknownFrameError",
    "WireError",
]


class TransportError(Exception):
    """Base class of every exception raised by this package."""


# ---------------------------------------------------------------- wire ----
class WireError(TransportError, ValueError):
    """Bytes that cannot be decoded, or a frame that cannot be encoded."""


class TruncatedError(WireError):
    """The input ended before the structure being decoded did."""


class UnknownFrameError(WireError):
    """A frame type this version does not define."""


class FieldValueError(WireError):
    """A field holds a value outside what the format allows (length overruns the
    packet, connection ID longer than 20 bytes, varint over 2**62-1, ...)."""


class BufferTooSmallError(WireError):
    """An encode did not fit in the space the caller provided."""


class ForeignPacketError(WireError):
    """A short-header packet whose destination connection ID is not the one
    expected (it belongs to another connection, or is not ours at all)."""


class ChecksumError(WireError):
    """A packet's CRC32C trailer does not match its contents (bytes changed in
    transit); the packet is dropped and counted."""


class DecryptionError(WireError):
    """An AEAD-protected packet or Noise transport message failed to open (wrong
    key, wrong packet number / nonce, or bytes changed in transit). The input is
    dropped and counted; no state changes."""


# --------------------------------------------------------------- local ----
class LocalError(TransportError):
    """The caller misused the API."""


class ConfigurationError(LocalError, ValueError):
    """A configuration value is invalid."""


class KeyFormatError(ConfigurationError):
    """A key is missing, unreadable, of the wrong type (not X25519), the wrong
    length, or not in a format this package reads (PEM PKCS#8 /
    SubjectPublicKeyInfo, or raw 32 bytes in base64)."""


class InvalidStateError(LocalError):
    """The call is not allowed in the object's current state."""


class ConnectionClosedError(InvalidStateError):
    """The connection is closed (or closing) and cannot take this call."""


class StreamError(LocalError):
    """A stream call names a stream that does not exist or cannot do this."""


class StreamLimitError(StreamError):
    """Opening another stream would exceed the peer's stream limit."""


class FlowControlBlockedError(LocalError):
    """Data cannot be accepted now; wait for a writable event."""


class BackendUnavailableError(LocalError, ImportError):
    """The native (C) backend was requested but cannot be loaded."""


class FecError(LocalError, ValueError):
    """An FEC call got bad arguments: symbol sizes or buffer lengths that do not
    match the block, symbol indexes out of range or repeated."""


class FecDecodeError(FecError):
    """The symbols given cannot rebuild the block (fewer than k distinct ones)."""


# -------------------------------------------------------------- remote ----
class RemoteProtocolError(TransportError):
    """The peer violated the protocol; ``error_code`` is the transport error code
    the connection closes with."""

    def __init__(self, error_code: int, reason: str = "", frame_type: int = 0) -> None:
        super().__init__(f"{reason} (error 0x{error_code:x})")
        self.error_code = error_code
        self.reason = reason
        self.frame_type = frame_type


class HandshakeError(RemoteProtocolError):
    """The handshake failed (wrong key, unauthorised peer, bad message)."""


# ------------------------------------------------------------- network ----
class NetworkError(TransportError, OSError):
    """The network reported an error for a datagram we sent (an ICMP message:
    host or network unreachable), or a socket call failed. ``address`` is the
    peer concerned when known. Also an :class:`OSError`, so code written for
    plain sockets catches it."""

    def __init__(self, message: str = "", address: tuple[str, int] | None = None) -> None:
        super().__init__(message)
        self.address = address


class PortUnreachableError(NetworkError, ConnectionRefusedError):
    """Nothing listens at the peer's port (ICMP port unreachable)."""
