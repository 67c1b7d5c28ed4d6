"""Sans-IO core benchmark: CPU microseconds per data packet, send side and receive side.

How this works
--------------
A client and a server :class:`~transport.Connection` live in one process and
hand datagrams to each other directly: no sockets, no simulator, no loss. The
client streams ``--megabytes`` of data on one stream with ``security="none"``.
Every call into the sending side (``send_stream_data``, ``datagrams_to_send``,
``receive_datagrams`` of ACKs) is timed with ``time.perf_counter_ns`` and
charged to "send"; every call into the receiving side (``receive_datagrams`` of
data -- one batch per flight, as the drivers hand over a socket read --
``recv_stream_data``, ``datagrams_to_send`` of ACKs) is charged to "receive".
Each figure is divided by the number of data packets and the median of
``--runs`` runs is reported.

The codec backend is chosen by TRANSPORT_BACKEND, so the script runs itself in
a subprocess per backend. When aioquic is installed the same measurement is
made for aioquic's sans-IO QuicConnection (TLS 1.3 + AES-128-GCM, its only
mode) in the same run, as the peer figure.

Run: python benchmarks/bench_core.py [--megabytes 20] [--runs 5] [--security noise]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

TARGET_US = 5.0


def _measure_ours(megabytes: int, security: str = "none") -> dict[str, float]:
    import random

    if security == "noise":
        import bench_handshake  # imports this module: only here, at run time

        return bench_handshake._bulk_ours("noise", None, megabytes)

    from transport import Config, Connection

    client = Connection(Config(rng=random.Random(1), security="none"), is_client=True)
    server = Connection(
        Config(rng=random.Random(2), security="none"),
        is_client=False,
        original_dcid=client.original_dcid,
    )
    c_addr, s_addr = ("10.0.0.1", 5000), ("10.0.0.2", 4433)
    now = 0.0
    client.connect(s_addr, now)
    for _ in range(4):  # handshake
        for data, _ in client.datagrams_to_send(now):
            server.receive_datagram(data, c_addr, now)
        for data, _ in server.datagrams_to_send(now):
            client.receive_datagram(data, s_addr, now)
    while client.next_event() is not None:
        pass
    while server.next_event() is not None:
        pass
    return measure_established(client, server, now, megabytes)


def measure_established(
    client: Any, server: Any, now: float, megabytes: int
) -> dict[str, float]:
    """Stream ``megabytes`` from an established client to its server in one
    process, timing each side's calls (shared with bench_handshake.py)."""
    from transport.events import StreamReadable, StreamWritable

    c_addr, s_addr = ("10.0.0.1", 5000), ("10.0.0.2", 4433)
    total = megabytes * 1_000_000
    stream_id = client.open_stream()
    chunk = memoryview(bytes(range(256)) * 256)
    sent = received = 0
    send_ns = recv_ns = 0
    data_packets = 0
    clock = time.perf_counter_ns
    step_s = 0.0001
    while received < total:
        now += step_s
        t0 = clock()
        while sent < total:
            n = client.send_stream_data(stream_id, chunk[: min(len(chunk), total - sent)])
            sent += n
            if n < len(chunk):
                break
        out = client.datagrams_to_send(now)
        t1 = clock()
        send_ns += t1 - t0
        data_packets += len(out)
        # one batch per flight, as the drivers hand over a socket read
        server.receive_datagrams([data for data, _ in out], c_addr, now)
        while (event := server.next_event()) is not None:
            if isinstance(event, StreamReadable):
                payload, _fin = server.recv_stream_data(event.stream_id)
                received += len(payload)
        acks = server.datagrams_to_send(now)
        if server.get_timer() is not None and server.get_timer() <= now + step_s:
            server.handle_timer(now + step_s)
            acks += server.datagrams_to_send(now + step_s)
        t2 = clock()
        recv_ns += t2 - t1
        client.receive_datagrams([data for data, _ in acks], s_addr, now)
        while (event := client.next_event()) is not None:
            if isinstance(event, StreamWritable):
                pass
        deadline = client.get_timer()
        if deadline is not None and deadline <= now:
            client.handle_timer(now)
        send_ns += clock() - t2
        if not out and not acks:
            now += 0.01  # let timers move
    return {
        "send_us_per_packet": send_ns / 1000 / data_packets,
        "receive_us_per_packet": recv_ns / 1000 / data_packets,
        "data_packets": data_packets,
        "goodput_mbit_per_cpu_s": total * 8 / 1e6 / ((send_ns + recv_ns) / 1e9),
    }


def _measure_aioquic(megabytes: int) -> dict[str, float] | None:
    try:
        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.quic.connection import QuicConnection
        from aioquic.quic.events import StreamDataReceived
    except ImportError:
        return None
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now_dt = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now_dt - datetime.timedelta(days=1))
        .not_valid_after(now_dt + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    ccfg = QuicConfiguration(is_client=True, alpn_protocols=["bench"], verify_mode=0)
    scfg = QuicConfiguration(is_client=False, alpn_protocols=["bench"])
    scfg.certificate, scfg.private_key = cert, key
    client = QuicConnection(configuration=ccfg)
    c_addr, s_addr = ("10.0.0.1", 5000), ("10.0.0.2", 4433)
    now = 0.0
    client.connect(s_addr, now=now)
    first = client.datagrams_to_send(now=now)
    from aioquic.buffer import Buffer
    from aioquic.quic.packet import pull_quic_header

    header = pull_quic_header(Buffer(data=first[0][0]), host_cid_length=8)
    server = QuicConnection(
        configuration=scfg, original_destination_connection_id=header.destination_cid
    )
    for data, _ in first:
        server.receive_datagram(data, c_addr, now=now)
    for _ in range(6):
        for data, _ in server.datagrams_to_send(now=now):
            client.receive_datagram(data, s_addr, now=now)
        for data, _ in client.datagrams_to_send(now=now):
            server.receive_datagram(data, c_addr, now=now)
    while client.next_event() is not None:
        pass
    while server.next_event() is not None:
        pass
    total = megabytes * 1_000_000
    stream_id = client.get_next_available_stream_id()
    client.send_stream_data(stream_id, bytes(total), end_stream=True)
    received = 0
    send_ns = recv_ns = 0
    packets = 0
    clock = time.perf_counter_ns
    while received < total:
        now += 0.0001
        t0 = clock()
        out = client.datagrams_to_send(now=now)
        t1 = clock()
        send_ns += t1 - t0
        packets += len(out)
        for data, _ in out:
            server.receive_datagram(data, c_addr, now=now)
        while (event := server.next_event()) is not None:
            if isinstance(event, StreamDataReceived):
                received += len(event.data)
        acks = server.datagrams_to_send(now=now)
        timer = server.get_timer()
        if timer is not None and timer <= now + 0.0001:
            server.handle_timer(now=now + 0.0001)
            acks += server.datagrams_to_send(now=now + 0.0001)
        t2 = clock()
        recv_ns += t2 - t1
        for data, _ in acks:
            client.receive_datagram(data, s_addr, now=now)
        while client.next_event() is not None:
            pass
        timer = client.get_timer()
        if timer is not None and timer <= now:
            client.handle_timer(now=now)
        send_ns += clock() - t2
        if not out and not acks:
            now += 0.01
    return {
        "send_us_per_packet": send_ns / 1000 / packets,
        "receive_us_per_packet": recv_ns / 1000 / packets,
        "data_packets": packets,
    }


def _median_of(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = runs[0].keys()
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--security", choices=["none", "noise"], default="none")
    parser.add_argument("--child", choices=["ours", "aioquic"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "ours":
        print(json.dumps(_measure_ours(args.megabytes, args.security)))
        return
    if args.child == "aioquic":
        print(json.dumps(_measure_aioquic(args.megabytes)))
        return

    def child(kind: str, backend: str, megabytes: int) -> dict[str, Any] | None:
        env = dict(os.environ, TRANSPORT_BACKEND=backend)
        cmd = [sys.executable, __file__, "--child", kind, "--megabytes", str(megabytes),
               "--security", args.security]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        result: dict[str, Any] | None = json.loads(out)
        return result

    results: dict[str, Any] = {}
    for backend in ("native", "pure"):
        runs = [child("ours", backend, args.megabytes) for _ in range(args.runs)]
        results[backend] = _median_of([r for r in runs if r])
    aioquic_runs = [child("aioquic", "native", max(1, args.megabytes // 4)) for _ in range(3)]
    aioquic = _median_of([r for r in aioquic_runs if r]) if aioquic_runs[0] else None
    native = results["native"]
    report: dict[str, Any] = {
        "benchmark": f"sans-IO core, CPU per data packet, security={args.security!r}, no I/O",
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "megabytes": args.megabytes,
        "runs": args.runs,
        "native": native,
        "pure": results["pure"],
        "aioquic": aioquic,
        "target_us_per_packet_per_side": TARGET_US,
        "target_met": native["send_us_per_packet"] <= TARGET_US
        and native["receive_us_per_packet"] <= TARGET_US,
        "command": "python benchmarks/bench_core.py "
        + f"--megabytes {args.megabytes} --runs {args.runs} --security {args.security}",
    }
    if aioquic:
        report["aioquic_over_native"] = {
            "send": round(aioquic["send_us_per_packet"] / native["send_us_per_packet"], 2),
            "receive": round(
                aioquic["receive_us_per_packet"] / native["receive_us_per_packet"], 2
            ),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
