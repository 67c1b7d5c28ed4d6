"""Delay-jitter distributions for simulated links.

How this works
--------------
Like loss models, a jitter model is an immutable description; a link calls
``model.sampler(rng)`` once with its own seeded ``random.Random`` and gets a
zero-argument callable returning the *extra* one-way delay in seconds (always
>= 0) for the next packet. The link adds it to the propagation delay. Whether
jitter may reorder packets is a property of the link (``reorder=``), not of the
distribution: without reordering the link clamps delivery times so they never
go backwards, which turns jitter into delay variation the way a real FIFO path
behaves.

Distributions: :class:`UniformJitter` (between ``low_s`` and ``high_s``),
:class:`ExponentialJitter` (mean ``mean_s``, optionally capped),
:class:`NormalJitter` (mean ``mean_s``, standard deviation ``std_s``, truncated
at 0 and optionally capped). Anything with a ``sampler(rng)`` method fits the
:class:`Jitter` protocol.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from transport.errors import ConfigurationError

__all__ = [
    "ExponentialJitter",
    "Jitter",
    "JitterSampler",
    "NormalJitter",
    "UniformJitter",
]

JitterSampler = Callable[[], float]
"""Per-link sampler: returns the next packet's extra delay in seconds (>= 0)."""


@runtime_checkable
class Jitter(Protocol):
    """Anything that can build a per-link extra-delay sampler."""

    def sampler(self, rng: random.Random) -> JitterSampler:
        """Return a sampler drawing randomness only from ``rng``."""
        ...


def _check_non_negative(name: str, value: float) -> None:
    if not value >= 0.0:  # also rejects NaN
        raise ConfigurationError(f"{name} must be >= 0 seconds, not {value!r}")


@dataclass(frozen=True, slots=True)
class UniformJitter:
    """Extra delay uniform in ``[low_s, high_s]`` seconds."""

    high_s: float
    low_s: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative("low_s", self.low_s)
        if not self.high_s >= self.low_s:
            raise ConfigurationError("high_s must be >= low_s")

    def sampler(self, rng: random.Random) -> JitterSampler:
        low = self.low_s
        span = self.high_s - self.low_s
        draw = rng.random

        def sample() -> float:
            return low + span * draw()

        return sample


@dataclass(frozen=True, slots=True)
class ExponentialJitter:
    """Extra delay exponentially distributed with mean ``mean_s``, capped at ``max_s``."""

    mean_s: float
    max_s: float | None = None

    def __post_init__(self) -> None:
        if not self.mean_s > 0.0:
            raise ConfigurationError("mean_s must be > 0")
        if self.max_s is not None:
            _check_non_negative("max_s", self.max_s)

    def sampler(self, rng: random.Random) -> JitterSampler:
        rate = 1.0 / self.mean_s
        cap = float("inf") if self.max_s is None else self.max_s
        expo = rng.expovariate

        def sample() -> float:
            value = expo(rate)
            return value if value < cap else cap

        return sample


@dataclass(frozen=True, slots=True)
class NormalJitter:
    """Extra delay ~ Normal(``mean_s``, ``std_s``), truncated to ``[0, max_s]``.

    Truncation at 0 shifts the realised mean above ``mean_s`` when ``std_s`` is
    not small compared with ``mean_s``.
    """

    std_s: float
    mean_s: float = 0.0
    max_s: float | None = None

    def __post_init__(self) -> None:
        _check_non_negative("std_s", self.std_s)
        _check_non_negative("mean_s", self.mean_s)
        if self.max_s is not None:
            _check_non_negative("max_s", self.max_s)

    def sampler(self, rng: random.Random) -> JitterSampler:
        mean = self.mean_s
        std = self.std_s
        cap = float("inf") if self.max_s is None else self.max_s
        gauss = rng.gauss

        def sample() -> float:
            value = gauss(mean, std)
            if value < 0.0:
                return 0.0
            return value if value < cap else cap

        return sample
