"""``transport bench --path emulated`` without root: the clear error, the
``--compare`` parsing and the table (the root-only run is in test_emulate.py)."""

from __future__ import annotations

import pytest

import transport.emulate
from transport.cli import main
from transport.cli.bench_emulated import EXIT_UNSUPPORTED, peer_kinds, table_lines


def test_unsupported_emulator_exits_2_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(transport.emulate, "is_supported",
                        lambda: (False, "the kernel-path emulator needs root (network "
                                        "namespaces, TUN)"))
    status = main(["bench", "--path", "emulated", "--rate", "50mbit", "--delay", "25ms",
                   "--loss", "2%", "--compare", "tcp-cubic,tcp-bbr"])
    err = capsys.readouterr().err
    assert status == EXIT_UNSUPPORTED
    assert "needs root" in err and "--path emulated" in err


def test_missing_tun_is_reported(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(transport.emulate, "is_supported",
                        lambda: (False, "/dev/net/tun is missing"))
    assert main(["bench", "--path", "emulated", "--json"]) == EXIT_UNSUPPORTED
    assert "/dev/net/tun is missing" in capsys.readouterr().err


def test_too_short_duration_is_refused(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(transport.emulate, "is_supported", lambda: (True, ""))
    assert main(["bench", "--path", "emulated", "--duration", "1.5"]) == EXIT_UNSUPPORTED
    assert "--duration > 2" in capsys.readouterr().err


def test_compare_list_keeps_kernel_tcp_and_skips_the_rest() -> None:
    kinds, skipped = peer_kinds("tcp-cubic, tcp-bbr,aioquic,tcp-cubic,,")
    assert kinds == ["tcp-cubic", "tcp-bbr"]
    assert set(skipped) == {"aioquic"}
    default, _ = peer_kinds("tcp")
    assert len(default) == 1 and default[0].startswith("tcp-")


def test_table_has_one_row_per_flow_with_ratios() -> None:
    output = {
        "path": {"rate_mbps": 50.0, "one_way_delay_ms": 25.0, "loss": 0.02,
                 "loss_model": "bernoulli"},
        "duration_s": 10.0, "cc": "default", "goodput_mbps": 46.0, "relay_cpu_pct": 18.0,
        "compare": {"tcp-cubic": {"goodput_mbps": 1.84, "goodput_ratio": 25.0,
                                  "relay_cpu_pct": 2.0},
                    "aioquic": {"skipped": "not available"}},
    }
    lines = table_lines(output)
    assert "50 Mbit/s, 50 ms RTT, loss 2 %" in lines[0]
    assert lines[2].split()[:3] == ["ours", "(default)", "46.00"]
    assert lines[3].split()[:3] == ["tcp-cubic", "1.84", "25.00x"]
    assert lines[4].startswith("aioquic") and "skipped" in lines[4]
