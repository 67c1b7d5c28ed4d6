"""Crypto building-block benchmark: Noise handshakes per second, AEAD and header-protection cost.

How this works
--------------
* Handshakes: both sides of a Noise handshake live in one process (sans-IO): build
  two :class:`~transport.crypto.noise.HandshakeState` objects, exchange the two
  messages (each carrying a 64-byte payload, about a transport-parameter block),
  and take the transport secrets on both sides. "with_keys" also builds the four
  :class:`~transport.crypto.aead.PacketProtection` objects a connection pair needs.
  The figure is handshakes (both sides) per second on one core: a server doing
  only its half would manage roughly twice as many.
* Packet protection: microseconds per 1400-byte payload for ``seal``,
  ``seal_into`` (into a preallocated buffer) and ``open``, per AEAD, with an
  11-byte short header as associated data.
* Header protection: microseconds for ``apply`` and ``remove`` on a 1400-byte
  packet, per AEAD.

Each figure is the median of ``--runs`` runs. Ephemeral keys come from
``os.urandom`` as in production. Prints one JSON object.

Run: python benchmarks/bench_crypto.py [--runs 7] [--handshakes 300] [--packets 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transport.crypto.aead import PacketProtection, default_aead
from transport.crypto.keys import generate_keypair
from transport.crypto.noise import HandshakeState

PAYLOAD = bytes(64)
PACKET_BYTES = 1400
HEADER = bytes((0x41,)) + bytes(8) + b"\x00\x01"


def _handshake(protocol: str, pattern: str, server_priv: bytes, server_pub: bytes,
               client_priv: bytes, with_keys: bool) -> None:
    name = f"Noise_{pattern}_25519_{protocol}"
    client = HandshakeState(name, initiator=True, prologue=b"transport v1", rs=server_pub,
                            s=client_priv if pattern == "IK" else None, randbytes=os.urandom)
    server = HandshakeState(name, initiator=False, prologue=b"transport v1", s=server_priv,
                            randbytes=os.urandom)
    server.read_message(client.write_message(PAYLOAD))
    client.read_message(server.write_message(PAYLOAD))
    c_send, c_recv = client.transport_secrets()
    s_send, s_recv = server.transport_secrets()
    if with_keys:
        hash_name = protocol.split("_")[1]
        for secret in (c_send, c_recv, s_send, s_recv):
            PacketProtection(secret, "aes128gcm", hash_name=hash_name)


def _handshakes_per_s(protocol: str, pattern: str, count: int, runs: int,
                      with_keys: bool) -> float:
    server = generate_keypair()
    client = generate_keypair()
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(count):
            _handshake(protocol, pattern, server.private, server.public, client.private,
                       with_keys)
        rates.append(count / (time.perf_counter() - start))
    return round(statistics.median(rates), 1)


def _per_op_us(fn: Any, count: int, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        for i in range(count):
            fn(i)
        samples.append((time.perf_counter_ns() - start) / count / 1000.0)
    return round(statistics.median(samples), 3)


def _aead_costs(aead: str, count: int, runs: int) -> dict[str, float]:
    secret = os.urandom(32)
    sender, receiver = PacketProtection(secret, aead), PacketProtection(secret, aead)
    payload = os.urandom(PACKET_BYTES)
    sealed = [sender.seal(HEADER, payload, pn) for pn in range(count)]
    buf = bytearray(PACKET_BYTES + 16)
    view = memoryview(buf)
    seal = sender.seal
    seal_into = sender.seal_into
    open_ = receiver.open
    hp = sender.header_protection
    packet = bytearray(HEADER + sealed[0])
    return {
        "seal_us": _per_op_us(lambda pn: seal(HEADER, payload, pn), count, runs),
        "seal_into_us": _per_op_us(lambda pn: seal_into(view, HEADER, payload, pn), count, runs),
        "open_us": _per_op_us(lambda pn: open_(HEADER, sealed[pn], pn), count, runs),
        "hp_apply_us": _per_op_us(lambda _: hp.apply(packet, 9), count, runs),
        "hp_remove_us": _per_op_us(lambda _: hp.remove(packet, 9), count, runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--handshakes", type=int, default=300)
    parser.add_argument("--packets", type=int, default=20000)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "benchmark": "crypto",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "default_aead": default_aead(),
        "runs": args.runs,
        "handshakes_per_s": {},
        "packet_bytes": PACKET_BYTES,
        "aead": {},
    }
    for protocol in ("AESGCM_SHA256", "ChaChaPoly_BLAKE2s"):
        for pattern in ("NK", "IK"):
            key = f"{pattern}_25519_{protocol}"
            result["handshakes_per_s"][key] = _handshakes_per_s(
                protocol, pattern, args.handshakes, args.runs, with_keys=False
            )
            result["handshakes_per_s"][key + "+packet_keys"] = _handshakes_per_s(
                protocol, pattern, args.handshakes, args.runs, with_keys=True
            )
    for aead in ("aes128gcm", "chacha20"):
        result["aead"][aead] = _aead_costs(aead, args.packets, args.runs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
