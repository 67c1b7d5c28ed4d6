"""`transport bench`: bulk-transfer benchmark on loopback or between two hosts.

How this works
--------------
``transport bench`` starts a server in a child process (``multiprocessing``
spawn), runs the client in this process on 127.0.0.1, and transfers for
``--duration`` seconds (or ``--size`` bytes) over ``--streams`` streams. Both
sides drive the sans-IO :class:`~transport.endpoint.Endpoint` with one tight
single-threaded loop (:class:`Pump`: poll, a GRO receive batch, timers, a GSO
send batch) -- the cheapest driver there is, so the figures show the core's
cost. Stream 0 starts with an 8-byte header (magic, stream count); once every
stream's FIN has arrived the server answers on stream 0 with a JSON report:
bytes received, seconds from the first byte to the last FIN, and its CPU
seconds (``os.times``). The client adds its own CPU seconds, RTT, window and
loss figures. ``--compare tcp,aioquic`` repeats the transfer over kernel TCP
(64 KiB writes) and aioquic (when installed) in the same invocation and prints
ratios. ``--fec off|fixed|adaptive`` sets ``Config(fec=...)``. ``--loss 2%
--delay 25ms --rate 50mbit [--burst N]`` puts an impairment relay
(:class:`transport.relay.Relay`, in its own process) between client and server
and reports the path in the summary; aioquic goes through it too, kernel TCP
cannot (it is skipped with a pointer to ``python -m transport.emulate``).
``--path emulated`` runs the same comparison over the kernel-path emulator
(root): ours and kernel TCP (``--compare tcp-cubic,tcp-bbr``) share one
emulated path (:mod:`transport.cli.bench_emulated`).
``transport bench server`` / ``transport bench client HOST:PORT`` split the
two sides across hosts (the server prints its public key).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import resource
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from transport import events
from transport.cli.units import parse_fraction, parse_rate, parse_seconds
from transport.config import Config
from transport.endpoint import Endpoint
from transport.errors import NetworkError
from transport.udp import Address, UdpSocket

MAGIC = b"TBN1"
_HEADER = struct.Struct("!4sI")
CHUNK_BYTES = 256 * 1024
TCP_WRITE_BYTES = 64 * 1024
PROGRESS_INTERVAL_S = 0.5


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse_size(text: str) -> int:
    """``100M``, ``1.5G``, ``4096`` -> bytes (decimal units, ``Ki``/``Mi``/``Gi`` binary)."""
    units = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "KI": 2**10, "MI": 2**20, "GI": 2**30}
    body = text.strip().upper().rstrip("B")
    number = body.rstrip("KMGI")
    unit = body[len(number):]
    try:
        if unit not in units or not number:
            raise ValueError(text)
        return int(float(number) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 100M, 1G, 64Ki)") from None


def parse_hostport(text: str) -> Address:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def make_config(opts: dict[str, Any], *, server: bool) -> Config:
    from transport.congestion import controllers
    from transport.crypto.keys import KeyPair

    kwargs: dict[str, Any] = {
        "security": opts["security"],
        "max_datagram_size": opts["datagram_size"],
        "fec": opts.get("fec") or "off",
    }
    if opts.get("cc"):
        kwargs["congestion_control"] = controllers[opts["cc"]]
    if opts["security"] == "noise":
        if server:
            kwargs["static_key"] = KeyPair(opts["private_key"], opts["public_key"])
        else:
            kwargs["server_public_key"] = opts["public_key"]
    return Config(**kwargs)


class Pump:
    """One thread driving an endpoint on a socket: wait, receive, timers, app, send."""

    def __init__(self, endpoint: Endpoint, sock: UdpSocket) -> None:
        self.endpoint = endpoint
        self.sock = sock
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN)
        self._polling_out = False
        self._pending: list[tuple[bytes, Address]] = []
        #: the last ICMP error the socket reported (the client gives up on it)
        self.error: NetworkError | None = None

    def turn(self, max_wait_s: float, app: Callable[[float], None]) -> None:
        endpoint = self.endpoint
        deadline = endpoint.get_timer()
        wait_s = max_wait_s
        if deadline is not None:
            wait_s = min(wait_s, deadline - time.monotonic())
        want_out = bool(self._pending)
        if want_out != self._polling_out:
            self._polling_out = want_out
            self._poller.modify(self.sock.fileno(),
                                select.POLLIN | (select.POLLOUT if want_out else 0))
        if wait_s > 0:
            if wait_s < 0.001:
                if not self._poller.poll(0):
                    time.sleep(wait_s)
            else:
                self._poller.poll(math.ceil(wait_s * 1000))
        now = time.monotonic()
        receive = endpoint.receive_groups  # (GRO buffers uncut)
        for _ in range(4):
            try:
                batch = self.sock.recv_groups(256)
            except NetworkError as exc:
                self.error = exc
                continue
            if not batch:
                break
            now = time.monotonic()  # after the read: an early stamp shortens RTT samples
            receive(batch, now)
            self.flush(now)
        deadline = endpoint.get_timer()
        if deadline is not None and now >= deadline:
            endpoint.handle_timer(now)
        app(now)
        self.flush(now)

    def flush(self, now: float) -> None:
        if self._pending:
            sent = self.sock.send_batch(self._pending)
            self._pending = self._pending[sent:]
            if self._pending:
                return
        out = self.endpoint.datagrams_to_send(now)
        if out:
            sent = self.sock.send_batch(out)
            if sent < len(out):
                self._pending = out[sent:]


# ----------------------------------------------------------------- our server
class _Receiver:
    """Server-side state of one benchmark connection."""

    def __init__(self, conn: Any, started_cpu: float) -> None:
        self.conn = conn
        self.header = bytearray()
        self.expected: int | None = None
        self.finished: set[int] = set()
        self.bytes = 0
        self.first_s = 0.0
        self.last_s = 0.0
        self.cpu_start = started_cpu
        self.reported = False

    def on_readable(self, stream_id: int, now: float) -> None:
        conn = self.conn
        while True:
            try:
                data, fin = conn.recv_stream_data(stream_id)
            except Exception:  # stream already finished
                return
            if data:
                if not self.bytes and not self.header:
                    self.first_s = now
                if stream_id == 0 and len(self.header) < _HEADER.size:
                    take = _HEADER.size - len(self.header)
                    self.header += data[:take]
                    data = data[take:]
                    if len(self.header) == _HEADER.size:
                        magic, count = _HEADER.unpack(self.header)
                        self.expected = count if magic == MAGIC else 0
                self.bytes += len(data)
                self.last_s = now
            if fin:
                self.finished.add(stream_id)
                self.last_s = now
                return
            if not data:
                return

    def maybe_report(self) -> dict[str, Any] | None:
        if self.reported or self.expected is None or len(self.finished) < self.expected:
            return None
        self.reported = True
        report = {
            "bytes": self.bytes,
            "seconds": max(self.last_s - self.first_s, 1e-9),
            "cpu_seconds": cpu_seconds() - self.cpu_start,
        }
        self.conn.send_stream_data(0, json.dumps(report).encode(), end_stream=True)
        return report


def serve_ours(sock: UdpSocket, config: Config, *, once: bool,
               on_report: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Answer benchmark clients on ``sock`` (until one run ends when ``once``)."""
    endpoint = Endpoint(config, is_server=True)
    pump = Pump(endpoint, sock)
    receivers: dict[Any, _Receiver] = {}
    done = False

    def app(now: float) -> None:
        nonlocal done
        while (item := endpoint.next_event()) is not None:
            conn, event = item
            rx = receivers.get(conn)
            if rx is None:
                rx = receivers[conn] = _Receiver(conn, cpu_seconds())
            if isinstance(event, events.StreamReadable):
                rx.on_readable(event.stream_id, now)
                report = rx.maybe_report()
                if report is not None and on_report is not None:
                    on_report(report)
            elif isinstance(event, events.ConnectionTerminated):
                del receivers[conn]
                if once and rx.reported:
                    done = True

    while not done:
        pump.turn(0.5, app)
    for _ in range(20):  # let the close frames go out
        pump.turn(0.005, lambda now: None)


# ----------------------------------------------------------------- our client
def run_ours_client(server: Address, opts: dict[str, Any], *,
                    progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """One timed transfer to a benchmark server; returns the combined figures."""
    cpu_start = cpu_seconds()
    wall_start = time.monotonic()
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    sock = UdpSocket(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0), family=family,
                     gso=opts.get("gso", True), gro=opts.get("gro", True))
    config = make_config(opts, server=False)
    endpoint = Endpoint(config)
    pump = Pump(endpoint, sock)
    conn = endpoint.connect(server, time.monotonic())
    n_streams = max(1, int(opts["streams"]))
    chunk = memoryview(bytes(CHUNK_BYTES))
    size = opts.get("size")
    duration_s = float(opts.get("duration") or 5.0)
    state: dict[str, Any] = {"streams": [], "left": {}, "start": None, "report": b"",
                             "report_done": False, "error": None, "next_progress": 0.0,
                             "last_bytes": 0, "last_t": 0.0}

    fin_sent: set[int] = set()

    def feed(now: float) -> None:
        left: dict[int, int] = state["left"]
        if size is None and now >= state["start"] + duration_s:
            for sid in left:
                left[sid] = 0
        for sid, remaining in left.items():
            while remaining:
                n = conn.send_stream_data(sid, chunk[: min(CHUNK_BYTES, remaining)])
                if not n:
                    break
                remaining -= n
            left[sid] = remaining
            if not remaining and sid not in fin_sent:
                fin_sent.add(sid)
                conn.send_stream_data(sid, b"", end_stream=True)

    def app(now: float) -> None:
        while (item := endpoint.next_event()) is not None:
            _, event = item
            if isinstance(event, events.HandshakeCompleted):
                state["start"] = now
                per = (size // n_streams) if size is not None else 1 << 62
                for i in range(n_streams):
                    sid = conn.open_stream(True)
                    state["streams"].append(sid)
                    state["left"][sid] = per + (size - per * n_streams if size and i == 0 else 0)
                conn.send_stream_data(state["streams"][0], _HEADER.pack(MAGIC, n_streams))
            elif isinstance(event, events.StreamReadable) and event.stream_id == 0:
                data, fin = conn.recv_stream_data(0)
                state["report"] += data
                state["report_done"] = state["report_done"] or fin
            elif isinstance(event, events.ConnectionTerminated) and not state["report_done"]:
                state["error"] = f"connection ended: {event.reason or event.error_code}"
        if state["start"] is not None and not state["report_done"]:
            feed(now)
            if progress is not None and now >= state["next_progress"]:
                state["next_progress"] = now + PROGRESS_INTERVAL_S
                progress(_progress_figures(conn, state, now))

    timeout_s = (duration_s if size is None else 3600.0) + 30.0
    while not state["report_done"] and state["error"] is None:
        if time.monotonic() - wall_start > timeout_s:
            state["error"] = "benchmark timed out"
            break
        pump.turn(0.05, app)
        if pump.error is not None and not state["report_done"]:
            state["error"] = str(pump.error)
    stats = conn.get_stats()
    conn.close(0, "bench done")
    for _ in range(3):
        pump.turn(0.0, lambda now: None)
    sock.close()
    if state["error"]:
        raise RuntimeError(state["error"])
    report = json.loads(bytes(state["report"]))
    seconds = report["seconds"]
    return {
        "transport": "transport",
        "security": opts["security"],
        "cc": opts.get("cc") or "default",
        "fec": opts.get("fec") or "off",
        "streams": n_streams,
        "datagram_size": opts["datagram_size"],
        "bytes": report["bytes"],
        "seconds": round(seconds, 4),
        "goodput_mbps": round(report["bytes"] * 8 / seconds / 1e6, 2),
        "cpu_seconds": {"client": round(cpu_seconds() - cpu_start, 3),
                        "server": round(report["cpu_seconds"], 3)},
        "rtt_ms": round(stats.smoothed_rtt_s * 1000, 3),
        "min_rtt_ms": round(stats.min_rtt_s * 1000, 3),
        "cwnd_bytes": stats.congestion_window_bytes,
        "packets_sent": stats.packets_sent,
        "packets_lost": stats.packets_lost,
        "retransmitted_packets": stats.packets_retransmitted,
        "gso": sock.gso_supported,
        "gro": sock.gro_supported,
    }


def _progress_figures(conn: Any, state: dict[str, Any], now: float) -> dict[str, Any]:
    stats = conn.get_stats()
    sent = stats.stream_bytes_sent - stats.stream_bytes_retransmitted - stats.bytes_in_flight
    dt = now - state["last_t"] if state["last_t"] else now - state["start"]
    rate = (sent - state["last_bytes"]) * 8 / dt / 1e6 if dt > 0 else 0.0
    state["last_bytes"], state["last_t"] = sent, now
    return {"elapsed_s": now - state["start"], "bytes": max(sent, 0), "mbps": rate,
            "rtt_ms": stats.smoothed_rtt_s * 1000, "cwnd_bytes": stats.congestion_window_bytes,
            "lost": stats.packets_lost}


def print_progress(fig: dict[str, Any]) -> None:
    sys.stderr.write(
        f"\r{fig['elapsed_s']:6.1f} s {fig['bytes'] / 1e6:10.1f} MB {fig['mbps']:9.1f} Mbit/s"
        f"  rtt {fig['rtt_ms']:6.2f} ms  cwnd {fig['cwnd_bytes'] / 1024:8.0f} KiB"
        f"  lost {fig['lost']:6d} "
    )
    sys.stderr.flush()


# ----------------------------------------------------------- child processes
def child_server(kind: str, opts: dict[str, Any], pipe: Any) -> None:
    """Entry point of the server process: bind, tell the parent the port, serve once."""
    try:
        if kind == "transport":
            sock = UdpSocket((opts.get("host", "127.0.0.1"), 0), gso=opts.get("gso", True),
                             gro=opts.get("gro", True))
            pipe.send(sock.local_address[1])
            serve_ours(sock, make_config(opts, server=True), once=True)
            sock.close()
        else:
            from transport.cli import bench_peers

            bench_peers.serve(kind, opts, pipe)
    except BaseException as exc:  # report, so the parent does not wait forever
        pipe.send(f"error: {exc!r}")
        raise


def run_loopback(kind: str, opts: dict[str, Any],
                 progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Server in a child process, client here; returns the figures.

    With ``loss``/``delay``/``rate`` in ``opts`` the client talks to an
    impairment relay process in front of the server, and the result gets a
    ``path`` entry (settings and the relay's counters)."""
    from transport.cli import bench_peers

    ctx = multiprocessing.get_context("spawn")
    parent_end, child_end = ctx.Pipe()
    proc = ctx.Process(target=child_server, args=(kind, opts, child_end), daemon=True)
    proc.start()
    relay: bench_peers.PathRelay | None = None
    try:
        if not parent_end.poll(30):
            raise RuntimeError(f"{kind} server did not start")
        port = parent_end.recv()
        if isinstance(port, str):
            raise RuntimeError(f"{kind} server failed: {port}")
        host = opts.get("host", "127.0.0.1")
        if bench_peers.path_requested(opts):
            relay = bench_peers.PathRelay(opts, int(port))
            port = relay.port
        address = (host, int(port))
        if kind == "transport":
            result = run_ours_client(address, opts, progress=progress)
        else:
            result = bench_peers.run_client(kind, address, opts)
        # the relay outlives the server, whose last packets go to it
        _stop_process(proc, 3.0 if relay is not None else 10.0)
        if relay is not None:
            result["path"] = relay.close()
            relay = None
        return result
    finally:
        _stop_process(proc, 10.0)
        if relay is not None:
            relay.close()


def _stop_process(proc: Any, grace_s: float) -> None:
    proc.join(grace_s)
    if proc.is_alive():  # e.g. waiting for a CONNECTION_CLOSE the path lost
        proc.terminate()
        proc.join(2)


def generate_keys(opts: dict[str, Any]) -> None:
    from transport.crypto.keys import generate_keypair

    keypair = generate_keypair()
    opts["private_key"], opts["public_key"] = keypair.private, keypair.public


def options_from(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "security": args.security,
        "cc": args.cc,
        "streams": args.streams,
        "duration": 5.0 if args.duration is None else args.duration,
        "size": args.size,
        "datagram_size": args.datagram_size or 1400,
        "gso": not args.no_gso,
        "gro": not args.no_gso,
        "fec": args.fec,
        "loss": getattr(args, "loss", 0.0),
        "delay": getattr(args, "delay", 0.0),
        "rate": getattr(args, "rate", None),
        "burst": getattr(args, "burst", 1.0),
    }


def cpu_per_gb(result: dict[str, Any], side: str) -> float | None:
    gigabytes = result["bytes"] / 1e9
    return round(result["cpu_seconds"][side] / gigabytes, 2) if gigabytes else None


def summary_lines(result: dict[str, Any]) -> list[str]:
    name = result["transport"]
    extra = f" security={result['security']}" if name == "transport" else ""
    lines = [
        f"{name}{extra}: {result['bytes'] / 1e6:.1f} MB in {result['seconds']:.2f} s = "
        f"{result['goodput_mbps']:.1f} Mbit/s; CPU client {result['cpu_seconds']['client']:.2f} s"
        f" ({cpu_per_gb(result, 'client')} s/GB), server {result['cpu_seconds']['server']:.2f} s"
        f" ({cpu_per_gb(result, 'server')} s/GB)"
    ]
    if name == "transport":
        lines.append(
            f"  rtt {result['rtt_ms']:.3f} ms, cwnd {result['cwnd_bytes']} B, "
            f"lost {result['packets_lost']}, retransmitted {result['retransmitted_packets']} "
            f"of {result['packets_sent']} packets (gso={result['gso']}, gro={result['gro']})"
        )
    return lines


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.role in ("server", "client"):
        from transport.cli import bench_peers

        return bench_peers.cmd_role(args)
    if args.path == "emulated":
        from transport.cli import bench_emulated

        if args.duration is None:
            args.duration = 10.0
        return bench_emulated.run(args)
    opts = options_from(args)
    if args.security == "noise":
        generate_keys(opts)
    show = (sys.stderr.isatty() or args.progress) and not args.quiet
    result = run_loopback("transport", opts, progress=print_progress if show else None)
    if show:
        sys.stderr.write("\n")
    output: dict[str, Any] = dict(result)
    peers: dict[str, Any] = {}
    for kind in [k.strip() for k in (args.compare or "").split(",") if k.strip()]:
        from transport.cli import bench_peers

        note = bench_peers.unavailable(kind)
        if kind == "tcp" and bench_peers.path_requested(opts):
            note = bench_peers.TCP_OVER_RELAY_NOTE
        if note:
            peers[kind] = {"skipped": note}
            continue
        peer = run_loopback(kind, opts)
        peer["goodput_ratio"] = round(result["goodput_mbps"] / max(peer["goodput_mbps"], 1e-9), 3)
        for side in ("client", "server"):
            ours, theirs = cpu_per_gb(result, side), cpu_per_gb(peer, side)
            if ours and theirs:
                peer[f"cpu_per_gb_ratio_{side}"] = round(ours / theirs, 3)
        peers[kind] = peer
    if peers:
        output["compare"] = peers
    if args.json:
        print(json.dumps(output))
        return 0
    for line in summary_lines(result):
        print(line)
    if "path" in result:
        print(f"  path: {json.dumps(result['path'])}")
    for kind, peer in peers.items():
        if "skipped" in peer:
            print(f"{kind}: skipped ({peer['skipped']})")
            continue
        for line in summary_lines(peer):
            print(line)
        print(f"  transport / {kind}: goodput x{peer['goodput_ratio']}, CPU per GB client "
              f"x{peer.get('cpu_per_gb_ratio_client')}, "
              f"server x{peer.get('cpu_per_gb_ratio_server')}")
    return 0


def _add_common(p: argparse.ArgumentParser) -> None:
    from transport.congestion import controllers

    p.add_argument("--security", choices=("noise", "none"), default="noise")
    p.add_argument("--fec", choices=("off", "fixed", "adaptive"), default="off",
                   help="forward error correction (Config.fec)")
    p.add_argument("--cc", choices=sorted(controllers), default=None,
                   help="congestion controller (default: the Config default)")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of sending (default 5; 10 with --path emulated)")
    p.add_argument("--size", type=parse_size, default=None, help="bytes to send instead")
    p.add_argument("--datagram-size", type=int, default=None,
                   help="UDP payload bytes (default 1400; 1472 with --path emulated)")
    p.add_argument("--no-gso", action="store_true", help="plain sendto/recvfrom (no GSO/GRO)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action="store_true", help="live progress even without a tty")
    p.add_argument("-q", "--quiet", action="store_true", help="no live progress")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser(
        "bench", help="throughput benchmark (loopback by default; 'server' / 'client HOST:PORT')"
    )
    _add_common(bench)
    bench.add_argument("--compare", default="",
                       help="also run peers: tcp,aioquic (with --path emulated: "
                            "tcp-cubic,tcp-bbr)")
    bench.add_argument("--path", choices=("local", "emulated"), default="local",
                       help="local: loopback, through the UDP impairment relay when "
                            "--loss/--delay/--rate are given; emulated: kernel-path emulator "
                            "(network namespaces + TUN, root) so kernel TCP shares the path")
    bench.add_argument("--seed", type=int, default=1, help="loss seed of the emulated path")
    bench.add_argument("--loss", type=parse_fraction, default=0.0,
                       help="route through an impairment relay losing this, each way (2%%)")
    bench.add_argument("--delay", type=parse_seconds, default=0.0,
                       help="relay's one-way delay (25ms)")
    bench.add_argument("--rate", type=parse_rate, default=None,
                       help="relay's bottleneck rate (50mbit; default unlimited)")
    bench.add_argument("--burst", type=float, default=1.0,
                       help="mean loss burst in packets (Gilbert-Elliott when > 1)")
    bench.set_defaults(func=_cmd_bench, role=None)
    roles = bench.add_subparsers(dest="role")
    server = roles.add_parser("server", help="serve benchmark clients (prints the public key)")
    _add_common(server)
    server.add_argument("--host", default="0.0.0.0")
    server.add_argument("--port", type=int, default=4433)
    server.add_argument("--key", help="private key file (default: a new key per run)")
    server.add_argument("--once", action="store_true", help="exit after one client")
    client = roles.add_parser("client", help="run one transfer against 'bench server'")
    _add_common(client)
    client.add_argument("address", type=parse_hostport, metavar="HOST:PORT")
    client.add_argument("--server-key", help="the server's public key (base64 or a .pub file)")
