"""NewReno (RFC 9002 §7, Appendix B) in virtual time, driven through its hooks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from transport.congestion import (
    CongestionController,
    CongestionControllerFactory,
    NewReno,
    controllers,
    initial_window_bytes,
)
from transport.recovery import RttEstimator, SentPacket

MDS = 1200


def packet(
    pn: int, sent_time_s: float, size_bytes: int = MDS, app_limited: bool = False
) -> SentPacket:
    p = SentPacket(pn, sent_time_s, size_bytes)
    p.is_app_limited = app_limited
    return p


def ack(cc: CongestionController, packets: list[SentPacket], now: float) -> None:
    cc.on_packets_acked(packets, now=now, rtt=RttEstimator(), bytes_in_flight=0)


def lose(cc: CongestionController, packets: list[SentPacket], now: float) -> None:
    cc.on_packets_lost(packets, now=now, bytes_in_flight=0)


def test_initial_and_minimum_window() -> None:
    assert initial_window_bytes(1200) == 12000
    assert initial_window_bytes(1500) == 14720
    assert initial_window_bytes(9000) == 18000
    cc = NewReno(max_datagram_size=MDS)
    assert cc.congestion_window_bytes == 12000
    assert cc.min_window_bytes == 2400
    assert cc.pacing_rate_bps is None
    assert cc.state == "slow_start"
    assert cc.available_bytes(5000) == 7000
    assert cc.available_bytes(20000) == 0


def test_factory_protocol_and_registry() -> None:
    factory: CongestionControllerFactory = controllers["newreno"]
    cc = factory(max_datagram_size=1350)
    assert isinstance(cc, NewReno)
    assert cc.min_window_bytes == 2700


def test_slow_start_doubles_per_round_trip() -> None:
    cc = NewReno(max_datagram_size=MDS)
    window = cc.congestion_window_bytes
    flight = [packet(pn, 0.0) for pn in range(window // MDS)]
    ack(cc, flight, now=0.1)
    assert cc.congestion_window_bytes == 2 * window
    assert cc.state == "slow_start"


def test_non_in_flight_packets_do_not_grow_window() -> None:
    cc = NewReno(max_datagram_size=MDS)
    p = SentPacket(0, 0.0, 50, ack_eliciting=False, in_flight=False)
    before = cc.congestion_window_bytes
    ack(cc, [p], now=0.1)
    assert cc.congestion_window_bytes == before


def test_loss_exits_slow_start_and_halves() -> None:
    cc = NewReno(max_datagram_size=MDS)
    ack(cc, [packet(pn, 0.0) for pn in range(10)], now=0.1)  # cwnd 24000
    lose(cc, [packet(10, 0.1)], now=0.3)
    assert cc.congestion_window_bytes == 12000
    assert cc.ssthresh_bytes == 12000
    assert cc.state == "recovery"


def test_one_reduction_per_recovery_period() -> None:
    cc = NewReno(max_datagram_size=MDS)
    ack(cc, [packet(pn, 0.0) for pn in range(10)], now=0.1)  # 24000
    lose(cc, [packet(10, 0.1)], now=0.3)  # -> 12000, recovery starts at 0.3
    lose(cc, [packet(11, 0.2), packet(12, 0.3)], now=0.35)  # sent before/at start: same event
    assert cc.congestion_window_bytes == 12000
    # Acks of packets sent before recovery began neither grow nor end recovery.
    ack(cc, [packet(13, 0.25)], now=0.4)
    assert cc.congestion_window_bytes == 12000
    assert cc.state == "recovery"
    # A loss of a packet sent after recovery began is a new congestion event.
    lose(cc, [packet(14, 0.31)], now=0.5)
    assert cc.congestion_window_bytes == 6000


def test_recovery_ends_on_ack_of_packet_sent_after_it_started() -> None:
    cc = NewReno(max_datagram_size=MDS)
    lose(cc, [packet(0, 0.0)], now=0.1)  # 12000 -> 6000
    assert cc.state == "recovery"
    ack(cc, [packet(1, 0.2)], now=0.3)
    assert cc.state == "congestion_avoidance"
    assert cc.congestion_window_bytes == 6000  # 1200 acked < cwnd: no growth yet


def test_congestion_avoidance_grows_one_datagram_per_window_acked() -> None:
    cc = NewReno(max_datagram_size=MDS)
    lose(cc, [packet(0, 0.0)], now=0.1)  # cwnd = ssthresh = 6000
    now = 0.2
    pn = 1
    for round_trip in range(1, 6):
        window = cc.congestion_window_bytes
        flight = [packet(pn + i, now) for i in range(window // MDS)]
        pn += len(flight)
        now += 0.1
        ack(cc, flight, now=now)
        assert cc.congestion_window_bytes == 6000 + round_trip * MDS
    assert cc.state == "congestion_avoidance"


def test_slow_start_overshoot_carries_into_avoidance() -> None:
    cc = NewReno(max_datagram_size=MDS)
    ack(cc, [packet(pn, 0.0) for pn in range(10)], now=0.1)  # 24000
    lose(cc, [packet(10, 0.1)], now=0.2)  # cwnd = ssthresh = 12000
    cc.on_persistent_congestion(now=0.2)  # cwnd 2400, ssthresh stays 12000
    assert cc.state == "slow_start"
    # 12000 bytes acked: 9600 fill slow start up to ssthresh, 2400 carry over.
    ack(cc, [packet(pn, 0.3) for pn in range(11, 21)], now=0.4)
    assert cc.congestion_window_bytes == 12000
    assert cc.state == "congestion_avoidance"
    ack(cc, [packet(pn, 0.4) for pn in range(21, 29)], now=0.5)  # 9600 + 2400 = one window
    assert cc.congestion_window_bytes == 13200


def test_minimum_window_holds_under_repeated_losses() -> None:
    cc = NewReno(max_datagram_size=MDS)
    now = 0.0
    for pn in range(20):
        now += 0.1
        lose(cc, [packet(pn, now - 0.01)], now=now)
        assert cc.congestion_window_bytes >= cc.min_window_bytes
    assert cc.congestion_window_bytes == cc.min_window_bytes


def test_persistent_congestion_collapses_and_restarts_slow_start() -> None:
    cc = NewReno(max_datagram_size=MDS)
    ack(cc, [packet(pn, 0.0) for pn in range(10)], now=0.1)  # 24000
    lose(cc, [packet(10, 0.1)], now=1.0)  # ssthresh 12000
    cc.on_persistent_congestion(now=1.0)
    assert cc.congestion_window_bytes == cc.min_window_bytes == 2400
    assert cc.state == "slow_start"
    ack(cc, [packet(11, 1.1), packet(12, 1.1)], now=1.2)
    assert cc.congestion_window_bytes == 4800  # slow start again
    # The recovery period was forgotten: a loss of an old packet reduces again.
    lose(cc, [packet(13, 0.5)], now=1.3)
    assert cc.congestion_window_bytes == 2400


def test_app_limited_packets_do_not_grow_window() -> None:
    cc = NewReno(max_datagram_size=MDS)
    ack(cc, [packet(pn, 0.0, app_limited=True) for pn in range(10)], now=0.1)
    assert cc.congestion_window_bytes == 12000
    ack(cc, [packet(10, 0.1, app_limited=True), packet(11, 0.1)], now=0.2)
    assert cc.congestion_window_bytes == 13200


def test_ecn_ce_reduces_once_per_period() -> None:
    cc = NewReno(max_datagram_size=MDS)
    cc.on_ecn_ce(now=0.1)
    assert cc.congestion_window_bytes == 6000
    cc.on_ecn_ce(now=0.15)
    assert cc.congestion_window_bytes == 6000


def test_spurious_loss_is_a_no_op() -> None:
    cc = NewReno(max_datagram_size=MDS)
    lose(cc, [packet(0, 0.0)], now=0.1)
    cc.on_spurious_loss(packet(0, 0.0), now=0.2)
    assert cc.congestion_window_bytes == 6000


_event = st.tuples(
    st.sampled_from(["ack", "lose", "persistent", "ce"]),
    st.integers(min_value=1, max_value=40),  # packets in the batch
    st.floats(min_value=0.0, max_value=0.5),  # how old the packets are
    st.booleans(),  # app-limited
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(min_value=1200, max_value=9000), st.lists(_event, max_size=60))
def test_window_never_below_minimum(mds: int, events: list[tuple[str, int, float, bool]]) -> None:
    cc = NewReno(max_datagram_size=mds)
    now = 0.0
    pn = 0
    for kind, count, age_s, app_limited in events:
        now += 0.05
        batch = [packet(pn + i, max(0.0, now - age_s), mds, app_limited) for i in range(count)]
        pn += count
        if kind == "ack":
            ack(cc, batch, now=now)
        elif kind == "lose":
            lose(cc, batch, now=now)
        elif kind == "persistent":
            cc.on_persistent_congestion(now=now)
        else:
            cc.on_ecn_ce(now=now)
        assert cc.congestion_window_bytes >= cc.min_window_bytes
        assert cc.available_bytes(cc.congestion_window_bytes + 1) == 0
        assert cc.state in ("slow_start", "congestion_avoidance", "recovery")
