"""The token-bucket Pacer: bursts bounded by max_burst_bytes, deadlines per quantum."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport.congestion import Pacer, window_pacing_rate_bps
from transport.congestion.pacing import CATCH_UP_S
from transport.errors import ConfigurationError

MDS = 1400
BURST = 16 * MDS


def test_no_rate_means_no_pacing() -> None:
    pacer = Pacer(BURST)
    pacer.update(None, 0.0)
    for _ in range(100):
        assert pacer.can_send(MDS, 0.0)
        pacer.on_sent(MDS, 0.0)
    assert pacer.next_send_time(MDS, 0.0) == 0.0
    assert pacer.pacing_rate_bps is None


def test_burst_is_bounded_then_rate_limited() -> None:
    pacer = Pacer(BURST)
    rate_bps = 50e6
    pacer.update(rate_bps, 0.0)
    sent = 0
    while pacer.can_send(MDS, 0.0):
        pacer.on_sent(MDS, 0.0)
        sent += 1
    assert sent == 16  # one GSO batch at most
    # long-run rate: over one simulated second, timer-driven only
    now = 0.0
    wakeups = 0
    total = sent * MDS
    while now < 1.0:
        now = pacer.next_send_time(MDS, now)
        wakeups += 1
        while pacer.can_send(MDS, now):
            pacer.on_sent(MDS, now)
            total += MDS
    assert total * 8 == pytest.approx(rate_bps, rel=0.05)
    # about one wake-up per millisecond quantum, not one per packet (~4460)
    assert wakeups < 1200


def test_slow_rate_waits_for_one_packet() -> None:
    pacer = Pacer(BURST)
    pacer.update(1e6, 0.0)
    while pacer.can_send(MDS, 0.0):
        pacer.on_sent(MDS, 0.0)
    wait_s = pacer.next_send_time(MDS, 0.0)
    assert 0.0 < wait_s <= MDS * 8 / 1e6 + 1e-9
    assert pacer.can_send(MDS, wait_s)


def test_fast_rate_quantum_capped_by_burst() -> None:
    pacer = Pacer(BURST)
    pacer.update(10e9, 0.0)
    while pacer.can_send(MDS, 0.0):
        pacer.on_sent(MDS, 0.0)
    wake = pacer.next_send_time(MDS, 0.0)
    assert wake == pytest.approx(BURST * 8 / 10e9, rel=0.1)


def test_idle_refills_to_one_burst_only() -> None:
    pacer = Pacer(BURST)
    pacer.update(1e6, 0.0)
    pacer.on_sent(BURST, 0.0)
    assert pacer.tokens_bytes <= 0
    assert pacer.can_send(MDS, 1000.0)
    assert pacer.tokens_bytes == BURST


def _late_wakeups(blocked: bool, late_s: float, seconds: float = 1.0) -> int:
    """Bytes a pacer at 50 Mbit/s releases to a sender that always has data
    and whose every timer fires ``late_s`` after the deadline."""
    pacer = Pacer(BURST, burst_cap_bytes=64 * MDS)
    rate_bps = 50e6
    pacer.update(rate_bps, 0.0)
    now, sent = 0.0, 0
    while now < seconds:
        while pacer.can_send(MDS, now):
            pacer.on_sent(MDS, now)
            sent += MDS
        if blocked:
            pacer.on_blocked()
        now = pacer.next_send_time(MDS, now) + late_s
    return sent


def test_late_timers_keep_the_rate_after_a_pacer_blocked_stop() -> None:
    # 5 ms late is past the bucket's depth (16 x 1400 B = 3.6 ms at 50 Mbit/s)
    rate_bytes = 50e6 / 8
    kept = _late_wakeups(blocked=True, late_s=0.005)
    assert kept == pytest.approx(rate_bytes, rel=0.01)
    # without the blocked mark the overflow of each late wake-up is lost
    lost = _late_wakeups(blocked=False, late_s=0.005)
    assert lost < 0.85 * rate_bytes


def test_catch_up_is_bounded() -> None:
    pacer = Pacer(BURST, burst_cap_bytes=64 * MDS)
    pacer.update(50e6, 0.0)
    pacer.on_sent(BURST, 0.0)
    pacer.on_blocked()
    # a wake-up a whole second late is owed CATCH_UP_S of data, no more
    assert pacer.can_send(MDS, 1.0)
    assert pacer.tokens_bytes == pytest.approx(50e6 / 8 * CATCH_UP_S)
    # the mark is used up: the next long wait refills one burst only
    pacer.on_sent(int(pacer.tokens_bytes), 1.0)
    assert pacer.can_send(MDS, 2.0)
    assert pacer.tokens_bytes == BURST
    # and never beyond the burst cap, even at high rates
    fast = Pacer(BURST, burst_cap_bytes=64 * MDS)
    fast.update(10e9, 0.0)
    fast.on_sent(BURST, 0.0)
    fast.on_blocked()
    fast.can_send(MDS, 1.0)
    assert fast.tokens_bytes == 64 * MDS


def test_blocked_mark_without_a_rate_is_ignored() -> None:
    pacer = Pacer(BURST)
    pacer.update(None, 0.0)
    pacer.on_blocked()
    pacer.update(1e6, 0.0)
    pacer.on_sent(BURST, 0.0)
    assert pacer.can_send(MDS, 1000.0)
    assert pacer.tokens_bytes == BURST


def test_rate_change_keeps_tokens_earned_at_old_rate() -> None:
    pacer = Pacer(BURST)
    pacer.update(8e6, 0.0)  # 1 MB/s
    pacer.on_sent(BURST, 0.0)
    pacer.update(8e3, 0.005)  # 5 ms at 1 MB/s earned 5000 bytes
    assert pacer.tokens_bytes == pytest.approx(5000.0)


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigurationError):
        Pacer(0)
    with pytest.raises(ConfigurationError):
        Pacer(BURST, quantum_s=0.0)
    pacer = Pacer(BURST)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ConfigurationError):
            pacer.update(bad, 0.0)


def test_window_rate_helper() -> None:
    assert window_pacing_rate_bps(100_000, 0.1) == pytest.approx(1.25 * 8e6)
    assert window_pacing_rate_bps(100_000, 0.0) > 0
    assert math.isfinite(window_pacing_rate_bps(100_000, 0.0))


@settings(max_examples=200, deadline=None)
@given(
    rate_bps=st.floats(min_value=1e3, max_value=1e11),
    steps=st.lists(st.floats(min_value=0.0, max_value=0.01), min_size=1, max_size=50),
)
def test_deadline_is_never_in_the_past_and_burst_never_exceeded(
    rate_bps: float, steps: list[float]
) -> None:
    pacer = Pacer(BURST)
    now = 0.0
    for step in steps:
        now += step
        pacer.update(rate_bps, now)
        burst = 0
        while pacer.can_send(MDS, now):
            pacer.on_sent(MDS, now)
            burst += MDS
        assert burst <= BURST + MDS
        wake = pacer.next_send_time(MDS, now)
        assert wake > now  # blocked: a future deadline, so no timer livelock
        now = wake  # the timer fires (time never goes backwards)
        assert pacer.can_send(MDS, now)
