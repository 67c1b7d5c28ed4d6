"""Each controller completes simulated transfers byte-exact under random loss."""

from __future__ import annotations

import random

import pytest

from transport.config import Config
from transport.congestion import BBR, Cubic, NewReno
from transport.sim import Bernoulli, Path
from transport.sim.transfer import run_transfer

FACTORIES = {"newreno": NewReno, "cubic": Cubic, "bbr": BBR}


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("loss", [0.0, 0.02])
def test_transfer_byte_exact(name: str, loss: float) -> None:
    factory = FACTORIES[name]

    def config(rng: random.Random) -> Config:
        return Config(congestion_control=factory, rng=rng)

    path = Path.symmetric(20e6, 0.04, loss=Bernoulli(loss) if loss else None)
    result = run_transfer(1_500_000, path, seed=11, config=config, time_limit_s=60.0)
    assert result.completed and result.intact
    assert result.bytes_delivered == 1_500_000
    assert result.client is not None
    assert result.client.congestion_state != ""
    if loss:
        assert result.forward_link.packets_dropped_loss > 0


def test_bbr_keeps_rate_under_loss_in_sim() -> None:
    def config(rng: random.Random) -> Config:
        return Config(
            congestion_control=BBR,
            rng=rng,
            initial_max_stream_data=4 << 20,
            initial_max_data=8 << 20,
        )

    path = Path.symmetric(20e6, 0.04, loss=Bernoulli(0.02))
    result = run_transfer(6_000_000, path, seed=5, config=config, time_limit_s=60.0)
    assert result.completed and result.intact
    assert result.goodput_bps > 0.6 * 0.98 * 20e6
