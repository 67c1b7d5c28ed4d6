"""Receive-side acknowledgement state: what to ACK and when (RFC 9000 §13.2).

How this works
--------------
Received packet numbers live in a bounded :class:`~transport.rangeset.RangeSet`
(``max_ranges``). In-order arrival (the common case) extends the top range in
O(1); a packet number is a duplicate if it is below the *floor* or already in
the set. The floor rises when

* the peer acknowledges one of our packets that carried an ACK frame
  (:meth:`AckManager.on_ack_frame_acked`, §13.2.4): numbers up to that frame's
  Largest Acknowledged need never be reported again, so they are dropped and
  anything at or below them is rejected from then on;
* the range bound evicts the lowest range: we can no longer tell whether those
  numbers were seen, so we refuse them rather than risk processing a packet
  twice (the sender declares them lost and resends the data in new packets).

ACK-frequency policy (§13.2.1, §13.2.2). Only ack-eliciting packets arm it:

* at once when the packet is out of order -- below the largest received, or
  above it with a gap -- and for the ``REORDER_ACK_PACKETS`` in-order packets
  after a gap, so the sender sees the packets above a hole that its packet
  threshold (RFC 9002 §6.1.1, 3 packets) needs, without waiting;
* at once when *threshold* ack-eliciting packets are waiting;
* otherwise *delay* after the first ack-eliciting packet waiting.

*Threshold* and *delay* adapt to the arrival rate (ACK decimation, as in the
QUIC ACK-frequency draft and Chromium's receiver; RFC 9000 §13.2.2 allows a
receiver to ACK less often when it knows the sender's rate). Per window of
one minimum RTT (from the connection's RTT estimator) the manager counts
ack-eliciting arrivals; the next window's threshold is the number of packets
that arrived per quarter of a minimum RTT, clamped to
``[ack_eliciting_threshold, max_ack_eliciting_threshold]`` -- about four ACKs
per round trip, never fewer than one per ``max_ack_eliciting_threshold``
packets. While the threshold is above the RFC floor, the delay is
``min(max_ack_delay_s, min_rtt / 4)``, so a flow that slows down (a window
that shrank, the tail of a transfer) waits at most a quarter round trip; at
the floor it is ``max_ack_delay_s``. Without an RTT sample, or after an idle
window (the rate measured over the window falls), the RFC defaults apply.
Packets handed over one at a time (the simulator) or in GRO batches (a real
driver; a batch is acknowledged once) then give similar ACK counts. A sender's
probe (PTO) is acknowledged within *delay*, which never exceeds the
``max_ack_delay`` the peer's PTO allows for.

"At once" is a deadline equal to the arrival time, so the connection needs one
rule: :meth:`AckManager.should_send_ack` when ``now`` reaches
:meth:`AckManager.get_timer`. :attr:`AckManager.ack_pending` says an ACK
would carry news worth its bytes, so the connection can piggyback it on
outgoing data before it is due: an ack-eliciting packet since the last ACK
frame, or ``NON_ELICITING_PIGGYBACK_EVERY`` (16) ACK-only packets. Those need
no acknowledgement, but one now and then lets the peer prune the ranges it
reports and its records of them; a bulk sender that piggybacked an ACK on its
next data packet after *every* ACK-only packet of the peer spent ~6 bytes in
one packet of five (and left its batched send path for it). An ACK frame is built by
:meth:`AckManager.build_ack` (flat inclusive ranges, highest first; ACK Delay
encoded in units of ``2**ack_delay_exponent`` microseconds, §19.3) and the
timer is disarmed by :meth:`AckManager.on_ack_sent` once it is actually sent.

ECN (RFC 9000 §13.4.1, see :mod:`transport.ecn`): the connection reports the
codepoint of each processed packet with :meth:`AckManager.on_ecn`; once any
ECT or CE packet arrived, :attr:`AckManager.ecn_report` gives the ECT(0),
ECT(1) and CE totals for an ACK_ECN frame. A CE-marked packet makes the ACK
due at once (§13.2.1) if the packet was ack-eliciting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigurationError
from .rangeset import RangeSet

if TYPE_CHECKING:
    from .recovery import RttEstimator

__all__ = ["REORDER_ACK_PACKETS", "AckManager"]

#: In-order packets after a gap that are acknowledged at once: with the packet
#: that revealed the gap, the sender sees the 3 packets above the hole its packet
#: threshold needs even when one of them is not ack-eliciting (an FEC repair)
#: or a skipped packet number, without waiting for the decimated ACK.
REORDER_ACK_PACKETS = 3
#: Without an RTT sample, the arrival rate is measured over windows this long.
_DEFAULT_WINDOW_S = 0.025
#: ACK-only packets from the peer that make a piggybacked ACK worth sending.
NON_ELICITING_PIGGYBACK_EVERY = 16
#: Shortest rate window (a LAN's microsecond RTT would re-measure per packet).
_MIN_WINDOW_S = 0.001


class AckManager:
    """Tracks received packet numbers and decides when an ACK frame is due."""

    __slots__ = (
        "_ack_pending",
        "_deadline_s",
        "_delay_s",
        "_ecn_counts",
        "_flat",
        "_floor",
        "_immediate_until",
        "_non_eliciting",
        "_received",
        "_rtt",
        "_threshold",
        "_unacked_eliciting",
        "_window_count",
        "_window_end_s",
        "_window_start_s",
        "ack_delay_exponent",
        "ack_eliciting_threshold",
        "largest_received",
        "largest_received_time_s",
        "last_ack_packet_number",
        "max_ack_delay_s",
        "max_ack_eliciting_threshold",
    )

    def __init__(
        self,
        *,
        max_ack_delay_s: float = 0.025,
        ack_eliciting_threshold: int = 2,
        max_ranges: int = 64,
        ack_delay_exponent: int = 3,
        max_ack_eliciting_threshold: int | None = None,
        rtt: RttEstimator | None = None,
    ) -> None:
        if max_ack_delay_s < 0:
            raise ConfigurationError("max_ack_delay_s must be >= 0")
        if ack_eliciting_threshold < 1:
            raise ConfigurationError("ack_eliciting_threshold must be >= 1")
        if max_ack_eliciting_threshold is None:
            max_ack_eliciting_threshold = ack_eliciting_threshold
        if max_ack_eliciting_threshold < ack_eliciting_threshold:
            raise ConfigurationError(
                "max_ack_eliciting_threshold must be >= ack_eliciting_threshold"
            )
        if max_ranges < 1:
            raise ConfigurationError("max_ranges must be >= 1")
        if not 0 <= ack_delay_exponent <= 20:
            raise ConfigurationError("ack_delay_exponent must be in 0..20")
        self.max_ack_delay_s = max_ack_delay_s
        self.ack_eliciting_threshold = ack_eliciting_threshold
        #: the decimation cap; equal to ``ack_eliciting_threshold``: RFC 9000 only
        self.max_ack_eliciting_threshold = max_ack_eliciting_threshold
        self.ack_delay_exponent = ack_delay_exponent
        self._rtt = rtt
        #: the threshold and delay in force (adapted once per rate window)
        self._threshold = ack_eliciting_threshold
        self._delay_s = max_ack_delay_s
        self._window_start_s = 0.0
        self._window_end_s = 0.0
        self._window_count = 0
        #: in-order packets up to this number are acknowledged at once (after a gap)
        self._immediate_until = -1
        self.largest_received = -1
        self.largest_received_time_s = 0.0
        self.last_ack_packet_number = -1
        self._received = RangeSet(max_ranges=max_ranges)
        self._floor = 0
        self._unacked_eliciting = 0
        self._deadline_s: float | None = None
        self._ack_pending = False
        #: ACK-only packets received since the last ACK frame was sent
        self._non_eliciting = 0
        #: packets per ECN codepoint (Not-ECT, ECT(1), ECT(0), CE); None until one is marked
        self._ecn_counts: list[int] | None = None
        #: Flat inclusive ranges, highest first, kept current by the in-order fast
        #: path; None when a slower change invalidated it (rebuilt on demand).
        self._flat: list[int] | None = []

    # ------------------------------------------------------------- queries
    @property
    def floor(self) -> int:
        """Packet numbers below this are refused as duplicates."""
        return self._floor

    @property
    def range_count(self) -> int:
        """Number of disjoint ranges currently tracked."""
        return len(self._received)

    @property
    def ack_pending(self) -> bool:
        """An ACK frame would carry news worth piggybacking on an outgoing
        packet even if none is due yet: an ack-eliciting packet arrived since
        the last ACK frame, or ``NON_ELICITING_PIGGYBACK_EVERY`` ACK-only ones."""
        return self._ack_pending

    @property
    def ecn_report(self) -> tuple[int, int, int] | None:
        """(ECT(0), ECT(1), CE) totals for an ACK_ECN frame, or None (plain ACK)."""
        counts = self._ecn_counts
        return None if counts is None else (counts[2], counts[1], counts[3])

    def is_duplicate(self, pn: int) -> bool:
        """True if ``pn`` must be dropped unprocessed (seen, or below the floor).

        Lets the connection reject a packet before decoding its frames; it then
        calls :meth:`on_packet_received` once it knows whether it was ack-eliciting.
        """
        if pn > self.largest_received:
            return False
        return pn < self._floor or pn in self._received

    def get_timer(self) -> float | None:
        """When an ACK frame is due (absolute seconds; may be in the past), or None."""
        return self._deadline_s

    @property
    def threshold(self) -> int:
        """Ack-eliciting packets acknowledged together at the current rate."""
        return self._threshold

    @property
    def delay_s(self) -> float:
        """How long the first waiting ack-eliciting packet may wait at most."""
        return self._delay_s

    def should_send_ack(self, now: float) -> bool:
        deadline_s = self._deadline_s
        return deadline_s is not None and now >= deadline_s

    # -------------------------------------------------------------- inputs
    def on_packet_received(self, pn: int, ack_eliciting: bool, now: float) -> bool:
        """Record packet ``pn``; False means a duplicate (or unknowable): drop it."""
        largest = self.largest_received
        received = self._received
        if pn == largest + 1 and pn >= self._floor:  # in order: the fast path
            received.add(pn, pn + 1)
            flat = self._flat
            if flat is not None:
                if flat and flat[1] == largest:
                    flat[1] = pn
                else:
                    flat[0:0] = (pn, pn)
            self.largest_received = pn
            self.largest_received_time_s = now
            if not ack_eliciting:
                self._note_non_eliciting()
            else:  # _arm(now, False), inlined for the common case
                self._ack_pending = True
                count = self._unacked_eliciting + 1
                self._unacked_eliciting = count
                if now >= self._window_end_s:
                    self._adapt(now)
                self._window_count += 1
                deadline_s = self._deadline_s
                if count >= self._threshold or pn <= self._immediate_until:
                    if deadline_s is None or deadline_s > now:
                        self._deadline_s = now
                elif deadline_s is None:
                    self._deadline_s = now + self._delay_s
            return True
        if pn < self._floor:
            return False
        if pn <= largest and pn in received:
            return False
        self._flat = None
        if received.full:
            lowest = received.first_start()
            if pn < lowest - 1:
                return False  # a new lowest range would be evicted at once
            received.add(pn, pn + 1)
            if received.first_start() > lowest:  # the bound evicted the lowest range
                self._floor = received.first_start()
        else:
            received.add(pn, pn + 1)
        if pn > largest:
            self.largest_received = pn
            self.largest_received_time_s = now
            self._immediate_until = pn + REORDER_ACK_PACKETS
        if ack_eliciting:
            self._ack_pending = True
            self._arm(now, True)  # off the fast path means a gap or reordering
        else:
            self._note_non_eliciting()
        return True

    def _note_non_eliciting(self) -> None:
        count = self._non_eliciting + 1
        self._non_eliciting = count
        if count >= NON_ELICITING_PIGGYBACK_EVERY:
            self._ack_pending = True

    def on_packets_received(self, first_pn: int, count: int, now: float) -> int:
        """Record the ack-eliciting packets ``first_pn .. first_pn + count - 1``
        (all arrived at ``now``), with the same end state as
        :meth:`on_packet_received` ``(pn, True, now)`` for each in turn, in one
        step when they continue the largest received (the bulk case). Returns
        how many were new (the others are duplicates: drop them)."""
        if count <= 0:
            return 0
        new = 0
        largest = self.largest_received
        if first_pn != largest + 1 or first_pn < self._floor:
            # the first is off the in-order path (after a gap, say): on its
            # own; the others may continue it
            on_packet_received = self.on_packet_received
            new = 1 if on_packet_received(first_pn, True, now) else 0
            first_pn += 1
            count -= 1
            largest = self.largest_received
            if first_pn != largest + 1 or first_pn < self._floor:
                for pn in range(first_pn, first_pn + count):
                    if on_packet_received(pn, True, now):
                        new += 1
                return new
            if not count:
                return new
        last_pn = first_pn + count - 1
        # the in-order fast path of on_packet_received, for all of them: the
        # top range grows (or a new one starts where the floor emptied the set)
        self._received.add(first_pn, last_pn + 1)
        flat = self._flat
        if flat is not None:
            if flat and flat[1] == largest:
                flat[1] = last_pn
            else:
                flat[0:0] = (first_pn, last_pn)
        self.largest_received = last_pn
        self.largest_received_time_s = now
        self._ack_pending = True
        unacked = self._unacked_eliciting + count
        self._unacked_eliciting = unacked
        if now >= self._window_end_s:
            self._adapt(now)  # (at most once: the next window ends after now)
        self._window_count += count
        deadline_s = self._deadline_s
        # one of them makes the ACK due at once when the last reaches the
        # threshold (the count only grows) or the first is right after a gap
        if unacked >= self._threshold or first_pn <= self._immediate_until:
            if deadline_s is None or deadline_s > now:
                self._deadline_s = now
        elif deadline_s is None:
            self._deadline_s = now + self._delay_s
        return new + count

    def on_ecn(self, codepoint: int, ack_eliciting: bool, now: float, packets: int = 1) -> None:
        """The packet just recorded (or the last ``packets``) arrived with this
        (non-zero) ECN codepoint; a CE-marked ack-eliciting packet is
        acknowledged at once."""
        counts = self._ecn_counts
        if counts is None:
            counts = self._ecn_counts = [0, 0, 0, 0]
        counts[codepoint & 3] += packets
        deadline_s = self._deadline_s
        if codepoint & 3 == 3 and ack_eliciting and (deadline_s is None or deadline_s > now):
            self._deadline_s = now  # CE: tell the sender at once

    def build_ack(self, now: float) -> tuple[list[int], int]:
        """ACK frame contents: flat inclusive ranges ``low0, high0, ...`` highest
        first, and the ACK Delay field value. Empty ranges: nothing to report."""
        flat = self._flat
        if flat is None:
            flat = []
            for start, end in self._received.descending():
                flat.append(start)
                flat.append(end - 1)
            self._flat = flat
        delay_s = now - self.largest_received_time_s
        if delay_s < 0.0 or not flat:
            delay_s = 0.0
        return flat[:], int(delay_s * 1_000_000.0) >> self.ack_delay_exponent

    def decode_ack_delay_s(self, encoded: int, ack_delay_exponent: int) -> float:
        """Seconds from a received ACK Delay field, given the *peer's* exponent."""
        return (encoded << ack_delay_exponent) / 1_000_000.0

    def on_ack_sent(self, packet_number: int, largest_acked: int) -> None:
        """An ACK frame (Largest Acknowledged ``largest_acked``) left in packet
        ``packet_number``: the timer is disarmed until new ack-eliciting data."""
        self.last_ack_packet_number = packet_number
        self._unacked_eliciting = 0
        self._non_eliciting = 0
        self._deadline_s = None
        self._ack_pending = False

    def on_ack_frame_acked(self, largest_acked: int) -> None:
        """The peer acknowledged a packet carrying our ACK frame with Largest
        Acknowledged ``largest_acked``: stop reporting numbers up to it."""
        new_floor = largest_acked + 1
        if new_floor > self._floor:
            self._floor = new_floor
            self._received.discard_below(new_floor)
            self._flat = None
            if not self._received:
                # everything we could report is known to the peer already
                self._deadline_s = None
                self._unacked_eliciting = 0
                self._non_eliciting = 0
                self._ack_pending = False

    # ----------------------------------------------------------- internals
    def _arm(self, now: float, immediate: bool) -> None:
        count = self._unacked_eliciting + 1
        self._unacked_eliciting = count
        if now >= self._window_end_s:
            self._adapt(now)
        self._window_count += 1
        if immediate or count >= self._threshold:
            if self._deadline_s is None or self._deadline_s > now:
                self._deadline_s = now
        elif self._deadline_s is None:
            self._deadline_s = now + self._delay_s

    def _adapt(self, now: float) -> None:
        """End a rate window: set the threshold and delay from the packets per
        quarter minimum RTT that arrived in it, and start the next window."""
        base = self.ack_eliciting_threshold
        threshold = base
        delay_s = self.max_ack_delay_s
        window_s = _DEFAULT_WINDOW_S
        rtt = self._rtt
        if rtt is not None and rtt.has_sample and self.max_ack_eliciting_threshold > base:
            min_rtt_s = rtt.min_rtt_s
            window_s = min_rtt_s if min_rtt_s > _MIN_WINDOW_S else _MIN_WINDOW_S
            elapsed_s = now - self._window_start_s
            if elapsed_s > 0.0 and self._window_count:
                # per quarter of the real minimum RTT: a sub-millisecond path
                # (loopback) keeps the RFC policy unless packets come very fast
                per_quarter = int(self._window_count * 0.25 * min_rtt_s / elapsed_s)
                if per_quarter > base:
                    threshold = min(per_quarter, self.max_ack_eliciting_threshold)
                    quarter_s = 0.25 * min_rtt_s
                    if quarter_s < delay_s:
                        delay_s = quarter_s
        self._threshold = threshold
        self._delay_s = delay_s
        self._window_start_s = now
        self._window_end_s = now + window_s
        self._window_count = 0
