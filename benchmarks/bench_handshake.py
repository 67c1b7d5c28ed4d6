"""Handshake benchmark: sequential handshakes per second, and the cost of encryption on bulk data.

How this works
--------------
* Handshakes: a client and a server :class:`~transport.endpoint.Endpoint` live in
  one process and hand each other datagrams directly (sans-IO, no sockets, no
  simulator). One iteration is ``client.connect`` -> datagrams back and forth
  until both sides report the handshake complete -> ``close`` -> datagrams until
  the close is acknowledged -> virtual time jumps past the closing period so
  both endpoints forget the connection. Iterations run back to back on one core
  and the figure is completed iterations per wall-clock second (both sides'
  CPU: a server doing only its half would manage more). Modes:
  ``security="none"`` (parameter blocks in clear), Noise NK (client anonymous)
  and Noise IK (mutual). Ephemeral keys come from ``os.urandom`` as in
  production. When aioquic is installed, its sans-IO ``QuicConnection`` pair
  (TLS 1.3, ECDSA P-256 certificate, verification off) runs the same loop.
* Bulk cost of encryption: the method of ``benchmarks/bench_core.py`` (a
  connection pair streaming ``--megabytes`` on one stream, every call into
  either side timed) run for ``security="none"`` and ``"noise"`` with each
  AEAD; reported as goodput per CPU second and the ratio encrypted / none.

Each figure is the median of ``--runs`` runs. Prints one JSON object.

Run: python benchmarks/bench_handshake.py [--runs 5] [--handshakes 300] [--megabytes 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_core

from transport import Config, Connection
from transport.crypto.aead import default_aead
from transport.crypto.keys import KeyPair, generate_keypair
from transport.endpoint import Endpoint
from transport.events import HandshakeCompleted

TARGET_HANDSHAKES_PER_S = 1000.0
C_ADDR = ("10.0.0.1", 5000)
S_ADDR = ("10.0.0.2", 4433)
SERVER_KEYS = generate_keypair()
CLIENT_KEYS = generate_keypair()


def _configs(mode: str, seed: int, aead: str | None = None) -> tuple[Config, Config]:
    """(client, server) configs for mode "none" | "NK" | "IK"."""
    if mode == "none":
        return (Config(rng=random.Random(seed), security="none"),
                Config(rng=random.Random(seed + 1), security="none"))
    client_key: KeyPair | None = CLIENT_KEYS if mode == "IK" else None
    client = Config(rng=random.Random(seed), security="noise", aead=aead,
                    server_public_key=SERVER_KEYS.public, static_key=client_key)
    server = Config(rng=random.Random(seed + 1), security="noise", aead=aead,
                    static_key=SERVER_KEYS)
    return client, server


# ------------------------------------------------------------ handshakes ----
def _exchange(client: Any, server: Any, now: float,
              done: Callable[[], bool], max_rounds: int = 32) -> float:
    """Move datagrams until ``done()``; when both are quiet, fire the earliest
    timer (a delayed ACK, say). Returns the virtual time reached."""
    for _ in range(max_rounds):
        moved = False
        for data, _addr in client.datagrams_to_send(now):
            server.receive_datagram(data, C_ADDR, now)
            moved = True
        for data, _addr in server.datagrams_to_send(now):
            client.receive_datagram(data, S_ADDR, now)
            moved = True
        if done():
            return now
        if not moved:
            timers = [t for t in (client.get_timer(), server.get_timer()) if t is not None]
            if not timers:
                return now
            now = max(now, min(timers))
            client.handle_timer(now)
            server.handle_timer(now)
    return now


def _handshakes_ours(mode: str, count: int) -> float:
    client_cfg, server_cfg = _configs(mode, 1)
    client = Endpoint(client_cfg)
    server = Endpoint(server_cfg, is_server=True)
    server_done = [0]
    now = 0.0

    def drain() -> None:
        while (item := server.next_event()) is not None:
            if isinstance(item[1], HandshakeCompleted):
                server_done[0] += 1
        while client.next_event() is not None:
            pass

    started = time.perf_counter()
    for i in range(count):
        conn = client.connect(S_ADDR, now)

        def established(conn: Connection = conn, target: int = i + 1) -> bool:
            drain()
            return conn.is_established and server_done[0] >= target

        now = _exchange(client, server, now, established)
        if not established():
            raise RuntimeError(f"handshake {i} ({mode}) did not complete")
        conn.close()
        now = _exchange(client, server, now, lambda: False, 4)
        now += 5.0  # past the closing / draining period: both forget the connection
        client.handle_timer(now)
        server.handle_timer(now)
        drain()
    elapsed = time.perf_counter() - started
    if client.connections or server.connections:
        raise RuntimeError("connections were not forgotten after close")
    return count / elapsed


def _aioquic_pair() -> tuple[Any, Any] | None:
    try:
        from aioquic.quic.configuration import QuicConfiguration
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
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now_dt - datetime.timedelta(days=1))
        .not_valid_after(now_dt + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    ccfg = QuicConfiguration(is_client=True, alpn_protocols=["bench"], verify_mode=0)
    scfg = QuicConfiguration(is_client=False, alpn_protocols=["bench"])
    scfg.certificate, scfg.private_key = cert, key
    return ccfg, scfg


def _handshakes_aioquic(count: int) -> float | None:
    configs = _aioquic_pair()
    if configs is None:
        return None
    from aioquic.buffer import Buffer
    from aioquic.quic import events as qe
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.packet import pull_quic_header

    ccfg, scfg = configs
    now = 0.0
    started = time.perf_counter()
    for i in range(count):
        client = QuicConnection(configuration=ccfg)
        client.connect(S_ADDR, now=now)
        first = client.datagrams_to_send(now=now)
        header = pull_quic_header(Buffer(data=first[0][0]), host_cid_length=8)
        server = QuicConnection(configuration=scfg,
                                original_destination_connection_id=header.destination_cid)
        for data, _ in first:
            server.receive_datagram(data, C_ADDR, now=now)
        done = {"client": False, "server": False}
        for _ in range(16):
            for data, _ in server.datagrams_to_send(now=now):
                client.receive_datagram(data, S_ADDR, now=now)
            for data, _ in client.datagrams_to_send(now=now):
                server.receive_datagram(data, C_ADDR, now=now)
            while (event := client.next_event()) is not None:
                if isinstance(event, qe.HandshakeCompleted):
                    done["client"] = True
            while (event := server.next_event()) is not None:
                if isinstance(event, qe.HandshakeCompleted):
                    done["server"] = True
            if all(done.values()):
                break
        if not all(done.values()):
            raise RuntimeError(f"aioquic handshake {i} did not complete")
        client.close()
        for data, _ in client.datagrams_to_send(now=now):
            server.receive_datagram(data, C_ADDR, now=now)
        server.datagrams_to_send(now=now)
        now += 5.0
    return count / (time.perf_counter() - started)


# ------------------------------------------------------- bulk goodput ------
def _bulk_ours(security: str, aead: str | None, megabytes: int) -> dict[str, float]:
    """bench_core.py's measurement, with the security mode as a parameter."""
    client_cfg, server_cfg = _configs("NK" if security == "noise" else "none", 1, aead)
    client = Connection(client_cfg, is_client=True)
    server = Connection(server_cfg, is_client=False, original_dcid=client.original_dcid)
    now = 0.0
    client.connect(S_ADDR, now)
    now = _exchange(client, server, now,
                    lambda: bool(client.is_established and server.is_established))
    if not (client.is_established and server.is_established):
        raise RuntimeError(f"bulk handshake ({security}) did not complete")
    while client.next_event() is not None:
        pass
    while server.next_event() is not None:
        pass
    return bench_core.measure_established(client, server, now, megabytes)

def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def _median_dict(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--handshakes", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=10)
    args = parser.parse_args()

    handshakes: dict[str, float] = {}
    for mode in ("none", "NK", "IK"):
        _handshakes_ours(mode, 20)  # warm up
        handshakes[mode] = _median([_handshakes_ours(mode, args.handshakes)
                                    for _ in range(args.runs)])
    aioquic_runs = [_handshakes_aioquic(max(20, args.handshakes // 3)) for _ in range(args.runs)]
    aioquic = None if aioquic_runs[0] is None else _median([r for r in aioquic_runs if r])

    bulk: dict[str, dict[str, float]] = {}
    for label, security, aead in (("none", "none", None),
                                  ("noise_aes128gcm", "noise", "aes128gcm"),
                                  ("noise_chacha20", "noise", "chacha20")):
        bulk[label] = _median_dict([_bulk_ours(security, aead, args.megabytes)
                                    for _ in range(args.runs)])
    base = bulk["none"]["goodput_mbit_per_cpu_s"]
    report: dict[str, Any] = {
        "benchmark": "sequential handshakes per second (sans-IO Endpoint pair, connect + "
                     "handshake + close, both sides on one core); bulk goodput per CPU "
                     "second, encrypted vs security='none'",
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "default_aead": default_aead(),
        "runs": args.runs,
        "handshakes_per_run": args.handshakes,
        "handshakes_per_s": handshakes,
        "aioquic_handshakes_per_s": aioquic,
        "target_handshakes_per_s": TARGET_HANDSHAKES_PER_S,
        "target_met": {k: v >= TARGET_HANDSHAKES_PER_S for k, v in handshakes.items()
                       if k != "none"},
        "megabytes": args.megabytes,
        "bulk": bulk,
        "goodput_per_cpu_ratio_vs_none": {
            k: round(v["goodput_mbit_per_cpu_s"] / base, 3) for k, v in bulk.items()
            if k != "none"
        },
        "command": "python benchmarks/bench_handshake.py "
                   f"--runs {args.runs} --handshakes {args.handshakes} "
                   f"--megabytes {args.megabytes}",
    }
    if aioquic:
        report["ours_over_aioquic"] = {k: round(v / aioquic, 2) for k, v in handshakes.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
