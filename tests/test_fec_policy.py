"""The adaptive FEC policy, the loss estimator and the early hand-over to ARQ."""

from __future__ import annotations

import math
import random

import pytest

from transport import Config
from transport.fec.policy import (
    ADAPTIVE_FLOOR,
    MAX_ADAPTIVE_K,
    MIN_ADAPTIVE_K,
    RESIDUAL_PER_PACKET,
    RESIDUAL_PER_PACKET_BULK,
    WINDOW_PACKETS,
    WINDOWS_KEPT,
    FecPolicy,
    LossEstimator,
    _binomial_tail,
    block_failure_probability,
)
from transport.fec.tracker import BlockTracker
from transport.sim import Bernoulli, Path, TraceLoss
from transport.sim.workloads import run_message_latency


@pytest.mark.parametrize("n, m, p", [(10, 1, 0.01), (10, 3, 0.02), (20, 4, 0.05), (4, 2, 0.1)])
def test_gilbert_chain_without_bursts_is_the_binomial_tail(n: int, m: int, p: float) -> None:
    burst = 1.0 / (1.0 - p)  # the mean run length of independent losses
    assert block_failure_probability(n, m, p, burst) == pytest.approx(
        _binomial_tail(n + m, p, m), rel=1e-9
    )


def test_repairs_meet_the_residual_target_and_grow_with_loss_and_bursts() -> None:
    policy = FecPolicy("adaptive")
    for n in (4, 10, 32):
        ms = [policy.repairs(n, p) for p in (0.005, 0.01, 0.02, 0.05)]
        assert ms == sorted(ms)
        for p, m in zip((0.005, 0.01, 0.02, 0.05), ms, strict=True):
            cap = math.ceil(n * 0.5)
            assert m == cap or block_failure_probability(
                n, m, p, 1 / (1 - p)
            ) <= n * RESIDUAL_PER_PACKET * 1.0001
            if m > 1:  # and it is the smallest such m
                assert block_failure_probability(n, m - 1, p, 1 / (1 - p)) > n * RESIDUAL_PER_PACKET
    assert policy.repairs(10, 0.02) == 3
    assert policy.repairs(10, 0.02, burst_length=3.0) > policy.repairs(10, 0.02)
    assert policy.repairs(10, 0.02, burst_length=3.0) <= 5  # capped at 50 % overhead
    assert FecPolicy("fixed", 8, 3).repairs(2, 0.5) == 2  # never more repairs than sources
    # a sender that fills its window pays for repairs in goodput: fewer of them
    bulk = policy.repairs(32, 0.05, bulk=True)
    assert 1 <= bulk < policy.repairs(32, 0.05)
    assert block_failure_probability(32, bulk, 0.05, 1 / 0.95) <= 32 * RESIDUAL_PER_PACKET_BULK


def test_blocks_are_sized_to_the_latency_budget() -> None:
    policy = FecPolicy("adaptive")
    assert policy.block_sources(0.001024, 0.010) == 10
    assert policy.block_sources(0.0001, 0.010) == MAX_ADAPTIVE_K
    assert policy.block_sources(0.005, 0.010) == MIN_ADAPTIVE_K
    assert policy.block_sources(None, 0.010) == MIN_ADAPTIVE_K
    assert FecPolicy("fixed", 8, 2).block_sources(0.0001, 0.010) == 8
    assert not FecPolicy("adaptive").active(ADAPTIVE_FLOOR / 2)
    assert FecPolicy("fixed", 8, 2).active(0.0)
    assert not FecPolicy("off").active(0.5)


def _feed(estimator: LossEstimator, lost: list[bool], first_pn: int = 0) -> None:
    """Acknowledge/lose packets in ACKs of 10 packets."""
    for start in range(0, len(lost), 10):
        chunk = lost[start : start + 10]
        pns = [first_pn + start + i for i, gone in enumerate(chunk) if gone]
        estimator.on_ack(len(chunk) - len(pns), pns)


def test_estimator_measures_random_loss_and_burst_length() -> None:
    rng = random.Random(1)
    estimator = LossEstimator()
    lost = [rng.random() < 0.02 for _ in range(20 * WINDOW_PACKETS)]
    _feed(estimator, lost)
    recent = lost[-WINDOWS_KEPT * WINDOW_PACKETS :]
    assert estimator.loss_rate == pytest.approx(sum(recent) / len(recent), rel=0.1)
    assert 0.01 < estimator.loss_rate < 0.03
    assert estimator.burst_length < 1.2
    bursty = LossEstimator()
    pattern = ([True] * 3 + [False] * 147) * 30  # runs of 3, 2 % loss
    _feed(bursty, pattern)
    assert bursty.burst_length == pytest.approx(3.0, rel=0.1)
    assert bursty.loss_rate == pytest.approx(0.02, rel=0.2)


def test_estimator_keeps_a_low_loss_rate_whose_windows_often_see_no_loss() -> None:
    # at 1 % a 200-packet window sees no loss 13 % of the time: a run of such
    # windows must not talk the estimate down to "clean path"
    rng = random.Random(3)
    estimator = LossEstimator()
    shares: list[float] = []
    worst = 1.0
    for window in range(400):
        lost = [rng.random() < 0.01 for _ in range(WINDOW_PACKETS)]
        shares.append(sum(lost) / WINDOW_PACKETS)
        _feed(estimator, lost, window * 1000)
        if window >= WINDOWS_KEPT:
            recent = sum(shares[-WINDOWS_KEPT:]) / WINDOWS_KEPT
            worst = min(worst, estimator.loss_rate / recent)
            assert estimator.loss_rate > ADAPTIVE_FLOOR  # FEC never switches off
    assert worst > 0.75  # clipping never hides most of the real loss


def test_estimator_ignores_a_slow_start_overshoot_but_follows_a_lossy_path() -> None:
    estimator = LossEstimator()
    clean = [False] * WINDOW_PACKETS
    overshoot = [i % 5 == 0 for i in range(WINDOW_PACKETS)]  # 20 % in one window
    _feed(estimator, clean * 4 + overshoot + clean * 3)
    assert estimator.loss_rate < ADAPTIVE_FLOOR  # no repair traffic on a clean path
    rng = random.Random(2)
    lossy = LossEstimator()
    _feed(lossy, clean * 4 + [rng.random() < 0.05 for _ in range(8 * WINDOW_PACKETS)])
    assert lossy.loss_rate > 0.04


class _Sent:
    def __init__(self, pn: int) -> None:
        self.packet_number = pn
        self.fec_hold_pn = 1 << 62
        self.fec_extra_s = 0.01


def test_tracker_releases_a_block_only_when_it_lost_more_than_m_symbols() -> None:
    tracker = BlockTracker()
    sources = [_Sent(pn) for pn in range(10, 18)]
    for packet in sources:
        tracker.on_source(0, packet)
    tracker.on_close(0, 1)
    tracker.on_repair(0, 18)
    # packet 10 missing, 11-15 acked: one loss, the repair can still rebuild it
    assert tracker.on_ack([11, 12, 13, 14, 15], [], 15, 3) == 0
    assert sources[0].fec_hold_pn
    # packet 16 missing too and 19..20 acked: 2 missing > m = 1, hand them to ARQ
    assert tracker.on_ack([17, 19, 20], [], 20, 3) == 2
    assert sources[0].fec_hold_pn == 0 and sources[6].fec_hold_pn == 0
    assert sources[0].fec_extra_s == 0.0
    assert tracker.released == 2
    # an open block (m unknown) is never released early
    open_block = [_Sent(pn) for pn in range(30, 33)]
    for packet in open_block:
        tracker.on_source(1, packet)
    assert tracker.on_ack([], [30, 31], 40, 3) == 0


def _messages(fec: str, loss: object, seconds: float = 2.0) -> object:
    path = Path.symmetric(20e6, 0.080, loss=loss, loss_backward=None, queue_bdp=2.0)  # type: ignore[arg-type]
    return run_message_latency(
        lambda rng: Config(rng=rng, fec=fec, fec_block=(8, 1)), path, seed=3, seconds=seconds
    )


@pytest.mark.parametrize("offset", [1200, 1210])
def test_a_block_fec_cannot_rebuild_is_retransmitted_as_fast_as_by_arq_alone(offset: int) -> None:
    # three datagrams in a row lost after 1 s: with k = 8, m = 1 at least two
    # symbols of one block are gone, so FEC cannot help and ARQ must. FEC can
    # only know that once the second loss shows (a packet or two after ARQ
    # alone would act); holding the sources until the repair was due would
    # cost up to a block more (9 ms here).
    trace = TraceLoss([False] * offset + [True] * 3, repeat=False)
    arq = _messages("off", trace)
    fec = _messages("fixed", trace)
    stall_arq = max(arq.latencies_s(1.0))  # type: ignore[attr-defined]
    stall_fec = max(fec.latencies_s(1.0))  # type: ignore[attr-defined]
    assert fec.client._fec_sender.tracker.released >= 1  # type: ignore[attr-defined]
    assert stall_arq > 0.110  # a round trip on top of the one-way delay
    assert stall_fec <= stall_arq + 0.0025
    assert len(fec.delivered) == fec.scheduled  # type: ignore[attr-defined]


def test_per_message_streams_confine_a_loss_to_its_own_message() -> None:
    loss = Bernoulli(0.02)
    path_args = {"loss_backward": None, "queue_bdp": 2.0}
    slow: dict[bool, int] = {}
    for per_message in (False, True):
        path = Path.symmetric(20e6, 0.080, loss=loss, **path_args)  # type: ignore[arg-type]
        run = run_message_latency(
            lambda rng: Config(rng=rng, max_streams_uni=4096),
            path,
            seed=4,
            seconds=2.0,
            per_message_streams=per_message,
        )
        assert len(run.delivered) == run.scheduled > 1800
        slow[per_message] = sum(1 for lat in run.latencies_s(1.0) if lat > 0.070)
    assert 0 < slow[True] * 4 < slow[False]
