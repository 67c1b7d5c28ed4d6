"""Kernel-path emulator: two network namespaces joined through TUN devices and a relay.

How this works
--------------
:class:`EmulatedPath` (a context manager; Linux, root) creates namespaces
``tpemu<pid>a`` / ``tpemu<pid>b`` (prefix :data:`PREFIX`), a persistent TUN
device in each with address ``10.77.0.1`` / ``10.77.0.2`` (/24, set before
the relay starts), loopback up, and starts the relay process
(:mod:`transport.emulate._relay`) which ``setns()``-es into each namespace
before opening its TUN device and then applies the simulator's path model
(loss on arrival, FIFO bottleneck at ``rate_bps`` with a byte queue, delay)
in real time. Nothing in the root namespace is touched; deleting the two
namespaces removes every device.

Cleanup: on exit and on error (``__exit__``), on SIGTERM (a handler that
raises ``SystemExit`` in the parent), and -- for SIGKILL of the parent -- at
the next start: namespaces with the prefix whose owner pid is no longer
alive are deleted. The relay dies with its parent (``PR_SET_PDEATHSIG``).

``relay_counters()`` asks the relay for its per-direction counters (loss and
queue drops, deliveries). ``run(side, argv)`` runs a command in namespace ``"a"`` or ``"b"`` (``ip
netns exec``); ``popen`` starts one in the background. ``python -m
transport.emulate --rate 50mbit --delay 25ms --loss 2% -- CMD`` runs CMD in
namespace A while B is reachable at 10.77.0.2 (``{a}``/``{b}`` in CMD are
replaced by the namespace names).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from types import FrameType
from typing import Any

from transport.errors import ConfigurationError, InvalidStateError

__all__ = ["ADDR_A", "ADDR_B", "PREFIX", "EmulatedPath", "cleanup_stale", "is_supported"]

PREFIX = "tpemu"
ADDR_A = "10.77.0.1"
ADDR_B = "10.77.0.2"


def is_supported() -> tuple[bool, str]:
    """(True, "") when this process can build emulated paths, else (False, reason)."""
    if sys.platform != "linux":
        return False, "the kernel-path emulator needs Linux"
    if os.geteuid() != 0:
        return False, "the kernel-path emulator needs root (network namespaces, TUN)"
    if not os.path.exists("/dev/net/tun"):
        return False, "/dev/net/tun is missing"
    if subprocess.run(["ip", "-V"], capture_output=True).returncode != 0:
        return False, "iproute2 (ip) is missing"
    return True, ""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Delete emulator namespaces whose owning process is gone; returns their names."""
    out = _ip("netns", "list", check=False).stdout
    removed = []
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{PREFIX}(\d+)[ab]", name)
        if match and not _alive(int(match.group(1))):
            _ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


class EmulatedPath:
    """Two namespaces joined by a relay applying rate, delay, loss and queue.

    ``delay_s`` is one-way (RTT = 2 x delay); ``loss`` applies both ways
    unless ``loss_backward`` (B -> A) is given. ``burst`` > 1 makes the loss
    Gilbert-Elliott with that mean burst length (packets) instead of Bernoulli.
    """

    def __init__(
        self,
        *,
        rate_bps: float | None = 50e6,
        delay_s: float = 0.025,
        loss: float = 0.0,
        loss_backward: float | None = None,
        queue_bdp: float = 1.0,
        burst: float = 1.0,
        seed: int = 0,
        tag: str = "",
    ) -> None:
        if not 0.0 <= loss < 1.0 or delay_s < 0 or (rate_bps is not None and rate_bps <= 0):
            raise ConfigurationError("need 0 <= loss < 1, delay_s >= 0, rate_bps > 0 or None")
        if loss_backward is not None and not 0.0 <= loss_backward < 1.0:
            raise ConfigurationError("need 0 <= loss_backward < 1")
        if not burst >= 1.0:
            raise ConfigurationError("burst (mean loss burst in packets) must be >= 1")
        self.rate_bps = rate_bps
        self.delay_s = delay_s
        self.loss = loss
        self.loss_backward = loss if loss_backward is None else loss_backward
        self.queue_bdp = queue_bdp
        self.burst = burst
        self.seed = seed
        base = f"{PREFIX}{os.getpid()}{tag}"
        self.ns = {"a": base + "a", "b": base + "b"}
        self.addr = {"a": ADDR_A, "b": ADDR_B}
        self._relay: subprocess.Popen[str] | None = None
        self._old_term: Any = None

    # ------------------------------------------------------------ set-up --
    def __enter__(self) -> EmulatedPath:
        ok, why = is_supported()
        if not ok:
            raise InvalidStateError(why)
        cleanup_stale()
        self._old_term = signal.getsignal(signal.SIGTERM)
        if threading_main():
            signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.close()
        raise SystemExit(128 + signum)

    def _setup(self) -> None:
        for side, dev in (("a", "tuna"), ("b", "tunb")):
            ns = self.ns[side]
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "tuntap", "add", "dev", dev, "mode", "tun")
            _ip("-n", ns, "addr", "add", f"{self.addr[side]}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        cmd = [
            sys.executable,
            "-m",
            "transport.emulate._relay",
            "--ns-a",
            self.ns["a"],
            "--ns-b",
            self.ns["b"],
            "--dev-a",
            "tuna",
            "--dev-b",
            "tunb",
            "--rate",
            str(self.rate_bps or 0),
            "--rtt",
            str(2 * self.delay_s),
            "--loss",
            str(self.loss),
            "--loss-back",
            str(self.loss_backward),
            "--queue-bdp",
            str(self.queue_bdp),
            "--burst",
            str(self.burst),
            "--seed",
            str(self.seed),
        ]
        self._relay = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self._relay.stdout is not None
        line = self._relay.stdout.readline()
        if line.strip() != "ready":
            raise InvalidStateError(f"emulator relay failed to start (exit {self._relay.poll()})")

    def close(self) -> None:
        if self._relay is not None:
            if self._relay.poll() is None:
                self._relay.terminate()
                try:
                    self._relay.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    self._relay.kill()
                    self._relay.wait()
            self._relay = None
        for ns in self.ns.values():
            _ip("netns", "del", ns, check=False)
        if self._old_term is not None and threading_main():
            signal.signal(signal.SIGTERM, self._old_term)
            self._old_term = None

    # ----------------------------------------------------------- running --
    def relay_counters(self) -> dict[str, dict[str, int]]:
        """The relay's counters so far, per direction (``forward`` = A -> B):
        packets offered, dropped by the loss model, dropped by the queue and
        the largest backlog in bytes."""
        relay = self._relay
        if relay is None or relay.stdout is None or relay.poll() is not None:
            raise InvalidStateError("the emulated path is not running")
        relay.send_signal(signal.SIGUSR1)
        line = relay.stdout.readline()
        if not line:
            raise InvalidStateError("the emulator relay ended")
        result: dict[str, dict[str, int]] = json.loads(line)
        return result

    @property
    def relay_pid(self) -> int | None:
        return None if self._relay is None else self._relay.pid

    def _argv(self, side: str, argv: list[str]) -> list[str]:
        if side not in self.ns:
            raise ConfigurationError("side must be 'a' or 'b'")
        return ["ip", "netns", "exec", self.ns[side], *argv]

    def run(self, side: str, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` in namespace ``side`` and wait (kwargs go to subprocess.run)."""
        return subprocess.run(self._argv(side, argv), **kwargs)

    def popen(self, side: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self._argv(side, argv), **kwargs)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
