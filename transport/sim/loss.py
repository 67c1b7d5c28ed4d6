"""Loss models for simulated links.

How this works
--------------
A loss model is an immutable *description* (safe to share between links and
between runs). A link turns it into a per-link decision function by calling
``model.decider(rng)`` once, with the link's own seeded ``random.Random``; the
returned zero-argument callable answers "is the next packet lost?" and holds
whatever state the model needs (the Gilbert-Elliott channel state, the trace
position). The link calls it once per packet, on arrival, before the queue.

Models here:

* :class:`NoLoss` -- never drops.
* :class:`Bernoulli` -- independent loss with probability ``p``.
* :class:`GilbertElliott` -- a two-state Markov chain (RFC 3611 §4.7.2 calls
  it the Gilbert-Elliott model; RFC 6534 §3 discusses burst metrics). Per
  packet the loss decision uses the *current* state (lost with probability
  ``loss_in_good`` or ``loss_in_bad``), then the chain moves (good → bad with
  ``p_good_to_bad``, bad → good with ``p_bad_to_good``). The stationary share
  of bad is ``p_gb / (p_gb + p_bg)``; with ``loss_in_good=0, loss_in_bad=1``
  (the "simple Gilbert" channel) bursts are geometric with mean
  ``1 / p_bad_to_good``. :meth:`GilbertElliott.from_mean` builds that channel
  from a mean loss rate and a mean burst length.
* :class:`TraceLoss` -- replays a recorded sequence of 0/1 decisions (1 =
  lost), once or cyclically; :meth:`TraceLoss.from_file` reads one from a text
  file.

Any object with a ``decider(rng) -> Callable[[], bool]`` method is a loss model
(:class:`LossModel` protocol), so scripted models can be added without touching
the link.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Protocol, runtime_checkable

from transport.errors import ConfigurationError

__all__ = [
    "NEVER_LOST",
    "Bernoulli",
    "GilbertElliott",
    "LossDecider",
    "LossModel",
    "NoLoss",
    "TraceLoss",
]

LossDecider = Callable[[], bool]
"""Per-link decision function: returns True when the next packet is lost."""


@runtime_checkable
class LossModel(Protocol):
    """Anything that can build a per-link loss decision function."""

    def decider(self, rng: random.Random) -> LossDecider:
        """Return a fresh stateful decider drawing randomness only from ``rng``."""
        ...


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"{name} must be within [0, 1], not {value!r}")


def _never() -> bool:
    return False


NEVER_LOST: LossDecider = _never
"""The decider every lossless model returns; links skip calling it."""


@dataclass(frozen=True, slots=True)
class NoLoss:
    """A loss model that never drops."""

    def decider(self, rng: random.Random) -> LossDecider:
        return _never

    @property
    def mean_loss_rate(self) -> float:
        return 0.0


@dataclass(frozen=True, slots=True)
class Bernoulli:
    """Independent loss: each packet is lost with probability ``p``."""

    p: float

    def __post_init__(self) -> None:
        _check_probability("p", self.p)

    def decider(self, rng: random.Random) -> LossDecider:
        p = self.p
        if p <= 0.0:
            return _never
        draw = rng.random

        def lost() -> bool:
            return draw() < p

        return lost

    @property
    def mean_loss_rate(self) -> float:
        return self.p


class _GilbertState:
    """Mutable channel state of one Gilbert-Elliott decider."""

    __slots__ = ("bad", "draw", "loss_bad", "loss_good", "p_bg", "p_gb")

    def __init__(self, model: GilbertElliott, rng: random.Random) -> None:
        self.draw = rng.random
        self.p_gb = model.p_good_to_bad
        self.p_bg = model.p_bad_to_good
        self.loss_good = model.loss_in_good
        self.loss_bad = model.loss_in_bad
        # Start in the stationary distribution so short runs are unbiased.
        self.bad = self.draw() < model.stationary_bad

    def __call__(self) -> bool:
        draw = self.draw
        if self.bad:
            lost = draw() < self.loss_bad
            if draw() < self.p_bg:
                self.bad = False
        else:
            lost = draw() < self.loss_good
            if draw() < self.p_gb:
                self.bad = True
        return lost


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Two-state bursty loss (see module docstring for the exact semantics).

    ``p_good_to_bad`` / ``p_bad_to_good`` are per-packet transition
    probabilities; ``loss_in_good`` / ``loss_in_bad`` the loss probability in
    each state.
    """

    p_good_to_bad: float
    p_bad_to_good: float
    loss_in_good: float = 0.0
    loss_in_bad: float = 1.0

    def __post_init__(self) -> None:
        _check_probability("p_good_to_bad", self.p_good_to_bad)
        _check_probability("p_bad_to_good", self.p_bad_to_good)
        _check_probability("loss_in_good", self.loss_in_good)
        _check_probability("loss_in_bad", self.loss_in_bad)
        if self.p_bad_to_good <= 0.0 and self.p_good_to_bad > 0.0:
            raise ConfigurationError("p_bad_to_good must be > 0 (the bad state would absorb)")

    @classmethod
    def from_mean(cls, loss_rate: float, burst_length: float) -> GilbertElliott:
        """Simple Gilbert channel with the given mean loss rate and mean burst length.

        ``loss_rate`` in [0, 1); ``burst_length`` (packets) >= 1. Losses happen
        exactly in the bad state, so bursts are geometric with that mean.
        """
        if not 0.0 <= loss_rate < 1.0:
            raise ConfigurationError(f"loss_rate must be within [0, 1), not {loss_rate!r}")
        if burst_length < 1.0:
            raise ConfigurationError(f"burst_length must be >= 1 packet, not {burst_length!r}")
        p_bg = 1.0 / burst_length
        p_gb = loss_rate * p_bg / (1.0 - loss_rate)
        if p_gb > 1.0:
            raise ConfigurationError(
                f"loss_rate {loss_rate} is unreachable with burst_length {burst_length}"
            )
        return cls(p_good_to_bad=p_gb, p_bad_to_good=p_bg, loss_in_good=0.0, loss_in_bad=1.0)

    @property
    def stationary_bad(self) -> float:
        """Long-run fraction of packets seen in the bad state."""
        total = self.p_good_to_bad + self.p_bad_to_good
        return 0.0 if total == 0.0 else self.p_good_to_bad / total

    @property
    def mean_loss_rate(self) -> float:
        """Long-run loss probability."""
        bad = self.stationary_bad
        return bad * self.loss_in_bad + (1.0 - bad) * self.loss_in_good

    @property
    def mean_bad_sojourn(self) -> float:
        """Mean number of consecutive packets spent in the bad state
        (= mean loss-burst length for the simple Gilbert channel)."""
        return float("inf") if self.p_bad_to_good == 0.0 else 1.0 / self.p_bad_to_good

    def decider(self, rng: random.Random) -> LossDecider:
        if self.mean_loss_rate == 0.0:
            return _never
        return _GilbertState(self, rng)


@dataclass(frozen=True, slots=True, init=False)
class TraceLoss:
    """Replay a fixed sequence of loss decisions (truthy = lost).

    With ``repeat=True`` the sequence wraps around; otherwise every packet after
    the end of the trace is delivered. Useful for scripted cases ("lose the
    first three packets": ``TraceLoss([1, 1, 1], repeat=False)``) and for
    replaying recorded loss traces.
    """

    pattern: tuple[bool, ...]
    repeat: bool

    def __init__(self, pattern: Iterable[int | bool], repeat: bool = True) -> None:
        object.__setattr__(self, "pattern", tuple(bool(x) for x in pattern))
        object.__setattr__(self, "repeat", repeat)

    @classmethod
    def from_file(cls, path: str | FilePath, repeat: bool = True) -> TraceLoss:
        """Read a trace: every ``0`` / ``1`` character counts, anything else
        (whitespace, commas, ``#`` comments to end of line) is ignored."""
        decisions: list[bool] = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                body = line.split("#", 1)[0]
                decisions.extend(ch == "1" for ch in body if ch in "01")
        if not decisions:
            raise ConfigurationError(f"loss trace {path!s} holds no 0/1 decisions")
        return cls(decisions, repeat=repeat)

    @property
    def mean_loss_rate(self) -> float:
        return sum(self.pattern) / len(self.pattern) if self.pattern else 0.0

    def decider(self, rng: random.Random) -> LossDecider:
        pattern = self.pattern
        length = len(pattern)
        if length == 0 or not any(pattern):
            return _never
        repeat = self.repeat
        position = [0]

        def lost() -> bool:
            index = position[0]
            if index >= length:
                if not repeat:
                    return False
                index = 0
            position[0] = index + 1
            return pattern[index]

        return lost
