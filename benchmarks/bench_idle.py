"""Many idle connections on one server: memory per connection, idle CPU, liveness.

How this works
--------------
A server process runs :func:`transport.aio.serve` (one socket, one endpoint,
an upper-casing echo handler) with the default security (Noise NK, AES-GCM).
This process is the client side: one UDP socket and one sans-IO
:class:`~transport.endpoint.Endpoint` holding every client connection, pumped
by a plain loop (receive a batch, feed it, fire timers, send). Connections are
opened ``--window`` at a time so the server's pending-handshake budget (which
would switch RETRY on) is not the thing measured.

Figures (one JSON object):

* ``server_rss_mib`` before connecting and with every connection open, and
  ``server_kib_per_connection`` (the difference over the count), read from
  ``/proc/<pid>/status`` (VmRSS);
* ``server_idle_cpu_percent``: the server's CPU time (``/proc/<pid>/stat``
  utime + stime) over ``--idle-seconds`` with every connection open and
  nothing sent (no keepalives): what idle connections cost;
* ``echo_ok``: after the idle period, ``--probe`` connections spread over the
  set each send a line on a new stream and must read it back upper-cased.

Peer comparison: kernel TCP's figure for the same shape (idle sockets cost a
file descriptor and a few KiB of kernel memory) is not a useful ratio here; the
figure to read is KiB per connection against the 10,000-connection goal.

Run: python benchmarks/bench_idle.py [--connections 10000] [--idle-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import textwrap
import time
from typing import Any

from transport import Config
from transport.connection import Connection
from transport.crypto.keys import generate_keypair
from transport.endpoint import Endpoint
from transport.events import HandshakeCompleted, StreamReadable
from transport.udp import UdpSocket

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from transport import Config
    from transport.aio import serve
    from transport.crypto.keys import KeyPair

    async def upper(reader, writer):
        data = await reader.read()
        writer.write(data.upper())
        writer.write_eof()
        await writer.drain()
        writer.close()

    async def main():
        key = KeyPair(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]))
        config = Config(static_key=key, idle_timeout_s=3600.0)
        server = await serve("127.0.0.1", 0, upper, config=config)
        print(server.local_address[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())
    """
)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ClientSide:
    """One socket and one endpoint for every client connection."""

    def __init__(self, server: tuple[str, int], config: Config) -> None:
        self.server = server
        self.sock = UdpSocket(("127.0.0.1", 0))
        self.endpoint = Endpoint(config)
        self.established: list[Connection] = []
        self.pending: set[Connection] = set()
        self.replies: dict[tuple[Connection, int], bytes] = {}

    def pump(self, wait_s: float) -> None:
        now = time.monotonic()
        deadline = self.endpoint.get_timer()
        timeout = wait_s if deadline is None else max(0.0, min(wait_s, deadline - now))
        readable, _, _ = select.select([self.sock.fileno()], [], [], timeout)
        now = time.monotonic()
        if readable:
            for data, addr in self.sock.recv_batch():
                self.endpoint.receive_datagram(data, addr, now)
        self.endpoint.handle_timer(now)
        out = self.endpoint.datagrams_to_send(now)
        if out:
            self.sock.send_batch(out)
        while (item := self.endpoint.next_event()) is not None:
            conn, event = item
            if isinstance(event, HandshakeCompleted):
                self.pending.discard(conn)
                self.established.append(conn)
            elif isinstance(event, StreamReadable):
                data, _fin = conn.recv_stream_data(event.stream_id)
                key = (conn, event.stream_id)
                self.replies[key] = self.replies.get(key, b"") + data

    def open(self, count: int, window: int) -> None:
        opened = 0
        while opened < count or self.pending:
            while opened < count and len(self.pending) < window:
                self.pending.add(self.endpoint.connect(self.server, time.monotonic()))
                opened += 1
            self.pump(0.01)

    def idle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump(min(0.2, end - time.monotonic()))

    def echo(self, conns: list[Connection], timeout_s: float) -> int:
        expected: dict[tuple[Connection, int], bytes] = {}
        for i, conn in enumerate(conns):
            sid = conn.open_stream()
            line = b"idle connection %d\n" % i
            conn.send_stream_data(sid, line, end_stream=True)
            expected[(conn, sid)] = line.upper()
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.pump(0.01)
            if all(self.replies.get(k) == v for k, v in expected.items()):
                break
        return sum(self.replies.get(k) == v for k, v in expected.items())


def run(args: argparse.Namespace) -> dict[str, Any]:
    key = generate_keypair()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, key.private.hex(), key.public.hex()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        time.sleep(0.5)
        rss_before_kib = _rss_kib(server.pid)
        client = ClientSide(
            ("127.0.0.1", port),
            Config(server_public_key=key.public, idle_timeout_s=3600.0, pmtu_discovery=False),
        )
        started = time.monotonic()
        client.open(args.connections, args.window)
        open_s = time.monotonic() - started
        client.idle(1.0)  # let the last handshakes' ACKs settle
        rss_open_kib = _rss_kib(server.pid)
        cpu_before = _cpu_s(server.pid)
        client.idle(args.idle_seconds)
        idle_cpu_s = _cpu_s(server.pid) - cpu_before
        step = max(1, len(client.established) // args.probe)
        probes = client.established[::step][: args.probe]
        echo_ok = client.echo(probes, timeout_s=20.0)
        return {
            "benchmark": "idle_connections",
            "connections": len(client.established),
            "connections_requested": args.connections,
            "open_seconds": round(open_s, 2),
            "handshakes_per_s": round(len(client.established) / open_s, 1),
            "server_rss_mib_before": round(rss_before_kib / 1024, 1),
            "server_rss_mib_open": round(rss_open_kib / 1024, 1),
            "server_kib_per_connection": round(
                (rss_open_kib - rss_before_kib) / max(1, len(client.established)), 1
            ),
            "idle_seconds": args.idle_seconds,
            "server_idle_cpu_percent": round(100 * idle_cpu_s / args.idle_seconds, 2),
            "echo_probes": len(probes),
            "echo_ok": echo_ok,
            "command": "python benchmarks/bench_idle.py " + " ".join(sys.argv[1:]),
        }
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--probe", type=int, default=100, help="connections echoed at the end")
    args = parser.parse_args()
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
