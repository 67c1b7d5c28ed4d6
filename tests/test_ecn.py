"""ECN: receiver counts, sender validation (RFC 9000 §13.4), CE as congestion
(RFC 9002 §7.1), and end to end through the simulator's AQM."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport.ack import AckManager
from transport.config import Config
from transport.congestion import BBR, CongestionController, Cubic, NewReno
from transport.ecn import CE, ECT0, ECT1, NOT_ECT, TESTING_PTO_LIMIT, EcnSender
from transport.recovery import SentPacket
from transport.sim import Bernoulli, Link
from transport.sim.link import Path
from transport.sim.transfer import TransferResult, run_transfer


def _packets(*pns: int) -> list[SentPacket]:
    return [SentPacket(pn, 0.0, 1200, True, True, []) for pn in pns]


# ------------------------------------------------------------- receiver
def test_receiver_counts_codepoints_and_reports_them() -> None:
    acks = AckManager()
    assert acks.ecn_report is None  # nothing marked yet: plain ACK frames
    for pn, codepoint in enumerate((ECT0, ECT0, ECT1, CE, ECT0)):
        acks.on_packet_received(pn, True, 0.0)
        acks.on_ecn(codepoint, True, 0.0)
    assert acks.ecn_report == (3, 1, 1)


def test_ce_on_an_ack_eliciting_packet_is_acknowledged_at_once() -> None:
    acks = AckManager(ack_eliciting_threshold=10, max_ack_delay_s=0.025)
    acks.on_packet_received(0, True, 1.0)
    acks.on_ecn(ECT0, True, 1.0)
    assert acks.get_timer() == pytest.approx(1.025)
    acks.on_packet_received(1, True, 1.001)
    acks.on_ecn(CE, True, 1.001)
    assert acks.get_timer() == 1.001
    other = AckManager()
    other.on_packet_received(0, False, 2.0)
    other.on_ecn(CE, False, 2.0)  # an ACK-only packet never triggers an ACK
    assert other.get_timer() is None


# --------------------------------------------------------------- sender
def test_validation_succeeds_and_returns_new_ce_marks() -> None:
    ecn = EcnSender()
    assert ecn.state == "testing" and ecn.codepoint == ECT0
    assert ecn.on_ack(_packets(0, 1, 2), [3, 0, 0], True, next_pn=5) == 0
    assert ecn.state == "capable"
    assert ecn.on_ack(_packets(3, 4), [3, 0, 2], True, next_pn=6) == 2
    assert ecn.ce_count == 2 and ecn.codepoint == ECT0


@pytest.mark.parametrize(
    ("counts", "reason"),
    [
        (None, "ACK without ECN counts"),  # the peer does not echo
        ([0, 0, 0], "ECT(0) marks lost on the path"),  # bleached
        ([2, 0, 0], "ECT(0) marks lost on the path"),  # one mark cleared
        ([3, 1, 0], "more ECN-marked packets counted than sent"),  # remarked ECT(1)
        ([9, 0, 0], "more ECN-marked packets counted than sent"),
    ],
)
def test_validation_failures_stop_marking(counts: list[int] | None, reason: str) -> None:
    ecn = EcnSender()
    assert ecn.on_ack(_packets(0, 1, 2), counts, True, next_pn=4) == 0
    assert ecn.state == "failed" and ecn.failure == reason
    assert ecn.codepoint == NOT_ECT and ecn.stop_pn == 4
    # once failed, later counts (even CE) are ignored
    assert ecn.on_ack(_packets(3), [9, 0, 9], True, next_pn=5) == 0


def test_decreasing_counts_fail_and_stale_acks_are_not_validated() -> None:
    ecn = EcnSender()
    ecn.on_ack(_packets(0, 1, 2, 3), [4, 0, 0], True, next_pn=8)
    # an ACK that does not advance the largest acknowledged is not validated
    assert ecn.on_ack(_packets(4), [0, 0, 0], False, next_pn=8) == 0
    assert ecn.state == "capable"
    ecn.on_ack(_packets(5), [3, 0, 0], True, next_pn=8)
    assert ecn.state == "failed" and ecn.failure == "ECN counts decreased"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 60), unique=True), st.integers(0, 70), st.integers(0, 70))
def test_marked_packets_of_an_ack_are_counted_exactly(
    pns: list[int], first: int, stop: int
) -> None:
    """on_ack counts the acknowledged packets in [first_marked_pn, stop_pn) (a
    slice found by bisection): one ECT(0) count less than that is a failure,
    exactly that many is not."""
    acked = _packets(*sorted(pns))
    marked = sum(1 for pn in pns if first <= pn < stop)
    for reported, fails in ((marked, False), (marked - 1, marked > 0)):
        ecn = EcnSender()
        ecn.first_marked_pn, ecn.stop_pn = first, stop
        ecn.marked_before = 1000  # (no "more counted than sent" failure)
        ecn.on_ack(acked, [max(reported, 0), 0, 0], True, next_pn=100)
        assert (ecn.failure == "ECT(0) marks lost on the path") is fails
        assert ecn.state == ("failed" if fails else "capable" if marked else "testing")


def test_unmarked_packets_need_no_counts() -> None:
    ecn = EcnSender()
    ecn.fail("test", next_pn=3)  # packets from 3 on are not marked
    assert ecn.on_ack(_packets(3, 4), None, True, next_pn=5) == 0
    restarted = EcnSender()
    restarted.restart(next_pn=10)  # a new path: marking from packet 10
    assert restarted.on_ack(_packets(8, 9), None, True, next_pn=12) == 0
    assert restarted.state == "testing"


def test_repeated_ptos_while_testing_disable_marking() -> None:
    ecn = EcnSender()
    ecn.on_pto(TESTING_PTO_LIMIT - 1, next_pn=3)
    assert ecn.state == "testing"
    ecn.on_pto(TESTING_PTO_LIMIT, next_pn=4)
    assert ecn.state == "failed" and ecn.stop_pn == 4
    capable = EcnSender()
    capable.on_ack(_packets(0), [1, 0, 0], True, next_pn=1)
    capable.on_pto(TESTING_PTO_LIMIT + 5, next_pn=9)  # a validated path keeps ECN
    assert capable.state == "capable"


def test_disabled_by_config_never_marks() -> None:
    ecn = EcnSender(enabled=False)
    assert ecn.codepoint == NOT_ECT and ecn.state == "failed"
    ecn.restart(next_pn=5)
    assert ecn.state == "failed"


# ---------------------------------------------------------- controllers
@pytest.mark.parametrize("factory", [NewReno, Cubic])
def test_loss_based_controllers_reduce_once_per_round_trip(
    factory: Callable[..., CongestionController],
) -> None:
    cc = factory(max_datagram_size=1200)
    cc.congestion_window_bytes = 100 * 1200
    if isinstance(cc, Cubic):
        cc._cwnd_f = float(cc.congestion_window_bytes)
    before = cc.congestion_window_bytes
    cc.on_ecn_ce(now=1.0)
    reduced = cc.congestion_window_bytes
    assert reduced < before
    cc.on_ecn_ce(now=1.01)  # same recovery period: no second cut
    assert cc.congestion_window_bytes == reduced


def test_bbr_counts_ce_marks_as_round_losses() -> None:
    cc = BBR(max_datagram_size=1200)
    lost_before = cc._round_lost_count
    for _ in range(3):
        cc.on_ecn_ce(now=1.0)
    assert cc._round_lost_count == lost_before + 3


# ------------------------------------------------------- end to end (sim)
def _codel_path(*, bleach: bool = False) -> Path:
    # 20 Mbit/s, 40 ms RTT, a deep (12 BDP) queue: CoDel, not the tail, acts
    def link(name: str, bleach_bits: bool) -> Link:
        return Link(rate_bps=20e6, delay_s=0.02, queue_bytes=1_200_000, aqm="codel",
                    ecn_bleach=bleach_bits, name=name)
    return Path(forward=link("fwd", bleach), backward=link("bwd", False))


def _transfer(
    factory: Callable[..., CongestionController],
    *,
    ecn: bool,
    bleach: bool = False,
    server_ecn: bool = True,
) -> TransferResult:
    return run_transfer(
        6_000_000,
        _codel_path(bleach=bleach),
        seed=3,
        ecn=ecn,
        config=lambda rng: Config(rng=rng, congestion_control=factory),
        server_config=lambda rng: Config(rng=rng, ecn=server_ecn),
        time_limit_s=60.0,
    )


@pytest.mark.parametrize("factory", [Cubic, BBR])
def test_aqm_with_ecn_marks_instead_of_dropping(
    factory: Callable[..., CongestionController],
) -> None:
    plain = _transfer(factory, ecn=False)
    marked = _transfer(factory, ecn=True)
    for result in (plain, marked):
        assert result.completed and result.intact
        assert result.client is not None
    assert plain.client is not None and marked.client is not None
    assert plain.client.ecn_state == "failed"  # nothing moved the bits
    assert plain.forward_link.packets_dropped_aqm > 0
    assert plain.client.packets_lost >= plain.forward_link.packets_dropped_aqm
    assert marked.client.ecn_state == "capable"
    assert marked.forward_link.packets_dropped_aqm == 0
    assert marked.forward_link.packets_marked_ce > 0
    assert marked.client.ecn_ce_reported == marked.forward_link.packets_marked_ce
    assert marked.client.packets_lost == 0
    # CoDel's marks keep the queue short
    assert statistics.median(marked.forward_link.queue_delay_samples) < 0.005


def test_bleaching_path_fails_validation_and_still_completes() -> None:
    result = _transfer(Cubic, ecn=True, bleach=True)
    assert result.completed and result.intact
    assert result.client is not None and result.server is not None
    assert result.client.ecn_state == "failed"
    assert result.server.ecn_state == "capable"  # the return path keeps its bits
    assert result.forward_link.packets_marked_ce == 0
    assert result.forward_link.packets_dropped_aqm > 0  # Not-ECT again: dropped


def test_peer_that_does_not_echo_fails_validation() -> None:
    result = _transfer(Cubic, ecn=True, server_ecn=False)
    assert result.completed and result.intact
    assert result.client is not None and result.server is not None
    assert result.client.ecn_state == "failed"
    assert result.server.ecn_state == "failed"


def test_packets_rebuilt_by_fec_keep_ecn_validated() -> None:
    # a rebuilt packet is acknowledged but never arrived: it is counted with the
    # codepoint of the repair packet that completed it, else validation fails
    def link(name: str, loss: Bernoulli | None) -> Link:
        return Link(rate_bps=20e6, delay_s=0.02, queue_bytes=1_200_000, aqm="codel",
                    loss=loss, name=name)

    result = run_transfer(
        2_000_000,
        Path(forward=link("fwd", Bernoulli(0.02)), backward=link("bwd", None)),
        seed=2,
        ecn=True,
        config=lambda rng: Config(rng=rng, fec="fixed"),
        time_limit_s=60.0,
    )
    assert result.completed and result.intact
    assert result.server is not None and result.client is not None
    assert result.server.fec_recovered > 0
    assert result.client.ecn_state == "capable"


@settings(max_examples=200, deadline=None)
@given(
    fates=st.lists(st.sampled_from(["ect0", "ce", "lost"]), min_size=1, max_size=60),
    ack_every=st.integers(min_value=1, max_value=5),
    order=st.randoms(use_true_random=False),
)
def test_a_faithful_path_never_fails_validation(
    fates: list[str], ack_every: int, order: random.Random
) -> None:
    """Packets marked ECT(0) are CE-marked or lost at random; the receiver
    counts faithfully; its ACK frames arrive reordered. Validation must hold
    and the CE total reported to the controller never exceeds the marks."""
    ecn = EcnSender()
    received: list[int] = []
    counts = [0, 0, 0]
    frames: list[tuple[list[int], list[int]]] = []
    for pn, fate in enumerate(fates):
        if fate == "lost":
            continue
        received.append(pn)
        counts[0 if fate == "ect0" else 2] += 1
        if len(received) % ack_every == 0:
            frames.append((list(received), list(counts)))
    frames.append((list(received), list(counts)))
    order.shuffle(frames)
    acked: set[int] = set()
    largest = -1
    ce_signalled = 0
    for pns, frame_counts in frames:
        newly = [pn for pn in pns if pn not in acked]
        acked.update(newly)
        top = max(pns, default=-1)
        ce_signalled += ecn.on_ack(_packets(*newly), frame_counts, top > largest, len(fates))
        largest = max(largest, top)
        assert ecn.state != "failed", ecn.failure
    assert ce_signalled == ecn.ce_count <= fates.count("ce")
