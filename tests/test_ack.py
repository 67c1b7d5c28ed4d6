"""Receive-side ACK state (RFC 9000 §13.2) in virtual time."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from transport.ack import NON_ELICITING_PIGGYBACK_EVERY, REORDER_ACK_PACKETS, AckManager
from transport.errors import ConfigurationError
from transport.recovery import RttEstimator


def receive(acks: AckManager, pns: list[int], now: float = 0.0, eliciting: bool = True) -> None:
    for pn in pns:
        assert acks.on_packet_received(pn, eliciting, now=now)


def test_single_packet_is_acked_after_max_ack_delay() -> None:
    acks = AckManager(max_ack_delay_s=0.025)
    assert acks.get_timer() is None
    assert acks.on_packet_received(0, True, now=1.0)
    assert acks.get_timer() == pytest.approx(1.025)
    assert not acks.should_send_ack(now=1.02)
    assert acks.should_send_ack(now=1.025)


def test_threshold_of_ack_eliciting_packets_acks_at_once() -> None:
    acks = AckManager(ack_eliciting_threshold=2)
    acks.on_packet_received(0, True, now=1.0)
    acks.on_packet_received(1, True, now=1.004)
    assert acks.get_timer() == 1.004
    assert acks.should_send_ack(now=1.004)


def test_larger_threshold() -> None:
    acks = AckManager(ack_eliciting_threshold=4, max_ack_delay_s=0.02)
    receive(acks, [0, 1, 2], now=1.0)
    assert acks.get_timer() == pytest.approx(1.02)
    acks.on_packet_received(3, True, now=1.001)
    assert acks.should_send_ack(now=1.001)


def test_non_ack_eliciting_packets_do_not_arm_the_timer() -> None:
    acks = AckManager()
    receive(acks, [0, 1, 2], eliciting=False)
    assert acks.get_timer() is None
    assert acks.build_ack(now=0.0)[0] == [0, 2]


def test_gap_triggers_immediate_ack() -> None:
    acks = AckManager(ack_eliciting_threshold=10)
    acks.on_packet_received(0, True, now=1.0)
    acks.on_ack_sent(100, 0)
    acks.on_packet_received(2, True, now=1.1)
    assert acks.should_send_ack(now=1.1)


def test_reordered_packet_triggers_immediate_ack() -> None:
    acks = AckManager(ack_eliciting_threshold=10)
    receive(acks, [0, 2], now=1.0)
    acks.on_ack_sent(100, 2)
    assert acks.get_timer() is None
    acks.on_packet_received(1, True, now=1.2)
    assert acks.should_send_ack(now=1.2)
    # The REORDER_ACK_PACKETS in-order packets after the gap go at once too...
    for pn in range(3, 3 + REORDER_ACK_PACKETS):
        acks.on_ack_sent(100 + pn, pn - 1)
        acks.on_packet_received(pn, True, now=1.3)
        assert acks.should_send_ack(now=1.3)
    # ...then the normal delay applies again.
    acks.on_ack_sent(200, 2 + REORDER_ACK_PACKETS)
    acks.on_packet_received(3 + REORDER_ACK_PACKETS, True, now=1.3)
    assert acks.get_timer() == pytest.approx(1.325)


def test_on_ack_sent_disarms_until_new_data() -> None:
    acks = AckManager()
    receive(acks, [0, 1], now=0.0)
    acks.on_ack_sent(7, 1)
    assert acks.get_timer() is None
    assert not acks.should_send_ack(now=10.0)
    assert acks.last_ack_packet_number == 7
    acks.on_packet_received(2, True, now=1.0)
    assert acks.get_timer() == pytest.approx(1.025)


def test_duplicates_rejected() -> None:
    acks = AckManager()
    receive(acks, [0, 1, 5])
    assert not acks.on_packet_received(1, True, now=0.1)
    assert not acks.on_packet_received(5, True, now=0.1)
    assert acks.on_packet_received(3, True, now=0.1)
    assert not acks.on_packet_received(3, True, now=0.2)


def test_build_ack_ranges_highest_first_inclusive() -> None:
    acks = AckManager()
    receive(acks, [0, 1, 2, 5, 6, 9])
    ranges, _ = acks.build_ack(now=0.0)
    assert ranges == [9, 9, 5, 6, 0, 2]
    assert acks.largest_received == 9


def test_build_ack_empty_when_nothing_received() -> None:
    assert AckManager().build_ack(now=5.0) == ([], 0)


def test_ack_delay_encoding() -> None:
    acks = AckManager(ack_delay_exponent=3)
    acks.on_packet_received(0, True, now=2.0)
    acks.on_packet_received(1, True, now=3.0)
    assert acks.largest_received_time_s == 3.0
    _, delay = acks.build_ack(now=3.0105)  # 10500 us / 8
    assert delay == 1312
    assert acks.decode_ack_delay_s(delay, 3) == pytest.approx(0.010496)
    _, delay = AckManager(ack_delay_exponent=0).build_ack(now=0.0)
    assert delay == 0
    exact = AckManager(ack_delay_exponent=0)
    exact.on_packet_received(0, True, now=0.0)
    assert exact.build_ack(now=0.000250)[1] == 250


def test_ack_delay_is_measured_from_largest_not_from_reordered_arrivals() -> None:
    acks = AckManager()
    receive(acks, [0, 2], now=1.0)
    acks.on_packet_received(1, True, now=1.5)
    assert acks.largest_received_time_s == 1.0
    assert acks.build_ack(now=1.5)[1] == 500_000 >> 3


def test_pruning_after_peer_acknowledged_our_ack() -> None:
    acks = AckManager()
    receive(acks, [0, 1, 2, 5, 6, 9])
    ranges, _ = acks.build_ack(now=0.0)
    acks.on_ack_sent(40, ranges[1])
    acks.on_packet_received(10, True, now=0.1)
    acks.on_ack_frame_acked(5)  # our ACK with Largest Acknowledged 5 reached the peer
    assert acks.floor == 6
    assert acks.build_ack(now=0.1)[0] == [9, 10, 6, 6]
    # Anything at or below the pruned floor is refused, seen or not.
    assert not acks.on_packet_received(3, True, now=0.2)
    assert not acks.on_packet_received(4, True, now=0.2)
    assert acks.on_packet_received(7, True, now=0.2)
    # An older ACK frame being acknowledged later changes nothing.
    acks.on_ack_frame_acked(2)
    assert acks.floor == 6
    acks.on_ack_frame_acked(10)
    assert acks.build_ack(now=0.3)[0] == []
    assert acks.on_packet_received(11, True, now=0.3)
    assert acks.build_ack(now=0.3)[0] == [11, 11]


def test_range_count_is_bounded() -> None:
    acks = AckManager(max_ranges=4)
    for pn in range(0, 40, 2):
        assert acks.on_packet_received(pn, True, now=0.0)
        assert acks.range_count <= 4
    ranges, _ = acks.build_ack(now=0.0)
    assert ranges == [38, 38, 36, 36, 34, 34, 32, 32]
    # Evicted information is unknowable now: refuse it rather than process twice.
    assert not acks.on_packet_received(0, True, now=0.1)
    assert not acks.on_packet_received(1, True, now=0.1)
    assert not acks.on_packet_received(30, True, now=0.1)
    # Filling a gap inside the tracked span still works and merges ranges.
    assert acks.on_packet_received(33, True, now=0.1)
    assert acks.build_ack(now=0.1)[0] == [38, 38, 36, 36, 32, 34]


def test_bad_configuration_rejected() -> None:
    with pytest.raises(ConfigurationError):
        AckManager(ack_eliciting_threshold=0)
    with pytest.raises(ConfigurationError):
        AckManager(max_ranges=0)
    with pytest.raises(ConfigurationError):
        AckManager(ack_delay_exponent=21)
    with pytest.raises(ConfigurationError):
        AckManager(ack_eliciting_threshold=4, max_ack_eliciting_threshold=3)


def _rtt(min_rtt_s: float) -> RttEstimator:
    rtt = RttEstimator()
    rtt.update(min_rtt_s, 0.0, 0.025)
    return rtt


def _acks_sent(
    acks: AckManager, rate_pps: float, duration_s: float, start_s: float = 0.0, first_pn: int = 0
) -> tuple[int, int]:
    """Feed in-order ack-eliciting packets at ``rate_pps``, sending every ACK
    when due (timer or arrival); returns (packets, ACKs)."""
    sent = 0
    count = int(rate_pps * duration_s)
    for i in range(count):
        now = start_s + i / rate_pps
        deadline = acks.get_timer()
        if deadline is not None and deadline < now:
            acks.on_ack_sent(0, acks.largest_received)
            sent += 1
        assert acks.on_packet_received(first_pn + i, True, now=now)
        if acks.should_send_ack(now=now):
            acks.on_ack_sent(0, acks.largest_received)
            sent += 1
    return count, sent


def test_decimation_acks_every_tenth_packet_at_high_rates() -> None:
    # 50 Mbit/s of 1400 B packets, 50 ms RTT: ~223 packets per round trip
    acks = AckManager(max_ack_eliciting_threshold=10, rtt=_rtt(0.050))
    packets, sent = _acks_sent(acks, 4460.0, 1.0)
    assert acks.threshold == 10
    assert acks.delay_s == pytest.approx(0.0125)  # a quarter of the minimum RTT
    assert 0.09 * packets < sent < 0.12 * packets  # the first window used the RFC's 2


def test_decimation_scales_to_a_quarter_rtt_of_packets() -> None:
    # 400 packets/s, 50 ms RTT: 20 per round trip, 5 per quarter
    acks = AckManager(max_ack_eliciting_threshold=10, rtt=_rtt(0.050))
    packets, sent = _acks_sent(acks, 400.0, 2.0)
    assert acks.threshold == 5
    assert 0.19 * packets < sent < 0.23 * packets


def test_slow_flows_keep_the_rfc_policy() -> None:
    acks = AckManager(max_ack_eliciting_threshold=10, rtt=_rtt(0.050))
    packets, sent = _acks_sent(acks, 100.0, 2.0)  # 1.25 packets per quarter RTT
    assert acks.threshold == 2 and acks.delay_s == 0.025
    assert sent == packets // 2


def test_without_rtt_or_cap_the_rfc_policy_applies() -> None:
    for acks in (
        AckManager(max_ack_eliciting_threshold=10),  # no RTT estimator
        AckManager(rtt=_rtt(0.050)),  # cap defaults to the threshold
    ):
        packets, sent = _acks_sent(acks, 4460.0, 0.5)
        assert acks.threshold == 2 and sent == packets // 2


def test_decimation_ends_when_the_rate_falls() -> None:
    acks = AckManager(max_ack_eliciting_threshold=10, rtt=_rtt(0.050))
    _acks_sent(acks, 4460.0, 0.5)
    assert acks.threshold == 10
    # after an idle second, the next window measures the trickle again
    _acks_sent(acks, 100.0, 0.5, start_s=1.5, first_pn=acks.largest_received + 1)
    assert acks.threshold == 2 and acks.delay_s == 0.025


def test_decimated_acks_still_ack_gaps_at_once() -> None:
    acks = AckManager(max_ack_eliciting_threshold=10, rtt=_rtt(0.050))
    _acks_sent(acks, 4460.0, 0.5)
    pn = acks.largest_received + 1
    acks.on_ack_sent(0, pn - 1)
    now = 1.0
    acks.on_packet_received(pn + 1, True, now=now)  # pn lost: a gap
    assert acks.should_send_ack(now=now)
    for k in range(REORDER_ACK_PACKETS):  # the packets after it too
        acks.on_ack_sent(0, pn + 1 + k)
        acks.on_packet_received(pn + 2 + k, True, now=now)
        assert acks.should_send_ack(now=now)
    acks.on_ack_sent(0, pn + 1 + REORDER_ACK_PACKETS)
    acks.on_packet_received(pn + 2 + REORDER_ACK_PACKETS, True, now=now)
    assert not acks.should_send_ack(now=now)
    assert acks.get_timer() == pytest.approx(now + 0.0125)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=300))
def test_every_packet_accepted_exactly_once(pns: list[int]) -> None:
    acks = AckManager(max_ranges=1000)
    seen: set[int] = set()
    now = 0.0
    for pn in pns:
        now += 0.001
        accepted = acks.on_packet_received(pn, True, now=now)
        assert accepted == (pn not in seen)
        seen.add(pn)
        if acks.should_send_ack(now=now):
            ranges, _ = acks.build_ack(now=now)
            acks.on_ack_sent(0, ranges[1])
    ranges, _ = acks.build_ack(now=now)
    reported: set[int] = set()
    for k in range(0, len(ranges), 2):
        low, high = ranges[k], ranges[k + 1]
        assert low <= high
        if k:
            assert high < ranges[k - 2] - 1  # highest first, disjoint, not adjacent
        reported.update(range(low, high + 1))
    assert reported == seen
    assert acks.largest_received == (max(pns) if pns else -1)


def test_is_duplicate_matches_on_packet_received() -> None:
    acks = AckManager()
    receive(acks, [0, 1, 4])
    assert acks.is_duplicate(1) and acks.is_duplicate(4)
    assert not acks.is_duplicate(2) and not acks.is_duplicate(5)
    acks.on_ack_frame_acked(2)
    assert acks.is_duplicate(2)  # below the floor now
    assert not acks.is_duplicate(3)


def test_ack_pending_tracks_news_since_last_ack() -> None:
    acks = AckManager()
    assert not acks.ack_pending
    acks.on_packet_received(0, True, now=0.0)
    assert acks.ack_pending
    acks.on_ack_sent(3, 0)
    assert not acks.ack_pending
    acks.on_packet_received(0, True, now=0.1)  # duplicate: no news
    assert not acks.ack_pending


@pytest.mark.parametrize("in_order", [True, False])
def test_ack_only_packets_are_worth_a_piggybacked_ack_only_now_and_then(in_order: bool) -> None:
    acks = AckManager()
    first = 0 if in_order else 5  # (a gap first: the slow path)
    for i in range(NON_ELICITING_PIGGYBACK_EVERY - 1):
        acks.on_packet_received(first + i, False, now=0.001 * i)
        assert not acks.ack_pending
    assert acks.get_timer() is None  # ACK-only packets never make an ACK due
    acks.on_packet_received(first + NON_ELICITING_PIGGYBACK_EVERY - 1, False, now=0.1)
    assert acks.ack_pending  # ...but after a few, one lets the peer prune its state
    assert acks.get_timer() is None
    acks.on_ack_sent(3, first + NON_ELICITING_PIGGYBACK_EVERY - 1)
    assert not acks.ack_pending  # the count starts again
    acks.on_packet_received(first + NON_ELICITING_PIGGYBACK_EVERY, False, now=0.2)
    assert not acks.ack_pending


def test_sub_millisecond_paths_keep_the_rfc_policy_at_moderate_rates() -> None:
    # loopback-like RTT: 20,000 packets/s are 0.5 per quarter of 100 us
    acks = AckManager(max_ack_eliciting_threshold=10, rtt=_rtt(0.0001))
    packets, sent = _acks_sent(acks, 20_000.0, 0.1)
    assert acks.threshold == 2 and acks.delay_s == 0.025
    assert sent == packets // 2


def _ack_state(acks: AckManager) -> dict[str, object]:
    state = {name: getattr(acks, name) for name in AckManager.__slots__ if name != "_received"}
    state["_flat"] = None if acks._flat is None else list(acks._flat)
    state["_ecn_counts"] = None if acks._ecn_counts is None else list(acks._ecn_counts)
    state["ranges"] = acks._received.descending()
    return state


_run_steps = st.lists(
    st.tuples(
        st.sampled_from(["run", "run", "run", "single", "ack_sent", "frame_acked"]),
        st.integers(min_value=-6, max_value=6),  # where, from the largest received
        st.one_of(st.integers(min_value=0, max_value=4),
                  st.integers(min_value=0, max_value=40)),  # how many
        st.sampled_from([0.0, 0.0, 0.0001, 0.002, 0.03]),  # time step (s)
        st.sampled_from([0, 0, 1, 2, 3]),  # ECN codepoint
    ),
    max_size=60,
)


# (decimated: a run right after a gap is acknowledged at once although it is
# below the threshold)
@example([("run", 0, 30, 0.0, 0), ("run", 0, 30, 0.005, 0), ("run", 2, 1, 0.0001, 0),
          ("ack_sent", 0, 0, 0.0, 0), ("run", 0, 3, 0.0, 0)], 64, True)
@settings(max_examples=300, deadline=None, derandomize=True)
@given(_run_steps, st.sampled_from([2, 4, 64]), st.booleans())
def test_a_run_of_packets_equals_them_one_by_one(
    steps: list[tuple[str, int, int, float, int]], max_ranges: int, decimate: bool
) -> None:
    # decimation (an RTT sample and a cap) makes the threshold and windows move
    rtt = _rtt(0.004) if decimate else None
    cap = 10 if decimate else None
    one = AckManager(max_ranges=max_ranges, max_ack_eliciting_threshold=cap, rtt=rtt)
    run = AckManager(max_ranges=max_ranges, max_ack_eliciting_threshold=cap, rtt=rtt)
    now = 1.0
    for kind, where, count, step_s, ecn in steps:
        now += step_s
        pn = max(0, one.largest_received + 1 + where)
        if kind == "run":
            new_one = 0
            for k in range(count):
                if one.on_packet_received(pn + k, True, now):
                    new_one += 1
                    if ecn:
                        one.on_ecn(ecn, True, now)
            new_run = run.on_packets_received(pn, count, now)
            if new_run and ecn:
                run.on_ecn(ecn, True, now, new_run)
            assert new_run == new_one
        elif kind == "single":
            eliciting = count % 2 == 0
            assert one.on_packet_received(pn, eliciting, now) == run.on_packet_received(
                pn, eliciting, now)
        elif kind == "ack_sent":
            for acks in (one, run):
                acks.build_ack(now)
                acks.on_ack_sent(count, acks.largest_received)
        else:
            for acks in (one, run):
                acks.on_ack_frame_acked(one.largest_received - count)
        assert _ack_state(run) == _ack_state(one)
        assert run.build_ack(now) == one.build_ack(now)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=70),
       st.sampled_from([0, 2, 3]))
def test_receive_runs_record_stretches_of_numbers_as_one_by_one(
    steps: list[int], ecn: int
) -> None:
    # rx_batch._record_packets: a run's growing numbers, with skipped ones
    from transport.rx_batch import _record_packets

    pns = [5 + sum(steps[: k + 1]) for k in range(len(steps))]
    one, run = AckManager(max_ranges=8), AckManager(max_ranges=8)
    for acks in (one, run):
        acks.on_packet_received(5, True, 1.0)
    for pn in pns:
        assert one.on_packet_received(pn, True, 1.5)
        if ecn:
            one.on_ecn(ecn, True, 1.5)
    _record_packets(run, pns, len(pns), 1.5, ecn)
    assert _ack_state(run) == _ack_state(one)
