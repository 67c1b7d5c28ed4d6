"""FEC in the protocol: blocks, repair, recovery, policy, and transfers with FEC."""

from __future__ import annotations

import random

import pytest

from transport import Config
from transport.errors import ConfigurationError
from transport.fec.protocol import FecPolicy, FecReceiver, FecSender
from transport.sim import Bernoulli, Path
from transport.sim.transfer import run_transfer

SYMBOL = 200


def _frames(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(1, SYMBOL - 10))


@pytest.mark.parametrize(("k", "m"), [(1, 1), (4, 1), (10, 2), (10, 4), (32, 8)])
def test_any_m_lost_sources_are_rebuilt_exactly(k: int, m: int) -> None:
    rng = random.Random(k * 100 + m)
    sender = FecSender(FecPolicy("fixed", k, m), SYMBOL, latency_budget_s=1.0)
    assert sender.open_block(0.0, 0.0)
    sent = [(1000 + i, _frames(rng)) for i in range(k)]
    for pn, frames in sent:
        sender.add_source(pn, frames, 0.0)
    repairs = sender.repairs
    assert len(repairs) == m and all(r[1:3] == (k, m) for r in repairs)
    lost = set(rng.sample(range(k), m))
    receiver = FecReceiver()
    for index, (pn, frames) in enumerate(sent):
        if index not in lost:
            receiver.on_source(0, index, pn, frames)
    rebuilt: list[tuple[int, bytes]] = []
    for block, rk, rm, j, symbol in repairs:
        rebuilt += receiver.on_repair(block, rk, rm, j, symbol)
    assert sorted(rebuilt) == sorted(sent[i] for i in lost)


def test_a_block_of_small_packets_gets_small_repair_symbols() -> None:
    sender = FecSender(FecPolicy("fixed", 4, 2), SYMBOL, latency_budget_s=1.0)
    sender.open_block(0.0, 0.0)
    sent = [(50 + i, bytes([i]) * (20 + i)) for i in range(4)]
    for pn, frames in sent:
        sender.add_source(pn, frames, 0.0)
    # the block's symbol size is its largest source symbol (header + 23 bytes)
    assert {len(r[4]) for r in sender.repairs} == {10 + 23}
    receiver = FecReceiver()
    receiver.on_source(0, 1, *sent[1])
    receiver.on_source(0, 2, *sent[2])
    rebuilt = [x for r in sender.repairs for x in receiver.on_repair(r[0], r[1], r[2], r[3], r[4])]
    assert sorted(rebuilt) == [sent[0], sent[3]]


def test_too_many_losses_rebuild_nothing_and_wrong_shapes_are_ignored() -> None:
    rng = random.Random(7)
    sender = FecSender(FecPolicy("fixed", 5, 1), SYMBOL, latency_budget_s=1.0)
    sender.open_block(0.0, 0.0)
    sent = [(i, _frames(rng)) for i in range(5)]
    for pn, frames in sent:
        sender.add_source(pn, frames, 0.0)
    receiver = FecReceiver()
    for index in (0, 1, 2):  # two lost, one repair symbol
        receiver.on_source(0, index, *sent[index])
    block, k, m, j, symbol = sender.repairs[0]
    assert receiver.on_repair(block, k, m, j, symbol) == []
    assert receiver.on_repair(block, k, m + 5, j, symbol) == []  # shape changed: ignored
    assert receiver.recovered == 0


def test_partial_block_closes_at_its_latency_budget() -> None:
    sender = FecSender(FecPolicy("fixed", 10, 2), SYMBOL, latency_budget_s=0.010)
    sender.open_block(5.0, 0.0)
    sender.add_source(1, b"abc", 5.0)
    sender.add_source(2, b"defg", 5.002)
    assert sender.deadline == pytest.approx(5.010)
    sender.on_timer(5.009)
    assert sender.repairs == []
    sender.on_timer(5.010)
    assert [(r[1], r[2]) for r in sender.repairs] == [(2, 2), (2, 2)]
    assert sender.deadline is None


def test_adaptive_policy_backs_off_on_a_clean_path_and_grows_with_loss() -> None:
    policy = FecPolicy("adaptive")
    assert policy.choose(0.0) is None
    assert policy.choose(0.001) is None
    ms = [policy.choose(p)[1] for p in (0.005, 0.02, 0.05, 0.10)]  # type: ignore[index]
    assert ms == sorted(ms) and ms[0] >= 1 and ms[-1] > ms[0]
    assert FecPolicy("off").choose(0.5) is None
    assert FecPolicy("fixed", 8, 3).choose(0.0) == (8, 3)
    with pytest.raises(ConfigurationError):
        FecPolicy("sometimes")
    with pytest.raises(ConfigurationError):
        Config(fec="fixed", fec_block=(4, 5))


def _fec_config(mode: str) -> object:
    return lambda rng: Config(rng=rng, fec=mode, fec_block=(8, 2))


@pytest.mark.parametrize("mode", ["fixed", "adaptive"])
def test_transfers_with_fec_are_exact_and_repair_losses(mode: str) -> None:
    path = Path.symmetric(20e6, 0.060, loss=Bernoulli(0.03))
    result = run_transfer(2_000_000, path, seed=5, config=_fec_config(mode))  # type: ignore[arg-type]
    assert result.completed and result.intact
    assert result.server is not None and result.client is not None
    assert result.server.fec_recovered > 0
    assert result.client.fec_repair_bytes_sent > 0
    # what the receiver rebuilt is what the sender hears about (FEC_RECOVERED)
    assert 0 < result.client.fec_reported_recovered <= result.server.fec_recovered


def test_corrupted_repair_and_source_packets_never_produce_wrong_data() -> None:
    path = Path.symmetric(20e6, 0.040, loss=Bernoulli(0.02), corrupt_p=0.05)
    result = run_transfer(1_000_000, path, seed=6, config=_fec_config("fixed"))  # type: ignore[arg-type]
    assert result.completed and result.intact
    assert result.server is not None and result.server.datagrams_dropped > 0


def test_fec_off_sends_no_repair_traffic() -> None:
    path = Path.symmetric(20e6, 0.040, loss=Bernoulli(0.02))
    result = run_transfer(1_000_000, path, seed=7, config=_fec_config("off"))  # type: ignore[arg-type]
    assert result.intact and result.client is not None
    assert result.client.fec_repair_bytes_sent == 0 and result.server.fec_recovered == 0  # type: ignore[union-attr]


def test_forged_or_inconsistent_repair_symbols_are_ignored() -> None:
    # found by the stateful fuzzer: a 1-byte repair symbol crashed the decoder
    receiver = FecReceiver()
    assert receiver.on_repair(0, 1, 1, 0, b"\x00") == []
    assert receiver.on_repair(1, 0, 1, 0, bytes(64)) == []
    receiver.on_source(2, 0, 7, b"x" * 100)
    assert receiver.on_repair(2, 2, 1, 0, bytes(40)) == []  # shorter than a source
    assert receiver.on_repair(3, 2, 2, 0, bytes(40)) == []
    assert receiver.on_repair(3, 2, 2, 1, bytes(41)) == []  # sizes disagree
