"""The command line: `transport sim` end to end, argument parsing."""

from __future__ import annotations

import json

import pytest

from transport.cli import main
from transport.cli.units import parse_fraction as _parse_fraction
from transport.cli.units import parse_rate as _parse_rate
from transport.cli.units import parse_seconds as _parse_seconds


def test_units_parse() -> None:
    assert _parse_rate("50mbit") == 50e6
    assert _parse_rate("1.5g") == 1.5e9
    assert _parse_seconds("25ms") == 0.025
    assert _parse_seconds("2s") == 2.0
    assert _parse_fraction("2%") == 0.02
    assert _parse_fraction("0.1") == 0.1


def test_sim_json_reports_a_verified_transfer(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sim", "--rate", "20mbit", "--rtt", "30ms", "--size", "1e6", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["intact"] is True
    assert report["bytes"] == 1_000_000
    assert 0 < report["goodput_mbps"] <= 20
    assert report["client"]["stream_bytes_sent"] >= 1_000_000


def test_sim_table_with_bursty_loss(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sim", "--loss", "2%", "--burst", "3", "--size", "300000", "--seed", "4"])
    out = capsys.readouterr().out
    assert code == 0
    assert "goodput_mbps" in out and "intact" in out


def test_unknown_command_exits_with_usage() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
