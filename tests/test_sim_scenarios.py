"""Scenarios, topologies, workloads, sweeps, exports and plots of transport.sim."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from transport.cli import main
from transport.errors import ConfigurationError
from transport.sim.loss import Bernoulli, GilbertElliott
from transport.sim.results import jain_fairness
from transport.sim.scenarios import (
    BUILTIN_SCENARIOS,
    PathSpec,
    Scenario,
    TopologySpec,
    WorkloadSpec,
    load_scenario,
)
from transport.sim.sweep import sweep
from transport.sim.workloads import run_scenario

FAST = dict(security="none")


def _p2p(rate: float = 20e6, rtt: float = 0.040, **path: object) -> PathSpec:
    return PathSpec(rate_bps=rate, rtt_s=rtt, **path)  # type: ignore[arg-type]


@pytest.mark.parametrize("loss, burst", [(0.02, 1.0), (0.05, 4.0)])
def test_gilbert_elliott_mean_loss_and_burst_within_5_percent(loss: float, burst: float) -> None:
    model = Bernoulli(loss) if burst == 1.0 else GilbertElliott.from_mean(loss, burst)
    lost = model.decider(random.Random(11))
    draws = np.fromiter((lost() for _ in range(400_000)), dtype=bool)
    assert draws.mean() == pytest.approx(loss, rel=0.05)
    edges = np.diff(np.concatenate(([0], draws.astype(np.int8), [0])))
    bursts = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    expected_burst = 1 / (1 - loss) if burst == 1.0 else burst  # Bernoulli runs are geometric
    assert bursts.mean() == pytest.approx(expected_burst, rel=0.05)


def test_bulk_fills_a_clean_path_and_is_reproducible() -> None:
    sc = Scenario("t", path=_p2p(), duration_s=3.0, **FAST)  # type: ignore[arg-type]
    a = run_scenario(sc, seed=5)
    b = run_scenario(sc, seed=5)
    assert 0.85 * 20e6 < a.goodput_bps <= 20e6
    assert a.goodput_bps == b.goodput_bps and a.retransmissions == b.retransmissions
    ts = a.timeseries
    assert ts.t_s.size >= 25 and ts.cwnd_bytes.shape == (1, ts.t_s.size)
    assert np.all(np.diff(ts.delivered_bytes[0]) >= 0)
    assert 0.039 < ts.srtt_s[0, -1] < 0.2


def test_codel_keeps_queueing_delay_below_droptail() -> None:
    base = Scenario("q", path=_p2p(queue_bdp=4.0), cc="cubic", duration_s=4.0, **FAST)  # type: ignore[arg-type]
    tail = run_scenario(base, seed=2)
    codel = run_scenario(replace(base, path=replace(base.path, aqm="codel")), seed=2)
    assert codel.queue_delay_mean_s < 0.5 * tail.queue_delay_mean_s
    assert codel.goodput_bps > 0.7 * 20e6


def test_capacity_schedule_changes_the_delivery_rate() -> None:
    path = _p2p(rate=20e6, rate_schedule=((2.0, 5e6),))
    run = run_scenario(Scenario("m", path=path, duration_s=4.0, **FAST), seed=1)  # type: ignore[arg-type]
    rate = run.timeseries.throughput_bps()[0]
    t = run.timeseries.t_s[1:]
    early = rate[(t > 1.0) & (t <= 2.0)].mean()
    d, ts = run.timeseries.delivered_bytes[0], run.timeseries.t_s
    i = int(np.searchsorted(ts, 3.55))  # after recovery from the drop
    late = (d[-1] - d[i]) * 8 / (ts[-1] - ts[i])
    assert early > 14e6 and 3.5e6 < late < 5.05e6


def test_dumbbell_shares_the_bottleneck_with_cross_traffic() -> None:
    topo = TopologySpec(kind="dumbbell", flows=3, cross_traffic_bps=5e6)
    sc = Scenario("d", path=_p2p(rate=30e6), topology=topo, duration_s=6.0, **FAST)  # type: ignore[arg-type]
    run = run_scenario(sc, seed=3)
    assert run.flow_goodput_bps.shape == (3,)
    assert run.fairness > 0.8
    assert 4e6 < run.cross_traffic_bps <= 5.1e6
    assert run.goodput_bps + run.cross_traffic_bps > 0.8 * 30e6


def test_jain_fairness_bounds() -> None:
    assert jain_fairness([1, 1, 1, 1]) == pytest.approx(1.0)
    assert jain_fairness([1, 0, 0, 0]) == pytest.approx(0.25)


def test_messages_report_per_message_latency() -> None:
    work = WorkloadSpec(kind="messages", message_bytes=500, rate_hz=100)
    sc = Scenario("msg", path=_p2p(rtt=0.060), workload=work, duration_s=3.0, **FAST)  # type: ignore[arg-type]
    run = run_scenario(sc, seed=1)
    assert 250 <= run.latencies_s.size <= 300
    assert 0.030 <= run.latency_p50_s < 0.045  # one-way delay + serialization
    assert run.latency_p99_s >= run.latency_p50_s


def test_request_response_latency_is_about_two_rtts_at_most() -> None:
    work = WorkloadSpec(kind="rpc", request_bytes=100, response_bytes=2000, concurrency=2)
    sc = Scenario("rpc", path=_p2p(rtt=0.050), workload=work, duration_s=3.0, **FAST)  # type: ignore[arg-type]
    run = run_scenario(sc, seed=1)
    assert run.latencies_s.size > 80
    assert 0.050 <= run.latency_p50_s < 0.060


def test_sweep_order_exports_and_loss_shape(tmp_path: Path) -> None:
    base = replace(BUILTIN_SCENARIOS["lossy-wifi"], duration_s=1.0, security="none")
    result = sweep(base, losses=[0.0, 0.05], ccs=["bbr", "cubic"], seeds=[1])
    assert [(r.cc, r.loss_rate) for r in result.runs] == [
        ("bbr", 0.0),
        ("bbr", 0.05),
        ("cubic", 0.0),
        ("cubic", 0.05),
    ]
    rows = list(csv.DictReader(io.StringIO(result.to_csv(tmp_path / "s.csv"))))
    assert len(rows) == 4 and rows[1]["loss_pct"] == "5.0"
    data = json.loads(result.to_json(arrays=True))
    assert len(data["runs"][0]["timeseries"]["t_s"]) >= 10
    assert (tmp_path / "s.csv").read_text().startswith("scenario,")


def test_toml_scenario_file(tmp_path: Path) -> None:
    trace = tmp_path / "loss.txt"
    trace.write_text("0 0 0 1 # one in four\n")
    file = tmp_path / "sat.toml"
    file.write_text(
        'cc = "cubic"\nduration_s = 2.0\nsecurity = "none"\n'
        '[path]\nrate_mbit = 10\nrtt_ms = 30\naqm = "codel"\n'
        '[path.loss]\nmodel = "trace"\nfile = "loss.txt"\n'
        "[[path.rate_schedule]]\nat_s = 1.0\nrate_mbit = 5\n"
        '[workload]\nkind = "bulk"\nsize_bytes = 100000\n'
    )
    sc = load_scenario(file)
    assert sc.name == "sat" and sc.cc == "cubic" and sc.path.loss_rate == 0.25
    assert sc.path.rate_schedule == ((1.0, 5e6),)
    bad = tmp_path / "bad.toml"
    bad.write_text("[path]\nrate_mbits = 10\n")
    with pytest.raises(ConfigurationError):
        load_scenario(bad)


def test_cli_sweep_json_csv_and_fec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = tmp_path / "r.csv"
    code = main(
        [
            "sim",
            "--scenario",
            "intercontinental",
            "--loss",
            "0,2",
            "--cc",
            "bbr,cubic",
            "--duration",
            "1s",
            "--json",
            "--csv",
            str(out_csv),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    runs = json.loads(captured.out)["runs"]
    assert [(r["cc"], r["loss_pct"]) for r in runs] == [
        ("bbr", 0.0),
        ("bbr", 2.0),
        ("cubic", 0.0),
        ("cubic", 2.0),
    ]
    assert "4/4" in captured.err
    assert out_csv.read_text().count("\n") == 5
    code = main(
        ["sim", "--scenario", "intercontinental", "--loss", "2%", "--fec", "off,adaptive",
         "--duration", "2s", "--json"]
    )
    assert code == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["fec"], r["loss_pct"]) for r in runs] == [("off", 2.0), ("adaptive", 2.0)]
    assert runs[0]["fec_recovered"] == 0 and runs[1]["fec_recovered"] > 0


def test_cli_plot_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "g.png"
    code = main(
        ["sim", "--loss", "0,5", "--rate", "10mbit", "--duration", "1s", "--plot", str(out)]
    )
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out2 = tmp_path / "m.png"
    assert (
        main(
            [
                "sim",
                "--scenario",
                "mobile",
                "--workload",
                "messages",
                "--duration",
                "1s",
                "--plot",
                str(out2),
            ]
        )
        == 0
    )
    assert out2.exists() and (tmp_path / "m-latency.png").exists()
