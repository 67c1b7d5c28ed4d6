"""Path MTU discovery: probe up from 1200 bytes, stop at what the path carries,
and fall back when large packets start vanishing (RFC 8899)."""

from __future__ import annotations

import random

from transport import Config
from transport.pmtud import BASE_SIZE, MAX_PROBES, PathMtu
from transport.sim import Path
from transport.sim.transfer import run_transfer


def test_search_climbs_candidates_and_settles_below_a_failing_size() -> None:
    mtu = PathMtu(1500)
    sizes = []
    for _ in range(10):
        size = mtu.probe_due(0.0)
        if not size:
            break
        mtu.on_probe_sent(size)
        sizes.append(size)
        if size <= 1400:
            assert mtu.on_probe_acked(size)
        else:
            mtu.on_probe_lost(size, 0.0)
    assert mtu.current == 1400
    assert sizes[:3] == [1280, 1350, 1400]
    assert sizes[3:] == [1452] * MAX_PROBES  # three losses of one size end the search
    assert mtu.probe_due(1.0) == 0  # settled ...
    assert mtu.probe_due(31.0) == 1452  # ... until the raise timer asks again


def test_black_hole_falls_back_to_the_base_size() -> None:
    mtu = PathMtu(1400)
    for size in (1280, 1350, 1400):
        assert mtu.probe_due(0.0) == size
        mtu.on_probe_sent(size)
        mtu.on_probe_acked(size)
    assert mtu.current == 1400
    assert mtu.on_black_hole(5.0)
    assert mtu.current == BASE_SIZE
    assert not mtu.on_black_hole(5.0)


def _config(rng: random.Random) -> Config:
    return Config(rng=rng, max_datagram_size=1500)


def test_transfer_discovers_the_path_mtu() -> None:
    path = Path.symmetric(20e6, 0.040, mtu_bytes=1380)
    sizes: list[int] = []
    path.forward.set_drop_filter(lambda data, now: sizes.append(len(data)) or False)
    result = run_transfer(2_000_000, path, seed=1, config=_config)
    assert result.completed and result.intact
    assert path.forward.stats().packets_dropped_mtu >= 1  # probes above 1380 died
    late = sizes[len(sizes) // 2 :]
    # data packets fill the largest candidate the path carries (1350), not the
    # 1200-byte base and never above the 1380-byte MTU
    assert 1340 <= max(late) <= 1350
    assert sum(1 for size in late if size > 1280) > len(late) // 2


def test_mtu_black_hole_mid_transfer_is_survived() -> None:
    path = Path.symmetric(20e6, 0.040)
    sim_link = path.forward
    shrunk: list[float] = []

    def shrink_at_one_second(data: bytes, now: float) -> bool:
        if now >= 1.0 and not shrunk:
            shrunk.append(now)
            sim_link.set_mtu(1250)  # from now on, big packets vanish silently
        return False

    path.forward.set_drop_filter(shrink_at_one_second)
    result = run_transfer(6_000_000, path, seed=2, config=_config, time_limit_s=60.0)
    assert shrunk and result.completed and result.intact
    assert path.forward.stats().packets_dropped_mtu > 0
