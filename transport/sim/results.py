"""Results of scenario runs: dataclasses with numpy arrays, CSV/JSON export.

How this works
--------------
:class:`ScenarioResult` holds one run's scalar figures (goodput, latency
percentiles, retransmissions, queueing delay, Jain's fairness index) and its
arrays: per-flow goodput, per-message (or per-request) latencies and a
:class:`TimeSeries` of each flow's congestion window, RTT and delivered bytes
sampled on a simulator timer. :meth:`ScenarioResult.row` flattens the scalars
into one dict; :class:`SweepResult` is a list of runs with ``to_csv``,
``to_json`` and ``table`` (fixed-width text).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

__all__ = ["ScenarioResult", "SweepResult", "TimeSeries", "jain_fairness", "percentile"]

FloatArray = npt.NDArray[np.float64]


def jain_fairness(values: Sequence[float] | FloatArray) -> float:
    """Jain's index (sum x)^2 / (n * sum x^2): 1 = equal shares, 1/n = one flow takes all."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return 1.0
    denom = x.size * float(np.sum(x * x))
    return 1.0 if denom == 0.0 else float(np.sum(x)) ** 2 / denom


def percentile(values: FloatArray, q: float) -> float:
    """``q``-th percentile (0..100), NaN for an empty array."""
    return float(np.percentile(values, q)) if values.size else float("nan")


@dataclass
class TimeSeries:
    """Samples of ``Connection.get_stats()`` per flow: arrays are (flows, samples)."""

    t_s: FloatArray
    cwnd_bytes: FloatArray
    srtt_s: FloatArray
    latest_rtt_s: FloatArray
    delivered_bytes: FloatArray

    def throughput_bps(self) -> FloatArray:
        """Per-flow delivery rate between consecutive samples (flows, samples-1)."""
        if self.t_s.size < 2:
            return np.zeros((self.delivered_bytes.shape[0], 0))
        return np.diff(self.delivered_bytes, axis=1) * 8.0 / np.diff(self.t_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k).tolist()
            for k in ("t_s", "cwnd_bytes", "srtt_s", "latest_rtt_s", "delivered_bytes")
        }


@dataclass
class ScenarioResult:
    scenario: str
    cc: str
    loss_rate: float
    seed: int
    duration_s: float
    goodput_bps: float
    capacity_bps: float | None
    flow_goodput_bps: FloatArray
    fairness: float
    latencies_s: FloatArray
    retransmissions: int
    packets_sent: int
    packets_lost: int
    queue_delay_mean_s: float
    queue_delay_p95_s: float
    queue_drops: int
    loss_drops: int
    completed: bool
    events: int
    wall_s: float
    timeseries: TimeSeries
    cross_traffic_bps: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    fec: str = "off"
    #: packets the receivers rebuilt from repair symbols (reported to senders)
    fec_recovered: int = 0

    @property
    def latency_p50_s(self) -> float:
        return percentile(self.latencies_s, 50)

    @property
    def latency_p95_s(self) -> float:
        return percentile(self.latencies_s, 95)

    @property
    def latency_p99_s(self) -> float:
        return percentile(self.latencies_s, 99)

    @property
    def speed_factor(self) -> float:
        return self.duration_s / self.wall_s if self.wall_s > 0 else float("inf")

    def row(self) -> dict[str, Any]:
        """Scalar figures, one flat dict (the CSV / table row)."""

        def ms(x: float) -> float | None:
            return None if x != x else round(x * 1e3, 3)

        return {
            "scenario": self.scenario,
            "cc": self.cc,
            "fec": self.fec,
            "loss_pct": round(self.loss_rate * 100, 4),
            "seed": self.seed,
            "goodput_mbps": round(self.goodput_bps / 1e6, 3),
            "fraction_of_capacity": None
            if not self.capacity_bps
            else round(self.goodput_bps / (self.capacity_bps * (1 - self.loss_rate)), 4),
            "fairness": round(self.fairness, 4),
            "latency_p50_ms": ms(self.latency_p50_s),
            "latency_p95_ms": ms(self.latency_p95_s),
            "latency_p99_ms": ms(self.latency_p99_s),
            "retransmissions": self.retransmissions,
            "fec_recovered": self.fec_recovered,
            "packets_lost": self.packets_lost,
            "queue_delay_mean_ms": ms(self.queue_delay_mean_s),
            "queue_delay_p95_ms": ms(self.queue_delay_p95_s),
            "queue_drops": self.queue_drops,
            "completed": self.completed,
            "virtual_s": round(self.duration_s, 3),
            "wall_s": round(self.wall_s, 3),
            **{
                k: v
                for k, v in self.params.items()
                if k not in ("scenario", "cc", "loss_pct", "seed")
            },
        }

    def to_dict(self, arrays: bool = True) -> dict[str, Any]:
        out = self.row()
        out["flow_goodput_mbps"] = [round(x / 1e6, 4) for x in self.flow_goodput_bps.tolist()]
        if arrays:
            out["latencies_s"] = self.latencies_s.tolist()
            out["timeseries"] = self.timeseries.to_dict()
        return out


@dataclass
class SweepResult:
    runs: list[ScenarioResult] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.runs]

    def to_json(self, file: str | FilePath | TextIO | None = None, arrays: bool = False) -> str:
        text = json.dumps(
            {"runs": [r.to_dict(arrays) for r in self.runs]},
            indent=2,
            allow_nan=False,
            default=_nan_none,
        )
        if file is not None:
            _write(file, text + "\n")
        return text

    def to_csv(self, file: str | FilePath | TextIO | None = None) -> str:
        rows = self.rows()
        buf = io.StringIO()
        if rows:
            names: list[str] = []
            for row in rows:
                names.extend(k for k in row if k not in names)
            writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        text = buf.getvalue()
        if file is not None:
            _write(file, text)
        return text

    def table(self, columns: Sequence[str] | None = None) -> str:
        rows = self.rows()
        if not rows:
            return "(no runs)"
        cols = (
            list(columns)
            if columns
            else [
                "scenario",
                "cc",
                "loss_pct",
                "seed",
                "goodput_mbps",
                "fraction_of_capacity",
                "fairness",
                "latency_p50_ms",
                "latency_p99_ms",
                "retransmissions",
                "queue_delay_mean_ms",
                "wall_s",
            ]
        )
        cells = [[("-" if row.get(c) is None else str(row.get(c))) for c in cols] for row in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
        return "\n".join(lines)


def _nan_none(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _write(file: str | FilePath | TextIO, text: str) -> None:
    if isinstance(file, (str, FilePath)):
        with open(file, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        file.write(text)
