"""Loopback transfer benchmark: this transport vs kernel TCP, aioquic and KCP (JSON).

How this works
--------------
Each case runs a server in a child process and the client in this one (the
same code as ``transport bench``), sending ``--duration`` seconds of data in
1400-byte datagrams; every case is run ``--runs`` times (>= 3) and the median
goodput and CPU seconds per GB of each side are reported. Cases: ours with
AES-GCM (``security="noise"``), ours with ``security="none"`` (both with
GSO/GRO and, with ``--no-offload-too``, without), kernel TCP with 64 KiB and
1400-byte writes, aioquic when installed (fixed size: its writer has no
backpressure) and KCP's C core through the ``kcp`` binding (unencrypted,
turbo, no congestion control). Ratios to each peer and the issue-7 targets
(2 Gbit/s encrypted, 3 Gbit/s none) are included.

    python benchmarks/bench_loopback.py [--duration 3] [--runs 3] [--cc cubic]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from typing import Any

from transport.cli import bench_peers
from transport.cli.bench import cpu_per_gb, generate_keys, run_loopback

TARGETS_MBPS = {"transport_noise": 2000.0, "transport_none": 3000.0}
#: Issue 7's same-run ratios for the encrypted case: >= 30x aioquic, above KCP.
TARGET_RATIOS = {"transport_noise/aioquic": 30.0, "transport_noise/kcp": 1.0}


def _median_case(kind: str, opts: dict[str, Any], runs: int) -> dict[str, Any]:
    results = [run_loopback(kind, opts) for _ in range(runs)]
    goodputs = [r["goodput_mbps"] for r in results]
    return {
        "goodput_mbps": round(statistics.median(goodputs), 1),
        "goodput_runs_mbps": goodputs,
        "cpu_s_per_gb_client": statistics.median(cpu_per_gb(r, "client") or 0 for r in results),
        "cpu_s_per_gb_server": statistics.median(cpu_per_gb(r, "server") or 0 for r in results),
        "retransmitted_packets": [r.get("retransmitted_packets") for r in results],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cc", default=None, help="congestion controller (default: Config's)")
    parser.add_argument("--no-offload-too", action="store_true",
                        help="also run ours without GSO/GRO")
    args = parser.parse_args()
    runs = max(3, args.runs)
    base = {"cc": args.cc, "streams": 1, "duration": args.duration, "size": None,
            "datagram_size": 1400, "gso": True, "gro": True}
    cases: dict[str, dict[str, Any]] = {}
    noise = dict(base, security="noise")
    generate_keys(noise)
    cases["transport_noise"] = _median_case("transport", noise, runs)
    cases["transport_none"] = _median_case("transport", dict(base, security="none"), runs)
    if args.no_offload_too:
        plain = dict(base, security="none", gso=False, gro=False)
        cases["transport_none_no_gso_gro"] = _median_case("transport", plain, runs)
    cases["tcp_64k_writes"] = _median_case("tcp", dict(base, tcp_write=65536), runs)
    cases["tcp_1400_writes"] = _median_case("tcp", dict(base, tcp_write=1400), runs)
    note = bench_peers.unavailable("aioquic")
    if note is None:
        cases["aioquic"] = _median_case("aioquic", dict(base, security="tls"), runs)
    else:
        cases["aioquic"] = {"skipped": note}
    note = bench_peers.unavailable("kcp")
    if note is None:
        cases["kcp"] = _median_case("kcp", dict(base, security="none"), runs)
    else:
        cases["kcp"] = {"skipped": note}
    ratios: dict[str, Any] = {}
    for ours in ("transport_noise", "transport_none"):
        for peer in ("tcp_64k_writes", "tcp_1400_writes", "aioquic", "kcp"):
            if "goodput_mbps" not in cases[peer]:
                continue
            mine, theirs = cases[ours], cases[peer]
            ratios[f"{ours}/{peer}"] = {
                "goodput": round(mine["goodput_mbps"] / theirs["goodput_mbps"], 3),
                "cpu_per_gb_client": round(
                    mine["cpu_s_per_gb_client"] / max(theirs["cpu_s_per_gb_client"], 1e-9), 2),
                "cpu_per_gb_server": round(
                    mine["cpu_s_per_gb_server"] / max(theirs["cpu_s_per_gb_server"], 1e-9), 2),
            }
    report = {
        "benchmark": "loopback",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "duration_s": args.duration,
        "runs": runs,
        "cc": args.cc or "default",
        "cases": cases,
        "ratios": ratios,
        "targets": {
            name: {"target_mbps": target, "measured_mbps": cases[name]["goodput_mbps"],
                   "met": cases[name]["goodput_mbps"] >= target}
            for name, target in TARGETS_MBPS.items()
        },
        "ratio_targets": {
            key: {"target": target, "measured": ratios[key]["goodput"],
                  "met": ratios[key]["goodput"] >= target}
            for key, target in TARGET_RATIOS.items() if key in ratios
        },
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
