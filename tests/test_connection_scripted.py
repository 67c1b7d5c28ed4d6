"""Scripted loss cases in virtual time: two endpoints through the simulator.

Each test scripts exactly which datagrams die (drop filters on the links) and
asserts on what the application on the other side sees: every byte, in order,
and a clean close.
"""

from __future__ import annotations

import random

from transport import Config
from transport.sim import Path
from transport.sim.transfer import run_transfer
from transport.wire.constants import ErrorCode

MB = 1_000_000


def _path(rate_bps: float = 20e6, rtt_s: float = 0.040, **kw: object) -> Path:
    return Path.symmetric(rate_bps, rtt_s, **kw)  # type: ignore[arg-type]


def _is_long(data: bytes) -> bool:
    return bool(data[0] & 0x80)


def _assert_clean(result: object) -> None:
    r = result
    assert r.completed, "receiver did not read everything"  # type: ignore[attr-defined]
    assert r.intact, "bytes differ from what was sent"  # type: ignore[attr-defined]
    kinds = {(side, by_peer) for side, _code, _reason, by_peer in r.terminations}  # type: ignore[attr-defined]
    assert ("client", False) in kinds and ("server", True) in kinds
    for _side, code, _reason, _by_peer in r.terminations:  # type: ignore[attr-defined]
        assert code == 0


def test_clean_transfer_is_exact_and_closes() -> None:
    result = run_transfer(2 * MB, _path(), seed=1)
    _assert_clean(result)
    assert result.client is not None
    # no random loss on this path: every loss the sender saw is a queue overflow
    # of its own slow start (or a spurious declaration it then detected)
    dropped = result.forward_link.packets_dropped_queue
    assert result.client.packets_lost <= dropped + result.client.spurious_retransmits
    assert result.server is not None
    assert result.server.stream_bytes_delivered == 2 * MB
    # a clean 20 Mbit/s path is mostly used, even with NewReno's slow start
    assert result.goodput_bps > 0.5 * 20e6


def test_lose_the_first_flight() -> None:
    path = _path()
    dropped: list[float] = []

    def drop_first_initial(data: bytes, now: float) -> bool:
        if _is_long(data) and not dropped:
            dropped.append(now)
            return True
        return False

    path.forward.set_drop_filter(drop_first_initial)
    result = run_transfer(200_000, path, seed=2)
    _assert_clean(result)
    assert dropped == [0.0]
    # the handshake had to wait for the client's probe timeout (initial RTT 333 ms)
    assert result.handshake_s > 0.3


def test_lose_the_servers_handshake_reply() -> None:
    path = _path()
    count = [0]

    def drop_first_two(data: bytes, now: float) -> bool:
        if _is_long(data) and count[0] < 2:
            count[0] += 1
            return True
        return False

    path.backward.set_drop_filter(drop_first_two)
    result = run_transfer(200_000, path, seed=3)
    _assert_clean(result)
    assert count[0] == 2


def test_tail_loss_is_recovered_by_probe() -> None:
    path = _path()
    state = {"last_data": None}
    size = 300_000

    # Drop the first datagram carrying the final bytes (the largest datagram sent
    # after 290 kB have gone out): approximated by dropping the 5 datagrams that
    # follow the moment the sender's stream offset passes the end, once.
    sent = [0]

    def drop_tail(data: bytes, now: float) -> bool:
        if _is_long(data):
            return False
        sent[0] += len(data)
        if sent[0] > size and state["last_data"] is None:
            state["last_data"] = now
            return True
        return False

    path.forward.set_drop_filter(drop_tail)
    result = run_transfer(size, path, seed=4)
    _assert_clean(result)
    assert state["last_data"] is not None
    assert result.client is not None and result.client.packets_lost >= 1


def test_lose_every_ack_for_a_while() -> None:
    path = _path()
    path.backward.set_drop_filter(lambda data, now: 0.3 <= now < 0.8)
    result = run_transfer(2 * MB, path, seed=5)
    _assert_clean(result)
    assert path.backward.stats().packets_dropped_filter > 0


def test_total_blackout_for_two_seconds_then_recovery() -> None:
    path = _path()
    blackout = lambda data, now: 0.5 <= now < 2.5  # noqa: E731
    path.forward.set_drop_filter(blackout)
    path.backward.set_drop_filter(blackout)
    result = run_transfer(3 * MB, path, seed=6)
    _assert_clean(result)
    assert result.duration_s > 2.0
    assert result.client is not None and result.client.probes_sent > 0


def test_reorder_storm() -> None:
    from transport.sim import UniformJitter

    path = _path(jitter=UniformJitter(0.030), reorder=True)
    result = run_transfer(1 * MB, path, seed=7)
    _assert_clean(result)


def test_duplicate_storm() -> None:
    path = _path(duplicate_p=0.3)
    result = run_transfer(1 * MB, path, seed=8)
    _assert_clean(result)
    assert result.server is not None and result.server.duplicate_packets > 0


def test_corrupted_datagrams_are_dropped_and_counted() -> None:
    path = _path(corrupt_p=0.05)
    result = run_transfer(1 * MB, path, seed=9)
    _assert_clean(result)
    assert result.server is not None and result.server.datagrams_dropped > 0


def test_silent_peer_hits_idle_timeout() -> None:
    path = _path()
    silence = lambda data, now: now >= 0.2  # noqa: E731
    path.forward.set_drop_filter(silence)
    path.backward.set_drop_filter(silence)

    def config(rng: random.Random) -> Config:
        return Config(rng=rng, idle_timeout_s=3.0)

    result = run_transfer(50 * MB, path, seed=10, config=config, time_limit_s=30.0)
    assert not result.completed
    codes = {(side, code) for side, code, _reason, _by_peer in result.terminations}
    assert ("client", ErrorCode.IDLE_TIMEOUT) in codes
    assert ("server", ErrorCode.IDLE_TIMEOUT) in codes


def test_many_streams_are_independent_and_exact() -> None:
    result = run_transfer(2 * MB, _path(loss=None), seed=11, streams=16)
    _assert_clean(result)


def test_random_bytes_never_raise() -> None:
    from transport import Connection

    rng = random.Random(12)
    client = Connection(Config(rng=random.Random(1), security="none"), is_client=True)
    client.connect(("10.0.0.2", 4433), now=0.0)
    server = Connection(Config(rng=random.Random(2), security="none"), is_client=False)
    for i in range(3000):
        size = rng.choice([0, 1, 2, 5, 20, 100, 1200, 1400])
        data = rng.randbytes(size)
        if i % 3 == 0 and data:
            data = bytes([data[0] & 0x7F | 0x40]) + client.local_cid + data[9:]
        client.receive_datagram(data, ("10.0.0.2", 4433), now=i * 0.001)
        server.receive_datagram(data, ("10.0.0.1", 5000), now=i * 0.001)
        client.datagrams_to_send(i * 0.001)
        server.datagrams_to_send(i * 0.001)
    # nothing raised, and every bad datagram was counted as dropped
    stats = client.get_stats()
    assert stats.datagrams_dropped + stats.duplicate_packets > 0

