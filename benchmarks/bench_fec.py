"""FEC benchmark: Reed-Solomon encode/decode throughput per C kernel path and numpy.

How this works
--------------
For (k, m) in {(10, 1), (10, 4), (32, 8)} with 1400-byte symbols, each backend is
timed two ways, in GB/s of SOURCE data (k * 1400 bytes per block):

* ``kernel`` -- the block operation alone on preallocated buffers: the C call
  (``fec_encode``; ``fec_reconstruct`` with the cached decode matrix) or the
  numpy backend's ``encode_into`` / ``reconstruct``. ``decode_with_inversion``
  is the one-shot C ``fec_decode`` that also builds the decode matrix.
* ``python`` -- the public API with bytes in and out:
  ``ReedSolomon.encode(source) -> bytes`` and ``ReedSolomon.decode({index:
  symbol}) -> bytes``.

Decoding always loses the first m source symbols (e = m, the most work). C paths
are forced with ``transport.fec.native.set_path`` (avx2, ssse3, scalar, as far
as the CPU supports them). Each figure is the median of RUNS runs, each timing a
loop calibrated to ~TARGET_RUN_S. Time is this thread's CPU time
(``time.thread_time``), so a shared, busy machine descheduling the process does
not count; the wall-clock figure is reported next to it. Prints one JSON object with the targets of
issue 6 and whether they were met.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from transport.fec import ReedSolomon, native, numpy_backend, xor_parity

RUNS = 9
TARGET_RUN_S = 0.02
SYMBOL_SIZE = 1400
CODES = ((10, 1), (10, 4), (32, 8))


def _seconds_per_call(fn: Callable[[], Any]) -> tuple[float, float]:
    """Median (thread CPU seconds, wall seconds) per call over RUNS timed loops."""
    iterations = 1
    while True:  # calibrate
        start = time.thread_time()
        for _ in range(iterations):
            fn()
        elapsed = time.thread_time() - start
        if elapsed >= TARGET_RUN_S / 4 or iterations >= 1 << 20:
            break
        iterations *= 2
    iterations = max(1, int(iterations * TARGET_RUN_S / max(elapsed, 1e-9)))
    cpu, wall = [], []
    for _ in range(RUNS):
        start_cpu, start_wall = time.thread_time_ns(), time.perf_counter_ns()
        for _ in range(iterations):
            fn()
        cpu.append((time.thread_time_ns() - start_cpu) / iterations / 1e9)
        wall.append((time.perf_counter_ns() - start_wall) / iterations / 1e9)
    return statistics.median(cpu), statistics.median(wall)


def _gbps(source_bytes: int, fn: Callable[[], Any]) -> dict[str, float]:
    cpu_s, wall_s = _seconds_per_call(fn)
    return {
        "gb_per_s": round(source_bytes / cpu_s / 1e9, 3),
        "us_per_block": round(cpu_s * 1e6, 2),
        "wall_gb_per_s": round(source_bytes / wall_s / 1e9, 3),
    }


class Block:
    """One block's buffers, symbols and decode inputs (first m sources lost)."""

    def __init__(self, k: int, m: int) -> None:
        s = SYMBOL_SIZE
        self.k, self.m, self.s = k, m, s
        self.source = random.Random(k * 100 + m).randbytes(k * s)
        repair = ReedSolomon(k, m, backend="numpy").encode(self.source)
        symbols = {i: self.source[i * s : (i + 1) * s] for i in range(k)}
        symbols.update({k + j: repair[j * s : (j + 1) * s] for j in range(m)})
        self.received = {i: v for i, v in symbols.items() if i >= m}
        self.chosen = tuple(sorted(self.received))[:k]
        self.recv = b"".join(self.received[c] for c in self.chosen)
        self.repair = repair

    def check(self, rs: ReedSolomon) -> None:
        if rs.encode(self.source) != self.repair or rs.decode(self.received) != self.source:
            raise SystemExit(f"{rs} gives wrong results")


def _bench_c_path(b: Block) -> dict[str, Any]:
    ffi, lib = native.ffi, native.lib
    k, m, s = b.k, b.m, b.s
    out = bytearray(m * s)
    dec = bytearray(k * s)
    out_c, dec_c = ffi.from_buffer(out), ffi.from_buffer(dec)
    src_c, recv_c = ffi.from_buffer(b.source), ffi.from_buffer(b.recv)
    plan = native.plan(k, b.chosen)
    identity = bytes(range(k))
    rs = ReedSolomon(k, m, backend="native")
    b.check(rs)
    encode_kernel = _gbps(k * s, lambda: lib.fec_encode(k, m, s, src_c, k * s, out_c, m * s))
    decode_kernel = _gbps(
        k * s,
        lambda: lib.fec_reconstruct(
            k,
            s,
            plan.chosen,
            identity,
            recv_c,
            k,
            k * s,
            plan.matrix,
            plan.missing,
            plan.e,
            dec_c,
            k * s,
        ),
    )
    decode_inv = _gbps(
        k * s, lambda: lib.fec_decode(k, s, plan.chosen, recv_c, k * s, dec_c, k * s)
    )
    if bytes(dec) != b.source or bytes(out) != b.repair:
        raise SystemExit("C kernel gives wrong results")
    received = b.received
    source = b.source
    return {
        "encode_kernel": encode_kernel,
        "decode_kernel": decode_kernel,
        "decode_with_inversion_kernel": decode_inv,
        "encode_python": _gbps(k * s, lambda: rs.encode(source)),
        "decode_python": _gbps(k * s, lambda: rs.decode(received)),
    }


def _bench_numpy(b: Block) -> dict[str, Any]:
    k, m, s = b.k, b.m, b.s
    out = bytearray(m * s)
    dec = bytearray(k * s)
    plan = numpy_backend.plan(k, b.chosen)
    rs = ReedSolomon(k, m, backend="numpy")
    b.check(rs)
    source, recv, received = b.source, b.recv, b.received
    result = {
        "encode_kernel": _gbps(k * s, lambda: numpy_backend.encode_into(k, m, s, source, out)),
        "decode_kernel": _gbps(
            k * s, lambda: numpy_backend.reconstruct(plan, k, s, recv, None, k, dec)
        ),
        "encode_python": _gbps(k * s, lambda: rs.encode(source)),
        "decode_python": _gbps(k * s, lambda: rs.decode(received)),
    }
    if bytes(dec) != b.source:
        raise SystemExit("numpy backend gives wrong results")
    return result


def _bench_xor(b: Block) -> dict[str, Any]:
    rs = ReedSolomon(b.k, 1, backend="xor")
    b.check(rs)
    k, source, received = b.k, b.source, b.received
    return {
        "encode_python": _gbps(k * b.s, lambda: xor_parity(source, k)),
        "decode_python": _gbps(k * b.s, lambda: rs.decode(received)),
    }


def main() -> int:
    paths = list(native.PATHS[: native.PATHS.index(native.best_path()) + 1])[::-1]
    results: dict[str, Any] = {}
    previous = native.set_path(None)
    try:
        for k, m in CODES:
            block = Block(k, m)
            entry: dict[str, Any] = {}
            for name in paths:
                native.set_path(name)
                entry[f"c_{name}"] = _bench_c_path(block)
            native.set_path(None)
            entry["numpy"] = _bench_numpy(block)
            if m == 1:
                entry["pure_python_xor"] = _bench_xor(block)
            results[f"RS({k},{m})"] = entry
    finally:
        native.set_path(previous)
    best = results["RS(10,4)"][f"c_{native.best_path()}"]
    numpy_enc = results["RS(10,4)"]["numpy"]["encode_python"]["gb_per_s"]
    targets = {
        "c_rs_10_4_encode_kernel_ge_5_gbps": best["encode_kernel"]["gb_per_s"] >= 5.0,
        "c_rs_10_4_encode_python_ge_2_gbps": best["encode_python"]["gb_per_s"] >= 2.0,
        "numpy_rs_10_4_encode_ge_0_25_gbps": numpy_enc >= 0.25,
    }
    report = {
        "benchmark": "fec",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "best_c_path": native.best_path(),
        "symbol_size_bytes": SYMBOL_SIZE,
        "runs": RUNS,
        "unit": "GB/s of source data (k * symbol_size per block); decode loses the first m sources",
        "results": results,
        "targets": targets,
        "targets_met": all(targets.values()),
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
