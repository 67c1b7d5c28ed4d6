"""Peers for ``transport bench --compare``: kernel TCP and aioquic.

How this works
--------------
Each peer runs the same transfer as the benchmark proper: the server (in a
child process) binds port 0 on loopback, sends the port to the parent through
the pipe, reads until the end of the stream, and answers with the same JSON
report (bytes, seconds from first byte to end, its CPU seconds). TCP uses
plain blocking sockets with ``--tcp-write`` (64 KiB) writes. aioquic (the
``bench`` extra) uses its asyncio API with a throw-away self-signed
certificate; because its stream writer has no backpressure it sends a fixed
size (``--size``, else 8 MB per second of ``--duration``) instead of a
duration.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import ssl
import tempfile
import time
from typing import Any

from transport.cli.bench import TCP_WRITE_BYTES, cpu_seconds

PEERS = ("tcp", "aioquic")
AIOQUIC_BYTES_PER_SECOND = 8_000_000
_ALPN = "transport-bench"


def unavailable(kind: str) -> str | None:
    """Why a peer cannot run here (None when it can)."""
    if kind not in PEERS:
        return f"unknown peer {kind!r} (known: {', '.join(PEERS)})"
    if kind == "aioquic" and importlib.util.find_spec("aioquic") is None:
        return "aioquic is not installed (pip install 'transport[bench]')"
    return None


def serve(kind: str, opts: dict[str, Any], pipe: Any) -> None:
    if kind == "tcp":
        _serve_tcp(opts, pipe)
    else:
        asyncio.run(_serve_aioquic(opts, pipe))


def run_client(kind: str, address: tuple[str, int], opts: dict[str, Any]) -> dict[str, Any]:
    cpu_start = cpu_seconds()
    if kind == "tcp":
        report, sent = _tcp_client(address, opts)
    else:
        report, sent = asyncio.run(_aioquic_client(address, opts))
    if report["bytes"] != sent:
        raise RuntimeError(f"{kind}: server received {report['bytes']} of {sent} bytes")
    seconds = report["seconds"]
    return {
        "transport": kind,
        "bytes": report["bytes"],
        "seconds": round(seconds, 4),
        "goodput_mbps": round(report["bytes"] * 8 / seconds / 1e6, 2),
        "cpu_seconds": {"client": round(cpu_seconds() - cpu_start, 3),
                        "server": round(report["cpu_seconds"], 3)},
    }


# ----------------------------------------------------------------------- TCP
def _serve_tcp(opts: dict[str, Any], pipe: Any) -> None:
    with socket.create_server((opts.get("host", "127.0.0.1"), 0)) as listener:
        pipe.send(listener.getsockname()[1])
        conn, _ = listener.accept()
        with conn:
            cpu_start = cpu_seconds()
            buffer = bytearray(1 << 20)
            received = 0
            first_s = 0.0
            while True:
                n = conn.recv_into(buffer)
                if not n:
                    break
                if not received:
                    first_s = time.monotonic()
                received += n
            seconds = max(time.monotonic() - first_s, 1e-9)
            report = {"bytes": received, "seconds": seconds,
                      "cpu_seconds": cpu_seconds() - cpu_start}
            conn.sendall(json.dumps(report).encode())


def _tcp_client(address: tuple[str, int], opts: dict[str, Any]) -> tuple[dict[str, Any], int]:
    write_bytes = int(opts.get("tcp_write") or TCP_WRITE_BYTES)
    chunk = memoryview(bytes(write_bytes))
    size = opts.get("size")
    with socket.create_connection(address) as sock:
        sent = 0
        if size is not None:
            while sent < size:
                sent += sock.send(chunk[: min(write_bytes, size - sent)])
        else:
            end = time.monotonic() + float(opts.get("duration") or 5.0)
            while time.monotonic() < end:
                sock.sendall(chunk)
                sent += write_bytes
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while part := sock.recv(65536):
            reply += part
    return json.loads(reply), sent


# ------------------------------------------------------------------- aioquic
def _certificate(directory: str) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def _aioquic_size(opts: dict[str, Any]) -> int:
    size = opts.get("size")
    if size is not None:
        return int(size)
    return int(AIOQUIC_BYTES_PER_SECOND * float(opts.get("duration") or 5.0))


async def _serve_aioquic(opts: dict[str, Any], pipe: Any) -> None:
    from aioquic.asyncio import QuicConnectionProtocol, serve
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import QuicEvent, StreamDataReceived

    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    class Receiver(QuicConnectionProtocol):
        received = 0
        first_s = 0.0
        cpu_start = 0.0

        def quic_event_received(self, event: QuicEvent) -> None:
            if not isinstance(event, StreamDataReceived):
                return
            if not self.received:
                self.first_s, self.cpu_start = time.monotonic(), cpu_seconds()
            self.received += len(event.data)
            if event.end_stream:
                report = {"bytes": self.received,
                          "seconds": max(time.monotonic() - self.first_s, 1e-9),
                          "cpu_seconds": cpu_seconds() - self.cpu_start}
                self._quic.send_stream_data(event.stream_id, json.dumps(report).encode(),
                                            end_stream=True)
                self.transmit()
                asyncio.get_running_loop().call_later(0.5, _finish, done)

    with tempfile.TemporaryDirectory() as tmp:
        config = QuicConfiguration(is_client=False, alpn_protocols=[_ALPN],
                                   max_datagram_size=int(opts["datagram_size"]))
        config.load_cert_chain(*_certificate(tmp))
        server = await serve(opts.get("host", "127.0.0.1"), 0, configuration=config,
                             create_protocol=Receiver)
        transport = server._transport
        if transport is None:
            raise RuntimeError("aioquic server has no socket")
        pipe.send(transport.get_extra_info("sockname")[1])
        await done
        server.close()


def _finish(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


async def _aioquic_client(address: tuple[str, int],
                          opts: dict[str, Any]) -> tuple[dict[str, Any], int]:
    from aioquic.asyncio import connect
    from aioquic.quic.configuration import QuicConfiguration

    size = _aioquic_size(opts)
    config = QuicConfiguration(is_client=True, alpn_protocols=[_ALPN], verify_mode=ssl.CERT_NONE,
                               max_datagram_size=int(opts["datagram_size"]))
    chunk = bytes(TCP_WRITE_BYTES)
    async with connect(address[0], address[1], configuration=config) as client:
        reader, writer = await client.create_stream()
        sent = 0
        while sent < size:
            part = chunk[: min(len(chunk), size - sent)]
            writer.write(part)
            sent += len(part)
            if sent % (4 * len(chunk)) == 0:
                await writer.drain()
        writer.write_eof()
        reply = await reader.read()
    return json.loads(reply), sent
