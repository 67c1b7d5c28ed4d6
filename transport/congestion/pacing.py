"""A token-bucket pacer sized for batched (GSO) sends.

How this works
--------------
Pacing spreads a window's worth of packets over a round trip instead of
sending them back to back (RFC 9002 §7.7). Per-packet timers are far too
expensive for a Python core, so the pacer hands out *bursts*:

* The bucket holds up to ``max_burst_bytes`` tokens (one GSO batch, e.g.
  16 x 1400 B) and refills at the controller's ``pacing_rate_bps``.
* ``can_send(size_bytes, now)`` is true while the bucket holds at least
  ``size_bytes`` tokens; ``on_sent`` takes them out (the bucket may go
  slightly negative: a debt repaid before the next send).
* When the bucket runs dry the driver asks ``next_send_time(size_bytes,
  now)``: the absolute time at which a whole *quantum* is available --
  ``max(size_bytes, min(max_burst_bytes, rate * quantum_s))``, about one
  millisecond of data (Linux fq / TSO autosizing use the same idea). So a
  fast flow wakes up once per ~1 ms for a batch of packets, a slow one once
  per packet, and no flow ever needs a timer per packet. Sends triggered by
  ACK arrivals need no timer at all.
* A rate of ``None`` means "no pacing": everything may go now.

After an idle period the bucket is full, so a flow restarting from idle
may send one burst at once -- never more than ``max_burst_bytes``.

A timer that fires late must not lower the rate, though. When the sender
stops *because of the pacer* (it had data and window: :meth:`on_blocked`),
the wait that follows is the pacer's own, and a driver that wakes up late
(a loaded machine, a busy interpreter) is owed the tokens of the whole wait:
the next refill may exceed ``max_burst_bytes`` by up to ``CATCH_UP_S`` of
data (never more than the burst cap). Without it a late wake-up that passed
the bucket's depth (16 packets: 3.8 ms at 50 Mbit/s) threw tokens away, and
on a shared 2-core machine the emulated 50 Mbit/s path lost 1-3 % of the
pacing rate that way. After any other stop (application- or window-limited)
the bucket keeps its usual depth, so an idle flow still restarts with one
burst at most.

Window-based controllers (NewReno, CUBIC) derive their rate from the window:
:func:`window_pacing_rate_bps` = ``gain * cwnd / srtt`` (RFC 9002 §7.7
suggests gain 1.25; slow start uses 2 so pacing does not slow the doubling).
"""

from __future__ import annotations

import math

from ..errors import ConfigurationError

__all__ = [
    "CATCH_UP_S",
    "DEFAULT_BURST_PACKETS",
    "DEFAULT_QUANTUM_S",
    "MAX_BURST_PACKETS",
    "Pacer",
    "window_pacing_rate_bps",
]

#: Default bucket depth in packets (one GSO batch).
DEFAULT_BURST_PACKETS = 16
#: At high rates a burst may grow to one quantum of data, up to this many
#: packets (one large GSO batch); at 1 Gbit/s 1 ms is ~89 packets of 1400 B.
MAX_BURST_PACKETS = 64
#: Time worth of data released per timer wake-up (before the burst cap).
DEFAULT_QUANTUM_S = 0.001
#: Longest wait a late wake-up is compensated for after a pacer-blocked stop
#: (the burst it allows is also bounded by the burst cap).
CATCH_UP_S = 0.010
#: A packet short of this many tokens goes now (absorbs float rounding), and a
#: deadline is at least ``_MIN_WAIT_S`` ahead: a timer never re-fires at the
#: same instant without progress.
_SLACK_BYTES = 1.0
_MIN_WAIT_S = 1e-6
#: Smallest RTT used to derive a rate from a window (avoids a division by ~0).
_MIN_RTT_FOR_RATE_S = 1e-4


def window_pacing_rate_bps(cwnd_bytes: float, srtt_s: float, gain: float = 1.25) -> float:
    """RFC 9002 §7.7: ``gain * cwnd / srtt`` in bits per second (positive, finite)."""
    if srtt_s < _MIN_RTT_FOR_RATE_S:
        srtt_s = _MIN_RTT_FOR_RATE_S
    rate_bps = gain * cwnd_bytes * 8.0 / srtt_s
    return rate_bps if rate_bps > 1.0 else 1.0


class Pacer:
    """Token bucket releasing bursts of at most ``max_burst_bytes``.

    All sizes bytes, times absolute seconds, rates bits per second. The
    pacer never reads a clock: every call takes ``now``.
    """

    __slots__ = (
        "_blocked",
        "_burst_cap_bytes",
        "_last_s",
        "_min_burst_bytes",
        "_rate_bytes_per_s",
        "_tokens_bytes",
        "max_burst_bytes",
        "quantum_s",
    )

    def __init__(
        self,
        max_burst_bytes: int,
        *,
        quantum_s: float = DEFAULT_QUANTUM_S,
        burst_cap_bytes: int | None = None,
    ) -> None:
        if max_burst_bytes < 1:
            raise ConfigurationError("max_burst_bytes must be positive")
        if not quantum_s > 0.0:
            raise ConfigurationError("quantum_s must be positive")
        self.max_burst_bytes = max_burst_bytes
        #: bursts never shrink below this; with ``burst_cap_bytes`` they grow to
        #: one quantum of data at the current rate, up to the cap
        self._min_burst_bytes = max_burst_bytes
        self._burst_cap_bytes = max(burst_cap_bytes or max_burst_bytes, max_burst_bytes)
        self.quantum_s = quantum_s
        self._tokens_bytes = float(max_burst_bytes)
        self._rate_bytes_per_s: float | None = None
        self._last_s = 0.0
        #: the sender stopped for want of tokens and is waiting for them
        self._blocked = False

    @property
    def pacing_rate_bps(self) -> float | None:
        """The rate in force (``None``: not pacing)."""
        rate = self._rate_bytes_per_s
        return None if rate is None else rate * 8.0

    @property
    def tokens_bytes(self) -> float:
        """Tokens as of the last call (may be slightly negative)."""
        return self._tokens_bytes

    def _refill(self, now: float) -> float:
        tokens = self._tokens_bytes
        elapsed_s = now - self._last_s
        if elapsed_s > 0.0:
            self._last_s = now
            rate = self._rate_bytes_per_s
            if rate is None:
                tokens = float(self.max_burst_bytes)
            else:
                tokens += rate * elapsed_s
                depth = float(self.max_burst_bytes)
                if self._blocked:  # a late wake-up keeps the tokens of its wait
                    owed = rate * CATCH_UP_S
                    if owed > self._burst_cap_bytes:
                        owed = float(self._burst_cap_bytes)
                    if owed > depth:
                        depth = owed
                if tokens > depth:
                    tokens = depth
            self._tokens_bytes = tokens
            self._blocked = False
        return tokens

    def update(self, pacing_rate_bps: float | None, now: float) -> None:
        """Set the rate from ``now`` on (tokens earned so far use the old rate)."""
        self._refill(now)
        if pacing_rate_bps is None:
            self._rate_bytes_per_s = None
            return
        if not 0.0 < pacing_rate_bps < math.inf:
            raise ConfigurationError(f"pacing rate must be positive and finite: {pacing_rate_bps}")
        rate = self._rate_bytes_per_s = pacing_rate_bps / 8.0
        burst = rate * self.quantum_s
        if burst < self._min_burst_bytes:
            burst = self._min_burst_bytes
        elif burst > self._burst_cap_bytes:
            burst = self._burst_cap_bytes
        self.max_burst_bytes = int(burst)

    def can_send(self, size_bytes: int, now: float) -> bool:
        """True if a packet of ``size_bytes`` may leave at ``now``."""
        if self._rate_bytes_per_s is None:
            return True
        return self._refill(now) + _SLACK_BYTES >= size_bytes

    def on_sent(self, size_bytes: int, now: float) -> None:
        """A packet of ``size_bytes`` left at ``now``."""
        self._refill(now)
        if self._rate_bytes_per_s is not None:
            self._tokens_bytes -= size_bytes

    def on_blocked(self) -> None:
        """The sender has data and window but too few tokens: it waits for the
        pacer, so the next refill credits the whole wait (up to ``CATCH_UP_S``
        of data, see the module notes) even if the wake-up comes late."""
        if self._rate_bytes_per_s is not None:
            self._blocked = True

    def next_send_time(self, size_bytes: int, now: float) -> float:
        """Absolute time at which sending may resume: ``now`` if a packet of
        ``size_bytes`` may go now, else when a whole quantum has accrued."""
        rate = self._rate_bytes_per_s
        if rate is None:
            return now
        tokens = self._refill(now)
        if tokens + _SLACK_BYTES >= size_bytes:
            return now
        want = rate * self.quantum_s
        if want > self.max_burst_bytes:
            want = float(self.max_burst_bytes)
        if want < size_bytes:
            want = float(size_bytes)
        wait_s = (want - tokens) / rate
        return now + (wait_s if wait_s > _MIN_WAIT_S else _MIN_WAIT_S)
