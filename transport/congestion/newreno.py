"""NewReno congestion control, RFC 9002 §7 and Appendix B.

How this works
--------------
* **Slow start** (window below ``ssthresh_bytes``): every acknowledged
  in-flight byte grows the window by one byte, doubling it per round trip.
* **Congestion avoidance**: acknowledged bytes accumulate; each time a full
  window's worth has been acknowledged the window grows by one
  ``max_datagram_size`` -- about one datagram per round trip.
* **Recovery** (§7.3.2): a loss (or ECN-CE) halves the window
  (``kLossReductionFactor`` = 0.5, floored at the minimum window), sets
  ``ssthresh_bytes`` to the result and records the time. Losses of packets sent
  before that time belong to the same congestion event and do not reduce again
  -- at most one reduction per round trip. Acknowledgements of such packets do
  not grow the window either. Recovery ends when a packet sent after it started
  is acknowledged.
* **Persistent congestion** (§7.6): the window collapses to the minimum
  (2 * max_datagram_size) and the recovery period is forgotten, so slow start
  restarts from there.
* **Application-limited** (§7.8): packets sent while the sender had nothing
  more to send (``SentPacket.is_app_limited``) do not grow the window, so an
  idle or thin flow cannot inflate a window it never used.

No pacing (``pacing_rate_bps`` stays ``None``); spurious losses are not undone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import CongestionController, newest_in_flight_sent_s
from .pacing import window_pacing_rate_bps

if TYPE_CHECKING:
    from ..recovery import RttEstimator, SentPacket

__all__ = ["NewReno"]

_NEG_INF = float("-inf")


class NewReno(CongestionController):
    """RFC 9002 NewReno. The class is its own factory: ``NewReno(max_datagram_size=1200)``."""

    __slots__ = ("_acked_bytes_in_ca", "_recovery_start_s")

    def __init__(self, *, max_datagram_size: int, rng: random.Random | None = None) -> None:
        super().__init__(max_datagram_size=max_datagram_size, rng=rng)
        self._acked_bytes_in_ca = 0
        self._recovery_start_s = _NEG_INF
        self.state = "slow_start"

    def on_packets_acked(
        self,
        packets: Sequence[SentPacket],
        now: float,
        rtt: RttEstimator,
        bytes_in_flight: int,
    ) -> None:
        recovery_start_s = self._recovery_start_s
        growth_bytes = 0
        left_recovery = False
        for packet in packets:
            if not packet.in_flight or packet.sent_time_s <= recovery_start_s:
                continue
            left_recovery = True
            if not packet.is_app_limited:
                growth_bytes += packet.size_bytes
        if rtt.has_sample:
            self.pacing_rate_bps = window_pacing_rate_bps(
                self.congestion_window_bytes,
                rtt.smoothed_rtt_s,
                2.0 if self.congestion_window_bytes < self.ssthresh_bytes else 1.25,
            )
        if left_recovery and self.state == "recovery":
            self.state = "congestion_avoidance"  # recovery is over; refined below
        if not growth_bytes:
            if left_recovery:
                self._refresh_state()
            return
        cwnd = self.congestion_window_bytes
        ssthresh = self.ssthresh_bytes
        if cwnd < ssthresh:
            room = ssthresh - cwnd
            if growth_bytes <= room:
                self.congestion_window_bytes = cwnd + growth_bytes
                self._refresh_state()
                return
            cwnd = ssthresh
            growth_bytes -= room
        acked = self._acked_bytes_in_ca + growth_bytes
        mds = self.max_datagram_size
        while acked >= cwnd:
            acked -= cwnd
            cwnd += mds
        self._acked_bytes_in_ca = acked
        self.congestion_window_bytes = cwnd
        self._refresh_state()

    def on_packets_lost(
        self, packets: Sequence[SentPacket], now: float, bytes_in_flight: int
    ) -> None:
        if newest_in_flight_sent_s(packets) > self._recovery_start_s:
            self._enter_recovery(now)

    def on_ecn_ce(self, now: float) -> None:
        if self.state != "recovery":
            self._enter_recovery(now)

    def on_persistent_congestion(self, now: float) -> None:
        self.congestion_window_bytes = self.min_window_bytes
        self._recovery_start_s = _NEG_INF
        self._acked_bytes_in_ca = 0
        self.state = "congestion_avoidance"  # leave recovery; refined just below
        self._refresh_state()

    # ----------------------------------------------------------- internals
    def _enter_recovery(self, now: float) -> None:
        self._recovery_start_s = now
        reduced = self.congestion_window_bytes // 2
        if reduced < self.min_window_bytes:
            reduced = self.min_window_bytes
        self.ssthresh_bytes = reduced
        self.congestion_window_bytes = reduced
        self._acked_bytes_in_ca = 0
        self.state = "recovery"

    def _refresh_state(self) -> None:
        if self.state == "recovery":
            return
        if self.congestion_window_bytes < self.ssthresh_bytes:
            self.state = "slow_start"
        else:
            self.state = "congestion_avoidance"
