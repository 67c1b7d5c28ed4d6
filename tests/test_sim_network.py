"""Tests for the network part of the deterministic simulator (transport.sim)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path as FilePath

import pytest

from transport.errors import ConfigurationError, InvalidStateError
from transport.sim import (
    Bernoulli,
    GilbertElliott,
    Link,
    NormalJitter,
    Path,
    Simulator,
    StopReason,
    TimerLivelockError,
    TraceLoss,
    UniformJitter,
    bdp_bytes,
)

A = ("10.0.0.1", 4433)
B = ("10.0.0.2", 4433)
C = ("10.0.0.3", 4433)


# ------------------------------------------------------------ toy nodes --
class Box:
    """A node that sends what the test puts in its outbox and records what it gets."""

    def __init__(self) -> None:
        self.outbox: list[tuple[bytes, tuple[str, int]]] = []
        self.received: list[tuple[float, bytes, tuple[str, int]]] = []

    def send(self, data: bytes, dst: tuple[str, int]) -> None:
        self.outbox.append((data, dst))

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self.received.append((now, data, addr))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None


class Pacer(Box):
    """Sends ``count`` numbered packets of ``size`` bytes, one every ``interval_s``."""

    def __init__(self, dst: tuple[str, int], count: int, interval_s: float, size: int = 200):
        super().__init__()
        self.dst = dst
        self.left = count
        self.seq = 0
        self.interval_s = interval_s
        self.size = size
        self.next_s = 0.0

    def get_timer(self) -> float | None:
        return self.next_s if self.left else None

    def handle_timer(self, now: float) -> None:
        if not self.left or now < self.next_s:
            return
        self.outbox.append((self.seq.to_bytes(4, "big") + bytes(self.size - 4), self.dst))
        self.seq += 1
        self.left -= 1
        self.next_s += self.interval_s


class Alarm(Box):
    """Keeps a list of deadlines; records when handle_timer really fires one."""

    def __init__(self, deadlines: list[float]) -> None:
        super().__init__()
        self.deadlines = sorted(deadlines)
        self.fired: list[float] = []
        self.spurious = 0

    def get_timer(self) -> float | None:
        return self.deadlines[0] if self.deadlines else None

    def handle_timer(self, now: float) -> None:
        if not self.deadlines or now < self.deadlines[0]:
            self.spurious += 1
            return
        self.fired.append(now)
        self.deadlines.pop(0)


class Pinger(Box):
    """Sends a ping of ``size`` bytes every ``interval_s``; measures RTT from echoes."""

    def __init__(self, dst: tuple[str, int], count: int, interval_s: float, size: int) -> None:
        super().__init__()
        self.dst = dst
        self.count = count
        self.interval_s = interval_s
        self.size = size
        self.sent_at: dict[int, float] = {}
        self.rtts: list[float] = []
        self.next_s = 0.0

    def get_timer(self) -> float | None:
        return self.next_s if len(self.sent_at) < self.count else None

    def handle_timer(self, now: float) -> None:
        if len(self.sent_at) >= self.count or now < self.next_s:
            return
        number = len(self.sent_at)
        self.sent_at[number] = now
        self.outbox.append((number.to_bytes(4, "big") + bytes(self.size - 4), self.dst))
        self.next_s += self.interval_s

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self.rtts.append(now - self.sent_at[int.from_bytes(data[:4], "big")])


class Echo(Box):
    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self.outbox.append((data, addr))


def numbers(box: Box) -> list[int]:
    return [int.from_bytes(data[:4], "big") for _, data, _ in box.received]


def pair(link_fwd: Link, link_bwd: Link | None = None, seed: int = 1) -> tuple[Simulator, Box, Box]:
    sim = Simulator(seed=seed)
    a, b = Box(), Box()
    sim.attach(A, a)
    sim.attach(B, b)
    sim.connect(A, B, Path(link_fwd, link_bwd or Link()))
    return sim, a, b


# -------------------------------------------------------- determinism --
def impaired_trace(seed: int) -> list[tuple[float, bytes]]:
    sim = Simulator(seed=seed)
    sender = Pacer(B, count=3000, interval_s=0.0005, size=100)
    sink = Box()
    sim.attach(A, sender)
    sim.attach(B, sink)
    sim.connect(
        A,
        B,
        Path.symmetric(
            10e6,
            0.02,
            loss=GilbertElliott.from_mean(0.05, 3.0),
            jitter=UniformJitter(0.004),
            reorder=True,
            duplicate_p=0.02,
            corrupt_p=0.02,
        ),
    )
    assert sim.run() is StopReason.IDLE
    return [(t, data) for t, data, _ in sink.received]


def test_same_seed_same_trace_different_seed_different() -> None:
    first = impaired_trace(11)
    assert first == impaired_trace(11)
    assert first != impaired_trace(12)
    assert 2500 < len(first) < 3000


def test_adding_a_link_does_not_shift_other_links_randomness() -> None:
    def lost_numbers(extra_link: bool) -> list[int]:
        sim = Simulator(seed=5)
        sender, sink = Pacer(B, count=2000, interval_s=0.001), Box()
        sim.attach(A, sender)
        sim.attach(B, sink)
        if extra_link:
            sim.attach(C, Box())
            sim.connect(A, C, Path.symmetric(1e6, 0.01, loss=Bernoulli(0.5)))
        sim.connect(A, B, Path.symmetric(None, 0.01, loss=Bernoulli(0.1)))
        sim.run()
        return sorted(set(range(2000)) - set(numbers(sink)))

    assert lost_numbers(False) == lost_numbers(True)


# ------------------------------------------------- serialization math --
def test_scripted_burst_serialization_and_queueing_exact() -> None:
    # 8 Mbit/s = 1 byte per microsecond; no header overhead; 10 ms propagation.
    link = Link(rate_bps=8e6, delay_s=0.010, queue_bytes=100_000, overhead_bytes=0)
    sim, a, b = pair(link)
    for i in range(3):
        a.send(bytes([i]) * 1000, B)
    sim.poke(a)  # burst of three at t=0
    assert [link.backlog_bytes(t) for t in (0.0, 0.0015, 0.003)] == [3000, 2000, 0]
    sim.schedule(0.0025, lambda now: a.send(b"\x03" * 1000, B), touches=[a])
    sim.schedule(0.0100, lambda now: a.send(b"\x04" * 500, B), touches=[a])
    sim.run()
    arrivals = [t for t, _, _ in b.received]
    # departures 1, 2, 3 ms; the t=2.5 ms packet waits until 3 ms -> departs 4 ms;
    # the t=10 ms packet finds the link idle -> departs 10.5 ms.
    expected = [0.011, 0.012, 0.013, 0.014, 0.0205]
    assert arrivals == pytest.approx(expected, abs=1e-12)
    assert [data[0] for _, data, _ in b.received] == [0, 1, 2, 3, 4]
    assert all(src == A for _, _, src in b.received)
    stats = link.stats()
    assert stats.queue_delay_count == 5
    assert stats.queue_delay_sum_s == pytest.approx(0.0 + 0.001 + 0.002 + 0.0005 + 0.0, abs=1e-12)
    assert stats.queue_delay_max_s == pytest.approx(0.002, abs=1e-12)
    assert stats.max_backlog_bytes == 3000
    assert stats.packets_delivered == 5
    assert stats.bytes_delivered == 4500


def test_overhead_bytes_count_for_serialization() -> None:
    link = Link(rate_bps=8e6, delay_s=0.0, overhead_bytes=28, queue_bytes=10_000)
    sim, a, b = pair(link)
    a.send(bytes(972), B)
    a.send(bytes(972), B)
    sim.poke(a)
    sim.run()
    assert [t for t, _, _ in b.received] == pytest.approx([0.001, 0.002], abs=1e-12)


@pytest.mark.parametrize(("queue_bytes", "accepted"), [(2500, 2), (3000, 3), (2999, 2)])
def test_tail_drop_at_queue_limit(queue_bytes: int, accepted: int) -> None:
    link = Link(rate_bps=8e6, delay_s=0.001, queue_bytes=queue_bytes, overhead_bytes=0)
    sim, a, b = pair(link)
    for i in range(5):
        a.send(bytes([i]) * 1000, B)
    sim.poke(a)
    # Once the first packet finished serializing (1 ms), there is room for one more.
    sim.schedule(0.001, lambda now: a.send(b"\x09" * 1000, B), touches=[a])
    sim.run()
    stats = link.stats()
    assert stats.packets_dropped_queue == 5 - accepted
    assert stats.bytes_dropped_queue == (5 - accepted) * 1000
    assert [data[0] for _, data, _ in b.received] == [*range(accepted), 9]
    assert stats.max_backlog_bytes <= queue_bytes


def test_propagation_delay_exact_with_infinite_rate() -> None:
    link = Link(delay_s=0.123)
    sim, a, b = pair(link)
    sim.schedule(0.5, lambda now: a.send(b"x", B), touches=[a])
    sim.schedule(0.5, lambda now: a.send(b"y", B), touches=[a])
    sim.run()
    assert b.received == [(0.5 + 0.123, b"x", A), (0.5 + 0.123, b"y", A)]
    assert link.stats().queue_delay_max_s == 0.0


def test_symmetric_path_queue_is_bdp_multiple() -> None:
    path = Path.symmetric(50e6, 0.050, queue_bdp=2.0)
    assert bdp_bytes(50e6, 0.050) == 312_500
    assert path.forward.queue_bytes == path.backward.queue_bytes == 625_000
    assert path.forward.delay_s == path.backward.delay_s == 0.025
    assert Path.symmetric(1e6, 0.001).forward.queue_bytes == 3000  # MIN_QUEUE_BYTES floor


def test_ping_pong_rtt_is_twice_delay_plus_serialization() -> None:
    sim = Simulator(seed=3)
    pinger = Pinger(B, count=20, interval_s=0.1, size=100)
    sim.attach(A, pinger)
    sim.attach(B, Echo())
    sim.connect(A, B, Path.symmetric(1e6, 0.040, overhead_bytes=28))
    sim.run()
    serialization_s = (100 + 28) * 8 / 1e6
    assert len(pinger.rtts) == 20
    assert pinger.rtts == pytest.approx([0.040 + 2 * serialization_s] * 20, abs=1e-12)


def test_capacity_change_on_schedule() -> None:
    link = Link(rate_bps=8e6, delay_s=0.0, overhead_bytes=0, queue_bytes=10**6)
    sim, a, b = pair(link)
    sim.schedule(0.0, lambda now: a.send(bytes(1000), B), touches=[a])
    sim.schedule(0.5, lambda now: link.set_rate(4e6), touches=[])
    sim.schedule(1.0, lambda now: a.send(bytes(1000), B), touches=[a])
    sim.run()
    assert [t for t, _, _ in b.received] == pytest.approx([0.001, 1.002], abs=1e-12)


# ---------------------------------------------------------------- loss --
def burst_stats(decisions: list[bool]) -> tuple[float, float]:
    bursts = 0
    previous = False
    for lost in decisions:
        if lost and not previous:
            bursts += 1
        previous = lost
    losses = sum(decisions)
    return losses / len(decisions), losses / bursts


def test_bernoulli_mean_loss_within_5_percent() -> None:
    decide = Bernoulli(0.02).decider(random.Random(1))
    rate, burst = burst_stats([decide() for _ in range(200_000)])
    assert rate == pytest.approx(0.02, rel=0.05)
    assert burst == pytest.approx(1 / (1 - 0.02), rel=0.05)


@pytest.mark.parametrize(("loss_rate", "burst_length"), [(0.02, 3.0), (0.05, 2.0), (0.10, 5.0)])
def test_gilbert_elliott_mean_loss_and_burst_within_5_percent(
    loss_rate: float, burst_length: float
) -> None:
    model = GilbertElliott.from_mean(loss_rate, burst_length)
    assert model.mean_loss_rate == pytest.approx(loss_rate)
    assert model.mean_bad_sojourn == pytest.approx(burst_length)
    decide = model.decider(random.Random(7))
    rate, burst = burst_stats([decide() for _ in range(1_000_000)])
    assert rate == pytest.approx(loss_rate, rel=0.05)
    assert burst == pytest.approx(burst_length, rel=0.05)


def test_gilbert_elliott_general_four_parameter_mean_loss() -> None:
    model = GilbertElliott(0.01, 0.2, loss_in_good=0.002, loss_in_bad=0.6)
    decide = model.decider(random.Random(3))
    rate, _ = burst_stats([decide() for _ in range(400_000)])
    assert rate == pytest.approx(model.mean_loss_rate, rel=0.05)


def test_loss_on_link_is_counted_and_within_tolerance() -> None:
    sim = Simulator(seed=9)
    sender, sink = Pacer(B, count=40_000, interval_s=0.0001, size=64), Box()
    sim.attach(A, sender)
    sim.attach(B, sink)
    path = sim.connect(A, B, Path.symmetric(None, 0.01, loss=GilbertElliott.from_mean(0.05, 2.0)))
    sim.run()
    stats = path.forward.stats()
    assert stats.packets_offered == 40_000
    assert stats.loss_rate == pytest.approx(0.05, rel=0.1)
    assert stats.packets_delivered == len(sink.received) == 40_000 - stats.packets_dropped_loss
    lost = sorted(set(range(40_000)) - set(numbers(sink)))
    _, burst = burst_stats([i in set(lost) for i in range(40_000)])
    assert burst == pytest.approx(2.0, rel=0.1)


def test_trace_loss_replays_exactly(tmp_path: FilePath) -> None:
    decide = TraceLoss([1, 0, 0, 1], repeat=True).decider(random.Random(0))
    assert [decide() for _ in range(8)] == [True, False, False, True] * 2
    once = TraceLoss([1, 1], repeat=False).decider(random.Random(0))
    assert [once() for _ in range(4)] == [True, True, False, False]
    trace = tmp_path / "loss.txt"
    trace.write_text("# recorded\n0 1 1\n0, 0 # tail\n", encoding="utf-8")
    model = TraceLoss.from_file(trace, repeat=False)
    assert model.pattern == (False, True, True, False, False)
    assert model.mean_loss_rate == pytest.approx(0.4)


def test_set_loss_blackout_then_recovery() -> None:
    sim = Simulator(seed=2)
    sender, sink = Pacer(B, count=300, interval_s=0.01), Box()
    sim.attach(A, sender)
    sim.attach(B, sink)
    path = sim.connect(A, B, Path.symmetric(None, 0.0))
    sim.schedule(1.0, lambda now: path.forward.set_loss(Bernoulli(1.0)), touches=[])
    sim.schedule(2.0, lambda now: path.forward.set_loss(None), touches=[])
    sim.run()
    got = numbers(sink)
    assert got == [*range(100), *range(200, 300)]
    assert path.forward.stats().packets_dropped_loss == 100


def test_drop_filter_and_mtu() -> None:
    link = Link(mtu_bytes=1200)
    link.set_drop_filter(lambda data, now: data.startswith(b"ACK"))
    sim, a, b = pair(link)
    for payload in (b"ACK1", b"DATA", b"ACK2", bytes(1201), bytes(1200)):
        a.send(payload, B)
    sim.poke(a)
    sim.run()
    assert [data for _, data, _ in b.received] == [b"DATA", bytes(1200)]
    stats = link.stats()
    assert (stats.packets_dropped_filter, stats.packets_dropped_mtu) == (2, 1)


# ------------------------------------------------------ jitter, dup, corrupt --
def jitter_run(reorder: bool) -> tuple[list[int], list[float]]:
    sim = Simulator(seed=4)
    sender, sink = Pacer(B, count=5000, interval_s=0.001), Box()
    sim.attach(A, sender)
    sim.attach(B, sink)
    sim.connect(
        A,
        B,
        Path.symmetric(None, 0.02, jitter=NormalJitter(std_s=0.003, mean_s=0.005), reorder=reorder),
    )
    sim.run()
    delays = [t - n * 0.001 for n, (t, _, _) in zip(numbers(sink), sink.received, strict=True)]
    return numbers(sink), delays


def test_jitter_without_reorder_preserves_order() -> None:
    order, delays = jitter_run(reorder=False)
    assert order == list(range(5000))
    assert min(delays) >= 0.010 - 1e-9
    assert max(delays) - min(delays) > 0.005  # jitter does vary the delay


def test_jitter_with_reorder_reorders() -> None:
    order, delays = jitter_run(reorder=True)
    assert sorted(order) == list(range(5000))
    inversions = sum(1 for x, y in itertools.pairwise(order) if y < x)
    assert inversions > 100
    assert min(delays) >= 0.010 - 1e-9


def test_duplication_rate_within_tolerance() -> None:
    sim = Simulator(seed=6)
    sender, sink = Pacer(B, count=40_000, interval_s=0.0001, size=64), Box()
    sim.attach(A, sender)
    sim.attach(B, sink)
    path = sim.connect(A, B, Path.symmetric(None, 0.001, duplicate_p=0.1))
    sim.run()
    stats = path.forward.stats()
    assert stats.packets_duplicated == pytest.approx(4000, rel=0.05)
    assert len(sink.received) == 40_000 + stats.packets_duplicated
    assert sorted(set(numbers(sink))) == list(range(40_000))
    assert stats.packets_in_flight == 0


def test_corruption_flips_exactly_one_bit_at_configured_rate() -> None:
    sim = Simulator(seed=8)
    sender, sink = Pacer(B, count=40_000, interval_s=0.0001, size=64), Box()
    sim.attach(A, sender)
    sim.attach(B, sink)
    path = sim.connect(A, B, Path.symmetric(None, 0.001, corrupt_p=0.05))
    sim.run()
    corrupted = 0
    for index, (_, data, _) in enumerate(sink.received):
        original = index.to_bytes(4, "big") + bytes(60)
        flipped = sum(bin(x ^ y).count("1") for x, y in zip(data, original, strict=True))
        assert flipped in (0, 1)
        corrupted += flipped
    assert corrupted == path.forward.stats().packets_corrupted
    assert corrupted == pytest.approx(2000, rel=0.05)


def test_queue_delay_reservoir_is_bounded() -> None:
    sim = Simulator(seed=10)
    # Offered at 2x the link rate: the queue fills, then tail-drops.
    sender, sink = Pacer(B, count=20_000, interval_s=0.0001, size=100), Box()
    sim.attach(A, sender)
    sim.attach(B, sink)
    path = sim.connect(A, B, Path.symmetric(4e6, 0.01, queue_bytes=20_000, overhead_bytes=0))
    sim.run()
    stats = path.forward.stats()
    assert stats.queue_delay_count == 20_000 - stats.packets_dropped_queue
    assert len(stats.queue_delay_samples) == 2048
    assert stats.queue_delay_max_s == pytest.approx(0.04 - 0.0002, abs=1e-3)
    sample_mean = sum(stats.queue_delay_samples) / len(stats.queue_delay_samples)
    assert sample_mean == pytest.approx(stats.queue_delay_mean_s, rel=0.1)
    assert stats.packets_dropped_queue == pytest.approx(10_000, rel=0.05)


# -------------------------------------------------------------- timers --
def test_node_timers_fire_at_exact_virtual_times() -> None:
    sim = Simulator()
    alarm = Alarm([0.25, 0.1, 1.0])
    sim.attach(A, alarm)
    assert sim.run() is StopReason.IDLE
    assert alarm.fired == [0.1, 0.25, 1.0]
    assert alarm.spurious == 0
    assert sim.now == 1.0


def test_rearmed_timer_leaves_stale_entry_ignored() -> None:
    sim = Simulator()
    alarm = Alarm([0.5])
    sim.attach(A, alarm)

    def move(now: float) -> None:
        alarm.deadlines = [0.7]  # later deadline replaces the armed one

    sim.schedule(0.2, move, touches=[alarm])
    sim.schedule(0.8, lambda now: alarm.deadlines.append(0.3), touches=[alarm])  # past
    sim.run()
    assert alarm.fired == [0.7, 0.8]  # a deadline in the past fires at once
    assert alarm.spurious == 0
    assert sim.stats().stale_timers == 1


def test_spurious_handle_timer_is_harmless() -> None:
    sim = Simulator()
    alarm = Alarm([0.5])
    sim.attach(A, alarm)
    sim.schedule(0.1, alarm.handle_timer, touches=[alarm])  # early, spurious
    sim.schedule(0.2, lambda now: None)  # polls every node again
    sim.run()
    assert alarm.fired == [0.5]
    assert alarm.spurious == 1
    assert sim.stats().timers_fired == 1


def test_timer_livelock_is_reported() -> None:
    class Stuck(Box):
        def get_timer(self) -> float | None:
            return 0.0

    sim = Simulator()
    sim.attach(A, Stuck())
    with pytest.raises(TimerLivelockError):
        sim.run()


# ------------------------------------------------------- routing & run --
def test_unroutable_and_undeliverable_are_counted() -> None:
    sim, a, b = pair(Link(delay_s=0.01))
    a.send(b"no route", C)
    a.send(b"first", B)
    sim.poke(a)
    sim.run(until_s=0.005)
    sim.detach(B)
    sim.run()
    stats = sim.stats()
    assert stats.packets_unroutable == 1
    assert stats.packets_undeliverable == 1
    assert b.received == []


def test_shared_bottleneck_multi_hop_routes() -> None:
    sim = Simulator(seed=1)
    bottleneck = Link(rate_bps=8e6, delay_s=0.01, queue_bytes=10**6, overhead_bytes=0, name="neck")
    sink = Box()
    sim.attach(C, sink)
    senders = []
    for addr in (A, B):
        sender = Pacer(C, count=1000, interval_s=0.0001, size=500)  # 40 Mbit/s each
        senders.append(sender)
        sim.attach(addr, sender)
        sim.add_route(addr, C, [Link(delay_s=0.001), bottleneck])
    sim.run()
    assert sim.link("neck") is bottleneck
    assert len(sink.received) == 2000
    # The bottleneck is busy from the first arrival (1 ms) on: 1 MB at 8 Mbit/s
    # takes 1 s, then 10 ms of propagation.
    assert sink.received[-1][0] == pytest.approx(0.001 + 1.0 + 0.010, abs=1e-9)
    assert {src for _, _, src in sink.received} == {A, B}


def test_run_stop_reasons_and_clock() -> None:
    sim = Simulator()
    pacer = Pacer(B, count=100, interval_s=0.01)
    sink = Box()
    sim.attach(A, pacer)
    sim.attach(B, sink)
    sim.connect(A, B, Path.symmetric(None, 0.0))
    assert sim.run(until_s=0.2) is StopReason.UNTIL
    assert sim.now == 0.2
    assert sim.run(stop_when=lambda: len(sink.received) >= 50) is StopReason.STOP_WHEN
    assert len(sink.received) == 50
    assert sim.run(max_events=3) is StopReason.MAX_EVENTS
    assert sim.run() is StopReason.IDLE
    assert len(sink.received) == 100
    with pytest.raises(ConfigurationError):
        sim.schedule(sim.now - 1.0, lambda now: None)
    with pytest.raises(ConfigurationError):
        sim.run(until_s=sim.now - 1.0)


def test_callbacks_run_in_time_then_insertion_order_and_cancel() -> None:
    sim = Simulator()
    seen: list[str] = []
    sim.schedule(0.2, lambda now: seen.append("b"))
    sim.schedule(0.1, lambda now: seen.append("a"))
    sim.schedule(0.2, lambda now: seen.append("c"))
    sim.schedule(0.2, lambda now: seen.append("x")).cancel()
    sim.call_later(0.3, lambda now: seen.append(f"d@{now}"))
    sim.run()
    assert seen == ["a", "b", "c", "d@0.3"]


def test_configuration_errors() -> None:
    sim = Simulator()
    sim.attach(A, Box())
    with pytest.raises(ConfigurationError):
        sim.attach(A, Box())
    with pytest.raises(ConfigurationError):
        Link(rate_bps=0)
    with pytest.raises(ConfigurationError):
        Bernoulli(1.5)
    with pytest.raises(ConfigurationError):
        GilbertElliott.from_mean(0.5, 0.5)
    link = Link()
    sim.connect(A, B, Path(link, Link()))
    with pytest.raises(ConfigurationError):
        sim.connect(A, B, Path(Link(), Link()))
    with pytest.raises(InvalidStateError):
        Simulator().add_route(A, B, link)  # a link belongs to one simulator
    with pytest.raises(ConfigurationError):
        sim.add_route(A, C, Link(name=link.name))  # names seed randomness: unique
