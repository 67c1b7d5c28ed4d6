"""Counters a user can read from a connection at any time.

How this works
--------------
The connection increments plain integer attributes on a mutable, slotted
:class:`Counters` object on its hot path (cheap), and ``Connection.get_stats()``
copies them, with the recovery and congestion figures of the moment, into an
immutable :class:`ConnectionStats` snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass


class Counters:
    """Mutable counters updated by the connection (internal)."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "datagrams_dropped",
        "datagrams_dropped_malformed",
        "datagrams_received_dropped",
        "datagrams_sent_dropped",
        "duplicate_packets",
        "fec_recovered",
        "fec_repair_bytes_sent",
        "fec_reported_recovered",
        "migrations",
        "packets_lost",
        "packets_received",
        "packets_retransmitted",
        "packets_sent",
        "probes_sent",
        "stream_bytes_delivered",
        "stream_bytes_retransmitted",
        "stream_bytes_sent",
    )

    def __init__(self) -> None:
        self.bytes_received = 0
        self.bytes_sent = 0
        self.datagrams_dropped = 0
        self.datagrams_dropped_malformed = 0
        self.datagrams_received_dropped = 0
        self.datagrams_sent_dropped = 0
        self.duplicate_packets = 0
        self.fec_recovered = 0
        self.fec_repair_bytes_sent = 0
        self.fec_reported_recovered = 0
        self.migrations = 0
        self.packets_lost = 0
        self.packets_received = 0
        self.packets_retransmitted = 0
        self.packets_sent = 0
        self.probes_sent = 0
        self.stream_bytes_delivered = 0
        self.stream_bytes_retransmitted = 0
        self.stream_bytes_sent = 0


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """A snapshot of one connection's figures. Times in seconds, sizes in bytes."""

    packets_sent: int
    packets_received: int
    packets_lost: int
    #: packets that carried at least one retransmitted stream frame
    packets_retransmitted: int
    spurious_retransmits: int
    probes_sent: int
    bytes_sent: int
    bytes_received: int
    stream_bytes_sent: int
    stream_bytes_retransmitted: int
    #: stream bytes handed to the application in order
    stream_bytes_delivered: int
    duplicate_packets: int
    #: datagrams dropped because they were malformed, forged or for no connection
    datagrams_dropped: int
    #: received unreliable datagrams dropped because the queue was full
    datagrams_received_dropped: int
    #: queued unreliable datagrams dropped because the queue was full
    datagrams_sent_dropped: int
    #: packets this side rebuilt from repair symbols (no retransmission needed)
    fec_recovered: int
    #: bytes of REPAIR packets this side sent
    fec_repair_bytes_sent: int
    #: packets the peer reported as rebuilt by FEC (FEC_RECOVERED)
    fec_reported_recovered: int
    #: times the peer's address changed (NAT rebinding, migration)
    migrations: int
    smoothed_rtt_s: float
    latest_rtt_s: float
    min_rtt_s: float
    rttvar_s: float
    congestion_window_bytes: int
    bytes_in_flight: int
    congestion_state: str
    #: ECN validation on the current path: "testing", "capable" or "failed"
    ecn_state: str = "failed"
    #: CE marks the peer reported on our packets (as of the last validated ACK)
    ecn_ce_reported: int = 0
