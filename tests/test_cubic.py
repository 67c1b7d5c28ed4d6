"""CUBIC (RFC 9438) and HyStart++ (RFC 9406) in virtual time, through the hooks."""

from __future__ import annotations

import functools

import pytest
from test_bbr import drive

from transport.congestion import CUBIC, Cubic, controllers
from transport.congestion.cubic import CUBIC_ALPHA, CUBIC_BETA, CUBIC_C
from transport.recovery import RttEstimator, SentPacket

MDS = 1200


def rtt_of(latest_s: float) -> RttEstimator:
    rtt = RttEstimator(initial_rtt_s=latest_s)
    rtt.update(latest_s, 0.0, 0.0)
    return rtt


class Flow:
    """Hand-fed packets with consistent delivery stamps (one round per call)."""

    def __init__(self, cc: Cubic) -> None:
        self.cc = cc
        self.pn = 0
        self.delivered = 0

    def round(self, now: float, rtt_s: float, count: int | None = None) -> list[SentPacket]:
        cc = self.cc
        count = count if count is not None else max(1, cc.congestion_window_bytes // MDS)
        sent_s = now - rtt_s
        packets = []
        for _ in range(count):
            p = SentPacket(self.pn, sent_s, MDS)
            p.delivered_bytes = self.delivered
            p.first_sent_time_s = sent_s
            p.delivered_time_s = sent_s
            packets.append(p)
            self.pn += 1
        rtt = rtt_of(rtt_s)
        for p in packets:  # one ACK per packet
            self.delivered += MDS
            cc.on_packets_acked([p], now, rtt, 0)
        return packets

    def lose(self, now: float, sent_s: float) -> None:
        p = SentPacket(self.pn, sent_s, MDS)
        self.pn += 1
        self.cc.on_packets_lost([p], now, 0)


def test_registry_and_aliases() -> None:
    assert controllers["cubic"] is Cubic
    assert CUBIC is Cubic
    cc = Cubic(max_datagram_size=MDS)
    assert cc.state == "slow_start"
    assert cc.congestion_window_bytes == 12000
    assert cc.pacing_rate_bps is None


def test_slow_start_doubles_then_loss_cuts_by_beta() -> None:
    cc = Cubic(max_datagram_size=MDS, hystart=False)
    flow = Flow(cc)
    flow.round(0.05, 0.05)
    assert cc.congestion_window_bytes == 24000
    flow.round(0.10, 0.05)
    assert cc.congestion_window_bytes == 48000
    before = cc.congestion_window_bytes
    flow.lose(0.11, 0.09)
    assert cc.state == "recovery"
    assert cc.congestion_window_bytes == int(before * CUBIC_BETA)
    assert cc.ssthresh_bytes == int(before * CUBIC_BETA)
    assert cc.w_max_bytes == before
    # a second loss of a packet sent before the cut is the same event
    flow.lose(0.12, 0.10)
    assert cc.congestion_window_bytes == int(before * CUBIC_BETA)


def test_fast_convergence_lowers_w_max() -> None:
    cc = Cubic(max_datagram_size=MDS, hystart=False)
    flow = Flow(cc)
    flow.round(0.05, 0.05)
    flow.round(0.10, 0.05)
    flow.lose(0.11, 0.09)  # W_max = 48000, cwnd = 33600
    w1 = cc.congestion_window_bytes
    flow.lose(0.30, 0.25)  # below the previous W_max: fast convergence
    assert cc.w_max_bytes == pytest.approx(w1 * (1 + CUBIC_BETA) / 2)
    plain = Cubic(max_datagram_size=MDS, hystart=False, fast_convergence=False)
    flow = Flow(plain)
    flow.round(0.05, 0.05)
    flow.round(0.10, 0.05)
    flow.lose(0.11, 0.09)
    w1 = plain.congestion_window_bytes
    flow.lose(0.30, 0.25)
    assert plain.w_max_bytes == w1


def test_window_follows_the_cubic_curve() -> None:
    cc = Cubic(max_datagram_size=MDS, hystart=False)
    flow = Flow(cc)
    for i in range(6):  # slow start to 768 kB
        flow.round(0.05 * (i + 1), 0.05)
    w_max = cc.congestion_window_bytes
    flow.lose(0.31, 0.29)
    k_s = ((w_max - cc.congestion_window_bytes) / MDS / CUBIC_C) ** (1 / 3)
    assert cc.k_s == pytest.approx(k_s)
    start = 0.36  # first ACK of the epoch
    rtt_s = 0.05
    now = start
    while now < start + 2 * k_s:
        flow.round(now, rtt_s)
        t = now - start
        expected = CUBIC_C * (t + rtt_s - k_s) ** 3 * MDS + w_max  # W_cubic(t + RTT)
        got = cc.congestion_window_bytes
        # the window never runs ahead of the target W_cubic(t + RTT) ...
        assert got <= expected + 2 * MDS, t
        if t > 0.5:  # ... and tracks W_cubic(t) within a round's step
            assert abs(got - (CUBIC_C * (t - k_s) ** 3 * MDS + w_max)) < 0.12 * w_max, t
        now += rtt_s
    assert cc.congestion_window_bytes > w_max  # past K: convex growth beyond W_max


def test_reno_friendly_region_on_short_rtt() -> None:
    # tiny RTT and small window: W_cubic grows slower than Reno, W_est rules
    cc = Cubic(max_datagram_size=MDS, hystart=False)
    flow = Flow(cc)
    flow.round(0.001, 0.001)
    flow.lose(0.002, 0.0015)
    w0 = cc.congestion_window_bytes
    now = 0.003
    for _ in range(20):
        flow.round(now, 0.001)
        now += 0.001
    # Reno-friendly: about alpha segments per RTT (RFC 9438 §4.3), the cubic
    # alone would have grown far less in 20 ms
    grown_segments = (cc.congestion_window_bytes - w0) / MDS
    assert grown_segments >= 0.8 * 20 * CUBIC_ALPHA
    cubic_only = (cc.w_cubic_bytes(0.02) - cc.w_cubic_bytes(0.0)) / MDS
    assert grown_segments > cubic_only


def test_hystart_exits_slow_start_on_rtt_increase() -> None:
    cc = Cubic(max_datagram_size=MDS)
    flow = Flow(cc)
    now = 0.0
    for _ in range(3):  # flat RTT: plain slow start
        now += 0.05
        flow.round(now, 0.05)
    assert cc.state == "slow_start"
    now += 0.06
    flow.round(now, 0.06)  # +10 ms >= clamp(50/8 ms, 4, 16): conservative slow start
    assert cc.state == "css"
    w = cc.congestion_window_bytes
    now += 0.06
    flow.round(now, 0.06, count=w // MDS)
    assert cc.congestion_window_bytes == pytest.approx(w * 1.25, rel=0.02)  # acked / 4
    for _ in range(5):
        now += 0.06
        flow.round(now, 0.06, count=10)
    assert cc.state == "congestion_avoidance"
    assert cc.ssthresh_bytes <= cc.congestion_window_bytes


def test_hystart_css_returns_to_slow_start_when_rtt_drops() -> None:
    cc = Cubic(max_datagram_size=MDS)
    flow = Flow(cc)
    now = 0.0
    for rtt_s in (0.05, 0.05, 0.05, 0.07):
        now += rtt_s
        flow.round(now, rtt_s)
    assert cc.state == "css"
    now += 0.05
    flow.round(now, 0.05, count=20)
    assert cc.state == "slow_start"


def test_app_limited_packets_do_not_grow_the_window() -> None:
    cc = Cubic(max_datagram_size=MDS)
    p = SentPacket(0, 0.0, MDS)
    p.is_app_limited = True
    cc.on_packets_acked([p], 0.05, rtt_of(0.05), 0)
    assert cc.congestion_window_bytes == 12000


def test_persistent_congestion_and_spurious_undo() -> None:
    cc = Cubic(max_datagram_size=MDS, hystart=False)
    flow = Flow(cc)
    flow.round(0.05, 0.05)
    before = cc.congestion_window_bytes
    lost = SentPacket(100, 0.04, MDS)
    cc.on_packets_lost([lost], 0.06, 0)
    assert cc.congestion_window_bytes < before
    cc.on_spurious_loss(lost, 0.07)
    assert cc.congestion_window_bytes == before
    cc.on_persistent_congestion(0.5)
    assert cc.congestion_window_bytes == cc.min_window_bytes
    assert cc.state == "slow_start"


def test_pacing_rate_from_window() -> None:
    cc = Cubic(max_datagram_size=MDS)
    Flow(cc).round(0.05, 0.05)
    assert cc.pacing_rate_bps == pytest.approx(2.0 * cc.congestion_window_bytes * 8 / 0.05)
    off = Cubic(max_datagram_size=MDS, pacing=False)
    Flow(off).round(0.05, 0.05)
    assert off.pacing_rate_bps is None
    assert functools.partial(Cubic, pacing=False)(max_datagram_size=MDS).pacing is False


def test_fills_a_bottleneck_in_the_model() -> None:
    cc = Cubic(max_datagram_size=MDS)
    trace = drive(cc, rate_bps=10e6, rtt_s=0.04, duration_s=6.0)
    assert trace.delivered_bytes * 8 / 6.0 > 0.8 * 10e6
