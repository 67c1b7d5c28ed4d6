"""Bulk-flow probes for the emulated path: kernel TCP and this transport.

How this works
--------------
``python -m transport.emulate.flows`` runs one side of a timed bulk transfer;
the emulator benchmark and the fidelity tests start the receiver in namespace
B and the sender in namespace A (``EmulatedPath.popen``).

* ``tcp-recv PORT SECONDS [--quickack]`` / ``tcp-send HOST PORT SECONDS --cc cubic|bbr``:
  kernel TCP, the congestion controller chosen per socket with
  ``setsockopt(IPPROTO_TCP, TCP_CONGESTION)``; ``--quickack`` re-arms
  ``TCP_QUICKACK`` after every read so the receiver acknowledges each segment
  instead of every other one (the Mathis formula's C = 1.22 assumes that).
* ``ours-recv PORT SECONDS --key PRIVATE`` / ``ours-send HOST PORT SECONDS
  --server-key PUBLIC [--cc NAME]``: this transport through the threaded API
  (:mod:`transport.threaded`), Noise security with keys made per run, a
  4 MiB stream send buffer (:data:`SEND_BUFFER_BYTES`, as kernel TCP's).

The *receiver* measures: from its first byte it reads for ``SECONDS``, notes
the byte count the first time ``WARMUP_S`` (2 s) have passed and at the end,
prints one JSON line ``{"bytes", "seconds", "goodput_bps", "cpu_s", ...}`` where
goodput covers the window from the warm-up mark to the end, and closes the
connection. Measuring on the receiver's clock over a fixed window keeps the
figures independent of how much data the sender still has buffered when the
run stops (a kernel send buffer can hold seconds of data at 1 Mbit/s). The
sender writes until the receiver hangs up or ``SECONDS + 15`` have passed.

:func:`run_flows` runs such pairs over an :class:`~transport.emulate.EmulatedPath`
(receivers first, then the senders) and collects the reports.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from transport.emulate import ADDR_B
from transport.errors import ConfigurationError, InvalidStateError

if TYPE_CHECKING:
    from transport.emulate import EmulatedPath

WARMUP_S = 2.0
#: How often run_flows reads the relay's counters while flows run.
COUNTER_SAMPLE_S = 0.25
CHUNK_BYTES = 64 * 1024
READ_BYTES = 256 * 1024
#: Our sender's stream send buffer: the kernel's largest TCP send buffer here
#: (``tcp_wmem`` max, 4 MiB), so both keep the same backlog for retransmissions.
SEND_BUFFER_BYTES = 4 * 1024 * 1024


class _Meter:
    """Byte counter with a warm-up mark (receiver's clock)."""

    __slots__ = ("first", "last", "total", "warm_bytes", "warm_t")

    def __init__(self) -> None:
        self.first = 0.0
        self.warm_t = 0.0
        self.warm_bytes = 0
        self.total = 0
        self.last = 0.0

    def add(self, n: int, now: float) -> None:
        if not self.total:
            self.first = now
        self.total += n
        self.last = now
        if not self.warm_t and now - self.first >= WARMUP_S:
            self.warm_t, self.warm_bytes = now, self.total

    def report(self, **extra: Any) -> dict[str, Any]:
        span = self.last - self.warm_t if self.warm_t else 0.0
        window = self.total - self.warm_bytes
        return {
            "bytes": self.total,
            "seconds": round(self.last - self.first, 4),
            "window_s": round(span, 4),
            "window_bytes": window if span > 0 else 0,
            # time.monotonic() stamps of the goodput window (one clock for every
            # namespace), so the caller can line up the relay's byte counters
            "t_warm": self.warm_t,
            "t_last": self.last,
            "goodput_bps": round(window * 8 / span, 1) if span > 0 else 0.0,
            **extra,
        }


def udp_receive_errors() -> dict[str, int]:
    """This namespace's UDP ``RcvbufErrors`` / ``InErrors`` (``/proc/net/snmp``):
    datagrams the kernel dropped because a socket's receive buffer was full."""
    try:
        with open("/proc/net/snmp") as fh:
            rows = [line.split() for line in fh if line.startswith("Udp:")]
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    fields = dict(zip(rows[0][1:], rows[1][1:], strict=False))
    return {"udp_rcvbuf_errors": int(fields.get("RcvbufErrors", 0)),
            "udp_in_errors": int(fields.get("InErrors", 0))}


def tcp_recv(port: int, seconds: float, quickack: bool = False) -> dict[str, Any]:
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("0.0.0.0", port))
    lsock.listen(1)
    print("up", flush=True)
    conn, _ = lsock.accept()
    conn.settimeout(1.0)
    meter = _Meter()
    buf = bytearray(READ_BYTES)
    while True:
        try:
            n = conn.recv_into(buf)
        except TimeoutError:
            n = -1
        now = time.monotonic()
        if n == 0:
            break
        if n > 0:
            meter.add(n, now)
            if quickack:  # acknowledge every segment (the Mathis model's b = 1)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        if meter.total and now - meter.first >= seconds:
            break
    cc = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode()
    conn.close()
    lsock.close()
    return meter.report(receiver_cc=cc)


def tcp_send(host: str, port: int, seconds: float, cc: str) -> dict[str, Any]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
    sock.connect((host, port))
    used = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode()
    chunk = bytes(CHUNK_BYTES)
    sock.settimeout(1.0)
    deadline = time.monotonic() + seconds + 15.0
    sent = 0
    while time.monotonic() < deadline:
        try:
            sent += sock.send(chunk)
        except TimeoutError:
            continue
        except OSError:
            break
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    sock.close()
    # struct tcp_info: 8 one-byte fields, then u32s; tcpi_rtt (us) is the 16th.
    srtt_us, retrans = struct.unpack_from("=I", info, 68)[0], info[2]
    return {"sent_bytes": sent, "cc": used, "srtt_ms": srtt_us / 1000, "retransmits": retrans}


def _noise_config(**kwargs: Any) -> Any:
    from transport.config import Config

    return Config(security="noise", **kwargs)


def ours_recv(port: int, seconds: float, key: str, datagram_size: int,
              fec: str = "off", cid_length: int = 8) -> dict[str, Any]:
    from transport.crypto.keys import KeyPair, load_private_key, public_key_from_private
    from transport.threaded import listen

    private = load_private_key(key)
    config = _noise_config(static_key=KeyPair(private, public_key_from_private(private)),
                           max_datagram_size=datagram_size, fec=fec,
                           connection_id_length=cid_length)
    listener = listen(("0.0.0.0", port), config=config)
    print("up", flush=True)
    stream, _ = listener.accept(timeout=30.0)
    stream.settimeout(1.0)
    meter = _Meter()
    while True:
        try:
            data = stream.recv(READ_BYTES)
        except TimeoutError:
            data = None
        now = time.monotonic()
        if data == b"":
            break
        if data:
            meter.add(len(data), now)
        if meter.total and now - meter.first >= seconds:
            break
    with contextlib.suppress(Exception):
        stream.connection.close(0, "done", graceful=False)
    with contextlib.suppress(Exception):
        listener.close(0, "done")
    return meter.report(**udp_receive_errors())


def ours_send(host: str, port: int, seconds: float, server_key: str,
              cc: str | None, datagram_size: int, fec: str = "off",
              send_buffer_bytes: int = SEND_BUFFER_BYTES,
              cid_length: int = 8) -> dict[str, Any]:
    from transport.congestion import controllers
    from transport.crypto.keys import load_public_key
    from transport.threaded import connect

    kwargs: dict[str, Any] = {"server_public_key": load_public_key(server_key),
                              "max_datagram_size": datagram_size, "fec": fec,
                              "stream_send_buffer_bytes": send_buffer_bytes,
                              "connection_id_length": cid_length}
    if cc:
        kwargs["congestion_control"] = controllers[cc]
    stream = connect((host, port), config=_noise_config(**kwargs), timeout=10.0)
    stream.settimeout(1.0)
    chunk = bytes(CHUNK_BYTES)
    deadline = time.monotonic() + seconds + 15.0
    sent = 0
    while time.monotonic() < deadline:
        try:
            stream.sendall(chunk)
            sent += len(chunk)
        except TimeoutError:
            continue
        except Exception:  # the receiver hung up: the run is over
            break
    stats = stream.connection.stats()
    with contextlib.suppress(Exception):
        stream.close(linger_s=0.0)
    return {"sent_bytes": sent, "cc": cc or "default", "packets_sent": stats.packets_sent,
            "packets_lost": stats.packets_lost,
            "srtt_ms": round(stats.smoothed_rtt_s * 1000, 2)}


def relay_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 for None)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _delta(after: dict[str, dict[str, int]],
           before: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {d: {k: v if k.startswith("max_") else v - before[d][k] for k, v in c.items()}
            for d, c in after.items()}


def run_flows(path: EmulatedPath, kind: str, seconds: float, *, port: int = 5001,
              count: int = 1, datagram_size: int = 1472, quickack: bool = False,
              cc: str | None = None, fec: str = "off", nice: int = 0,
              send_buffer_bytes: int = SEND_BUFFER_BYTES,
              cid_length: int = 8) -> list[dict[str, Any]]:
    """Run ``count`` concurrent flows A -> B over ``path`` and return their reports.

    ``kind``: ``"tcp-cubic"``, ``"tcp-bbr"`` (any ``tcp-<cc>``) or ``"ours"``
    (Noise keys generated here, one pair per flow; ``cc`` names our controller,
    default the Config default; ``fec`` is ``Config.fec``; ``cid_length`` is
    ``Config.connection_id_length`` on both sides). ``nice`` runs every
    flow process at that niceness (root may go below 0), so that other jobs on
    a shared machine delay them less. Each report is the
    receiver's (``goodput_bps`` from 2 s to the end) plus ``"sender"`` (the
    sender's JSON), ``"relay_cpu_pct"`` (the relay's CPU share meanwhile) and
    ``"relay"`` (the relay's counters for the flows' lifetime, per direction:
    packets and bytes offered, loss and queue drops; ``max_backlog_bytes`` is
    since the start).
    """
    py = [sys.executable, "-m", "transport.emulate.flows"]
    if nice:
        py = ["nice", "-n", str(nice), *py]
    recv_argv: list[list[str]] = []
    send_argv: list[list[str]] = []
    for i in range(count):
        where = [str(port + i), str(seconds)]
        if kind == "ours":
            from transport.crypto.keys import (
                generate_keypair,
                private_key_to_raw,
                public_key_to_raw,
            )

            keys = generate_keypair()
            size = ["--datagram-size", str(datagram_size), "--fec", fec,
                    "--cid-length", str(cid_length)]
            recv_argv.append(["ours-recv", *where, "--key", private_key_to_raw(keys.private),
                              *size])
            send_argv.append(["ours-send", ADDR_B, *where, "--server-key",
                              public_key_to_raw(keys.public), *size,
                              "--send-buffer", str(send_buffer_bytes),
                              *(["--cc", cc] if cc else [])])
        elif kind.startswith("tcp-"):
            recv_argv.append(["tcp-recv", *where, *(["--quickack"] if quickack else [])])
            send_argv.append(["tcp-send", ADDR_B, *where, "--cc", kind[4:]])
        else:
            raise ConfigurationError(f"unknown flow kind {kind!r}")
    procs: list[subprocess.Popen[str]] = []
    try:
        receivers = [path.popen("b", [*py, *argv], stdout=subprocess.PIPE, text=True)
                     for argv in recv_argv]
        procs += receivers
        for proc in receivers:
            if proc.stdout is None or proc.stdout.readline().strip() != "up":
                raise InvalidStateError(f"{kind} receiver failed to start")
        counters0 = path.relay_counters()
        cpu0, t0 = relay_cpu_s(path.relay_pid), time.monotonic()
        senders = [path.popen("a", [*py, *argv], stdout=subprocess.PIPE, text=True)
                   for argv in send_argv]
        procs += senders
        # the relay's counters over time, to line up with the goodput window
        samples = [(t0, counters0)]
        give_up = t0 + seconds + 60
        while any(p.poll() is None for p in receivers) and time.monotonic() < give_up:
            time.sleep(COUNTER_SAMPLE_S)
            samples.append((time.monotonic(), path.relay_counters()))
        outs = [proc.communicate(timeout=seconds + 60)[0] for proc in receivers]
        cpu_pct = round(100 * (relay_cpu_s(path.relay_pid) - cpu0) / (time.monotonic() - t0), 1)
        counters = _delta(path.relay_counters(), counters0)
        sent = [proc.communicate(timeout=30)[0] for proc in senders]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    reports = []
    for out_r, out_s in zip(outs, sent, strict=True):
        report: dict[str, Any] = json.loads(out_r.strip().splitlines()[-1])
        report["sender"] = json.loads(out_s.strip().splitlines()[-1]) if out_s.strip() else None
        report["relay_cpu_pct"] = cpu_pct
        report["relay"] = counters
        if count == 1:
            report["wire_bytes_per_delivered_byte"] = window_wire_ratio(report, samples)
        reports.append(report)
    return reports


def window_wire_ratio(report: dict[str, Any],
                      samples: list[tuple[float, dict[str, dict[str, int]]]]) -> float | None:
    """IP bytes offered to the forward path during the receiver's goodput
    window (the relay's counter, interpolated between samples) per byte the
    receiver got in that window: headers, retransmissions and probes count,
    the handshake and the sender's tail after the receiver stopped do not."""
    t_warm, t_last = report.get("t_warm") or 0.0, report.get("t_last") or 0.0
    if not report.get("window_bytes") or not t_warm or len(samples) < 2:
        return None

    def offered_at(t: float) -> float:
        for (ta, ca), (tb, cb) in itertools.pairwise(samples):
            if ta <= t <= tb:
                a = ca["forward"]["bytes_offered"]
                b = cb["forward"]["bytes_offered"]
                return a + (b - a) * ((t - ta) / (tb - ta) if tb > ta else 0.0)
        raise ValueError("outside the sampled span")

    try:
        wire = offered_at(t_last) - offered_at(t_warm)
    except ValueError:
        return None
    return round(wire / report["window_bytes"], 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m transport.emulate.flows")
    ap.add_argument("role", choices=("tcp-recv", "tcp-send", "ours-recv", "ours-send"))
    ap.add_argument("args", nargs="+", help="[HOST] PORT SECONDS")
    ap.add_argument("--cc", default=None)
    ap.add_argument("--key", help="receiver's private key (ours-recv)")
    ap.add_argument("--server-key", help="receiver's public key (ours-send)")
    ap.add_argument("--quickack", action="store_true", help="tcp-recv: ACK every segment")
    ap.add_argument("--datagram-size", type=int, default=1400, help="our UDP payload size")
    ap.add_argument("--fec", default="off", help="our Config.fec")
    ap.add_argument("--cid-length", type=int, default=8, help="our Config.connection_id_length")
    ap.add_argument("--send-buffer", type=int, default=SEND_BUFFER_BYTES,
                    help="our stream send buffer in bytes (ours-send)")
    ns = ap.parse_args(argv)
    if ns.role.endswith("recv"):
        port, seconds = int(ns.args[0]), float(ns.args[1])
        out = tcp_recv(port, seconds, ns.quickack) if ns.role == "tcp-recv" else ours_recv(
            port, seconds, ns.key, ns.datagram_size, ns.fec, ns.cid_length)
    else:
        host, port, seconds = ns.args[0], int(ns.args[1]), float(ns.args[2])
        out = (tcp_send(host, port, seconds, ns.cc or "cubic") if ns.role == "tcp-send"
               else ours_send(host, port, seconds, ns.server_key, ns.cc,
                              ns.datagram_size, ns.fec, ns.send_buffer, ns.cid_length))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
