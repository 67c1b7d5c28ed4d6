"""Scenario descriptions: path, topology and workload, built-in or from TOML.

How this works
--------------
A :class:`Scenario` is a plain, immutable description of one experiment:

* :class:`PathSpec` -- the bottleneck path: rate, RTT, queue (bytes or BDP
  multiples), drop-tail or CoDel, loss model, jitter (with or without
  reordering), duplication, corruption and a capacity schedule. ``build()``
  turns it into a fresh :class:`~transport.sim.link.Path` (two
  :class:`~transport.sim.link.Link` objects), so the simulator and the
  real-time relay (:mod:`transport.relay`) share one model;
* :class:`TopologySpec` -- point-to-point, or a dumbbell with N flows sharing
  the bottleneck plus unresponsive cross traffic (:mod:`transport.sim.topology`);
* :class:`WorkloadSpec` -- bulk, messages at a rate, or request/response
  (:mod:`transport.sim.workloads`).

:data:`BUILTIN_SCENARIOS` names the stock cases; :func:`load_scenario` reads a
TOML file (``tomllib``) with ``[path]``, ``[topology]`` and ``[workload]``
tables (see ``docs/simulation.md``). Running one is
:func:`transport.sim.workloads.run_scenario`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path as FilePath
from typing import Any

import tomllib

from transport.errors import ConfigurationError
from transport.sim.jitter import ExponentialJitter, Jitter, NormalJitter, UniformJitter
from transport.sim.link import MIN_QUEUE_BYTES, Link, Path, bdp_bytes
from transport.sim.loss import Bernoulli, GilbertElliott, LossModel, NoLoss, TraceLoss

__all__ = [
    "BUILTIN_SCENARIOS",
    "PathSpec",
    "Scenario",
    "TopologySpec",
    "WorkloadSpec",
    "get_scenario",
    "jitter_from_dict",
    "load_scenario",
    "loss_from_dict",
    "loss_to_dict",
    "scenario_from_dict",
]


# --------------------------------------------------------------- loss/jitter --
def loss_from_dict(
    spec: float | Mapping[str, Any] | None, base_dir: FilePath | None = None
) -> LossModel | None:
    """``0.01`` -> Bernoulli; ``{model="gilbert-elliott", loss=0.02, burst=4}``;
    ``{model="gilbert-elliott", p_good_to_bad=.., p_bad_to_good=..}``;
    ``{model="trace", file="loss.txt", repeat=true}``; ``{model="bernoulli", p=..}``."""
    if spec is None:
        return None
    if isinstance(spec, (int, float)):
        return Bernoulli(float(spec)) if spec > 0 else None
    model = str(spec.get("model", "bernoulli")).lower().replace("_", "-")
    if model == "none":
        return None
    if model == "bernoulli":
        return Bernoulli(float(spec.get("p", spec.get("loss", 0.0))))
    if model in ("gilbert-elliott", "ge", "gilbert"):
        if "p_good_to_bad" in spec:
            return GilbertElliott(
                float(spec["p_good_to_bad"]),
                float(spec["p_bad_to_good"]),
                float(spec.get("loss_in_good", 0.0)),
                float(spec.get("loss_in_bad", 1.0)),
            )
        return GilbertElliott.from_mean(float(spec["loss"]), float(spec.get("burst", 1.0)))
    if model == "trace":
        file = FilePath(str(spec["file"]))
        if base_dir is not None and not file.is_absolute():
            file = base_dir / file
        return TraceLoss.from_file(file, repeat=bool(spec.get("repeat", True)))
    raise ConfigurationError(f"unknown loss model {model!r}")


def loss_to_dict(loss: LossModel | None) -> dict[str, Any]:
    if loss is None or isinstance(loss, NoLoss):
        return {"model": "none"}
    if isinstance(loss, Bernoulli):
        return {"model": "bernoulli", "p": loss.p}
    if isinstance(loss, GilbertElliott):
        return {
            "model": "gilbert-elliott",
            "p_good_to_bad": loss.p_good_to_bad,
            "p_bad_to_good": loss.p_bad_to_good,
            "loss_in_good": loss.loss_in_good,
            "loss_in_bad": loss.loss_in_bad,
        }
    if isinstance(loss, TraceLoss):
        return {"model": "trace", "length": len(loss.pattern), "mean": loss.mean_loss_rate}
    return {"model": type(loss).__name__}


def mean_loss_rate(loss: LossModel | None) -> float:
    return float(getattr(loss, "mean_loss_rate", 0.0)) if loss is not None else 0.0


def jitter_from_dict(spec: Mapping[str, Any] | None) -> Jitter | None:
    """``{dist="uniform", high_ms=5}``, ``{dist="exponential", mean_ms=2, max_ms=20}``,
    ``{dist="normal", mean_ms=3, std_ms=1}``."""
    if not spec:
        return None
    dist = str(spec.get("dist", "uniform")).lower()
    ms = 1e-3

    def opt(key: str) -> float | None:
        return None if key not in spec else float(spec[key]) * ms

    if dist == "uniform":
        return UniformJitter(float(spec["high_ms"]) * ms, float(spec.get("low_ms", 0.0)) * ms)
    if dist == "exponential":
        return ExponentialJitter(float(spec["mean_ms"]) * ms, opt("max_ms"))
    if dist == "normal":
        return NormalJitter(
            float(spec["std_ms"]) * ms, float(spec.get("mean_ms", 0.0)) * ms, opt("max_ms")
        )
    raise ConfigurationError(f"unknown jitter distribution {dist!r}")


# -------------------------------------------------------------------- specs --
@dataclass(frozen=True)
class PathSpec:
    """One bottleneck path, both directions (see module docstring).

    ``queue_bytes`` wins over ``queue_bdp``. ``loss_both_ways=False`` keeps
    the return (ACK) direction lossless. ``rate_schedule`` is a sequence of
    ``(at_s, rate_bps)`` capacity changes applied to both directions.
    """

    rate_bps: float | None = 50e6
    rtt_s: float = 0.050
    queue_bdp: float = 1.0
    queue_bytes: int | None = None
    aqm: str = "droptail"
    loss: LossModel | None = None
    loss_both_ways: bool = True
    jitter: Jitter | None = None
    reorder: bool = False
    duplicate_p: float = 0.0
    corrupt_p: float = 0.0
    rate_schedule: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.rate_bps is not None and not self.rate_bps > 0:
            raise ConfigurationError("rate_bps must be > 0 or None")
        if not self.rtt_s >= 0:
            raise ConfigurationError("rtt_s must be >= 0")
        if self.aqm not in ("droptail", "codel"):
            raise ConfigurationError(f"aqm must be 'droptail' or 'codel', not {self.aqm!r}")
        for at_s, rate in self.rate_schedule:
            if not at_s >= 0 or not rate > 0:
                raise ConfigurationError("rate_schedule entries need at_s >= 0 and rate_bps > 0")

    @property
    def loss_rate(self) -> float:
        return mean_loss_rate(self.loss)

    def resolved_queue_bytes(self) -> int | None:
        if self.queue_bytes is not None:
            return self.queue_bytes
        if self.rate_bps is None:
            return None
        return max(round(self.queue_bdp * bdp_bytes(self.rate_bps, self.rtt_s)), MIN_QUEUE_BYTES)

    def make_link(
        self, loss: LossModel | None, delay_s: float | None = None, name: str | None = None
    ) -> Link:
        return Link(
            rate_bps=self.rate_bps,
            delay_s=self.rtt_s / 2.0 if delay_s is None else delay_s,
            queue_bytes=self.resolved_queue_bytes(),
            loss=loss,
            jitter=self.jitter,
            reorder=self.reorder,
            duplicate_p=self.duplicate_p,
            corrupt_p=self.corrupt_p,
            name=name,
            aqm=self.aqm,
        )

    def build(self, name: str | None = None, delay_s: float | None = None) -> Path:
        """Fresh forward/backward links for this spec (``delay_s`` overrides
        the one-way delay, e.g. when access links add the rest of the RTT)."""
        fwd = None if name is None else f"{name}:fwd"
        bwd = None if name is None else f"{name}:bwd"
        return Path(
            forward=self.make_link(self.loss, delay_s, fwd),
            backward=self.make_link(self.loss if self.loss_both_ways else None, delay_s, bwd),
        )

    def with_loss(self, loss_rate: float) -> PathSpec:
        """Same path with a different mean loss rate; a Gilbert-Elliott model
        keeps its mean burst length (so sweeps of a bursty path stay bursty)."""
        if loss_rate <= 0:
            return replace(self, loss=None)
        if isinstance(self.loss, GilbertElliott) and self.loss.loss_in_good == 0.0:
            burst = self.loss.mean_bad_sojourn
            return replace(self, loss=GilbertElliott.from_mean(loss_rate, burst))
        return replace(self, loss=Bernoulli(loss_rate))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate_bps": self.rate_bps,
            "rtt_s": self.rtt_s,
            "queue_bytes": self.resolved_queue_bytes(),
            "aqm": self.aqm,
            "loss": loss_to_dict(self.loss),
            "loss_both_ways": self.loss_both_ways,
            "jitter": None if self.jitter is None else repr(self.jitter),
            "reorder": self.reorder,
            "duplicate_p": self.duplicate_p,
            "corrupt_p": self.corrupt_p,
            "rate_schedule": [list(x) for x in self.rate_schedule],
        }


@dataclass(frozen=True)
class TopologySpec:
    """``kind="p2p"`` (one flow) or ``"dumbbell"``: ``flows`` client/server
    pairs share the bottleneck; flow i starts at ``i * start_interval_s`` and
    its RTT is the path RTT plus ``i * rtt_step_s``. Cross traffic is an
    unresponsive UDP stream of ``cross_traffic_bps`` over the same bottleneck,
    on for ``cross_on_s`` then off for ``cross_off_s`` (``cross_off_s=0``:
    constant)."""

    kind: str = "p2p"
    flows: int = 1
    start_interval_s: float = 0.0
    rtt_step_s: float = 0.0
    cross_traffic_bps: float = 0.0
    cross_on_s: float = 1.0
    cross_off_s: float = 0.0
    cross_packet_bytes: int = 1200

    def __post_init__(self) -> None:
        if self.kind not in ("p2p", "dumbbell"):
            raise ConfigurationError(
                f"topology kind must be 'p2p' or 'dumbbell', not {self.kind!r}"
            )
        if self.flows < 1 or (self.kind == "p2p" and self.flows != 1):
            raise ConfigurationError("p2p has exactly one flow; a dumbbell needs flows >= 1")
        if self.cross_traffic_bps < 0 or self.cross_on_s <= 0 or self.cross_off_s < 0:
            raise ConfigurationError("cross traffic needs rate >= 0, on > 0, off >= 0")
        if self.cross_traffic_bps and self.kind != "dumbbell":
            raise ConfigurationError("cross traffic needs the dumbbell topology")


@dataclass(frozen=True)
class WorkloadSpec:
    """``bulk``: send ``size_bytes`` (None = as much as possible until the
    scenario's duration); ``messages``: ``message_bytes`` at ``rate_hz`` on one
    stream, per-message latency; ``rpc``: closed-loop request/response on a
    new stream each, ``concurrency`` outstanding."""

    kind: str = "bulk"
    size_bytes: int | None = None
    message_bytes: int = 1000
    rate_hz: float = 100.0
    request_bytes: int = 200
    response_bytes: int = 10_000
    concurrency: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("bulk", "messages", "rpc"):
            raise ConfigurationError(f"workload must be bulk, messages or rpc, not {self.kind!r}")
        if self.size_bytes is not None and self.size_bytes < 0:
            raise ConfigurationError("size_bytes must be >= 0")
        if self.message_bytes < 1 or not self.rate_hz > 0:
            raise ConfigurationError("messages need message_bytes >= 1 and rate_hz > 0")
        if self.request_bytes < 1 or self.response_bytes < 1 or self.concurrency < 1:
            raise ConfigurationError("rpc needs request/response bytes >= 1 and concurrency >= 1")


@dataclass(frozen=True)
class Scenario:
    """One experiment (see module docstring). ``cc`` names a controller in
    :data:`transport.congestion.controllers`; ``duration_s`` is virtual time."""

    name: str
    description: str = ""
    path: PathSpec = field(default_factory=PathSpec)
    topology: TopologySpec = field(default_factory=TopologySpec)
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    cc: str = "bbr"
    duration_s: float = 10.0
    security: str = "noise"
    #: forward error correction of the senders: "off", "fixed" or "adaptive"
    fec: str = "off"

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ConfigurationError("duration_s must be > 0")
        if self.fec not in ("off", "fixed", "adaptive"):
            raise ConfigurationError(f"fec must be off, fixed or adaptive, not {self.fec!r}")
        from transport.congestion import controllers

        if self.cc not in controllers:
            raise ConfigurationError(
                f"unknown congestion controller {self.cc!r}; know {sorted(controllers)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "cc": self.cc,
            "duration_s": self.duration_s,
            "security": self.security,
            "fec": self.fec,
            "path": self.path.to_dict(),
            "topology": vars(self.topology).copy(),
            "workload": vars(self.workload).copy(),
        }


_MS = 1e-3
BUILTIN_SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "clean-lan",
            "1 Gbit/s, 1 ms RTT, no loss, 40 MB bulk",
            PathSpec(rate_bps=1e9, rtt_s=1 * _MS),
            workload=WorkloadSpec(size_bytes=40_000_000),
            duration_s=5.0,
        ),
        Scenario(
            "lossy-wifi",
            "30 Mbit/s, 20 ms RTT, 2 % bursty loss (Gilbert-Elliott, mean burst 3), 2 ms jitter",
            PathSpec(
                rate_bps=30e6,
                rtt_s=20 * _MS,
                loss=GilbertElliott.from_mean(0.02, 3.0),
                jitter=UniformJitter(2 * _MS),
            ),
            duration_s=10.0,
        ),
        Scenario(
            "mobile",
            "LTE-like: 60 ms RTT, capacity 20 -> 5 -> 40 -> 10 Mbit/s every 2.5 s, 0.5 % loss",
            PathSpec(
                rate_bps=20e6,
                rtt_s=60 * _MS,
                queue_bdp=2.0,
                loss=Bernoulli(0.005),
                jitter=ExponentialJitter(3 * _MS, 30 * _MS),
                rate_schedule=((2.5, 5e6), (5.0, 40e6), (7.5, 10e6)),
            ),
            duration_s=10.0,
        ),
        Scenario(
            "satellite",
            "GEO satellite: 20 Mbit/s, 600 ms RTT, 0.1 % loss",
            PathSpec(rate_bps=20e6, rtt_s=600 * _MS, loss=Bernoulli(0.001)),
            duration_s=20.0,
        ),
        Scenario(
            "intercontinental",
            "100 Mbit/s, 150 ms RTT, 1 % random loss",
            PathSpec(rate_bps=100e6, rtt_s=150 * _MS, loss=Bernoulli(0.01)),
            duration_s=10.0,
        ),
        Scenario(
            "congested-dumbbell",
            "4 flows (staggered 1 s, RTT 40..100 ms) + 10 Mbit/s on/off cross traffic on 50 Mbit/s",
            PathSpec(rate_bps=50e6, rtt_s=40 * _MS),
            TopologySpec(
                kind="dumbbell",
                flows=4,
                start_interval_s=1.0,
                rtt_step_s=20 * _MS,
                cross_traffic_bps=10e6,
                cross_on_s=1.0,
                cross_off_s=1.0,
            ),
            duration_s=10.0,
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    try:
        return BUILTIN_SCENARIOS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown scenario {name!r}; built-in: {', '.join(BUILTIN_SCENARIOS)}"
        ) from None


def _path_from_dict(d: Mapping[str, Any], base_dir: FilePath | None) -> PathSpec:
    known = {
        "rate_mbit",
        "rate_bps",
        "rtt_ms",
        "rtt_s",
        "queue_bdp",
        "queue_bytes",
        "aqm",
        "loss",
        "loss_both_ways",
        "jitter",
        "reorder",
        "duplicate",
        "corrupt",
        "rate_schedule",
    }
    unknown = set(d) - known
    if unknown:
        raise ConfigurationError(f"unknown [path] keys: {sorted(unknown)}")
    rate: float | None = None
    if "rate_mbit" in d:
        rate = float(d["rate_mbit"]) * 1e6
    elif "rate_bps" in d:
        rate = float(d["rate_bps"])
    else:
        rate = PathSpec.rate_bps
    rtt = float(d["rtt_ms"]) * _MS if "rtt_ms" in d else float(d.get("rtt_s", PathSpec.rtt_s))
    schedule = tuple(
        (float(item["at_s"]), float(item["rate_mbit"]) * 1e6) for item in d.get("rate_schedule", ())
    )
    return PathSpec(
        rate_bps=rate,
        rtt_s=rtt,
        queue_bdp=float(d.get("queue_bdp", 1.0)),
        queue_bytes=None if "queue_bytes" not in d else int(d["queue_bytes"]),
        aqm=str(d.get("aqm", "droptail")),
        loss=loss_from_dict(d.get("loss"), base_dir),
        loss_both_ways=bool(d.get("loss_both_ways", True)),
        jitter=jitter_from_dict(d.get("jitter")),
        reorder=bool(d.get("reorder", False)),
        duplicate_p=float(d.get("duplicate", 0.0)),
        corrupt_p=float(d.get("corrupt", 0.0)),
        rate_schedule=schedule,
    )


def scenario_from_dict(
    d: Mapping[str, Any], base_dir: FilePath | None = None, default_name: str = "custom"
) -> Scenario:
    """Build a scenario from parsed TOML (see ``docs/simulation.md``)."""
    try:
        topo = dict(d.get("topology", {}))
        if "cross_traffic_mbit" in topo:
            topo["cross_traffic_bps"] = float(topo.pop("cross_traffic_mbit")) * 1e6
        work = dict(d.get("workload", {}))
        return Scenario(
            name=str(d.get("name", default_name)),
            description=str(d.get("description", "")),
            path=_path_from_dict(d.get("path", {}), base_dir),
            topology=TopologySpec(**topo),
            workload=WorkloadSpec(**work),
            cc=str(d.get("cc", "bbr")),
            duration_s=float(d.get("duration_s", 10.0)),
            security=str(d.get("security", "noise")),
        )
    except (TypeError, KeyError, ValueError) as exc:
        raise ConfigurationError(f"bad scenario description: {exc}") from exc


def load_scenario(path: str | FilePath) -> Scenario:
    """Read a TOML scenario file."""
    file = FilePath(path)
    try:
        with open(file, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read scenario file {file}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"scenario file {file} is not valid TOML: {exc}") from exc
    return scenario_from_dict(data, file.parent, default_name=file.stem)
