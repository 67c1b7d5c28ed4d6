"""TUN-to-TUN relay process of the kernel-path emulator (see transport.emulate).

How this works
--------------
Started as ``python -m transport.emulate._relay`` by :class:`EmulatedPath`.
It asks the kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``),
``setns()``-es into namespace A and opens the persistent TUN device there,
then the same for B (a TUN file belongs to the namespace it was opened in),
prints ``ready`` and relays IP packets (on ``SIGUSR1`` it prints one JSON
line of its counters per direction): A -> B through the forward
:class:`~transport.sim.link.Link`, B -> A through the backward one -- the
simulator's loss/queue/rate/delay model fed with real time, exactly like
:mod:`transport.relay`. Loss is decided on arrival at the relay, i.e. on the
path, never on the sender's own egress (``EMULATION.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import heapq
import itertools
import json
import os
import select
import signal
import struct
import sys
import time
from typing import Any

from transport.sim.link import Link, Path
from transport.sim.loss import Bernoulli, GilbertElliott, LossModel

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


COUNTERS = ("packets_offered", "bytes_offered", "packets_dropped_loss", "packets_dropped_queue",
            "max_backlog_bytes")


def counters(link: Link) -> dict[str, int]:
    """The link's counters the emulator reports (``EmulatedPath.relay_counters``)."""
    return {name: int(getattr(link, name)) for name in COUNTERS}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns-a", required=True)
    ap.add_argument("--ns-b", required=True)
    ap.add_argument("--dev-a", required=True)
    ap.add_argument("--dev-b", required=True)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--rtt", type=float, default=0.0)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--loss-back", type=float, default=None)
    ap.add_argument("--queue-bdp", type=float, default=1.0)
    ap.add_argument("--burst", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:
        return 1
    with contextlib.suppress(OSError):
        os.nice(-10)  # keep RTT steady when both cores are busy (EMULATION.md)
    setns(f"/run/netns/{args.ns_a}")
    fd_a = open_tun(args.dev_a)
    setns(f"/run/netns/{args.ns_b}")
    fd_b = open_tun(args.dev_b)
    # TUN hands over whole IP packets: no header bytes to add (overhead 0), so
    # rate_bps is the IP-level rate, as configured.
    def model(p: float) -> LossModel | None:
        if p <= 0:
            return None
        return GilbertElliott.from_mean(p, args.burst) if args.burst > 1 else Bernoulli(p)

    built = Path.symmetric(
        args.rate or None,
        args.rtt,
        queue_bdp=args.queue_bdp,
        loss=model(args.loss),
        loss_backward="same" if args.loss_back is None else model(args.loss_back),
        overhead_bytes=0,
    )
    heap: list[tuple[Any, ...]] = []
    seq = itertools.count()
    fwd, bwd = built.forward, built.backward
    fwd._bind(heap, seq, args.seed, "emulate:fwd")
    bwd._bind(heap, seq, args.seed, "emulate:bwd")
    to_b, to_a = ("b", 0), ("a", 0)
    route_f, route_b = (fwd,), (bwd,)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def report(*_: object) -> None:
        print(json.dumps({name: counters(link) for name, link in (("forward", fwd),
                                                                  ("backward", bwd))}),
              flush=True)

    signal.signal(signal.SIGUSR1, report)
    print("ready", flush=True)
    t0 = time.monotonic()
    fds = [fd_a, fd_b]
    pop = heapq.heappop
    read, write = os.read, os.write
    while True:
        now = time.monotonic() - t0
        while heap and heap[0][0] <= now:
            entry = pop(heap)
            with contextlib.suppress(OSError):
                write(fd_b if entry[5] is to_b else fd_a, entry[3])
        timeout = 0.05 if not heap else min(0.05, max(heap[0][0] - now, 0.0))
        ready, _, _ = select.select(fds, [], [], timeout)
        now = time.monotonic() - t0
        for fd in ready:
            link, dst, route = (fwd, to_b, route_f) if fd == fd_a else (bwd, to_a, route_b)
            for _ in range(64):
                try:
                    data = read(fd, 65535)
                except BlockingIOError:
                    break
                link._offer(data, dst, dst, route, 0, now)


if __name__ == "__main__":
    sys.exit(main())
