"""Smoke tests of `transport bench`, `transport send` and `transport recv`."""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from transport.cli.bench import parse_hostport, parse_size

PY = [sys.executable, "-m", "transport"]


def test_bench_json_with_tcp_comparison() -> None:
    run = subprocess.run(
        [*PY, "bench", "--duration", "1", "--json", "--compare", "tcp"],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    for key in ("goodput_mbps", "bytes", "seconds", "rtt_ms", "retransmitted_packets"):
        assert key in result
    assert result["security"] == "noise"
    assert result["bytes"] > 1_000_000 and result["goodput_mbps"] > 1
    assert set(result["cpu_seconds"]) == {"client", "server"}
    assert result["cpu_seconds"]["server"] > 0
    tcp = result["compare"]["tcp"]
    assert tcp["goodput_mbps"] > 0 and tcp["goodput_ratio"] > 0


def test_bench_compares_with_kcp_in_the_same_run() -> None:
    """The KCP peer (its C core through the ``kcp`` binding) moves the same
    bytes the server then reports back; the ratio is ours / KCP."""
    run = subprocess.run(
        [*PY, "bench", "--security", "none", "--size", "4M", "--json", "--compare", "kcp"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    kcp = json.loads(run.stdout)["compare"]["kcp"]
    assert kcp["bytes"] == 4_000_000, kcp  # "4M" is decimal
    assert kcp["goodput_mbps"] > 0 and kcp["goodput_ratio"] > 0


def test_bench_unknown_peer_is_skipped_with_a_note() -> None:
    run = subprocess.run(
        [*PY, "bench", "--security", "none", "--size", "2M", "--compare", "kcp-nope"],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "kcp-nope: skipped (unknown peer" in run.stdout


def test_send_and_recv_verify_sha256(tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(random.Random(3).randbytes(3_000_000))
    out_dir = tmp_path / "out"
    receiver = subprocess.Popen(
        [*PY, "recv", "--host", "127.0.0.1", "--port", "0", "--out", str(out_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert receiver.stdout is not None
        listening = receiver.stdout.readline()
        key_line = receiver.stdout.readline()
        port = listening.strip().rsplit(":", 1)[1]
        key = key_line.split(": ", 1)[1].strip()
        sent = subprocess.run(
            [*PY, "send", str(source), f"127.0.0.1:{port}", "--server-key", key],
            capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        verdict = json.loads(sent.stdout)
        expected = hashlib.sha256(source.read_bytes()).hexdigest()
        assert verdict["ok"] and verdict["sha256"] == expected
        assert receiver.wait(timeout=20) == 0
        assert (out_dir / "data.bin").read_bytes() == source.read_bytes()
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()


def test_send_without_key_fails_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "x"
    source.write_bytes(b"x")
    run = subprocess.run([*PY, "send", str(source), "127.0.0.1:9"], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 2 and "--server-key" in run.stderr


def test_size_and_address_parsers() -> None:
    assert parse_size("100M") == 100_000_000
    assert parse_size("64Ki") == 65536
    assert parse_size("4096") == 4096
    assert parse_hostport("[::1]:4433") == ("::1", 4433)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size("lots")


def test_bench_through_the_impairment_relay() -> None:
    run = subprocess.run(
        [*PY, "bench", "--loss", "2%", "--delay", "10ms", "--duration", "2", "--json",
         "--compare", "tcp"],
        capture_output=True, text=True, timeout=90,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["bytes"] > 100_000 and result["goodput_mbps"] > 0
    path = result["path"]
    assert path["loss"] == 0.02 and path["one_way_delay_ms"] == 10.0
    assert path["rate_mbps"] is None and path["loss_model"] == "bernoulli"
    forward = path["relay"]["forward"]
    assert forward["packets_dropped_loss"] > 0  # the transfer really went through it
    assert forward["packets_offered"] >= result["packets_sent"] - 5
    assert result["min_rtt_ms"] >= 19.0  # 2 x 10 ms one-way
    assert result["retransmitted_packets"] > 0
    assert "transport.emulate" in result["compare"]["tcp"]["skipped"]


def test_bench_fec_option_reaches_the_config() -> None:
    run = subprocess.run(
        [*PY, "bench", "--security", "none", "--size", "2M", "--fec", "fixed", "--json",
         "--rate", "200mbit", "--burst", "3", "--loss", "1%"],
        capture_output=True, text=True, timeout=90,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["fec"] == "fixed" and result["bytes"] == 2_000_000
    assert result["path"]["rate_mbps"] == 200.0
    assert result["path"]["loss_model"] == "gilbert-elliott" and result["path"]["burst"] == 3
    bad = subprocess.run([*PY, "bench", "--fec", "sometimes"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2 and "--fec" in bad.stderr
