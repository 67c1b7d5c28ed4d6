"""Events a :class:`~transport.connection.Connection` reports to its caller.

How this works
--------------
The connection never calls back into application code. After each input the
caller drains ``Connection.next_event()`` until it returns ``None``. Events are
frozen, slotted, keyword-constructed dataclasses (as in h11) so they are cheap,
immutable and easy to match on.

The event queue is bounded by construction: stream events are coalesced (one
pending :class:`StreamReadable` / :class:`StreamWritable` per stream until the
caller acts), received unreliable datagrams are capped by
``Config.max_received_datagrams`` (older ones are dropped and counted), and the
remaining events happen at most once per connection.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConnectionTerminated",
    "DatagramReceived",
    "Event",
    "HandshakeCompleted",
    "StopSendingReceived",
    "StreamReadable",
    "StreamReset",
    "StreamWritable",
    "StreamsAvailable",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of all connection events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeCompleted(Event):
    """The handshake finished; streams and datagrams can flow both ways."""

    alpn: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReadable(Event):
    """New in-order bytes (or the end of the stream) can be read with
    ``recv_stream_data``. Reported once until the caller reads. Also reported
    when the peer opens a stream, before it carries any data (the read then
    returns ``(b"", False)``), so the application can speak first on it."""

    stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamWritable(Event):
    """A stream whose send buffer was full has room again."""

    stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamsAvailable(Event):
    """The peer raised its stream limit (MAX_STREAMS): ``open_stream`` may now
    succeed where it raised StreamLimitError."""

    bidirectional: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReset(Event):
    """The peer abandoned its sending side of the stream (RESET_STREAM)."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StopSendingReceived(Event):
    """The peer asked us to stop sending on the stream; it has been reset."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DatagramReceived(Event):
    """An unreliable datagram arrived."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionTerminated(Event):
    """The connection ended. ``by_peer`` tells who closed it; ``error_code`` is
    a transport :class:`~transport.wire.constants.ErrorCode` unless
    ``application`` is true."""

    error_code: int
    reason: str
    by_peer: bool
    application: bool = False
