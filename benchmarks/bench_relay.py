"""CPU cost of the kernel-path emulator's relay at 100 Mbit/s (root, Linux).

How this works
--------------
The issue's bound: the emulator's relay carries 100 Mbit/s with less than
40 % of one core. For each case an :class:`transport.emulate.EmulatedPath`
is built and traffic crosses it A -> B while the relay's CPU time (user +
system, ``/proc/<pid>/stat``) is read at the start and the end of a steady
window; the figure is CPU seconds per second of wall time, in % of a core.

* ``udp``: a paced UDP sender in namespace A offers exactly ``--rate``
  (100 Mbit/s of 1,500-byte IP packets, a burst every millisecond) to a
  counting sink in B; the path's own rate is set to twice that so the relay
  never drops, and its delay to 25 ms each way, so the delay line holds a
  full BDP. The sink's packet count checks that the relay kept up.
* ``tcp-bbr``: kernel TCP BBR through a 100 Mbit/s, 50 ms RTT path (data one
  way, ACKs the other), the relay's real workload.

Each case runs ``--runs`` times (median). Machine load (``os.getloadavg``)
is recorded, since other processes share the cores.

    sudo .venv/bin/python benchmarks/bench_relay.py --out benchmarks/results/emulated_relay.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from transport.emulate import ADDR_B, EmulatedPath, is_supported
from transport.emulate.flows import relay_cpu_s, run_flows

BOUND_PCT = 40.0

SINK = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
s.bind(("0.0.0.0", 7300))
s.settimeout(2.0)
print("up", flush=True)
n = 0
while True:
    try:
        s.recv(65535)
    except socket.timeout:
        if n:
            break
        continue
    n += 1
print(json.dumps({"received": n}), flush=True)
"""

BLAST = r"""
import json, socket, sys, time
rate, seconds, host = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
payload = bytes(1472)                      # 1500-byte IP packets
per_s = rate / (1500 * 8)
t0 = time.monotonic()
sent = 0
while True:
    now = time.monotonic() - t0
    if now >= seconds:
        break
    due = int(now * per_s) + 1
    while sent < due:
        try:
            s.sendto(payload, (host, 7300))
        except BlockingIOError:
            break
        sent += 1
    time.sleep(0.001)
print(json.dumps({"sent": sent, "seconds": time.monotonic() - t0}), flush=True)
"""


def run_udp(rate_bps: float, seconds: float, seed: int) -> dict[str, Any]:
    with EmulatedPath(rate_bps=2 * rate_bps, delay_s=0.025, seed=seed) as path:
        sink = path.popen("b", [sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
        assert sink.stdout is not None
        if sink.stdout.readline().strip() != "up":
            raise RuntimeError("sink did not start")
        blast = path.popen("a", [sys.executable, "-c", BLAST, str(rate_bps), str(seconds),
                                 ADDR_B], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # skip the start-up second
        cpu0, t0 = relay_cpu_s(path.relay_pid), time.monotonic()
        time.sleep(seconds - 2.0)
        cpu1, t1 = relay_cpu_s(path.relay_pid), time.monotonic()
        sent = json.loads(blast.communicate(timeout=30)[0])
        got = json.loads(sink.communicate(timeout=30)[0].strip().splitlines()[-1])
    return {
        "relay_cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "offered_mbps": round(sent["sent"] * 1500 * 8 / sent["seconds"] / 1e6, 2),
        "delivered_fraction": round(got["received"] / max(sent["sent"], 1), 4),
    }


def run_tcp(rate_bps: float, seconds: float, seed: int) -> dict[str, Any]:
    with EmulatedPath(rate_bps=rate_bps, delay_s=0.025, seed=seed) as path:
        (report,) = run_flows(path, "tcp-bbr", seconds, port=7400 + seed)
    return {"relay_cpu_pct": report["relay_cpu_pct"],
            "goodput_mbps": round(report["goodput_bps"] / 1e6, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=100e6, help="bit/s (default 100e6)")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    ok, why = is_supported()
    if not ok:
        print(json.dumps({"benchmark": "emulated_relay", "skipped": why}))
        return 0
    load_before = os.getloadavg()
    cases: dict[str, Any] = {}
    for name, fn in (("udp", run_udp), ("tcp-bbr", run_tcp)):
        runs = [fn(args.rate, args.seconds, seed) for seed in range(1, args.runs + 1)]
        cpu = statistics.median(r["relay_cpu_pct"] for r in runs)
        cases[name] = {"relay_cpu_pct_median": cpu, "runs": runs}
        print(f"{name}: relay {cpu:.1f} % of a core", file=sys.stderr, flush=True)
    result = {
        "benchmark": "emulated_relay",
        "rate_bps": args.rate,
        "bound_pct_of_core": BOUND_PCT,
        "relay": "C (transport._relay)" if _native_relay() else "Python",
        "cases": cases,
        "meets_bound": all(c["relay_cpu_pct_median"] < BOUND_PCT for c in cases.values()),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


def _native_relay() -> bool:
    try:
        import transport._relay  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
