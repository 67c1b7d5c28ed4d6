"""PNG plots of scenario results (matplotlib, the optional ``plot`` extra).

How this works
--------------
Each function draws one figure from :class:`~transport.sim.results` objects
with the non-interactive Agg backend and writes a PNG:

* :func:`plot_goodput_vs_loss` -- one line per congestion controller, mean
  goodput over seeds against the loss rate, with the ``(1 - p) x capacity``
  ceiling;
* :func:`plot_latency_cdf` -- per-run CDF of message/request latencies;
* :func:`plot_timeseries` -- cwnd and smoothed RTT over time per flow;
* :func:`plot_sweep` -- picks the natural picture for a sweep (goodput vs
  loss when several loss rates were run, otherwise time series plus latency
  CDF when there are latencies).

matplotlib is imported lazily; without it a :class:`ConfigurationError` says
how to install it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path as FilePath
from typing import Any

import numpy as np

from transport.errors import ConfigurationError
from transport.sim.results import ScenarioResult, SweepResult

__all__ = ["plot_goodput_vs_loss", "plot_latency_cdf", "plot_sweep", "plot_timeseries"]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError("plots need matplotlib: pip install 'transport[plot]'") from exc
    return plt


def plot_goodput_vs_loss(result: SweepResult, out: str | FilePath) -> None:
    plt = _pyplot()
    by_cc: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    capacity = None
    for run in result.runs:
        by_cc[run.cc][run.loss_rate * 100].append(run.goodput_bps / 1e6)
        capacity = run.capacity_bps or capacity
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cc, points in sorted(by_cc.items()):
        xs = sorted(points)
        ax.plot(xs, [float(np.mean(points[x])) for x in xs], marker="o", label=cc)
    if capacity:
        xs = sorted({run.loss_rate * 100 for run in result.runs})
        ax.plot(
            xs, [capacity / 1e6 * (1 - x / 100) for x in xs], "k--", lw=1, label="(1-p) x capacity"
        )
    ax.set_xlabel("loss (%)")
    ax.set_ylabel("goodput (Mbit/s)")
    ax.set_title(
        f"goodput vs loss: {result.runs[0].scenario}" if result.runs else "goodput vs loss"
    )
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_latency_cdf(runs: list[ScenarioResult], out: str | FilePath) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        lat = np.sort(run.latencies_s) * 1e3
        if lat.size:
            ax.step(
                lat,
                np.arange(1, lat.size + 1) / lat.size,
                where="post",
                label=f"{run.cc} loss={run.loss_rate * 100:g}% seed={run.seed}",
            )
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("CDF")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_timeseries(run: ScenarioResult, out: str | FilePath) -> None:
    plt = _pyplot()
    ts = run.timeseries
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for i in range(ts.cwnd_bytes.shape[0]):
        ax1.plot(ts.t_s, ts.cwnd_bytes[i] / 1e3, label=f"flow {i}")
        ax2.plot(ts.t_s, ts.srtt_s[i] * 1e3, label=f"flow {i}")
    ax1.set_ylabel("cwnd (kB)")
    ax2.set_ylabel("smoothed RTT (ms)")
    ax2.set_xlabel("time (s)")
    ax1.set_title(f"{run.scenario}: {run.cc}, loss {run.loss_rate * 100:g} %")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    if ts.cwnd_bytes.shape[0] > 1:
        ax1.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_sweep(result: SweepResult, out: str | FilePath) -> list[FilePath]:
    """Write the natural figure(s) for ``result``; returns the files written.
    Extra figures get a suffix (``out-latency.png``, ``out-timeseries.png``)."""
    if not result.runs:
        raise ConfigurationError("nothing to plot: the sweep has no runs")
    out = FilePath(out)
    written: list[FilePath] = []
    if len({r.loss_rate for r in result.runs}) > 1:
        plot_goodput_vs_loss(result, out)
        written.append(out)
    else:
        plot_timeseries(result.runs[0], out)
        written.append(out)
    if any(r.latencies_s.size for r in result.runs):
        extra = out.with_name(f"{out.stem}-latency{out.suffix}")
        plot_latency_cdf(result.runs, extra)
        written.append(extra)
    return written
