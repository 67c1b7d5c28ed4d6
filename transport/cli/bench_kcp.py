"""The KCP peer of ``transport bench --compare kcp`` (the ``kcp`` package, ``bench`` extra).

How this works
--------------
KCP is a message ARQ over UDP with no encryption; the ``kcp`` package binds
its C core (``ikcp.c``) through Cython. Both ends run it in "turbo" mode, the
configuration KCP's own documentation gives for speed: no-delay, a 10 ms
internal clock, fast resend after 2 duplicate ACKs, congestion control off,
and send/receive windows of ``KCP_WINDOW`` segments, with segments sized to the
benchmark's ``--datagram-size``. Each side is one thread over a non-blocking
UDP socket: read every waiting datagram into ``receive``, feed the sender's
queue while it is below two windows, ``flush``, then ``update`` when KCP asks
for it.

The client sends ``KCP_MESSAGE_BYTES`` messages for ``--duration`` (or
``--size`` bytes), then a one-byte end marker; the server counts the bytes of
every longer message from the first byte to the marker and answers with the
same JSON report as the other peers (bytes, seconds, its CPU seconds), sent
back over KCP. Like every peer, it runs in the same invocation as ours.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import select
import socket
import time
from typing import Any

#: Segments in flight each way (KCP counts windows in segments).
KCP_WINDOW = 1024
#: Bytes per ``enqueue`` call: KCP splits a message into at most 255 segments.
KCP_MESSAGE_BYTES = 32 * 1024
#: KCP's internal clock in "turbo" mode (ms).
KCP_INTERVAL_MS = 10
_END = b"\x00"
_IDLE_LIMIT_S = 10.0


def unavailable() -> str | None:
    if importlib.util.find_spec("kcp") is None:
        return "the kcp package is not installed (pip install 'transport[bench]')"
    return None


def _new_kcp(datagram_size: int) -> Any:
    from kcp import KCP

    return KCP(
        conv_id=1,
        max_transmission=datagram_size,
        no_delay=True,
        update_interval=KCP_INTERVAL_MS,
        resend_count=2,
        no_congestion_control=True,
        send_window_size=KCP_WINDOW,
        receive_window_size=KCP_WINDOW,
    )


def _now_ms() -> int:
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


def _pump(sock: socket.socket, kcp: Any, wait_s: float) -> bool:
    """Feed every waiting datagram to KCP (after waiting up to ``wait_s``);
    True when something arrived."""
    readable, _, _ = select.select([sock], [], [], wait_s)
    if not readable:
        return False
    arrived = False
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return arrived
        kcp.receive(data)
        arrived = True


def serve(opts: dict[str, Any], pipe: Any, cpu_seconds: Any) -> None:
    """The receiving side, in a child process: reports its port, then the transfer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((opts.get("host", "127.0.0.1"), 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setblocking(False)
    pipe.send(sock.getsockname()[1])
    kcp = _new_kcp(int(opts["datagram_size"]))
    peer: list[tuple[str, int]] = []
    kcp.include_outbound_handler(lambda _k, data: sock.sendto(bytes(data), peer[0]))
    # the first datagram tells us where the client is
    while not peer:
        select.select([sock], [], [], _IDLE_LIMIT_S)
        data, addr = sock.recvfrom(65536)
        peer.append(addr)
        kcp.receive(data)
    cpu_start = cpu_seconds()
    received = 0
    first_s = time.monotonic()
    done = False
    while not done:
        for message in kcp.get_all_received():
            if len(message) == 1:
                done = True
                break
            received += len(message)
        if done:
            break
        kcp.flush()  # ACKs at once (no-delay)
        kcp.update(_now_ms())
        _pump(sock, kcp, KCP_INTERVAL_MS / 1000)
    seconds = max(time.monotonic() - first_s, 1e-9)
    report = {"bytes": received, "seconds": seconds, "cpu_seconds": cpu_seconds() - cpu_start}
    kcp.enqueue(json.dumps(report).encode())
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:  # until the client stops asking
        kcp.flush()
        kcp.update(_now_ms())
        if not _pump(sock, kcp, 0.2) and kcp.get_outbound_packets() == 0:
            break
    sock.close()


def client(address: tuple[str, int], opts: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The sending side: returns (the server's report, bytes sent)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    sock.connect(address)
    sock.setblocking(False)
    kcp = _new_kcp(int(opts["datagram_size"]))
    kcp.include_outbound_handler(lambda _k, data: _send(sock, data))
    chunk = bytes(KCP_MESSAGE_BYTES)
    size = opts.get("size")
    end_s = time.monotonic() + float(opts.get("duration") or 5.0)
    segments_per_message = -(-KCP_MESSAGE_BYTES // (int(opts["datagram_size"]) - 24))
    sent = 0
    sending = True
    reply = bytearray()
    give_up = time.monotonic() + float(opts.get("duration") or 5.0) + 60.0
    while time.monotonic() < give_up:
        if sending:
            while kcp.get_outbound_packets() < 2 * KCP_WINDOW - segments_per_message:
                remaining = None if size is None else int(size) - sent
                if (remaining is not None and remaining <= 0) or (
                    size is None and time.monotonic() >= end_s
                ):
                    kcp.enqueue(_END)
                    sending = False
                    break
                part = chunk if remaining is None or remaining >= len(chunk) else chunk[:remaining]
                if len(part) < 2:
                    part = bytes(2)  # a one-byte message is the end marker
                kcp.enqueue(part)
                sent += len(part)
        kcp.flush()
        kcp.update(_now_ms())
        _pump(sock, kcp, 0.0 if sending else KCP_INTERVAL_MS / 1000)
        for message in kcp.get_all_received():
            reply += message
        if reply:
            break
    sock.close()
    if not reply:
        raise RuntimeError("kcp: no report from the server")
    return json.loads(bytes(reply)), sent


def _send(sock: socket.socket, data: bytes | bytearray) -> None:
    with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
        sock.send(data)  # a full socket buffer is a loss; KCP resends
