"""Loss recovery (RFC 9002 §5, §6, §7.6) in virtual time, one component alone."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport.congestion import CongestionController, NewReno
from transport.errors import InvalidStateError, RemoteProtocolError
from transport.recovery import LossRecovery, RttEstimator, SentPacket
from transport.wire.constants import ErrorCode

MDS = 1200


class Recorder(CongestionController):
    """A controller that records the hooks recovery calls."""

    __slots__ = ("calls",)

    def __init__(self, *, max_datagram_size: int = MDS) -> None:
        super().__init__(max_datagram_size=max_datagram_size)
        self.calls: list[tuple[str, object]] = []

    def on_packets_acked(
        self,
        packets: Sequence[SentPacket],
        now: float,
        rtt: RttEstimator,
        bytes_in_flight: int,
    ) -> None:
        self.calls.append(("acked", [p.packet_number for p in packets]))

    def on_packets_lost(
        self, packets: Sequence[SentPacket], now: float, bytes_in_flight: int
    ) -> None:
        self.calls.append(("lost", [p.packet_number for p in packets]))

    def on_persistent_congestion(self, now: float) -> None:
        self.calls.append(("persistent", now))

    def on_spurious_loss(self, packet: SentPacket, now: float) -> None:
        self.calls.append(("spurious", packet.packet_number))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


def make(**kwargs: float) -> tuple[LossRecovery, Recorder]:
    cc = Recorder()
    return LossRecovery(congestion=cc, rtt=RttEstimator(), **kwargs), cc  # type: ignore[arg-type]


def send(
    rec: LossRecovery, pn: int, now: float, size: int = MDS, eliciting: bool = True
) -> SentPacket:
    packet = SentPacket(
        pn, now, size, ack_eliciting=eliciting, in_flight=eliciting, items=("frames", pn)
    )
    rec.on_packet_sent(packet, now=now)
    return packet


def pns(packets: list[SentPacket]) -> list[int]:
    return [p.packet_number for p in packets]


# ---------------------------------------------------------------- RTT ----
def test_rtt_initial_values() -> None:
    rtt = RttEstimator()
    assert rtt.smoothed_rtt_s == 0.333
    assert rtt.rttvar_s == pytest.approx(0.1665)
    assert rtt.min_rtt_s == 0.0
    assert not rtt.has_sample
    assert rtt.pto_base_s(0.025, 0.001) == pytest.approx(0.333 + 0.666 + 0.025)
    assert RttEstimator(initial_rtt_s=0.1).smoothed_rtt_s == 0.1


def test_rtt_estimator_formulas() -> None:
    rtt = RttEstimator()
    rtt.update(0.100, 0.0, 0.025)
    assert (rtt.smoothed_rtt_s, rtt.rttvar_s, rtt.min_rtt_s) == (0.1, 0.05, 0.1)
    assert rtt.has_sample
    # Ack delay 30 ms capped at max_ack_delay 25 ms; 0.2 >= min + 0.025 so subtract it.
    rtt.update(0.200, 0.030, 0.025)
    assert rtt.latest_rtt_s == 0.2
    assert rtt.rttvar_s == pytest.approx(0.75 * 0.05 + 0.25 * 0.075)  # 0.05625
    assert rtt.smoothed_rtt_s == pytest.approx(0.875 * 0.1 + 0.125 * 0.175)  # 0.109375
    assert rtt.min_rtt_s == 0.1
    # New minimum; ack delay not subtracted since it would go below min_rtt.
    rtt.update(0.050, 0.010, 0.025)
    assert rtt.min_rtt_s == 0.05
    assert rtt.rttvar_s == pytest.approx(0.75 * 0.05625 + 0.25 * (0.109375 - 0.05))
    assert rtt.smoothed_rtt_s == pytest.approx(0.875 * 0.109375 + 0.125 * 0.05)
    assert rtt.pto_base_s(0.025, 0.001) == pytest.approx(
        rtt.smoothed_rtt_s + 4 * rtt.rttvar_s + 0.025
    )


def test_min_rtt_ignores_ack_delay_and_granularity_floor() -> None:
    rtt = RttEstimator()
    rtt.update(0.010, 0.009, 0.025)  # first sample: ack delay ignored
    assert rtt.smoothed_rtt_s == 0.010
    rtt.update(0.010, 0.0, 0.025)
    rtt.update(0.010, 0.0, 0.025)
    assert rtt.pto_base_s(0.0, 0.001) >= rtt.smoothed_rtt_s + 0.001


def test_rtt_sample_only_when_largest_is_newly_acked() -> None:
    rec, _ = make()
    for pn in range(3):
        send(rec, pn, now=pn * 0.01)
    rec.on_ack_received([2, 2], 0.0, now=0.1)
    assert rec.rtt.latest_rtt_s == pytest.approx(0.08)
    rec.on_ack_received([0, 2], 0.0, now=0.5)  # largest 2 already acked: no sample
    assert rec.rtt.latest_rtt_s == pytest.approx(0.08)
    assert rec.largest_acked == 2


def test_no_rtt_sample_from_ack_only_packets() -> None:
    rec, _ = make()
    send(rec, 0, now=0.0, size=40, eliciting=False)
    rec.on_ack_received([0, 0], 0.0, now=0.2)
    assert not rec.rtt.has_sample


# ------------------------------------------------------ loss detection ----
def test_packet_threshold_loss_and_loss_timer() -> None:
    rec, cc = make()
    for pn in range(5):
        send(rec, pn, now=0.0)
    acked, lost = rec.on_ack_received([3, 3], 0.0, now=0.01)
    assert pns(acked) == [3]
    assert pns(lost) == [0]  # 3 - 0 >= packet_threshold
    assert lost[0].items == ("frames", 0)
    # 1 and 2 are not lost yet; the loss timer covers them.
    loss_delay = 9 / 8 * 0.01
    assert rec.get_timer() == pytest.approx(loss_delay)
    assert rec.on_timeout(now=0.005) == ([], 0)  # early: no-op
    lost, probes = rec.on_timeout(now=rec.get_timer() or 0.0)
    assert pns(lost) == [1, 2] and probes == 0
    assert cc.kinds() == ["lost", "acked", "lost"]
    assert rec.outstanding_count == 1  # packet 4, above the largest acked
    assert rec.bytes_in_flight == MDS


def test_time_threshold_loss_on_ack() -> None:
    rec, _ = make()
    send(rec, 0, now=0.0)
    send(rec, 1, now=0.1)
    _, lost = rec.on_ack_received([1, 1], 0.0, now=0.2)  # latest_rtt 0.1, delay 0.1125
    assert pns(lost) == [0]
    assert rec.get_timer() is None


def test_time_threshold_uses_granularity_floor() -> None:
    rec, _ = make(granularity_s=0.005)
    send(rec, 0, now=0.0)
    send(rec, 1, now=0.0001)
    _, lost = rec.on_ack_received([1, 1], 0.0, now=0.0002)  # rtt 0.1 ms
    assert lost == []
    assert rec.get_timer() == pytest.approx(0.005)


def test_ack_ranges_processed_out_of_order_arrival() -> None:
    rec, _ = make(packet_threshold=10)
    for pn in range(10):
        send(rec, pn, now=0.0)
    acked, lost = rec.on_ack_received([8, 9, 4, 5, 1, 2], 0.0, now=0.001)
    assert pns(acked) == [1, 2, 4, 5, 8, 9]
    assert lost == []
    assert pns(rec.outstanding()) == [0, 3, 6, 7]
    acked, lost = rec.on_ack_received([8, 9, 3, 6, 0, 2], 0.0, now=0.002)
    assert pns(acked) == [0, 3, 6]
    assert pns(lost) == [7]  # older than 9/8 * rtt (1 ms) when the ACK arrived
    assert rec.outstanding_count == 0


# ------------------------------------------------------------------ PTO ----
def test_pto_backoff_doubles_and_resets_on_ack() -> None:
    rec, _ = make()
    send(rec, 0, now=0.0)
    pto = 0.333 + 4 * 0.1665 + 0.025
    assert rec.get_timer() == pytest.approx(pto)
    assert rec.on_timeout(now=pto - 0.001) == ([], 0)
    assert rec.on_timeout(now=pto) == ([], 2)
    assert rec.pto_count == 1
    assert rec.get_timer() == pytest.approx(2 * pto)
    assert rec.on_timeout(now=2 * pto) == ([], 2)
    assert rec.get_timer() == pytest.approx(4 * pto)
    # A probe goes out; its acknowledgement resets the backoff.
    send(rec, 1, now=2 * pto)
    assert rec.get_timer() == pytest.approx(2 * pto + 4 * pto)
    _, lost = rec.on_ack_received([1, 1], 0.0, now=2 * pto + 0.05)
    assert rec.pto_count == 0
    assert pns(lost) == [0]  # far older than 9/8 * rtt behind the acked probe
    assert rec.get_timer() is None


def test_pto_probe_count_configurable() -> None:
    rec, _ = make(pto_probes=1)
    send(rec, 0, now=0.0)
    timer = rec.get_timer()
    assert timer is not None
    assert rec.on_timeout(now=timer) == ([], 1)


def test_no_pto_with_nothing_ack_eliciting_in_flight() -> None:
    rec, _ = make()
    assert rec.get_timer() is None
    send(rec, 0, now=0.0, size=40, eliciting=False)  # ACK-only
    assert rec.get_timer() is None
    assert rec.on_timeout(now=100.0) == ([], 0)
    send(rec, 1, now=0.1)
    assert rec.get_timer() is not None
    rec.on_ack_received([0, 1], 0.0, now=0.2)
    assert rec.get_timer() is None
    assert rec.ack_eliciting_in_flight == 0
    assert rec.pto_count == 0


# ------------------------------------------------- persistent congestion ----
def _persistent_scenario(ack_ranges: list[int]) -> Recorder:
    rec, cc = make()
    send(rec, 0, now=0.0)
    rec.on_ack_received([0, 0], 0.0, now=0.1)  # srtt 0.1, rttvar 0.05 -> duration 0.975
    assert rec.persistent_congestion_duration_s() == pytest.approx(3 * (0.1 + 0.2 + 0.025))
    for pn in range(1, 11):
        send(rec, pn, now=0.2 * pn)  # 0.2 .. 2.0
    send(rec, 11, now=2.1)
    rec.on_ack_received(ack_ranges, 0.0, now=2.2)
    return cc


def test_persistent_congestion_declared() -> None:
    cc = _persistent_scenario([11, 11])
    assert ("lost", list(range(1, 11))) in cc.calls
    assert cc.kinds()[-3:] == ["lost", "persistent", "acked"]


def test_no_persistent_congestion_when_a_packet_in_the_span_was_acked() -> None:
    cc = _persistent_scenario([11, 11, 5, 5])
    assert ("lost", [1, 2, 3, 4, 6, 7, 8, 9, 10]) in cc.calls
    assert "persistent" not in cc.kinds()


def test_skipped_packet_number_does_not_break_the_span() -> None:
    rec, cc = make()
    send(rec, 0, now=0.0)
    rec.on_ack_received([0, 0], 0.0, now=0.1)
    for pn in range(1, 6):
        send(rec, pn, now=0.2 * pn)
    rec.skip_packet_number(6)
    for pn in range(7, 12):
        send(rec, pn, now=0.2 * (pn - 1))
    send(rec, 12, now=2.3)
    rec.on_ack_received([12, 12], 0.0, now=2.4)
    assert "persistent" in cc.kinds()


def test_no_persistent_congestion_before_first_rtt_sample() -> None:
    rec, cc = make()
    for pn in range(10):
        send(rec, pn, now=0.5 * pn)
    rec.on_ack_received([9, 9], 0.0, now=4.6)
    assert cc.kinds() == ["lost", "acked"]


def test_persistent_congestion_collapses_newreno() -> None:
    cc = NewReno(max_datagram_size=MDS)
    rec = LossRecovery(congestion=cc, rtt=RttEstimator())
    rec.on_packet_sent(SentPacket(0, 0.0, MDS), now=0.0)
    rec.on_ack_received([0, 0], 0.0, now=0.1)
    for pn in range(1, 11):
        rec.on_packet_sent(SentPacket(pn, 0.2 * pn, MDS), now=0.2 * pn)
    rec.on_packet_sent(SentPacket(11, 2.1, MDS), now=2.1)
    rec.on_ack_received([11, 11], 0.0, now=2.2)
    # Collapsed to the minimum, then (recovery period forgotten, RFC 9002 B.8)
    # the ACK of packet 11 grows it by one datagram in slow start.
    assert cc.congestion_window_bytes == cc.min_window_bytes + MDS
    assert cc.state == "slow_start"


# ------------------------------------------------------ protocol errors ----
def test_ack_of_never_sent_packet_is_a_protocol_violation() -> None:
    rec, _ = make()
    for pn in range(3):
        send(rec, pn, now=0.0)
    with pytest.raises(RemoteProtocolError) as info:
        rec.on_ack_received([3, 3, 0, 1], 0.0, now=0.1)
    assert info.value.error_code == ErrorCode.PROTOCOL_VIOLATION
    with pytest.raises(RemoteProtocolError):
        make()[0].on_ack_received([0, 0], 0.0, now=0.1)


def test_ack_of_skipped_packet_number_is_a_protocol_violation() -> None:
    rec, _ = make()
    send(rec, 0, now=0.0)
    rec.skip_packet_number(1)
    send(rec, 2, now=0.0)
    assert rec.largest_sent == 2
    acked, _ = rec.on_ack_received([2, 2, 0, 0], 0.0, now=0.1)
    assert pns(acked) == [0, 2]
    with pytest.raises(RemoteProtocolError) as info:
        rec.on_ack_received([0, 2], 0.0, now=0.2)
    assert info.value.error_code == ErrorCode.PROTOCOL_VIOLATION


def test_skipping_below_largest_sent_is_refused() -> None:
    rec, _ = make()
    send(rec, 5, now=0.0)
    with pytest.raises(InvalidStateError):
        rec.skip_packet_number(5)
    with pytest.raises(InvalidStateError):
        send(rec, 4, now=0.1)


def test_malformed_ranges_rejected() -> None:
    rec, _ = make()
    send(rec, 0, now=0.0)
    with pytest.raises(RemoteProtocolError):
        rec.on_ack_received([], 0.0, now=0.1)
    with pytest.raises(RemoteProtocolError):
        rec.on_ack_received([0, 0, 0], 0.0, now=0.1)


# ------------------------------------------------------ spurious losses ----
def test_spurious_loss_counted_once_and_reported() -> None:
    rec, cc = make()
    for pn in range(5):
        send(rec, pn, now=0.0)
    _, lost = rec.on_ack_received([4, 4], 0.0, now=0.01)
    assert pns(lost) == [0, 1]
    acked, _ = rec.on_ack_received([4, 4, 0, 1], 0.0, now=0.02)
    assert acked == []  # already handed back as lost
    assert rec.spurious_losses == 2
    assert ("spurious", 0) in cc.calls and ("spurious", 1) in cc.calls
    rec.on_ack_received([4, 4, 0, 1], 0.0, now=0.03)
    assert rec.spurious_losses == 2


def test_spurious_loss_history_is_bounded() -> None:
    rec, _ = make(lost_history=2)
    for pn in range(8):
        send(rec, pn, now=0.0)
    _, lost = rec.on_ack_received([7, 7], 0.0, now=0.01)
    assert pns(lost) == [0, 1, 2, 3, 4]
    rec.on_ack_received([7, 7, 0, 4], 0.0, now=0.02)
    assert rec.spurious_losses == 2  # only the two most recent are remembered


# ---------------------------------------------------------- bookkeeping ----
def test_bytes_in_flight_bookkeeping() -> None:
    rec, _ = make()
    send(rec, 0, now=0.0, size=1000)
    send(rec, 1, now=0.0, size=50, eliciting=False)  # ACK-only: not in flight
    send(rec, 2, now=0.0, size=700)
    assert rec.bytes_in_flight == 1700
    assert rec.ack_eliciting_in_flight == 2
    rec.on_ack_received([2, 2], 0.0, now=0.01)
    assert rec.bytes_in_flight == 1000
    discarded = rec.discard_all()
    assert pns(discarded) == [0, 1]
    assert rec.bytes_in_flight == 0 and rec.outstanding_count == 0
    assert rec.get_timer() is None


def test_delivery_rate_sample_and_app_limited_marking() -> None:
    rec, _ = make()
    for pn in range(10):
        send(rec, pn, now=pn * 0.001, size=1000)
    rec.on_ack_received([0, 9], 0.0, now=0.1)
    assert rec.delivered_bytes == 10000
    # 10000 bytes over max(send span 9 ms, ack span 100 ms).
    assert rec.delivery_rate_bps == pytest.approx(10000 * 8 / 0.1)
    rec.on_app_limited()
    p = send(rec, 10, now=0.2, size=1000)
    assert p.is_app_limited and p.delivered_bytes == 10000
    rec.on_ack_received([0, 10], 0.0, now=0.3)
    assert rec.delivery_rate_app_limited
    assert not send(rec, 11, now=0.4).is_app_limited  # the bubble has been delivered


# ------------------------------------------------------------ property ----
_op = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 1500), st.booleans()),
    st.tuples(st.just("skip"), st.just(0), st.just(False)),
    st.tuples(st.just("ack"), st.integers(0, 2**32), st.booleans()),
    st.tuples(st.just("timeout"), st.just(0), st.just(False)),
    st.tuples(st.just("run"), st.integers(1, 1500), st.booleans()),
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(_op, st.floats(0.0, 0.2)), max_size=80))
def test_bytes_in_flight_matches_outstanding(
    ops: list[tuple[tuple[str, int, bool], float]],
) -> None:
    cc = NewReno(max_datagram_size=MDS)
    rec = LossRecovery(congestion=cc, rtt=RttEstimator())
    now = 0.0
    next_pn = 0
    sent: list[int] = []  # packet numbers actually sent
    in_flight: dict[int, int] = {}
    eliciting: set[int] = set()
    settled: set[int] = set()
    for (kind, value, flag), step_s in ops:
        now += step_s
        if kind == "send":
            rec.on_packet_sent(SentPacket(next_pn, now, value, flag, flag), now=now)
            sent.append(next_pn)
            if flag:
                in_flight[next_pn] = value
                eliciting.add(next_pn)
            next_pn += 1
        elif kind == "skip":
            rec.skip_packet_number(next_pn)
            next_pn += 1
        elif kind == "run":  # a send run: 2 to 5 packets of different sizes
            sizes = [max(1, value - 7 * i) for i in range(2 + value % 4)]
            rec.on_run_sent(next_pn, sizes, [None] * len(sizes), now)
            for size in sizes:
                sent.append(next_pn)
                in_flight[next_pn] = size
                eliciting.add(next_pn)
                next_pn += 1
        elif kind == "ack" and sent:
            chosen = sorted({sent[(value >> shift) % len(sent)] for shift in range(0, 30, 3)})
            if flag:
                chosen.append(sent[-1])
            ranges: list[int] = []
            for pn in sorted(set(chosen), reverse=True):
                if ranges and ranges[-2] == pn + 1:
                    ranges[-2] = pn
                else:
                    ranges += [pn, pn]
            acked, lost = rec.on_ack_received(ranges, 0.001, now=now)
            for packet in acked + lost:
                assert packet.packet_number not in settled
                settled.add(packet.packet_number)
                in_flight.pop(packet.packet_number, None)
                eliciting.discard(packet.packet_number)
            assert set(pns(acked)) <= set(chosen)
        elif kind == "timeout":
            timer = rec.get_timer()
            if timer is not None:
                now = max(now, timer)
                lost, _ = rec.on_timeout(now=now)
                for packet in lost:
                    assert packet.packet_number not in settled
                    settled.add(packet.packet_number)
                    in_flight.pop(packet.packet_number, None)
                    eliciting.discard(packet.packet_number)
        assert rec.bytes_in_flight == sum(in_flight.values()) >= 0
        assert rec.ack_eliciting_in_flight == len(eliciting)
        assert sum(p.size_bytes for p in rec.outstanding() if p.in_flight) == rec.bytes_in_flight
        assert cc.congestion_window_bytes >= cc.min_window_bytes
        if not eliciting:
            assert rec.get_timer() is None or rec.outstanding_count > 0


def test_stale_and_repeated_acks_are_harmless() -> None:
    rec, _ = make()
    send(rec, 0, now=0.0)
    send(rec, 1, now=0.0)
    rec.on_ack_received([0, 0], 0.0, now=0.01)
    send(rec, 2, now=1.0)
    timer = rec.get_timer()
    assert timer is not None
    assert rec.on_timeout(now=timer) == ([], 2)  # PTO: nothing lost, probes asked
    assert rec.largest_acked == 0
    rec.on_ack_received([0, 0], 0.0, now=timer + 0.01)  # stale, repeated ACK
    assert rec.largest_acked == 0
    acked, _ = rec.on_ack_received([2, 2, 0, 0], 0.0, now=timer + 0.02)
    assert pns(acked) == [2]
    assert rec.largest_acked == 2


def test_spurious_loss_found_after_repeated_identical_acks() -> None:
    rec, cc = make()
    for pn in range(8):
        send(rec, pn, now=0.0)
    _, lost = rec.on_ack_received([4, 5], 0.0, now=0.01)
    assert pns(lost) == [0, 1, 2]
    _, lost = rec.on_ack_received([4, 6], 0.0, now=0.02)  # top range grows
    assert pns(lost) == [3]  # now 3 behind the largest acknowledged
    rec.on_ack_received([4, 7], 0.0, now=0.03)
    assert rec.spurious_losses == 0
    rec.on_ack_received([4, 7, 1, 1], 0.0, now=0.04)  # late arrival of 1
    assert rec.spurious_losses == 1
    rec.on_ack_received([4, 7, 1, 1], 0.0, now=0.045)  # repeated: counted once
    rec.on_ack_received([1, 7], 0.0, now=0.05)  # 2 and 3 filled in
    assert rec.spurious_losses == 3
    assert [v for kind, v in cc.calls if kind == "spurious"] == [1, 2, 3]


def test_spurious_loss_found_after_receiver_pruned_its_lowest_ranges() -> None:
    rec, _ = make()
    for pn in range(12):
        send(rec, pn, now=0.0)
    _, lost = rec.on_ack_received([9, 9, 6, 6, 3, 3], 0.0, now=0.01)
    assert pns(lost) == [0, 1, 2, 4, 5]
    rec.on_ack_received([9, 10, 6, 6], 0.0, now=0.02)  # bottom pruned, top grown
    assert rec.spurious_losses == 0
    rec.on_ack_received([9, 11, 5, 6], 0.0, now=0.03)  # 5 arrived late
    assert rec.spurious_losses == 1
    rec.on_ack_received([9, 11, 6, 6], 0.0, now=0.04)  # pruned again: nothing new
    assert rec.spurious_losses == 1


# ------------------------------------------------------ runs of packets ----
class _SentRecorder(Recorder):
    """Also wants on_packet_sent (recovery then calls it for every packet)."""

    __slots__ = ()

    def on_packet_sent(self, packet: SentPacket, bytes_in_flight: int, now: float) -> None:
        self.calls.append(("sent", (packet.packet_number, bytes_in_flight)))


_PACKET_FIELDS = ("packet_number", "sent_time_s", "size_bytes", "delivered_bytes",
                  "delivered_time_s", "first_sent_time_s", "is_app_limited", "items")


@pytest.mark.parametrize("notify", [False, True])
def test_run_of_packets_equals_one_by_one(notify: bool) -> None:
    """on_packets_sent and on_run_sent (a run) leave recovery and its packets
    exactly as on_packet_sent for each packet would, across acks, app-limited
    periods and an empty flight in between."""
    states = []
    for mode in ("one_by_one", "packets", "run"):
        cc = _SentRecorder() if notify else Recorder()
        rec = LossRecovery(congestion=cc, rtt=RttEstimator())  # type: ignore[arg-type]
        records: list[SentPacket] = []
        pn = 0
        for step, (count, now) in enumerate([(5, 1.0), (3, 1.1), (4, 1.3), (6, 1.5)]):
            run = [SentPacket(pn + i, 0.0, MDS - i, True, True, [("run", step, i)])
                   for i in range(count)]
            if mode == "run":
                run = rec.on_run_sent(pn, [p.size_bytes for p in run],
                                      [p.items for p in run], now)
                assert all(type(p) is SentPacket and p.fec_hold_pn == 0 and p.fec_extra_s == 0.0
                           and p.in_flight and p.ack_eliciting for p in run)
            elif mode == "packets":
                rec.on_packets_sent(run, now)
            else:
                for packet in run:
                    rec.on_packet_sent(packet, now)
            pn += count + 1  # a skipped number between runs
            records += run
            if step == 0:
                rec.on_ack_received([0, run[-1].packet_number], 0.0, now + 0.05)  # all acked
            elif step == 2:
                rec.on_app_limited()
                rec.on_ack_received([run[0].packet_number, run[1].packet_number], 0.0, now + 0.05)
        states.append((
            [tuple(getattr(p, f) for f in _PACKET_FIELDS) for p in records],
            rec.bytes_in_flight, rec.ack_eliciting_in_flight, rec.largest_sent,
            rec.outstanding_count, rec.get_timer(), cc.calls,
        ))
    assert states[0] == states[1] == states[2]
    assert states[0][1] > 0


def test_run_of_packets_rejects_old_numbers() -> None:
    rec, _ = make()
    send(rec, 5, 1.0)
    with pytest.raises(InvalidStateError):
        rec.on_packets_sent([SentPacket(5, 1.0, MDS, True, True, [])], 1.0)
    with pytest.raises(InvalidStateError):
        rec.on_packets_sent([SentPacket(7, 1.0, MDS, True, True, []),
                             SentPacket(6, 1.0, MDS, True, True, [])], 1.0)
    with pytest.raises(InvalidStateError):
        rec.on_run_sent(5, [MDS], [[]], 1.0)
    with pytest.raises(InvalidStateError):
        rec.on_run_sent(7, [MDS, MDS], [[]], 1.0)
    assert rec.on_run_sent(7, [], [], 1.0) == []
    assert rec.largest_sent == 5
