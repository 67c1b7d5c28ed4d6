"""The saved fuzz corpus as a regression suite, plus a short random smoke run.

Every input under ``tests/corpus/<target>/`` (seeds from real traffic plus
what ``make fuzz`` found reaching new code) is replayed through its target in
``fuzz/targets.py``: the native codec against the pure reference (``wire``)
and ``Connection.receive_datagram`` on fresh connections (``receive``). Then a
few hundred seeded random mutations of corpus inputs run through each target,
so the targets themselves stay exercised without atheris installed.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))

import targets  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


def _inputs(name: str) -> list[Path]:
    return sorted(p for p in (CORPUS / name).iterdir() if p.is_file())


@pytest.mark.parametrize("name", ["wire", "receive"])
def test_corpus_is_present(name: str) -> None:
    assert len(_inputs(name)) >= 20


@pytest.mark.parametrize("name", ["wire", "receive"])
def test_corpus_replays_cleanly(name: str) -> None:
    target = targets.TARGETS[name]
    for path in _inputs(name):
        target(path.read_bytes())


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(4)
        if op == 0 and out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            del out[rng.randrange(len(out)) :]
        elif op == 2:
            pos = rng.randrange(len(out) + 1)
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif out:
            pos = rng.randrange(len(out))
            out[pos] = rng.choice([0, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFF])
    return bytes(out)


@pytest.mark.parametrize(("name", "count"), [("wire", 3000), ("receive", 300)])
def test_random_mutations_break_no_invariant(name: str, count: int) -> None:
    rng = random.Random(20240909)
    seeds = [p.read_bytes() for p in _inputs(name)]
    target = targets.TARGETS[name]
    for _ in range(count):
        target(_mutate(rng.choice(seeds), rng))


def test_targets_detect_a_broken_invariant() -> None:
    """The harness can fail: a datagram that raises out of receive_datagram is
    reported as a FuzzFailure (simulated with a target-side patch)."""
    # an input for a fresh server: the only receive_datagram call is the target's
    data = next(b for p in _inputs("receive") if (b := p.read_bytes())[0] & 2)
    original = targets.Connection.receive_datagram

    def broken(self, payload, addr, now):  # type: ignore[no-untyped-def]
        raise KeyError("boom")

    targets.Connection.receive_datagram = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(targets.FuzzFailure):
            targets.receive_one(data)
    finally:
        targets.Connection.receive_datagram = original  # type: ignore[method-assign]
