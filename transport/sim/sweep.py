"""Parameter sweeps over a scenario: loss rates x congestion controllers x seeds.

How this works
--------------
:func:`sweep` takes a base :class:`~transport.sim.scenarios.Scenario` and
lists of values; it runs the cartesian product in a fixed order (cc, then
loss, then seed), each run an independent seeded
:func:`~transport.sim.workloads.run_scenario`, and returns a
:class:`~transport.sim.results.SweepResult`. Changing the loss rate keeps the
loss *shape*: a bursty Gilbert-Elliott path stays bursty with the same mean
burst length (:meth:`PathSpec.with_loss`). ``progress(done, total, result)``
is called after each run (the CLI prints a progress line on stderr).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from transport.errors import ConfigurationError
from transport.sim.results import ScenarioResult, SweepResult
from transport.sim.scenarios import Scenario
from transport.sim.workloads import run_scenario

__all__ = ["Progress", "sweep"]

Progress = Callable[[int, int, ScenarioResult], None]


def sweep(
    base: Scenario,
    *,
    losses: Sequence[float] | None = None,
    ccs: Sequence[str] | None = None,
    fecs: Sequence[str] | None = None,
    seeds: Sequence[int] = (1,),
    progress: Progress | None = None,
    sample_interval_s: float = 0.1,
) -> SweepResult:
    """Run ``base`` for every (cc, fec, loss, seed); ``None`` keeps the base value."""
    loss_values: list[float | None] = list(losses) if losses else [None]
    cc_values: list[str] = list(ccs) if ccs else [base.cc]
    fec_values: list[str] = list(fecs) if fecs else [base.fec]
    if not seeds:
        raise ConfigurationError("a sweep needs at least one seed")
    for p in loss_values:
        if p is not None and not 0.0 <= p < 1.0:
            raise ConfigurationError(f"loss rates must be within [0, 1), not {p!r}")
    plan: list[Scenario] = []
    for cc in cc_values:
        for fec in fec_values:
            for p in loss_values:
                path = base.path if p is None else base.path.with_loss(p)
                plan.append(replace(base, cc=cc, fec=fec, path=path))
    total = len(plan) * len(seeds)
    result = SweepResult()
    for scenario in plan:
        for seed in seeds:
            run = run_scenario(scenario, seed, sample_interval_s=sample_interval_s)
            result.runs.append(run)
            if progress is not None:
                progress(len(result.runs), total, run)
    return result
