"""BBR in virtual time: mode transitions, bandwidth filter, ProbeRTT, loss tolerance.

The controllers are driven through a real :class:`LossRecovery` by a tiny
packet-level bottleneck model (:func:`drive`): one FIFO link of ``rate_bps``
with a drop-tail queue, a fixed base RTT, optional seeded random loss, every
packet acknowledged on its own. Sends are paced by :class:`Pacer` when the
controller sets a rate.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport.congestion import BBR, CongestionController, Cubic, NewReno, Pacer, bbr, controllers
from transport.congestion.bbr import Mode
from transport.recovery import LossRecovery, RttEstimator, SentPacket

MDS = 1200


@dataclass
class Trace:
    states: list[tuple[float, str]] = field(default_factory=list)
    cwnd: list[tuple[float, int]] = field(default_factory=list)
    delivered_bytes: int = 0
    rtts: list[float] = field(default_factory=list)
    #: per controller state: seconds the bottleneck sat idle before a packet
    #: arrived, and the queueing delay summed / counted over the packets queued
    idle_s: dict[str, float] = field(default_factory=dict)
    queue_delay_s: dict[str, float] = field(default_factory=dict)
    queued: dict[str, int] = field(default_factory=dict)

    def first(self, state: str) -> float | None:
        for t, s in self.states:
            if s == state:
                return t
        return None


def drive(
    cc: CongestionController,
    *,
    rate_bps: float = 10e6,
    rtt_s: float = 0.04,
    duration_s: float = 5.0,
    queue_bytes: int | None = None,
    loss: float = 0.0,
    seed: int = 1,
    on_step: Callable[[float, CongestionController], None] | None = None,
    rate_at: Callable[[float], float] | None = None,
    extra_delay_at: Callable[[float], float] | None = None,
    start_s: float = 0.0,
    app_rate_bps: float | None = None,
) -> Trace:
    """Run a bulk sender through ``cc`` over one bottleneck; return the trace."""
    rng = random.Random(seed)
    recovery = LossRecovery(congestion=cc, rtt=RttEstimator(initial_rtt_s=0.1))
    pacer = Pacer(16 * MDS)
    if queue_bytes is None:
        queue_bytes = int(rate_bps / 8 * rtt_s)
    trace = Trace()
    acks: list[tuple[float, int]] = []  # (arrival, pn), FIFO in time
    queue: list[float] = []  # departure times of queued packets
    link_free = 0.0
    pn = 0
    now = start_s  # a real clock (time.monotonic()) starts far from zero
    step_s = 0.0005
    last_state = ""
    app_budget = 0.0  # bytes the application has handed over (app_rate_bps)
    while now < start_s + duration_s:
        if app_rate_bps is not None:
            app_budget = min(app_budget + app_rate_bps / 8 * step_s, 4.0 * MDS)
        rate = rate_at(now) if rate_at else rate_bps
        # deliver ACKs due
        while acks and acks[0][0] <= now:
            _, number = acks.pop(0)
            recovery.on_ack_received([number, number], 0.0, now)
        if recovery.get_timer() is not None and recovery.get_timer() <= now:  # type: ignore[operator]
            recovery.on_timeout(now)
        # send
        while cc.available_bytes(recovery.bytes_in_flight) >= MDS:
            if app_rate_bps is not None:
                if app_budget < MDS:
                    recovery.on_app_limited()  # as the connection does: nothing to send
                    break
                app_budget -= MDS
            pacer.update(cc.pacing_rate_bps, now)
            if not pacer.can_send(MDS, now):
                break
            recovery.on_packet_sent(SentPacket(pn, now, MDS), now)
            pacer.on_sent(MDS, now)
            while queue and queue[0] <= now:
                queue.pop(0)
            if rng.random() < loss:
                pass  # lost before the queue
            elif len(queue) * MDS < queue_bytes:
                start = max(now, link_free)
                state = cc.state
                idle_s = now - link_free if now > link_free and pn else 0.0
                trace.idle_s[state] = trace.idle_s.get(state, 0.0) + idle_s
                trace.queue_delay_s[state] = trace.queue_delay_s.get(state, 0.0) + start - now
                trace.queued[state] = trace.queued.get(state, 0) + 1
                link_free = start + MDS * 8 / rate
                queue.append(link_free)
                arrival = link_free + rtt_s
                if extra_delay_at is not None:
                    arrival += extra_delay_at(now)
                acks.append((arrival, pn))
                trace.delivered_bytes += MDS
                trace.rtts.append(arrival - now)
            pn += 1
        if cc.state != last_state:
            trace.states.append((now, cc.state))
            last_state = cc.state
        trace.cwnd.append((now, cc.congestion_window_bytes))
        if on_step is not None:
            on_step(now, cc)
        now += step_s
    return trace


def make_bbr(seed: int = 3) -> BBR:
    return BBR(max_datagram_size=MDS, rng=random.Random(seed))


def test_registry_and_factory() -> None:
    assert controllers["bbr"] is BBR
    cc = controllers["bbr"](max_datagram_size=MDS)
    assert isinstance(cc, BBR)
    assert cc.state == Mode.STARTUP
    assert cc.pacing_rate_bps is None  # no model yet: the initial window goes unpaced
    partial = functools.partial(BBR, rng=random.Random(1))
    assert isinstance(partial(max_datagram_size=MDS), BBR)


def test_startup_drain_probe_bw_sequence() -> None:
    cc = make_bbr()
    trace = drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=3.0)
    startup_end = trace.first(Mode.DRAIN)
    assert startup_end is not None and startup_end < 1.0
    probe = [t for t, s in trace.states if s.startswith("probe_bw")]
    assert probe and probe[0] > startup_end
    order = [s for _, s in trace.states]
    assert order[:2] == [Mode.STARTUP, Mode.DRAIN]
    # Drain hands over to ProbeBW_DOWN, which may already be drained (-> CRUISE)
    assert order[2] in (Mode.PROBE_BW_DOWN, Mode.PROBE_BW_CRUISE)
    assert cc.filled_pipe


def test_bandwidth_and_min_rtt_model_match_the_path() -> None:
    cc = make_bbr()
    drive(cc, rate_bps=20e6, rtt_s=0.03, duration_s=4.0)
    assert 0.85 * 20e6 / 8 <= cc.max_bw <= 1.05 * 20e6 / 8
    assert 0.03 <= cc.min_rtt_s < 0.033
    assert cc.pacing_rate_bps is not None
    assert cc.pacing_rate_bps < 3 * 20e6


def test_probe_bw_cycles_through_all_phases() -> None:
    cc = make_bbr()
    trace = drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=8.0)
    seen = {s for _, s in trace.states}
    for phase in (Mode.PROBE_BW_DOWN, Mode.PROBE_BW_CRUISE, Mode.PROBE_BW_REFILL, Mode.PROBE_BW_UP):
        assert phase in seen


def test_probe_rtt_after_min_rtt_goes_stale() -> None:
    # From 2 s on every packet sees 20 ms more delay (a standing queue this flow
    # cannot drain, e.g. other flows'), so no RTT sample comes near min_rtt.
    cc = make_bbr()
    trace = drive(
        cc,
        rate_bps=10e6,
        rtt_s=0.04,
        duration_s=14.0,
        extra_delay_at=lambda t: 0.02 if t >= 2.0 else 0.0,
    )
    entered = trace.first(Mode.PROBE_RTT)
    # ProbeRTT 5 s after the last sample near min_rtt (draft: 5 s), within the
    # 10 s min_rtt window
    assert entered is not None and 6.5 <= entered <= 8.0
    # in ProbeRTT the window drops to about half a BDP (>= 4 packets) ...
    low = min(c for t, c in trace.cwnd if entered <= t <= entered + 0.2)
    bdp = 10e6 / 8 * 0.04
    assert 4 * MDS <= low <= 0.75 * bdp
    # ... and it leaves after ~200 ms and a round, back to ProbeBW
    after = [(t, s) for t, s in trace.states if t > entered]
    assert after and after[0][1].startswith("probe_bw")
    assert 0.2 <= after[0][0] - entered < 0.6
    # the old minimum expired 10 s after it was last seen; the new one covers
    # the extra delay
    assert 0.06 <= cc.min_rtt_s < 0.063


def test_probe_rtt_skipped_while_the_queue_drains_by_itself() -> None:
    # A clean path: ProbeBW's DOWN phases empty the queue, RTT samples within
    # 12.5 % of min_rtt keep coming, so ProbeRTT (and its throughput dip) is skipped.
    cc = make_bbr()
    trace = drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=16.0)
    assert trace.first(Mode.PROBE_RTT) is None
    assert 0.04 <= cc.min_rtt_s < 0.042
    # the flow still probes for bandwidth and keeps the link busy
    assert trace.delivered_bytes * 8 / 16.0 > 0.9 * 10e6


def test_max_bw_filter_forgets_after_two_cycles() -> None:
    cc = make_bbr()
    samples: list[tuple[float, float]] = []

    def record(now: float, c: CongestionController) -> None:
        if int(now * 1000) % 100 == 0:
            samples.append((now, c.max_bw))  # type: ignore[attr-defined]

    drive(
        cc,
        rate_bps=20e6,
        rtt_s=0.03,
        duration_s=16.0,
        on_step=record,
        rate_at=lambda t: 20e6 if t < 4.0 else 5e6,
    )
    early = max(v for t, v in samples if t < 4.0)
    late = [v for t, v in samples if t > 14.0]
    assert early > 2.0e6  # ~20 Mbit/s
    assert max(late) < 0.5 * early  # the old maximum aged out of the filter


def test_random_loss_below_threshold_does_not_collapse() -> None:
    for loss in (0.01, 0.05):
        cc = make_bbr()
        trace = drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=8.0, loss=loss, queue_bytes=200_000)
        delivered_bps = trace.delivered_bytes * 8 / 8.0
        assert delivered_bps > 0.85 * 10e6, (loss, delivered_bps)
        assert cc.bw > 0.8 * 10e6 / 8


def test_congestive_loss_bounds_inflight() -> None:
    # a tiny queue: overshoot while probing overflows it and sets inflight_hi
    cc = make_bbr()
    drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=8.0, queue_bytes=6 * MDS)
    assert math.isfinite(cc.inflight_hi)
    assert cc.inflight_hi < 4 * 10e6 / 8 * 0.04


@settings(max_examples=40, deadline=None)
@given(
    rate_mbps=st.floats(min_value=0.5, max_value=100.0),
    rtt_ms=st.floats(min_value=1.0, max_value=300.0),
    loss=st.sampled_from([0.0, 0.01, 0.1, 0.3]),
    kind=st.sampled_from(["bbr", "cubic", "newreno"]),
)
def test_invariants_window_floor_and_finite_pacing(
    rate_mbps: float, rtt_ms: float, loss: float, kind: str
) -> None:
    factories: dict[str, Callable[[], CongestionController]] = {
        "bbr": make_bbr,
        "cubic": lambda: Cubic(max_datagram_size=MDS),
        "newreno": lambda: NewReno(max_datagram_size=MDS),
    }
    cc = factories[kind]()

    def check(now: float, c: CongestionController) -> None:
        assert c.congestion_window_bytes >= c.min_window_bytes
        rate = c.pacing_rate_bps
        assert rate is None or (rate > 0 and math.isfinite(rate))

    drive(
        cc,
        rate_bps=rate_mbps * 1e6,
        rtt_s=rtt_ms / 1000,
        duration_s=1.5,
        loss=loss,
        on_step=check,
        queue_bytes=max(3 * MDS, int(rate_mbps * 1e6 / 8 * rtt_ms / 2000)),
    )


def test_up_lasts_until_bandwidth_plateau_despite_a_standing_queue() -> None:
    # 30 ms of extra delay from 1 s on stands for another flow's queue: in-flight
    # exceeds 1.25 x BDP from the first moment of UP. BBRv3 keeps probing until
    # the bandwidth stops growing (3 rounds), not for one min_rtt only.
    cc = make_bbr()
    trace = drive(
        cc,
        rate_bps=10e6,
        rtt_s=0.04,
        duration_s=12.0,
        queue_bytes=400_000,
        extra_delay_at=lambda t: 0.03 if t > 1.0 else 0.0,
    )
    ups = []
    for (t, state), (t_next, _) in zip(trace.states, trace.states[1:], strict=False):
        if state == Mode.PROBE_BW_UP and t > 1.0:
            ups.append(t_next - t)
    assert ups, trace.states
    assert min(ups) >= 3 * 0.04, ups


def test_loss_significance_scales_with_round_size() -> None:
    cc = make_bbr()
    assert cc.random_loss == 0.0
    # limit 2 % (6 of 300 packets, sd ~2.4): 10 lost is chance, 14 is not
    assert not cc._too_many_lost(10, 300 * MDS)
    assert cc._too_many_lost(14, 300 * MDS)
    assert not cc._too_many_lost(1, 20 * MDS)  # never on a single loss
    cc.random_loss = 0.05  # limit 8.25 %: 4 of 20 and 35 of 300 are chance
    assert not cc._too_many_lost(4, 20 * MDS)
    assert cc._too_many_lost(6, 20 * MDS)
    assert not cc._too_many_lost(35, 300 * MDS)
    assert cc._too_many_lost(45, 300 * MDS)


def _in_cruise(cc: BBR) -> None:
    drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=3.0)
    cc._start_cruise()
    cc.bw_lo = cc.inflight_lo = math.inf
    cc._round_lost_count = 30
    cc._round_lost = 30 * MDS
    cc._round_delivered = 100 * MDS
    cc.bw_latest = 0.3 * cc.max_bw


def test_excessive_loss_lowers_bounds_unless_app_limited() -> None:
    cc = make_bbr()
    _in_cruise(cc)
    cc._on_round_end(app_limited=True)
    assert cc.bw_lo == math.inf and cc.inflight_lo == math.inf
    cc = make_bbr()
    _in_cruise(cc)
    cc._on_round_end(app_limited=False)
    assert cc.bw_lo == pytest.approx(0.7 * cc.max_bw)
    assert math.isfinite(cc.inflight_lo)


def test_a_clock_that_starts_far_from_zero_changes_nothing() -> None:
    """Drivers pass time.monotonic(), thousands of seconds at the first ACK:
    the min-RTT and ProbeRTT timers start at the first sample, not at t = 0
    (otherwise the first ACK finds min_rtt "expired" and enters ProbeRTT)."""
    at_zero = drive(make_bbr(), rate_bps=10e6, rtt_s=0.04, duration_s=3.0)
    cc = make_bbr()
    late = drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=3.0, start_s=10_000.0)
    assert Mode.PROBE_RTT not in {s for _, s in late.states}
    assert [s for _, s in late.states][:2] == [Mode.STARTUP, Mode.DRAIN]
    assert late.delivered_bytes >= 0.95 * at_zero.delivered_bytes
    assert 0.85 * 10e6 / 8 <= cc.max_bw <= 1.05 * 10e6 / 8


def test_an_app_limited_flow_in_startup_skips_probe_rtt_while_rtt_stays_at_min() -> None:
    """A messaging flow far below the path rate never fills the pipe, so BBR
    stays in Startup; its RTT samples stay at the minimum (no queue), which
    keeps the min-RTT estimate fresh: no ProbeRTT (whose small window would
    queue messages at the sender every few seconds)."""
    cc = make_bbr()
    trace = drive(cc, rate_bps=20e6, rtt_s=0.08, duration_s=20.0, app_rate_bps=8e6)
    assert Mode.PROBE_RTT not in {s for _, s in trace.states}
    assert trace.delivered_bytes >= 0.9 * 8e6 / 8 * 20.0


def _round_with_loss(cc: BBR, lost: int, sent: int, round_min_rtt_s: float) -> None:
    cc._round_lost_count = lost
    cc._round_lost = lost * MDS
    cc._round_delivered = (sent - lost) * MDS
    cc._round_min_rtt_s = round_min_rtt_s
    cc._on_round_end(app_limited=False)


def test_loss_in_a_round_that_kept_a_queue_is_not_learnt_as_random() -> None:
    """A drop-tail queue drops only when full: loss in rounds whose RTT samples
    all stayed well above min_rtt is congestive, and must not raise the random-loss
    estimate (which raises the pacing rate and the loss threshold); the same loss
    in rounds where the queue drained is learnt."""
    queued, drained = make_bbr(), make_bbr()
    for cc in (queued, drained):
        drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=3.0)
        cc._start_cruise()
        assert cc.random_loss == 0.0
    for _ in range(16):
        _round_with_loss(queued, 5, 100, queued.min_rtt_s * 1.5)
        _round_with_loss(drained, 5, 100, drained.min_rtt_s * 1.05)
    assert queued.random_loss == 0.0
    assert drained.random_loss == pytest.approx(0.05)


def test_random_loss_is_learnt_when_the_flow_keeps_no_queue() -> None:
    cc = make_bbr()
    drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=8.0, loss=0.05, queue_bytes=200_000)
    assert 0.03 < cc.random_loss < 0.08


def test_probe_wait_is_seeded_and_within_the_draft_bounds() -> None:
    """ProbeBW_DOWN picks its wait as the draft's BBRPickProbeWait: 2-3 s and a
    round offset of 0 or 1, from the controller's seeded RNG (same seed, same
    draws; different seeds desynchronise flows)."""

    def waits(seed: int) -> list[tuple[float, int]]:
        cc = make_bbr(seed)
        out = []
        for i in range(50):
            cc._start_down(float(i))
            out.append((cc._bw_probe_wait_s, cc._rounds_since_probe))
        return out

    first = waits(5)
    assert first == waits(5)
    assert first != waits(6)
    assert all(2.0 <= w <= 3.0 and r in (0, 1) for w, r in first)
    assert max(w for w, _ in first) - min(w for w, _ in first) > 0.5
    assert {r for _, r in first} == {0, 1}


def test_ce_marks_are_not_learnt_as_random_loss() -> None:
    """A CE mark is a congestion signal (it counts in the round's loss share)
    but never random loss: rounds whose only "losses" are CE marks leave the
    random-loss estimate at zero."""
    cc = make_bbr()
    drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=3.0)
    cc._start_cruise()
    for _ in range(16):
        for _ in range(5):
            cc.on_ecn_ce(0.0)
        cc._round_delivered = 100 * MDS
        cc._round_min_rtt_s = cc.min_rtt_s
        cc._on_round_end(app_limited=False)
    assert cc.random_loss == 0.0


def _cruise_round(cc: BBR, lost: int, sent: int, bw_latest_share: float) -> None:
    cc._round_lost_count = lost
    cc._round_lost = lost * MDS
    cc._round_delivered = (sent - lost) * MDS
    cc._round_min_rtt_s = cc.min_rtt_s * 1.5  # a queue stood: nothing learnt as random
    cc.bw_latest = bw_latest_share * cc.max_bw
    cc._on_round_end(app_limited=False)


def test_loss_beyond_the_random_estimate_paces_at_the_delivered_share() -> None:
    """Draft §4.5.10.3: a round of ProbeBW_CRUISE/DOWN with loss sets ``bw_lo`` to
    ``max(bw_latest, 0.7 * bw_lo)`` -- here loss significantly above the random-loss
    estimate, not only above the excessive-loss limit. ``inflight_lo`` still waits
    for excessive loss. Loss at the learnt random rate changes nothing."""
    cc = make_bbr()
    drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=3.0)
    cc._start_cruise()
    cc.bw_lo = cc.inflight_lo = math.inf
    assert cc.random_loss == 0.0
    _cruise_round(cc, lost=1, sent=100, bw_latest_share=0.8)  # one loss is no evidence
    assert cc.bw_lo == math.inf
    _cruise_round(cc, lost=3, sent=100, bw_latest_share=0.8)  # 3 %: not excessive
    assert not cc._too_many_lost(3, 100 * MDS)
    assert cc.bw_lo == pytest.approx(0.8 * cc.max_bw)
    assert cc.inflight_lo == math.inf
    _cruise_round(cc, lost=3, sent=100, bw_latest_share=0.2)  # at most a 0.7 cut per round
    assert cc.bw_lo == pytest.approx(0.56 * cc.max_bw)
    pacing_bps = cc.pacing_rate_bps
    cc._set_pacing_rate()
    assert cc.pacing_rate_bps is not None and pacing_bps is not None
    assert cc.pacing_rate_bps < 0.6 * cc.max_bw * 8
    cc._start_refill()  # REFILL forgets the lower bounds, as in the draft
    assert cc.bw_lo == math.inf

    lossy = make_bbr()
    drive(lossy, rate_bps=10e6, rtt_s=0.04, duration_s=3.0)
    lossy._start_cruise()
    lossy.bw_lo = lossy.inflight_lo = math.inf
    lossy.random_loss = 0.05
    _cruise_round(lossy, lost=8, sent=100, bw_latest_share=0.8)  # chance at 5 % random loss
    assert lossy.bw_lo == math.inf
    _cruise_round(lossy, lost=14, sent=100, bw_latest_share=0.8)  # beyond it
    assert lossy.bw_lo == pytest.approx(0.8 * lossy.max_bw)


def _time_in(trace: Trace, state: str, end_s: float) -> float:
    total_s = 0.0
    for (t, s), (t_next, _) in zip(trace.states, [*trace.states[1:], (end_s, "")], strict=True):
        if s == state:
            total_s += t_next - t
    return total_s


@pytest.mark.parametrize("seed", [1, 2])
def test_cruise_keeps_the_bottleneck_busy_with_a_queue_of_a_few_packets(seed: int) -> None:
    """ProbeBW_CRUISE paces above the estimate while in-flight is under ``bdp`` plus
    ``CRUISE_QUEUE_PACKETS``, at ``1 - PACING_MARGIN`` of it above: the bottleneck
    never starves, and the queue stays a few packets long. (Pacing below the exact
    estimate throughout left the link idle ~0.5 % of CRUISE, in thousands of gaps.)"""
    cc = make_bbr(seed)
    rate_bps, rtt_s, duration_s = 20e6, 0.04, 8.0
    trace = drive(cc, rate_bps=rate_bps, rtt_s=rtt_s, duration_s=duration_s, seed=seed)
    cruise_s = _time_in(trace, Mode.PROBE_BW_CRUISE, duration_s)
    assert cruise_s > 4.0
    assert trace.idle_s.get(Mode.PROBE_BW_CRUISE, 0.0) <= 0.001 * cruise_s
    packet_s = MDS * 8 / rate_bps
    mean_queue_s = trace.queue_delay_s[Mode.PROBE_BW_CRUISE] / trace.queued[Mode.PROBE_BW_CRUISE]
    assert mean_queue_s <= 2 * bbr.CRUISE_QUEUE_PACKETS * packet_s
