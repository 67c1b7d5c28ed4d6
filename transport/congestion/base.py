"""The congestion-controller protocol every algorithm implements.

How this works
--------------
:class:`~transport.recovery.LossRecovery` owns the sent-packet map and
``bytes_in_flight``; a controller owns only the sending budget. Recovery calls
the hooks below, always with the current ``bytes_in_flight`` (after the
bookkeeping of that event) and the explicit ``now`` (float seconds):

========================  ======================================================
hook                      called when
========================  ======================================================
``on_packet_sent``        a packet left (only if the subclass overrides it)
``on_packets_lost``       a batch of packets was declared lost (RFC 9002 §6.1),
                          before ``on_packets_acked`` of the same ACK (§B.6 order)
``on_packets_acked``      a batch of packets was newly acknowledged
``on_persistent_congestion``  §7.6 fired (after ``on_packets_lost``)
``on_spurious_loss``      a packet already declared lost was acknowledged
``on_ecn_ce``             the peer reported new ECN-CE marks
========================  ======================================================

Packets arrive in ascending packet-number order (hence ascending send time)
as :class:`~transport.recovery.SentPacket` objects; non-in-flight packets
(ACK-only) can appear in the lists and must be ignored by the controller.
Each ``SentPacket`` carries delivery-rate fields (``delivered_bytes``,
``delivered_time_s``, ``first_sent_time_s``, ``is_app_limited``) that recovery
fills at send time, which is what a model-based controller such as BBR needs;
recovery also publishes a per-ACK delivery-rate sample
(``LossRecovery.delivery_rate_bps``).

Outputs the connection reads: ``congestion_window_bytes`` (via
:meth:`available_bytes`) and ``pacing_rate_bps`` (``None`` = no pacing; a
pacer in the connection spaces packets at that rate when it is set). ``state``
is a short name for stats only.

Every hook has a no-op default, so a new algorithm (CUBIC, BBR, ...) overrides
only what it uses. Controllers are built by a factory -- any callable
``(*, max_datagram_size) -> CongestionController``; a controller class is
its own factory -- held in the connection config. There is no string
registry in the core; ``transport.congestion.controllers`` maps CLI names to
factories.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..recovery import RttEstimator, SentPacket

__all__ = [
    "CongestionController",
    "CongestionControllerFactory",
    "initial_window_bytes",
    "minimum_window_bytes",
]


def initial_window_bytes(max_datagram_size: int) -> int:
    """RFC 9002 §7.2: min(10 * mds, max(14720, 2 * mds))."""
    return min(10 * max_datagram_size, max(14720, 2 * max_datagram_size))


def minimum_window_bytes(max_datagram_size: int) -> int:
    """RFC 9002 §7.2: kMinimumWindow = 2 * max_datagram_size."""
    return 2 * max_datagram_size


class CongestionController:
    """Base controller: a fixed window (the initial window), no pacing.

    Subclasses change the window in the hooks. All sizes are bytes, times are
    seconds, rates bits per second.
    """

    __slots__ = (
        "congestion_window_bytes",
        "max_datagram_size",
        "min_window_bytes",
        "pacing_rate_bps",
        "ssthresh_bytes",
        "state",
    )

    def __init__(self, *, max_datagram_size: int, rng: random.Random | None = None) -> None:
        if max_datagram_size < 1:
            raise ConfigurationError("max_datagram_size must be positive")
        self.max_datagram_size = max_datagram_size
        self.min_window_bytes = minimum_window_bytes(max_datagram_size)
        self.congestion_window_bytes = initial_window_bytes(max_datagram_size)
        #: Slow-start threshold; a very large int means "not set yet".
        self.ssthresh_bytes: int = 1 << 62
        #: Bits per second the pacer should release at, or None for no pacing.
        self.pacing_rate_bps: float | None = None
        self.state = "fixed"

    # ------------------------------------------------------------ outputs
    def available_bytes(self, bytes_in_flight: int) -> int:
        """How many more bytes the window allows right now (never negative)."""
        room = self.congestion_window_bytes - bytes_in_flight
        return room if room > 0 else 0

    # -------------------------------------------------------------- hooks
    def on_packet_sent(self, packet: SentPacket, bytes_in_flight: int, now: float) -> None:
        """A packet was sent. Recovery skips this call when it is not overridden."""

    def on_packets_acked(
        self,
        packets: Sequence[SentPacket],
        now: float,
        rtt: RttEstimator,
        bytes_in_flight: int,
    ) -> None:
        """``packets`` (ascending) were newly acknowledged."""

    def on_packets_lost(
        self, packets: Sequence[SentPacket], now: float, bytes_in_flight: int
    ) -> None:
        """``packets`` (ascending) were declared lost."""

    def on_persistent_congestion(self, now: float) -> None:
        """RFC 9002 §7.6: every packet over a long span was lost."""

    def on_spurious_loss(self, packet: SentPacket, now: float) -> None:
        """``packet``, earlier declared lost, has been acknowledged after all."""

    def on_ecn_ce(self, now: float) -> None:
        """The peer reported an increase in ECN-CE marked packets."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(state={self.state!r}, "
            f"cwnd={self.congestion_window_bytes}, ssthresh={self.ssthresh_bytes})"
        )


class CongestionControllerFactory(Protocol):
    """Builds one controller per connection (path). A controller class is one."""

    def __call__(
        self, *, max_datagram_size: int, rng: random.Random | None = None
    ) -> CongestionController: ...


def newest_in_flight_sent_s(packets: Sequence[SentPacket]) -> float:
    """Send time of the newest in-flight packet among ``packets`` (-inf if none):
    a loss starts a new recovery period only if it was sent after the last one
    began (RFC 9002 §7.3.2)."""
    newest = -math.inf
    for packet in packets:
        if packet.in_flight and packet.sent_time_s > newest:
            newest = packet.sent_time_s
    return newest
