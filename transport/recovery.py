"""Loss recovery for one packet-number space: RTT, loss detection, PTO (RFC 9002).

How this works
--------------
**Sent-packet map.** Packet numbers only grow, so the outstanding packets are
kept as two parallel lists sorted by packet number -- ``_pns`` (ints) and
``_packets`` (:class:`SentPacket`) -- with a ``_head`` index marking the first
live entry (entries before it are dead and compacted away in bulk). Sending
appends; a run of data packets sealed in one go is appended by
:meth:`LossRecovery.on_run_sent`, which builds the records itself (allocated
at C speed, every field set in one loop, no constructor call per packet). An
ACK frame is processed **per range**, not per packet number: two ``bisect``
calls find the outstanding packets inside ``[low, high]`` and one slice takes
them out (advancing ``_head`` when the range starts at the oldest packet, the
common in-order case). Ranges already acknowledged cost two bisects and nothing
else, so re-reported ACK ranges are free. While every outstanding record is in
flight and ack-eliciting (the others -- ACK-only packets, probes -- are
counted in ``_irregular``), the newly acknowledged bytes are one C-speed
``sum`` and the ack-eliciting count is the number of records.

**Loss detection (§6.1).** A packet below the largest acknowledged is lost
when it is ``packet_threshold`` packets older than it, or was sent more than
``time_threshold * max(smoothed_rtt, latest_rtt)`` (at least
``granularity_s``) ago. Both predicates are monotone in packet number (send
times grow with packet numbers), so the lost packets are always a prefix of
the outstanding list: the scan stops at the first survivor, whose send time
plus the loss delay becomes the loss timer. Cost is O(lost), not O(in flight).

**RTT (§5).** A sample is taken when the largest acknowledged packet number is
newly acknowledged and at least one newly acknowledged packet is
ack-eliciting; :class:`RttEstimator` applies the ack-delay adjustment
(capped at the peer's ``max_ack_delay_s``).

**Timer (§6.2).** :meth:`LossRecovery.get_timer` is the loss time if one is
set, else the probe timeout ``last ack-eliciting send + PTO * 2**pto_count``,
else ``None`` when nothing ack-eliciting is in flight. On PTO expiry
:meth:`LossRecovery.on_timeout` tells the connection to send probes; it never
declares packets lost. Any ACK that newly acknowledges something resets the
backoff.

**Persistent congestion (§7.6).** In one batch of lost packets, two
ack-eliciting ones sent after the first RTT sample, spanning more than
``3 * (smoothed_rtt + max(4 * rttvar, granularity) + max_ack_delay)`` with
every packet number between them lost too (a gap means something in between
was acknowledged; deliberately skipped numbers are not gaps), collapse the
window through ``on_persistent_congestion``.

**Optimistic-ACK defence.** The connection may skip packet numbers
(:meth:`LossRecovery.skip_packet_number`); an ACK covering one, or any number
above the largest sent, raises ``RemoteProtocolError(PROTOCOL_VIOLATION)``.

**Spurious losses.** The last ``lost_history`` in-flight packets declared lost
are remembered (packet numbers of lost batches are increasing, so this is a
sorted list too); an ACK covering one counts a spurious loss once and calls
``on_spurious_loss``. No remembered number can lie inside an ACK already
processed, so the scan is skipped when an ACK equals the previous one except
for its top range grown upward and its bottom pruned (the steady state).
Such packets are not returned as acked: their owner was already told they
were lost.

**Delivery rate.** Sends stamp each in-flight packet with the connection's
delivered-bytes counters (the draft-ietf-ccwg-bbr delivery-rate estimator);
each ACK yields one rate sample from its newest acknowledged packet
(``delivery_rate_bps``). The connection calls :meth:`LossRecovery.on_app_limited`
when it had window to spare but nothing to send.

Recovery never looks inside ``SentPacket.items``: it only decides "acked" or
"lost" and hands the packets back; the owner decides what to resend.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

from .congestion.base import CongestionController
from .errors import ConfigurationError, InvalidStateError, RemoteProtocolError
from .wire.constants import ErrorCode

__all__ = ["LossRecovery", "RttEstimator", "SentPacket"]

#: RFC 9002 kPersistentCongestionThreshold.
PERSISTENT_CONGESTION_THRESHOLD = 3
_MAX_PTO_BACKOFF_EXPONENT = 24
_COMPACT_MIN = 64


def _adds_nothing_below(ranges: Sequence[int], prev: list[int], limit: int) -> bool:
    """True if ``ranges`` holds no packet number <= ``limit`` that ``prev`` (the
    previous ACK's ranges, all <= ``prev[1]``) did not: equal to ``prev`` except
    for the top range grown upward and the bottom pruned by the receiver."""
    count = len(ranges)
    if len(prev) < count or limit > prev[1]:
        return False
    if count == 2:
        return ranges[0] >= prev[0]
    last = count - 2
    return (
        ranges[0] == prev[0]
        and ranges[last] >= prev[last]
        and ranges[last + 1] == prev[last + 1]
        and ranges[2:last] == prev[2:last]
    )


class RttEstimator:
    """RTT statistics, RFC 9002 §5. All values in seconds.

    Before the first sample ``smoothed_rtt_s`` is ``initial_rtt_s``,
    ``rttvar_s`` half of it and ``min_rtt_s`` 0.
    """

    __slots__ = (
        "has_sample",
        "initial_rtt_s",
        "latest_rtt_s",
        "min_rtt_s",
        "rttvar_s",
        "smoothed_rtt_s",
    )

    def __init__(self, *, initial_rtt_s: float = 0.333) -> None:
        if not initial_rtt_s > 0:
            raise ConfigurationError("initial_rtt_s must be positive")
        self.initial_rtt_s = initial_rtt_s
        self.latest_rtt_s = 0.0
        self.smoothed_rtt_s = initial_rtt_s
        self.rttvar_s = initial_rtt_s / 2
        self.min_rtt_s = 0.0
        self.has_sample = False

    def update(self, latest_rtt_s: float, ack_delay_s: float, max_ack_delay_s: float) -> None:
        """Fold in one sample: ``latest_rtt_s`` = ack time - send time of the largest
        newly acknowledged packet; ``ack_delay_s`` as the peer reported it."""
        if latest_rtt_s < 0.0:
            latest_rtt_s = 0.0
        self.latest_rtt_s = latest_rtt_s
        if not self.has_sample:
            self.has_sample = True
            self.min_rtt_s = latest_rtt_s
            self.smoothed_rtt_s = latest_rtt_s
            self.rttvar_s = latest_rtt_s / 2
            return
        if latest_rtt_s < self.min_rtt_s:
            self.min_rtt_s = latest_rtt_s
        if ack_delay_s > max_ack_delay_s:
            ack_delay_s = max_ack_delay_s
        adjusted_s = latest_rtt_s
        if ack_delay_s > 0.0 and latest_rtt_s >= self.min_rtt_s + ack_delay_s:
            adjusted_s = latest_rtt_s - ack_delay_s
        smoothed_s = self.smoothed_rtt_s
        deviation_s = smoothed_s - adjusted_s
        if deviation_s < 0.0:
            deviation_s = -deviation_s
        self.rttvar_s = 0.75 * self.rttvar_s + 0.25 * deviation_s
        self.smoothed_rtt_s = 0.875 * smoothed_s + 0.125 * adjusted_s

    def pto_base_s(self, max_ack_delay_s: float, granularity_s: float) -> float:
        """One probe timeout before backoff: srtt + max(4*rttvar, granularity) + max_ack_delay."""
        variance_s = 4.0 * self.rttvar_s
        if variance_s < granularity_s:
            variance_s = granularity_s
        return self.smoothed_rtt_s + variance_s + max_ack_delay_s

    def __repr__(self) -> str:
        return (
            f"RttEstimator(srtt={self.smoothed_rtt_s:.6f}, rttvar={self.rttvar_s:.6f}, "
            f"min={self.min_rtt_s:.6f}, latest={self.latest_rtt_s:.6f})"
        )


_packet_number_of = attrgetter("packet_number")
_size_of = attrgetter("size_bytes")
#: builds a SentPacket without running __init__ (LossRecovery.on_run_sent sets every field)
_new_record = object.__new__


class SentPacket:
    """One sent packet as recovery tracks it.

    ``items`` is opaque to recovery: whatever the owner needs to decide what to
    resend (or to learn was delivered). :meth:`LossRecovery.on_packet_sent`
    overwrites ``sent_time_s`` with its ``now`` and fills the delivery-rate fields.
    """

    __slots__ = (
        "ack_eliciting",
        "delivered_bytes",
        "delivered_time_s",
        "fec_extra_s",
        "fec_hold_pn",
        "first_sent_time_s",
        "in_flight",
        "is_app_limited",
        "items",
        "packet_number",
        "sent_time_s",
        "size_bytes",
    )

    def __init__(
        self,
        packet_number: int,
        sent_time_s: float,
        size_bytes: int,
        ack_eliciting: bool = True,
        in_flight: bool = True,
        items: Any = None,
    ) -> None:
        self.packet_number = packet_number
        self.sent_time_s = sent_time_s
        self.size_bytes = size_bytes
        self.ack_eliciting = ack_eliciting
        self.in_flight = in_flight
        self.items = items
        self.delivered_bytes = 0
        self.delivered_time_s = 0.0
        self.first_sent_time_s = 0.0
        self.is_app_limited = False
        #: FEC source packets: not declared lost by packet threshold until this
        #: packet number (the block's last repair) is acknowledged-past, and given
        #: this much extra time before the time threshold -- so a loss the
        #: receiver can repair is not retransmitted too (0: not protected)
        self.fec_hold_pn = 0
        self.fec_extra_s = 0.0

    def __repr__(self) -> str:
        return (
            f"SentPacket(pn={self.packet_number}, size={self.size_bytes}, "
            f"sent={self.sent_time_s}, eliciting={self.ack_eliciting}, "
            f"in_flight={self.in_flight})"
        )


class LossRecovery:
    """Sender-side recovery state for the connection's single packet-number space.

    ``congestion`` receives every hook; ``rtt`` is updated from ACKs.
    ``max_ack_delay_s`` is the *peer's* maximum ack delay (a public attribute the
    connection updates once transport parameters arrive).
    """

    __slots__ = (
        "_app_limited_until_bytes",
        "_first_rtt_sample_time_s",
        "_first_sent_time_s",
        "_head",
        "_irregular",
        "_last_ack_eliciting_sent_s",
        "_loss_time_s",
        "_lost_packets",
        "_lost_pns",
        "_notify_sent",
        "_packets",
        "_pns",
        "_prev_ack_ranges",
        "_skipped",
        "ack_eliciting_in_flight",
        "bytes_in_flight",
        "congestion",
        "delivered_bytes",
        "delivered_time_s",
        "delivery_rate_app_limited",
        "delivery_rate_bps",
        "granularity_s",
        "largest_acked",
        "largest_sent",
        "lost_history",
        "max_ack_delay_s",
        "max_skipped",
        "packet_threshold",
        "pto_count",
        "pto_probes",
        "rtt",
        "spurious_losses",
        "time_threshold",
    )

    def __init__(
        self,
        *,
        congestion: CongestionController,
        rtt: RttEstimator,
        max_ack_delay_s: float = 0.025,
        packet_threshold: int = 3,
        time_threshold: float = 9 / 8,
        granularity_s: float = 0.001,
        pto_probes: int = 2,
        lost_history: int = 256,
        max_skipped: int = 64,
    ) -> None:
        if packet_threshold < 1:
            raise ConfigurationError("packet_threshold must be >= 1")
        if not time_threshold >= 1.0:
            raise ConfigurationError("time_threshold must be >= 1")
        if pto_probes not in (1, 2):
            raise ConfigurationError("pto_probes must be 1 or 2")
        if max_ack_delay_s < 0 or granularity_s <= 0:
            raise ConfigurationError("max_ack_delay_s must be >= 0 and granularity_s > 0")
        if lost_history < 0 or max_skipped < 1:
            raise ConfigurationError("lost_history must be >= 0 and max_skipped >= 1")
        self.congestion = congestion
        self.rtt = rtt
        self.max_ack_delay_s = max_ack_delay_s
        self.packet_threshold = packet_threshold
        self.time_threshold = time_threshold
        self.granularity_s = granularity_s
        self.pto_probes = pto_probes
        self.lost_history = lost_history
        self.max_skipped = max_skipped

        self.bytes_in_flight = 0
        self.ack_eliciting_in_flight = 0
        self.largest_acked = -1
        self.largest_sent = -1
        self.pto_count = 0
        self.spurious_losses = 0
        self.delivered_bytes = 0
        self.delivered_time_s = 0.0
        self.delivery_rate_bps: float | None = None
        self.delivery_rate_app_limited = False

        self._pns: list[int] = []
        self._packets: list[SentPacket] = []
        self._head = 0
        #: outstanding records not both in flight and ack-eliciting (ACK-only
        #: packets, probes): while there are none, an ACK's counts need no loop
        self._irregular = 0
        self._loss_time_s: float | None = None
        self._last_ack_eliciting_sent_s = 0.0
        self._first_rtt_sample_time_s: float | None = None
        self._first_sent_time_s = 0.0
        self._app_limited_until_bytes = 0
        self._skipped: list[int] = []
        self._lost_pns: list[int] = []
        self._lost_packets: list[SentPacket] = []
        self._prev_ack_ranges: list[int] = []
        self._notify_sent = (
            type(congestion).on_packet_sent is not CongestionController.on_packet_sent
        )

    # ------------------------------------------------------------- queries
    @property
    def outstanding_count(self) -> int:
        """Packets sent and neither acknowledged nor declared lost."""
        return len(self._pns) - self._head

    def outstanding(self) -> list[SentPacket]:
        """A copy of the outstanding packets, ascending by packet number."""
        return self._packets[self._head :]

    def get_timer(self) -> float | None:
        """Next deadline (loss time or PTO, absolute seconds), or None."""
        if self._loss_time_s is not None:
            return self._loss_time_s
        if not self.ack_eliciting_in_flight:
            return None
        exponent = self.pto_count
        if exponent > _MAX_PTO_BACKOFF_EXPONENT:
            exponent = _MAX_PTO_BACKOFF_EXPONENT
        return self._last_ack_eliciting_sent_s + self.rtt.pto_base_s(
            self.max_ack_delay_s, self.granularity_s
        ) * (1 << exponent)

    def persistent_congestion_duration_s(self) -> float:
        """RFC 9002 §7.6.1: kPersistentCongestionThreshold PTOs (without backoff)."""
        return PERSISTENT_CONGESTION_THRESHOLD * self.rtt.pto_base_s(
            self.max_ack_delay_s, self.granularity_s
        )

    # -------------------------------------------------------------- inputs
    def skip_packet_number(self, packet_number: int) -> None:
        """Never send ``packet_number``; a peer acknowledging it is lying."""
        if packet_number <= self.largest_sent:
            raise InvalidStateError("can only skip a packet number above the largest sent")
        self.largest_sent = packet_number
        skipped = self._skipped
        skipped.append(packet_number)
        if len(skipped) > self.max_skipped:
            del skipped[0]

    def on_app_limited(self) -> None:
        """The sender had window to spare but nothing to send: packets sent until
        the data now in flight is delivered are marked application-limited."""
        self._app_limited_until_bytes = (self.delivered_bytes + self.bytes_in_flight) or 1

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        """Track ``packet``; its number must exceed every number sent or skipped."""
        pn = packet.packet_number
        if pn <= self.largest_sent:
            raise InvalidStateError(f"packet number {pn} not above largest sent")
        packet.sent_time_s = now
        self._pns.append(pn)
        self._packets.append(packet)
        self.largest_sent = pn
        if packet.in_flight:
            if not self.bytes_in_flight:
                self._first_sent_time_s = now
                self.delivered_time_s = now
            packet.delivered_bytes = self.delivered_bytes
            packet.delivered_time_s = self.delivered_time_s
            packet.first_sent_time_s = self._first_sent_time_s
            packet.is_app_limited = self._app_limited_until_bytes != 0
            self.bytes_in_flight += packet.size_bytes
            if packet.ack_eliciting:
                self.ack_eliciting_in_flight += 1
                self._last_ack_eliciting_sent_s = now
            else:
                self._irregular += 1
        else:
            self._irregular += 1
        if self._notify_sent:
            self.congestion.on_packet_sent(packet, self.bytes_in_flight, now)

    def on_packets_sent(self, packets: list[SentPacket], now: float) -> None:
        """:meth:`on_packet_sent` for each of ``packets`` in order, which must all
        be in flight and ack-eliciting with ascending numbers (a run of data
        packets built in one go): the bookkeeping is done once for the run."""
        if not packets:
            return
        if packets[0].packet_number <= self.largest_sent:
            raise InvalidStateError(
                f"packet number {packets[0].packet_number} not above largest sent"
            )
        if self._notify_sent:  # the controller wants each packet: the general path
            for packet in packets:
                self.on_packet_sent(packet, now)
            return
        delivered_bytes, delivered_time_s, first_sent_time_s, app_limited = (
            self._run_stamps(now))
        sent_bytes = 0
        largest = self.largest_sent
        for packet in packets:
            pn = packet.packet_number
            if pn <= largest:
                raise InvalidStateError(f"packet number {pn} not above largest sent")
            largest = pn
            packet.sent_time_s = now
            packet.delivered_bytes = delivered_bytes
            packet.delivered_time_s = delivered_time_s
            packet.first_sent_time_s = first_sent_time_s
            packet.is_app_limited = app_limited
            sent_bytes += packet.size_bytes
        self._pns += map(_packet_number_of, packets)
        self._run_sent(packets, largest, sent_bytes, now)

    def on_run_sent(
        self, first_pn: int, sizes: Sequence[int], items: Sequence[Any], now: float
    ) -> list[SentPacket]:
        """A run of in-flight, ack-eliciting packets numbered ``first_pn``,
        ``first_pn + 1``, ...: packet ``i`` is ``sizes[i]`` bytes and carries
        ``items[i]``. Exactly :meth:`on_packets_sent` of
        ``SentPacket(first_pn + i, now, sizes[i], True, True, items[i])``, with
        each record built complete in one step (no constructor call, no second
        pass over the run). Returns the records."""
        count = len(sizes)
        if count != len(items):
            raise InvalidStateError("a run needs one items entry per packet size")
        if not count:
            return []
        if first_pn <= self.largest_sent:
            raise InvalidStateError(f"packet number {first_pn} not above largest sent")
        if self._notify_sent:  # the controller wants each packet: the general path
            records: list[SentPacket] = []
            for i in range(count):
                records.append(SentPacket(first_pn + i, now, sizes[i], True, True, items[i]))
                self.on_packet_sent(records[-1], now)
            return records
        delivered_bytes, delivered_time_s, first_sent_time_s, app_limited = (
            self._run_stamps(now))
        # the records allocated at C speed, then every field SentPacket.__init__
        # sets and what on_packet_sent adds, in one pass
        records = list(map(_new_record, repeat(SentPacket, count)))
        pns = list(range(first_pn, first_pn + count))  # (one int object per number)
        for packet, pn, size_bytes, packet_items in zip(records, pns, sizes, items, strict=True):
            packet.packet_number = pn
            packet.sent_time_s = now
            packet.size_bytes = size_bytes
            packet.ack_eliciting = True
            packet.in_flight = True
            packet.items = packet_items
            packet.fec_hold_pn = 0
            packet.fec_extra_s = 0.0
            packet.delivered_bytes = delivered_bytes
            packet.delivered_time_s = delivered_time_s
            packet.first_sent_time_s = first_sent_time_s
            packet.is_app_limited = app_limited
        self._pns += pns
        self._run_sent(records, pns[-1], sum(sizes), now)
        return records

    def _run_stamps(self, now: float) -> tuple[int, float, float, bool]:
        """The delivery state every packet of a run sent at ``now`` records:
        delivered bytes and time, the first-sent time and the app-limited flag
        (a run into an empty pipe restarts the delivery clock, as
        :meth:`on_packet_sent` does)."""
        if not self.bytes_in_flight:
            self._first_sent_time_s = now
            self.delivered_time_s = now
        return (self.delivered_bytes, self.delivered_time_s, self._first_sent_time_s,
                self._app_limited_until_bytes != 0)

    def _run_sent(self, records: list[SentPacket], largest_pn: int, sent_bytes: int,
                  now: float) -> None:
        """The run's records are in flight: the counters the runs share."""
        self._packets += records
        self.largest_sent = largest_pn
        self.bytes_in_flight += sent_bytes
        self.ack_eliciting_in_flight += len(records)
        self._last_ack_eliciting_sent_s = now

    def on_ack_received(
        self, ranges: Sequence[int], ack_delay_s: float, now: float
    ) -> tuple[list[SentPacket], list[SentPacket]]:
        """Process one ACK frame.

        ``ranges`` is flat ``low0, high0, low1, high1, ...``: inclusive ranges,
        highest first, as the frame decoder yields them. Returns the newly
        acknowledged packets and the packets this ACK made lost (both ascending).
        Raises RemoteProtocolError(PROTOCOL_VIOLATION) when the ACK covers a
        packet number never sent.
        """
        count = len(ranges)
        if count < 2 or count & 1:
            raise RemoteProtocolError(
                ErrorCode.FRAME_ENCODING_ERROR, "ACK ranges must be non-empty low/high pairs"
            )
        largest = ranges[1]
        if largest > self.largest_sent:
            raise RemoteProtocolError(
                ErrorCode.PROTOCOL_VIOLATION, f"ACK of unsent packet number {largest}"
            )
        skipped = self._skipped
        if skipped and largest >= skipped[0]:
            self._check_skipped(ranges)
        lost_pns = self._lost_pns
        if lost_pns:
            if ranges[count - 2] <= lost_pns[-1] and not _adds_nothing_below(
                ranges, self._prev_ack_ranges, lost_pns[-1]
            ):
                self._detect_spurious(ranges, now)
            self._prev_ack_ranges = list(ranges)
        if largest > self.largest_acked:
            self.largest_acked = largest

        pns = self._pns
        packets = self._packets
        head = self._head
        end = len(pns)
        if head >= end or largest < pns[head]:
            return [], []
        if count == 2:  # one range: the common case
            i = bisect_left(pns, ranges[0], head, end)
            j = bisect_right(pns, largest, i, end)
            if i == j:
                return [], []
            acked = packets[i:j]
            if i == head:
                self._head = j
            else:
                del pns[i:j]
                del packets[i:j]
        else:
            acked = self._remove_ranges(ranges, head, end)
            if not acked:
                return [], []

        if self._irregular:
            acked_bytes = 0
            eliciting = 0
            for packet in acked:
                if packet.in_flight:
                    acked_bytes += packet.size_bytes
                    if packet.ack_eliciting:
                        eliciting += 1
            self._irregular -= len(acked) - eliciting
        else:  # all of them in flight and ack-eliciting: sums at C speed
            acked_bytes = sum(map(_size_of, acked))
            eliciting = len(acked)
        self.bytes_in_flight -= acked_bytes
        self.ack_eliciting_in_flight -= eliciting

        newest = acked[-1]
        rtt = self.rtt
        if eliciting and newest.packet_number == largest:
            rtt.update(now - newest.sent_time_s, ack_delay_s, self.max_ack_delay_s)
            if self._first_rtt_sample_time_s is None:
                self._first_rtt_sample_time_s = now
        if acked_bytes:
            self._on_delivered(newest, acked_bytes, now)
        self.pto_count = 0

        head = self._head
        if head < len(pns) and pns[head] <= self.largest_acked:
            lost = self._detect_lost(now)
            if lost:
                self._declare_lost(lost, now)
                head = self._head
        else:  # nothing outstanding below the largest acknowledged
            lost = []
            self._loss_time_s = None
        self.congestion.on_packets_acked(acked, now, rtt, self.bytes_in_flight)
        # drop the acknowledged prefix once it is half the list (amortised O(1)
        # per packet): from _COMPACT_MIN records on, and at any size while the
        # list is short (an idle connection keeps only its trailing ACK-only
        # records; a long list is not shrunk and regrown every few ACKs)
        if head and 2 * head >= len(pns) and (head >= _COMPACT_MIN or len(pns) <= _COMPACT_MIN):
            del pns[:head]
            del packets[:head]
            self._head = 0
        return acked, lost

    def on_timeout(self, now: float) -> tuple[list[SentPacket], int]:
        """Handle the deadline from :meth:`get_timer`.

        Returns ``(lost, probes)``: loss-time expiry declares packets lost
        (probes 0); PTO expiry declares nothing and asks for ``pto_probes``
        ack-eliciting probe packets. Early or spurious calls return ``([], 0)``.
        """
        loss_time_s = self._loss_time_s
        if loss_time_s is not None:
            if now < loss_time_s:
                return [], 0
            lost = self._detect_lost(now)
            if lost:
                self._declare_lost(lost, now)
                self._maybe_compact()
            return lost, 0
        deadline = self.get_timer()
        if deadline is None or now < deadline:
            return [], 0
        self.pto_count += 1
        return [], self.pto_probes

    def discard_all(self) -> list[SentPacket]:
        """Forget every outstanding packet (connection teardown); returns them.

        The controller is not told; counters and timers reset.
        """
        remaining = self._packets[self._head :]
        self._pns.clear()
        self._packets.clear()
        self._head = 0
        self._irregular = 0
        self.bytes_in_flight = 0
        self.ack_eliciting_in_flight = 0
        self._loss_time_s = None
        self.pto_count = 0
        self._lost_pns.clear()
        self._lost_packets.clear()
        self._prev_ack_ranges = []
        return remaining

    # ----------------------------------------------------------- internals
    def _remove_ranges(self, ranges: Sequence[int], head: int, end: int) -> list[SentPacket]:
        """Take the outstanding packets inside several ranges out; ascending result."""
        pns = self._pns
        packets = self._packets
        oldest = pns[head]
        chunks: list[list[SentPacket]] = []
        for k in range(0, len(ranges), 2):
            high = ranges[k + 1]
            if high < oldest:
                break
            i = bisect_left(pns, ranges[k], head, end)
            j = bisect_right(pns, high, i, end)
            if i < j:
                chunks.append(packets[i:j])
                if i == head:
                    head = j
                else:
                    del pns[i:j]
                    del packets[i:j]
                    end -= j - i
        self._head = head
        if len(chunks) == 1:
            return chunks[0]
        acked: list[SentPacket] = []
        for chunk in reversed(chunks):
            acked += chunk
        return acked

    def _check_skipped(self, ranges: Sequence[int]) -> None:
        skipped = self._skipped
        n_skipped = len(skipped)
        for k in range(0, len(ranges), 2):
            low = ranges[k]
            i = bisect_left(skipped, low)
            if i < n_skipped and skipped[i] <= ranges[k + 1]:
                raise RemoteProtocolError(
                    ErrorCode.PROTOCOL_VIOLATION,
                    f"ACK of skipped packet number {skipped[i]}",
                )

    def _detect_spurious(self, ranges: Sequence[int], now: float) -> None:
        lost_pns = self._lost_pns
        lost_packets = self._lost_packets
        congestion = self.congestion
        for k in range(0, len(ranges), 2):
            i = bisect_left(lost_pns, ranges[k])
            j = bisect_right(lost_pns, ranges[k + 1], i)
            if i < j:
                found = lost_packets[i:j]
                del lost_pns[i:j]
                del lost_packets[i:j]
                self.spurious_losses += j - i
                for packet in found:
                    congestion.on_spurious_loss(packet, now)
                if not lost_pns:
                    return

    def _on_delivered(self, newest: SentPacket, acked_bytes: int, now: float) -> None:
        """Delivery-rate bookkeeping for one ACK (draft-ietf-ccwg-bbr §4.5)."""
        delivered = self.delivered_bytes + acked_bytes
        self.delivered_bytes = delivered
        self.delivered_time_s = now
        if self._app_limited_until_bytes and delivered > self._app_limited_until_bytes:
            self._app_limited_until_bytes = 0
        if not newest.in_flight:
            return
        send_elapsed_s = newest.sent_time_s - newest.first_sent_time_s
        ack_elapsed_s = now - newest.delivered_time_s
        self._first_sent_time_s = newest.sent_time_s
        interval_s = send_elapsed_s if send_elapsed_s > ack_elapsed_s else ack_elapsed_s
        if interval_s <= 0.0 or interval_s < self.rtt.min_rtt_s:
            return
        self.delivery_rate_bps = (delivered - newest.delivered_bytes) * 8.0 / interval_s
        self.delivery_rate_app_limited = newest.is_app_limited

    def _detect_lost(self, now: float) -> list[SentPacket]:
        """Remove and return the lost prefix of the outstanding packets; re-arm the loss time."""
        self._loss_time_s = None
        largest_acked = self.largest_acked
        pns = self._pns
        head = self._head
        end = len(pns)
        if head >= end or pns[head] > largest_acked:
            return []
        rtt = self.rtt
        base_s = rtt.smoothed_rtt_s if rtt.smoothed_rtt_s > rtt.latest_rtt_s else rtt.latest_rtt_s
        loss_delay_s = self.time_threshold * base_s
        if loss_delay_s < self.granularity_s:
            loss_delay_s = self.granularity_s
        pn_limit = largest_acked - self.packet_threshold
        packets = self._packets
        k = head
        while k < end:
            pn = pns[k]
            if pn > largest_acked:
                break
            packet = packets[k]
            # compare with the same sum the deadline uses, so a timer firing at
            # exactly that deadline always declares the packet (no float drift)
            loss_time_s = packet.sent_time_s + loss_delay_s
            hold = packet.fec_hold_pn
            if hold:  # FEC-protected: give its block's repair symbols a chance
                loss_time_s += packet.fec_extra_s
                if hold > pn_limit and loss_time_s > now:
                    self._loss_time_s = loss_time_s
                    break
            elif pn > pn_limit and loss_time_s > now:
                self._loss_time_s = loss_time_s
                break
            k += 1
        if k == head:
            return []
        self._head = k
        return packets[head:k]

    def _declare_lost(self, lost: list[SentPacket], now: float) -> None:
        lost_bytes = 0
        eliciting = 0
        history_pns = self._lost_pns
        history_packets = self._lost_packets
        remember = self.lost_history > 0
        for packet in lost:
            if packet.in_flight:
                lost_bytes += packet.size_bytes
                if packet.ack_eliciting:
                    eliciting += 1
                if remember:
                    history_pns.append(packet.packet_number)
                    history_packets.append(packet)
        self.bytes_in_flight -= lost_bytes
        self.ack_eliciting_in_flight -= eliciting
        self._irregular -= len(lost) - eliciting
        excess = len(history_pns) - self.lost_history
        if excess > 0:
            del history_pns[:excess]
            del history_packets[:excess]
        congestion = self.congestion
        congestion.on_packets_lost(lost, now, self.bytes_in_flight)
        if eliciting >= 2 and self._in_persistent_congestion(lost):
            congestion.on_persistent_congestion(now)

    def _in_persistent_congestion(self, lost: list[SentPacket]) -> bool:
        first_sample_s = self._first_rtt_sample_time_s
        if first_sample_s is None:
            return False
        duration_s = self.persistent_congestion_duration_s()
        skipped = self._skipped
        start_s: float | None = None
        previous_pn = lost[0].packet_number - 1
        for packet in lost:
            pn = packet.packet_number
            gap = pn - previous_pn - 1
            if gap and (
                not skipped or bisect_left(skipped, pn) - bisect_right(skipped, previous_pn) != gap
            ):
                start_s = None  # something in between was acknowledged
            previous_pn = pn
            if not packet.ack_eliciting or packet.sent_time_s <= first_sample_s:
                continue
            if start_s is None:
                start_s = packet.sent_time_s
            elif packet.sent_time_s - start_s > duration_s:
                return True
        return False

    def _maybe_compact(self) -> None:
        head = self._head
        if head >= _COMPACT_MIN and 2 * head >= len(self._pns):
            del self._pns[:head]
            del self._packets[:head]
            self._head = 0
