"""CUBIC congestion control (RFC 9438) with HyStart++ slow start (RFC 9406).

How this works
--------------
Window units are bytes; the RFC's formulas are in segments, so ``W`` values
below are divided by ``max_datagram_size`` (mds) where the cubic needs them.

* **Slow start with HyStart++** (RFC 9406 §4.2): rounds are counted with the
  delivery-rate stamps recovery puts on every packet (a round ends when a
  packet sent after the previous round ended is acknowledged). Each round
  keeps the minimum RTT of its first ``N_RTT_SAMPLE`` (8) or more samples;
  when the current round's minimum exceeds the previous one by
  ``clamp(last/8, 4 ms, 16 ms)`` the flow leaves slow start for
  *Conservative Slow Start* (CSS), growing by ``acked / 4``. If the RTT
  falls back below the CSS baseline, slow start resumes; after
  ``CSS_ROUNDS`` (5) rounds in CSS, congestion avoidance starts with
  ``ssthresh = cwnd``. A loss in either phase is an ordinary congestion event.
* **Congestion event** (§4.6, §4.7): at most one per round trip (packets
  sent before the last reduction do not count again). ``W_max`` is the window
  before the cut -- reduced further to ``W_max * (1 + beta) / 2`` when it is
  below the previous ``W_max`` (*fast convergence*) -- and the window becomes
  ``beta * cwnd`` (``beta`` = 0.7), never below the minimum window.
* **Congestion avoidance** (§4.2-§4.4): from the epoch start ``t = 0`` the
  window follows ``W_cubic(t) = C (t - K)^3 + W_max`` with ``C`` = 0.4 and
  ``K = cbrt((W_max - cwnd_epoch) / C)``. Each ACK moves the window towards
  ``target = W_cubic(t + srtt)`` clamped to ``[cwnd, 1.5 cwnd]`` by
  ``(target - cwnd) / cwnd`` per acknowledged segment. In parallel the
  *Reno-friendly* estimate ``W_est`` grows by ``alpha = 3 (1 - beta) /
  (1 + beta)`` segments per window acknowledged (alpha becomes 1 once
  ``W_est`` reaches the window before the last cut); when ``W_cubic(t)`` is
  below ``W_est`` the window is ``W_est`` (§4.3).
* **Application-limited** (§5.8): packets sent while application-limited do
  not grow the window, and time spent with nothing in flight is removed from
  ``t`` (the epoch start moves forward by the idle time).
* **Persistent congestion** (RFC 9002 §7.6): the window falls to the minimum
  and a new epoch starts after slow start.
* **Spurious congestion events** (§4.9): when a loss that caused the last cut
  turns out to be spurious, the window, ``ssthresh``, ``W_max`` and ``K``
  are restored to their values before that cut.
* **Pacing**: ``pacing_rate_bps = gain * cwnd / srtt`` with gain 2 in slow
  start and 1.25 otherwise (RFC 9002 §7.7); ``pacing=False`` leaves it ``None``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import CongestionController, newest_in_flight_sent_s
from .pacing import window_pacing_rate_bps

if TYPE_CHECKING:
    from ..recovery import RttEstimator, SentPacket

__all__ = ["CUBIC", "Cubic"]

#: RFC 9438 §5.1 constants.
CUBIC_C = 0.4
CUBIC_BETA = 0.7
#: RFC 9438 §4.3: 3 * (1 - beta) / (1 + beta).
CUBIC_ALPHA = 3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA)

#: RFC 9406 §4.3 constants.
MIN_RTT_THRESH_S = 0.004
MAX_RTT_THRESH_S = 0.016
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5

SLOW_START_PACING_GAIN = 2.0
PACING_GAIN = 1.25

_NEG_INF = float("-inf")
_INF = float("inf")


class Cubic(CongestionController):
    """RFC 9438 CUBIC with RFC 9406 HyStart++. The class is its own factory;
    use ``functools.partial(Cubic, hystart=False)`` etc. for options."""

    __slots__ = (
        "_css_baseline_rtt_s",
        "_css_rounds",
        "_current_round_min_rtt_s",
        "_cwnd_f",
        "_cwnd_prior_bytes",
        "_delivered_bytes",
        "_epoch_start_s",
        "_idle_since_s",
        "_k_s",
        "_last_round_min_rtt_s",
        "_next_round_delivered",
        "_recovery_start_s",
        "_rtt_sample_count",
        "_undo",
        "_w_est_bytes",
        "_w_max_bytes",
        "fast_convergence",
        "hystart",
        "pacing",
    )

    def __init__(
        self,
        *,
        max_datagram_size: int,
        rng: random.Random | None = None,
        hystart: bool = True,
        fast_convergence: bool = True,
        pacing: bool = True,
    ) -> None:
        super().__init__(max_datagram_size=max_datagram_size)
        self.hystart = hystart
        self.fast_convergence = fast_convergence
        self.pacing = pacing
        self.state = "slow_start"
        self._cwnd_f = float(self.congestion_window_bytes)
        self._recovery_start_s = _NEG_INF
        self._epoch_start_s: float | None = None
        self._idle_since_s: float | None = None
        self._w_max_bytes = 0.0
        self._cwnd_prior_bytes = 0.0
        self._w_est_bytes = 0.0
        self._k_s = 0.0
        self._undo: tuple[float, int, float, float, float, str] | None = None
        # round counting and HyStart++
        self._delivered_bytes = 0
        self._next_round_delivered = 0
        self._last_round_min_rtt_s = _INF
        self._current_round_min_rtt_s = _INF
        self._rtt_sample_count = 0
        self._css_baseline_rtt_s = _INF
        self._css_rounds = 0

    # ------------------------------------------------------------ queries
    @property
    def w_max_bytes(self) -> float:
        """Window just before the last reduction (after fast convergence)."""
        return self._w_max_bytes

    @property
    def k_s(self) -> float:
        """Seconds from the epoch start until ``W_cubic`` reaches ``W_max``."""
        return self._k_s

    def w_cubic_bytes(self, t_s: float) -> float:
        """RFC 9438 Figure 1: ``C (t - K)^3 + W_max``, in bytes."""
        d = t_s - self._k_s
        return (CUBIC_C * d * d * d) * self.max_datagram_size + self._w_max_bytes

    # -------------------------------------------------------------- hooks
    def on_packet_sent(self, packet: SentPacket, bytes_in_flight: int, now: float) -> None:
        idle_since = self._idle_since_s
        if idle_since is not None:
            self._idle_since_s = None
            if self._epoch_start_s is not None and now > idle_since:
                self._epoch_start_s += now - idle_since  # §5.8: idle time is not growth time

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
        newest: SentPacket | None = None
        delivered = self._delivered_bytes
        for packet in packets:
            if not packet.in_flight:
                continue
            delivered += packet.size_bytes
            newest = packet
            if packet.sent_time_s <= recovery_start_s:
                continue
            left_recovery = True
            if not packet.is_app_limited:
                growth_bytes += packet.size_bytes
        self._delivered_bytes = delivered
        if newest is None:
            return
        if not bytes_in_flight:
            self._idle_since_s = now
        round_start = False
        if newest.delivered_bytes >= self._next_round_delivered:
            self._next_round_delivered = delivered
            round_start = True
        if left_recovery and self.state == "recovery":
            self.state = "congestion_avoidance"
        if self.state in ("slow_start", "css"):
            self._hystart_on_ack(round_start, rtt.latest_rtt_s)
        if growth_bytes:
            cwnd = self._cwnd_f
            if self.state == "slow_start":
                cwnd += growth_bytes
                if cwnd >= self.ssthresh_bytes:
                    cwnd = float(max(self.ssthresh_bytes, self.congestion_window_bytes))
                    self.state = "congestion_avoidance"
            elif self.state == "css":
                cwnd += growth_bytes / CSS_GROWTH_DIVISOR
            elif self.state == "congestion_avoidance":
                cwnd = self._avoidance(cwnd, growth_bytes, now, rtt.smoothed_rtt_s)
            self._set_cwnd(cwnd)
        self._update_pacing(rtt)

    def on_packets_lost(
        self, packets: Sequence[SentPacket], now: float, bytes_in_flight: int
    ) -> None:
        if newest_in_flight_sent_s(packets) > self._recovery_start_s:
            self._congestion_event(now)

    def on_ecn_ce(self, now: float) -> None:
        if self.state != "recovery":
            self._congestion_event(now)
            self._undo = None  # a CE mark is never spurious: nothing to undo

    def on_spurious_loss(self, packet: SentPacket, now: float) -> None:
        undo = self._undo
        if undo is None or not packet.in_flight:
            return
        self._undo = None
        cwnd, ssthresh, w_max, k_s, cwnd_prior, state = undo
        if cwnd > self._cwnd_f:
            self._w_max_bytes = w_max
            self._k_s = k_s
            self._cwnd_prior_bytes = cwnd_prior
            self.ssthresh_bytes = ssthresh
            self._epoch_start_s = None
            self._recovery_start_s = _NEG_INF
            self.state = state if state != "recovery" else "congestion_avoidance"
            self._set_cwnd(cwnd)

    def on_persistent_congestion(self, now: float) -> None:
        self._undo = None
        self._epoch_start_s = None
        self._recovery_start_s = _NEG_INF
        self.state = "slow_start"
        self._set_cwnd(float(self.min_window_bytes))

    # ----------------------------------------------------------- internals
    def _set_cwnd(self, cwnd: float) -> None:
        if cwnd < self.min_window_bytes:
            cwnd = float(self.min_window_bytes)
        self._cwnd_f = cwnd
        self.congestion_window_bytes = int(cwnd)

    def _update_pacing(self, rtt: RttEstimator) -> None:
        if self.pacing and rtt.has_sample:
            gain = SLOW_START_PACING_GAIN if self.state == "slow_start" else PACING_GAIN
            self.pacing_rate_bps = window_pacing_rate_bps(self._cwnd_f, rtt.smoothed_rtt_s, gain)

    def _hystart_on_ack(self, round_start: bool, latest_rtt_s: float) -> None:
        if not self.hystart:
            return
        if round_start:
            self._last_round_min_rtt_s = self._current_round_min_rtt_s
            self._current_round_min_rtt_s = _INF
            self._rtt_sample_count = 0
            if self.state == "css":
                self._css_rounds += 1
                if self._css_rounds >= CSS_ROUNDS:
                    self.ssthresh_bytes = self.congestion_window_bytes
                    self.state = "congestion_avoidance"
                    return
        if latest_rtt_s <= 0.0:
            return
        if latest_rtt_s < self._current_round_min_rtt_s:
            self._current_round_min_rtt_s = latest_rtt_s
        self._rtt_sample_count += 1
        current = self._current_round_min_rtt_s
        if self.state == "slow_start":
            last = self._last_round_min_rtt_s
            if self._rtt_sample_count >= N_RTT_SAMPLE and last != _INF:
                thresh_s = last / MIN_RTT_DIVISOR
                if thresh_s < MIN_RTT_THRESH_S:
                    thresh_s = MIN_RTT_THRESH_S
                elif thresh_s > MAX_RTT_THRESH_S:
                    thresh_s = MAX_RTT_THRESH_S
                if current >= last + thresh_s:
                    self._css_baseline_rtt_s = current
                    self._css_rounds = 0
                    self.state = "css"
        elif self._rtt_sample_count >= N_RTT_SAMPLE and current < self._css_baseline_rtt_s:
            self._css_baseline_rtt_s = _INF  # RTT dropped again: CSS was spurious
            self.state = "slow_start"

    def _avoidance(self, cwnd: float, acked_bytes: int, now: float, srtt_s: float) -> float:
        mds = self.max_datagram_size
        if self._epoch_start_s is None:
            self._epoch_start_s = now
            self._w_est_bytes = cwnd
            if self._w_max_bytes <= cwnd:
                self._k_s = 0.0
                self._w_max_bytes = cwnd
            else:
                self._k_s = ((self._w_max_bytes - cwnd) / mds / CUBIC_C) ** (1.0 / 3.0)
        t_s = now - self._epoch_start_s
        # Reno-friendly estimate (§4.3)
        alpha = 1.0 if self._w_est_bytes >= self._cwnd_prior_bytes else CUBIC_ALPHA
        self._w_est_bytes += alpha * acked_bytes * mds / cwnd
        w_cubic = self.w_cubic_bytes(t_s)
        if w_cubic < self._w_est_bytes:
            return self._w_est_bytes if self._w_est_bytes > cwnd else cwnd
        target = self.w_cubic_bytes(t_s + srtt_s)
        if target < cwnd:
            target = cwnd
        elif target > 1.5 * cwnd:
            target = 1.5 * cwnd
        return cwnd + (target - cwnd) * acked_bytes / cwnd

    def _congestion_event(self, now: float) -> None:
        cwnd = self._cwnd_f
        self._undo = (
            cwnd,
            self.ssthresh_bytes,
            self._w_max_bytes,
            self._k_s,
            self._cwnd_prior_bytes,
            self.state,
        )
        self._recovery_start_s = now
        self._cwnd_prior_bytes = cwnd
        if self.fast_convergence and cwnd < self._w_max_bytes:
            self._w_max_bytes = cwnd * (1.0 + CUBIC_BETA) / 2.0
        else:
            self._w_max_bytes = cwnd
        reduced = cwnd * CUBIC_BETA
        if reduced < self.min_window_bytes:
            reduced = float(self.min_window_bytes)
        self.ssthresh_bytes = int(reduced)
        self._set_cwnd(reduced)
        self._k_s = (
            ((self._w_max_bytes - reduced) / self.max_datagram_size / CUBIC_C) ** (1.0 / 3.0)
            if self._w_max_bytes > reduced
            else 0.0
        )
        self._epoch_start_s = None  # set by the first ACK of the new epoch
        self._w_est_bytes = reduced
        self.state = "recovery"


#: Conventional spelling.
CUBIC = Cubic
