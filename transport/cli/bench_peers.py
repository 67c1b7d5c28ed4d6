"""Peers, impaired paths and two-host roles for ``transport bench``.

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
duration. KCP (the ``kcp`` package, also in the extra) runs in its "turbo"
configuration, unencrypted, without congestion control (``bench_kcp.py``).

Impaired path (``--loss/--delay/--rate/--burst``): :class:`PathRelay` runs a
:class:`transport.relay.Relay` in its own process (so it does not share a GIL
with the client) between the client and the server; loss applies both ways,
the delay is one-way. UDP peers (ours, aioquic) go through it; kernel TCP
cannot, and is skipped with :data:`TCP_OVER_RELAY_NOTE`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import socket
import ssl
import sys
import tempfile
import time
from typing import Any

from transport.cli import bench_kcp
from transport.cli.bench import (
    TCP_WRITE_BYTES,
    cpu_seconds,
    make_config,
    options_from,
    print_progress,
    run_ours_client,
    serve_ours,
    summary_lines,
)
from transport.udp import UdpSocket

PEERS = ("tcp", "aioquic", "kcp")
TCP_OVER_RELAY_NOTE = (
    "kernel TCP cannot run over the UDP impairment relay; compare it on the emulated "
    "path instead: sudo python -m transport.emulate --rate R --delay D --loss L -- CMD "
    "(or transport bench --path emulated)"
)
AIOQUIC_BYTES_PER_SECOND = 8_000_000
_ALPN = "transport-bench"


def unavailable(kind: str) -> str | None:
    """Why a peer cannot run here (None when it can)."""
    if kind not in PEERS:
        return f"unknown peer {kind!r} (known: {', '.join(PEERS)})"
    if kind == "aioquic" and importlib.util.find_spec("aioquic") is None:
        return "aioquic is not installed (pip install 'transport[bench]')"
    if kind == "kcp":
        return bench_kcp.unavailable()
    return None


def serve(kind: str, opts: dict[str, Any], pipe: Any) -> None:
    if kind == "tcp":
        _serve_tcp(opts, pipe)
    elif kind == "kcp":
        bench_kcp.serve(opts, pipe, cpu_seconds)
    else:
        asyncio.run(_serve_aioquic(opts, pipe))


def run_client(kind: str, address: tuple[str, int], opts: dict[str, Any]) -> dict[str, Any]:
    cpu_start = cpu_seconds()
    if kind == "tcp":
        report, sent = _tcp_client(address, opts)
    elif kind == "kcp":
        report, sent = bench_kcp.client(address, opts)
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


# ------------------------------------------------------------- impaired path
def path_requested(opts: dict[str, Any]) -> bool:
    """True when ``--loss``, ``--delay`` or ``--rate`` asks for the relay."""
    return bool(opts.get("loss") or opts.get("delay") or opts.get("rate"))


def path_settings(opts: dict[str, Any]) -> dict[str, Any]:
    """The path as given on the command line (for the JSON summary)."""
    burst = float(opts.get("burst") or 1.0)
    return {
        "loss": float(opts.get("loss") or 0.0),
        "loss_model": "gilbert-elliott" if burst > 1 else "bernoulli",
        "burst": burst,
        "loss_both_ways": True,
        "one_way_delay_ms": round(float(opts.get("delay") or 0.0) * 1e3, 3),
        "rate_mbps": None if not opts.get("rate") else float(opts["rate"]) / 1e6,
        "queue_bdp": 1.0,
    }


def _path_spec(opts: dict[str, Any]) -> Any:
    from transport.sim.loss import Bernoulli, GilbertElliott
    from transport.sim.scenarios import PathSpec

    loss_p = float(opts.get("loss") or 0.0)
    burst = float(opts.get("burst") or 1.0)
    loss = None
    if loss_p > 0:
        loss = GilbertElliott.from_mean(loss_p, burst) if burst > 1 else Bernoulli(loss_p)
    rate = opts.get("rate")
    return PathSpec(rate_bps=float(rate) if rate else None,
                    rtt_s=2 * float(opts.get("delay") or 0.0), loss=loss)


def _relay_child(opts: dict[str, Any], target_port: int, pipe: Any) -> None:
    """Relay process: start, report the port, relay until told to stop, report stats."""
    from transport.relay import Relay

    try:
        relay = Relay(_path_spec(opts), target_port=target_port,
                      host=opts.get("host", "127.0.0.1"), seed=int(opts.get("seed") or 0))
    except BaseException as exc:
        pipe.send(f"error: {exc!r}")
        raise
    relay.start()
    pipe.send(relay.port)
    with contextlib.suppress(EOFError):
        pipe.recv()
    fwd, bwd = relay.stats()
    relay.close()
    pipe.send({
        name: {"packets_offered": st.packets_offered,
               "packets_dropped_loss": st.packets_dropped_loss,
               "packets_dropped_queue": st.packets_dropped_queue,
               "packets_delivered": st.packets_delivered}
        for name, st in (("forward", fwd), ("backward", bwd))
    })


class PathRelay:
    """An impairment relay process in front of ``target_port`` on loopback."""

    def __init__(self, opts: dict[str, Any], target_port: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._pipe, child_end = ctx.Pipe()
        self._proc = ctx.Process(target=_relay_child, args=(opts, target_port, child_end),
                                 daemon=True)
        self._proc.start()
        self._settings = path_settings(opts)
        if not self._pipe.poll(30):
            self.close()
            raise RuntimeError("the impairment relay did not start")
        port = self._pipe.recv()
        if isinstance(port, str):
            self.close()
            raise RuntimeError(f"the impairment relay failed: {port}")
        self.port = int(port)

    def close(self) -> dict[str, Any]:
        """Stop the relay; returns the path settings with the relay's counters."""
        report = dict(self._settings)
        if self._proc.is_alive():
            try:
                self._pipe.send("stop")
                if self._pipe.poll(5):
                    report["relay"] = self._pipe.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2)
        return report


# ------------------------------------------------------ two hosts: the roles
def cmd_role(args: argparse.Namespace) -> int:
    """``transport bench server`` / ``transport bench client HOST:PORT``."""
    return _cmd_server(args) if args.role == "server" else _cmd_client(args)


def _cmd_server(args: argparse.Namespace) -> int:
    from transport.crypto.keys import (
        generate_keypair,
        load_private_key_file,
        public_key_from_private,
        public_key_to_raw,
    )

    opts = options_from(args)
    if args.security == "noise":
        if args.key:
            private = load_private_key_file(args.key)
            opts["private_key"], opts["public_key"] = private, public_key_from_private(private)
        else:
            keypair = generate_keypair()
            opts["private_key"], opts["public_key"] = keypair.private, keypair.public
    sock = UdpSocket((args.host, args.port), gso=not args.no_gso, gro=not args.no_gso)
    host, port = sock.local_address
    print(f"listening on {host}:{port} security={args.security}", flush=True)
    if args.security == "noise":
        print(f"server key: {public_key_to_raw(opts['public_key'])}", flush=True)

    def on_report(report: dict[str, Any]) -> None:
        mbps = report["bytes"] * 8 / report["seconds"] / 1e6
        print(f"received {report['bytes'] / 1e6:.1f} MB in {report['seconds']:.2f} s = "
              f"{mbps:.1f} Mbit/s, CPU {report['cpu_seconds']:.2f} s", file=sys.stderr, flush=True)

    try:
        serve_ours(sock, make_config(opts, server=True), once=args.once, on_report=on_report)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def _cmd_client(args: argparse.Namespace) -> int:
    from transport.crypto.keys import load_public_key, load_public_key_file

    opts = options_from(args)
    if args.security == "noise":
        if not args.server_key:
            print("transport bench client: --server-key is required with --security noise",
                  file=sys.stderr)
            return 2
        key = args.server_key
        opts["public_key"] = (
            load_public_key_file(key) if os.path.exists(key) else load_public_key(key)
        )
    show = (sys.stderr.isatty() or args.progress) and not args.quiet
    result = run_ours_client(args.address, opts, progress=print_progress if show else None)
    if show:
        sys.stderr.write("\n")
    if args.json:
        print(json.dumps(result))
    else:
        for line in summary_lines(result):
            print(line)
    return 0
