"""Wire codec benchmark: native (C via cffi) vs pure Python, per 1400-byte data packet.

How this works
--------------
The packet is a short header (8-byte DCID, 2-byte packet number) + an ACK frame
with 2 ranges + one STREAM frame (OFF|LEN) carrying ~1350 bytes, 1400 bytes in
all. "encode" = encode_short_header + encode_frames into a reused bytearray;
"decode" = decode_header + FrameDecoder.decode (one C call). Each figure is the
median of RUNS runs, each timing many iterations with time.perf_counter_ns.
CRC32C throughput is measured on 64 KiB buffers.

"fast path": the same packet (short header, ACK with 2 ranges, STREAM OFF|LEN)
plus the 4-byte CRC32C trailer the wire format requires with security="none",
1400 bytes in all, sealed with seal_stream_packet (header + frames + CRC in one
call) and opened with open_short_packet (header checks, DCID, CRC check, frame
decode in one call). Its per-datagram ratio pure/native = (seal + open, pure) /
(seal + open, native). Prints one JSON object.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from transport.wire import codec_native as native
from transport.wire import codec_pure as pure
from transport.wire.constants import FrameType

RUNS = 7
PACKET_SIZE = 1400
DCID = bytes(range(8))


def _per_call_us(fn: Callable[[], Any], iterations: int) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            fn()
        samples.append((time.perf_counter_ns() - start) / iterations / 1000.0)
    return statistics.median(samples)


def _packet_specs(body: bytes) -> list[tuple[Any, ...]]:
    ack = (FrameType.ACK, 1000, 25, 0, 0, (990, 1000, 900, 980))
    stream = (FrameType.STREAM | 0x04 | 0x02, 4, 1 << 20, 0, 0, body)
    return [ack, stream]


def _body_size() -> int:
    out = bytearray(PACKET_SIZE)
    pos = pure.encode_short_header(out, 0, DCID, 123456, 2)
    probe = pure.encode_frames(_packet_specs(b"x" * 1350), out, pos, -1)
    return 1350 + (PACKET_SIZE - probe)


def _bench_codec(codec: ModuleType, iterations: int) -> dict[str, float]:
    body = bytes(i & 0xFF for i in range(_body_size()))
    specs = _packet_specs(body)
    out = bytearray(PACKET_SIZE)
    encode_short_header = codec.encode_short_header
    encode_frames = codec.encode_frames

    def encode() -> int:
        pos = encode_short_header(out, 0, DCID, 123456, 2)
        return int(encode_frames(specs, out, pos, PACKET_SIZE))

    size = encode()
    if size != PACKET_SIZE:
        raise RuntimeError(f"packet is {size} bytes, not {PACKET_SIZE}")
    wire = bytes(out)
    decoder = codec.FrameDecoder()
    decode_header = codec.decode_header
    frame_decode = decoder.decode

    def decode() -> int:
        header = decode_header(wire, 8)
        return int(frame_decode(wire, header.pn_offset + header.pn_length))

    if decode() != 2:
        raise RuntimeError("decode did not find 2 frames")
    pn_end = 1 + len(DCID) + 2
    return {
        "encode_us": _per_call_us(encode, iterations),
        "decode_us": _per_call_us(decode, iterations),
        "frame_decode_only_us": _per_call_us(lambda: frame_decode(wire, pn_end), iterations),
        "header_decode_only_us": _per_call_us(lambda: decode_header(wire, 8), iterations),
        "frame_encode_only_us": _per_call_us(
            lambda: encode_frames(specs, out, pn_end, PACKET_SIZE), iterations),
    }


ACK_RANGES = [990, 1000, 900, 980]


def _fast_body_size() -> int:
    out = bytearray(PACKET_SIZE)
    probe = pure.seal_stream_packet(out, DCID, 123456, 2, ACK_RANGES, 25, 4, 1 << 20,
                                    b"x" * 1350, False, True)
    return 1350 + (PACKET_SIZE - probe)


def _bench_fast_path(codec: ModuleType, iterations: int) -> dict[str, float]:
    body = bytes(i & 0xFF for i in range(_fast_body_size()))
    out = bytearray(PACKET_SIZE)
    seal_stream_packet = codec.seal_stream_packet
    open_short_packet = codec.open_short_packet

    def seal() -> int:
        return int(seal_stream_packet(out, DCID, 123456, 2, ACK_RANGES, 25, 4, 1 << 20, body,
                                      False, True))

    if seal() != PACKET_SIZE:
        raise RuntimeError("fast-path packet has the wrong size")
    wire = bytes(out)
    decoder = codec.FrameDecoder()

    def open_packet() -> int:
        return int(open_short_packet(wire, DCID, decoder, True)[3])

    if open_packet() != 2:
        raise RuntimeError("open_short_packet did not find 2 frames")
    ack = decoder.frames[0]
    if list(decoder.ranges[ack.c:ack.c + 2 * ack.d]) != ACK_RANGES:
        raise RuntimeError("open_short_packet decoded the wrong ACK ranges")
    return {
        "seal_stream_packet_us": _per_call_us(seal, iterations),
        "open_short_packet_us": _per_call_us(open_packet, iterations),
    }


def _crc_gbps(fn: Callable[[bytes], Any], data: bytes, iterations: int) -> float:
    seconds = _per_call_us(lambda: fn(data), iterations) / 1e6
    return len(data) / seconds / 1e9


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    nat = _bench_codec(native, 20000)
    pur = _bench_codec(pure, 2000)
    data = bytes((i * 131) & 0xFF for i in range(65536))
    lib = native.lib
    crc: dict[str, Any] = {
        "native_path": native.crc32c_path(),
        "native_gbps": _crc_gbps(native.crc32c, data, 2000),
        "native_fallback_slice8_gbps": _crc_gbps(
            lambda d: lib.tp_crc32c_sw(0, d, len(d)), data, 500),
        "pure_gbps": _crc_gbps(pure.crc32c, data, 3),
    }
    fast_nat = _bench_fast_path(native, 20000)
    fast_pur = _bench_fast_path(pure, 100)
    fast_total_native = fast_nat["seal_stream_packet_us"] + fast_nat["open_short_packet_us"]
    fast_total_pure = fast_pur["seal_stream_packet_us"] + fast_pur["open_short_packet_us"]
    fast_ratio = fast_total_pure / fast_total_native
    total_native = nat["encode_us"] + nat["decode_us"]
    total_pure = pur["encode_us"] + pur["decode_us"]
    ratios = {
        "encode": pur["encode_us"] / nat["encode_us"],
        "decode": pur["decode_us"] / nat["decode_us"],
        "per_datagram": total_pure / total_native,
    }
    targets = {
        "native_vs_pure_per_datagram_min_ratio": 10.0,
        "native_frame_decode_max_us": 0.5,
        "native_open_short_packet_max_us": 0.5,
        "crc32c_min_gbps": 10.0,
    }
    result = {
        "packet_bytes": PACKET_SIZE,
        "packet": "short header (8-byte DCID, 2-byte PN) + ACK (2 ranges) + STREAM OFF|LEN",
        "runs_median_of": RUNS,
        "native_us": nat,
        "pure_us": pur,
        "ratio_pure_over_native": ratios,
        "fast_path": {
            "packet": "as above + 4-byte CRC32C trailer, 1400 bytes in all",
            "native_us": fast_nat,
            "pure_us": fast_pur,
            "native_per_datagram_us": fast_total_native,
            "pure_per_datagram_us": fast_total_pure,
            "ratio_pure_over_native_per_datagram": fast_ratio,
        },
        "crc32c_64KiB": crc,
        "targets": targets,
        "targets_met": {
            "native_10x_pure_per_datagram_generic_no_crc": ratios["per_datagram"] >= 10.0,
            "native_10x_pure_per_datagram_fast_path_with_crc": fast_ratio >= 10.0,
            "native_frame_decode_le_0_5us": nat["frame_decode_only_us"] <= 0.5,
            "native_open_short_packet_le_0_5us": fast_nat["open_short_packet_us"] <= 0.5,
            "crc32c_ge_10_gbps": crc["native_gbps"] >= 10.0,
        },
        "cpu": _cpu_model(),
        "python": sys.version.split()[0],
        "rerun": "cd /work/main && .venv/bin/python benchmarks/bench_wire.py",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
