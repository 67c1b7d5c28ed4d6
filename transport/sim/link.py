"""One-direction simulated links and two-direction paths.

How this works
--------------
A :class:`Link` carries datagrams one way. Per offered datagram, in order:

1. **Drop filter** (optional scripted hook ``fn(data, now) -> bool``), then the
   **MTU** check (optional), then **loss** from the link's loss model --
   applied on arrival, before the queue, as the real-socket relay does
   (``EMULATION.md``).
2. **Duplication**: with probability ``duplicate_p`` a second copy follows
   the original into the queue (it may be tail-dropped on its own).
3. For each copy, the **FIFO bottleneck**: the copy occupies
   ``len(data) + overhead_bytes`` wire bytes (``overhead_bytes`` defaults to 28,
   the IPv4 + UDP headers, so ``rate_bps`` is an IP-level rate like a real
   link's). The backlog is the wire bytes of copies that have arrived and whose
   serialization has not finished (the one on the wire included); a copy that
   would push it past ``queue_bytes`` is tail-dropped. Otherwise it starts
   serializing at ``start = max(now, link_free)`` and finishes at
   ``link_free = start + wire_bytes * 8 / rate_bps``. Its queueing delay is
   ``start - now``. With ``rate_bps=None`` the link has infinite rate and no
   queue.
4. **Corruption**: with probability ``corrupt_p`` one random bit of one random
   byte of the copy is flipped.
5. **ECN**: every datagram carries its IP ECN codepoint (``transport.ecn``;
   the simulator moves it from sender to receiver). With ``aqm="codel"`` a
   packet CoDel would drop is marked CE instead when it is ECN-capable
   (ECT(0), ECT(1) or already CE) and enqueued; Not-ECT packets are dropped
   (RFC 8289 §5, RFC 3168). ``ecn_bleach=True`` models a path that clears
   the ECN bits (every datagram leaves as Not-ECT).
6. **Delivery** at ``link_free + delay_s + jitter``. With ``reorder=False``
   delivery times are clamped to never go backwards, so the link stays FIFO;
   with ``reorder=True`` a jittered copy may overtake earlier ones.

Every random decision draws from the link's own ``random.Random`` streams,
derived from the simulator seed and the link *name* (one stream each for loss,
jitter, duplication/corruption and the statistics reservoir), so adding a link
or changing one impairment never shifts the randomness of anything else.

Counters are plain integers on the link; :meth:`Link.stats` snapshots them
into a :class:`LinkStats`. Queueing delay is kept as count / sum / max plus a
bounded uniform reservoir of samples (Vitter's Algorithm L, so the per-packet
cost is one comparison once the reservoir is full).

A :class:`Path` is a pair of links (``forward`` a→b, ``backward`` b→a);
:meth:`Path.symmetric` builds the usual "rate, RTT, queue in BDPs, loss" path.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transport.errors import ConfigurationError, InvalidStateError
from transport.sim.jitter import Jitter, JitterSampler
from transport.sim.loss import NEVER_LOST, LossDecider, LossModel, NoLoss

__all__ = [
    "DEFAULT_OVERHEAD_BYTES",
    "MIN_QUEUE_BYTES",
    "Address",
    "CoDel",
    "DropFilter",
    "Link",
    "LinkStats",
    "Path",
    "bdp_bytes",
]

Address = tuple[str, int]
DropFilter = Callable[[bytes, float], bool]
"""Scripted drop hook: ``fn(data, now) -> True`` drops the datagram."""

DEFAULT_OVERHEAD_BYTES = 28
"""IPv4 (20) + UDP (8) header bytes added to each datagram for serialization."""

MIN_QUEUE_BYTES = 3000
"""Floor applied to BDP-derived queue sizes, so a tiny BDP still queues two packets."""

RESERVOIR_SIZE = 2048
"""Queueing-delay samples kept per link (uniform reservoir)."""

# Heap entry kind for a datagram in flight (shared with the simulator core).
PACKET_EVENT = 0

# Placeholder heap of links not yet adopted by a simulator (never used).
_UNBOUND_HEAP: list[tuple[Any, ...]] = []


def bdp_bytes(rate_bps: float, rtt_s: float) -> int:
    """Bandwidth-delay product in bytes: ``rate_bps / 8 * rtt_s``, rounded."""
    if not rate_bps > 0.0 or not rtt_s >= 0.0:
        raise ConfigurationError("bdp_bytes needs rate_bps > 0 and rtt_s >= 0")
    return round(rate_bps / 8.0 * rtt_s)


@dataclass(frozen=True, slots=True)
class LinkStats:
    """Snapshot of one link's counters. Byte counts are payload bytes (without
    ``overhead_bytes``); delays are seconds."""

    name: str
    packets_offered: int
    bytes_offered: int
    packets_dropped_filter: int
    packets_dropped_mtu: int
    packets_dropped_loss: int
    bytes_dropped_loss: int
    packets_dropped_queue: int
    bytes_dropped_queue: int
    packets_dropped_aqm: int
    packets_duplicated: int
    packets_corrupted: int
    packets_delivered: int
    bytes_delivered: int
    max_backlog_bytes: int
    queue_delay_count: int
    queue_delay_sum_s: float
    queue_delay_max_s: float
    queue_delay_samples: tuple[float, ...]
    #: ECN-capable packets the AQM marked CE instead of dropping
    packets_marked_ce: int = 0

    @property
    def queue_delay_mean_s(self) -> float:
        return self.queue_delay_sum_s / self.queue_delay_count if self.queue_delay_count else 0.0

    @property
    def loss_rate(self) -> float:
        """Fraction of offered packets dropped by the loss model."""
        return self.packets_dropped_loss / self.packets_offered if self.packets_offered else 0.0

    @property
    def packets_in_flight(self) -> int:
        """Copies accepted into the link and not yet delivered."""
        return (
            self.packets_offered
            + self.packets_duplicated
            - self.packets_dropped_filter
            - self.packets_dropped_mtu
            - self.packets_dropped_loss
            - self.packets_dropped_queue
            - self.packets_dropped_aqm
            - self.packets_delivered
        )


class Link:
    """One direction of a simulated path. See the module docstring for the model.

    Parameters (all keyword-only):

    * ``rate_bps`` -- serialization rate in bit/s at the IP level, ``None`` = infinite.
    * ``delay_s`` -- constant propagation delay.
    * ``queue_bytes`` -- drop-tail limit in wire bytes. ``None`` with a finite
      rate means one BDP for an RTT of ``2 * delay_s`` (floor ``MIN_QUEUE_BYTES``).
    * ``loss`` -- a :class:`~transport.sim.loss.LossModel` (default no loss).
    * ``jitter`` -- a :class:`~transport.sim.jitter.Jitter` (default none).
    * ``reorder`` -- let jittered copies overtake earlier ones.
    * ``duplicate_p`` / ``corrupt_p`` -- per-datagram / per-copy probabilities.
    * ``overhead_bytes`` -- header bytes added for serialization and queueing.
    * ``mtu_bytes`` -- drop payloads longer than this (``None`` = no limit).
    * ``name`` -- seeds the link's randomness; ``None`` lets the simulator name
      it after the first route it carries (``"10.0.0.1:1>10.0.0.2:2"``).
    * ``aqm`` -- ``None``/``"droptail"`` or ``"codel"`` (see :class:`CoDel`;
      it marks ECN-capable packets CE instead of dropping them).
    * ``ecn_bleach`` -- clear the ECN bits of every datagram.
    """

    __slots__ = (
        "_aqm",
        "_backlog_bytes",
        "_corrupt_p",
        "_delay_s",
        "_draw",
        "_duplicate_p",
        "_ecn_bleach",
        "_filter",
        "_heap",
        "_impair_rng",
        "_jitter",
        "_jitter_model",
        "_jitter_rng",
        "_last_delivery_s",
        "_link_free_s",
        "_loss_model",
        "_loss_rng",
        "_lost",
        "_mtu_bytes",
        "_name",
        "_overhead_bytes",
        "_queue",
        "_queue_bytes",
        "_rate_bps",
        "_reorder",
        "_res_next",
        "_res_rng",
        "_res_w",
        "_reservoir",
        "_s_per_byte",
        "_seq",
        "bytes_delivered",
        "bytes_dropped_loss",
        "bytes_dropped_queue",
        "bytes_offered",
        "max_backlog_bytes",
        "packets_corrupted",
        "packets_delivered",
        "packets_dropped_aqm",
        "packets_dropped_filter",
        "packets_dropped_loss",
        "packets_dropped_mtu",
        "packets_dropped_queue",
        "packets_duplicated",
        "packets_marked_ce",
        "packets_offered",
        "queue_delay_count",
        "queue_delay_max_s",
        "queue_delay_sum_s",
    )

    def __init__(
        self,
        *,
        rate_bps: float | None = None,
        delay_s: float = 0.0,
        queue_bytes: int | None = None,
        loss: LossModel | None = None,
        jitter: Jitter | None = None,
        reorder: bool = False,
        duplicate_p: float = 0.0,
        corrupt_p: float = 0.0,
        overhead_bytes: int = DEFAULT_OVERHEAD_BYTES,
        mtu_bytes: int | None = None,
        name: str | None = None,
        aqm: str | None = None,
        ecn_bleach: bool = False,
    ) -> None:
        if not delay_s >= 0.0:
            raise ConfigurationError(f"delay_s must be >= 0, not {delay_s!r}")
        for label, value in (("duplicate_p", duplicate_p), ("corrupt_p", corrupt_p)):
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"{label} must be within [0, 1], not {value!r}")
        if overhead_bytes < 0:
            raise ConfigurationError("overhead_bytes must be >= 0")
        if mtu_bytes is not None and mtu_bytes <= 0:
            raise ConfigurationError("mtu_bytes must be > 0")
        self._name = name
        self._delay_s = float(delay_s)
        self._rate_bps: float | None = None
        self._s_per_byte = 0.0
        self.set_rate(rate_bps)
        if queue_bytes is None:
            queue_bytes = (
                max(bdp_bytes(rate_bps, 2.0 * delay_s), MIN_QUEUE_BYTES)
                if rate_bps is not None
                else 0
            )
        elif queue_bytes <= 0:
            raise ConfigurationError("queue_bytes must be > 0")
        self._queue_bytes = int(queue_bytes)
        self._loss_model: LossModel = loss if loss is not None else NoLoss()
        self._jitter_model = jitter
        self._reorder = bool(reorder)
        self._duplicate_p = float(duplicate_p)
        self._corrupt_p = float(corrupt_p)
        self._overhead_bytes = int(overhead_bytes)
        self._mtu_bytes = mtu_bytes
        self._filter: DropFilter | None = None
        if aqm not in (None, "droptail", "codel"):
            raise ConfigurationError(f"aqm must be 'droptail' or 'codel', not {aqm!r}")
        self._aqm: CoDel | None = CoDel() if aqm == "codel" else None
        self._ecn_bleach = bool(ecn_bleach)
        # Bound by the simulator (see _bind).
        self._heap: list[tuple[Any, ...]] = _UNBOUND_HEAP
        self._seq: itertools.count[int] = itertools.count()
        self._lost: LossDecider | None = None
        self._jitter: JitterSampler | None = None
        self._loss_rng = self._jitter_rng = self._impair_rng = self._res_rng = random.Random(0)
        self._draw = self._impair_rng.random
        # Queue state.
        self._queue: deque[tuple[float, int]] = deque()
        self._backlog_bytes = 0
        self._link_free_s = 0.0
        self._last_delivery_s = 0.0
        # Counters.
        self.packets_offered = self.bytes_offered = 0
        self.packets_dropped_filter = self.packets_dropped_mtu = 0
        self.packets_dropped_loss = self.bytes_dropped_loss = 0
        self.packets_dropped_queue = self.bytes_dropped_queue = 0
        self.packets_dropped_aqm = 0
        self.packets_marked_ce = 0
        self.packets_duplicated = self.packets_corrupted = 0
        self.packets_delivered = self.bytes_delivered = 0
        self.max_backlog_bytes = 0
        self.queue_delay_count = 0
        self.queue_delay_sum_s = 0.0
        self.queue_delay_max_s = 0.0
        self._reservoir: list[float] = []
        self._res_w = 0.0
        self._res_next = 0

    # ------------------------------------------------------------ config --
    @property
    def name(self) -> str | None:
        return self._name

    @property
    def rate_bps(self) -> float | None:
        return self._rate_bps

    @property
    def delay_s(self) -> float:
        return self._delay_s

    @property
    def queue_bytes(self) -> int:
        return self._queue_bytes

    @property
    def overhead_bytes(self) -> int:
        return self._overhead_bytes

    @property
    def bound(self) -> bool:
        """True once a simulator has adopted the link."""
        return self._heap is not _UNBOUND_HEAP

    def set_rate(self, rate_bps: float | None) -> None:
        """Change the serialization rate (``None`` = infinite). Copies already
        queued keep their computed departure times; later arrivals use the new
        rate. Schedule it with ``sim.schedule`` for capacity changes."""
        if rate_bps is not None and not rate_bps > 0.0:
            raise ConfigurationError(f"rate_bps must be > 0 or None, not {rate_bps!r}")
        self._rate_bps = None if rate_bps is None else float(rate_bps)
        self._s_per_byte = 0.0 if rate_bps is None else 8.0 / float(rate_bps)

    def set_delay(self, delay_s: float) -> None:
        """Change the propagation delay for later arrivals (with
        ``reorder=False`` a shorter delay never lets packets overtake)."""
        if not delay_s >= 0.0:
            raise ConfigurationError(f"delay_s must be >= 0, not {delay_s!r}")
        self._delay_s = float(delay_s)

    def set_loss(self, loss: LossModel | None) -> None:
        """Replace the loss model (fresh state, same random stream)."""
        self._loss_model = loss if loss is not None else NoLoss()
        if self._heap is not _UNBOUND_HEAP:
            self._lost = self._make_decider()

    def set_mtu(self, mtu_bytes: int | None) -> None:
        """Change the largest datagram the link carries (None: no limit); larger
        ones are dropped silently from now on -- an MTU black hole."""
        if mtu_bytes is not None and mtu_bytes < 1:
            raise ConfigurationError("mtu_bytes must be positive or None")
        self._mtu_bytes = mtu_bytes

    def set_drop_filter(self, drop_filter: DropFilter | None) -> None:
        """Install (or clear) a scripted drop hook ``fn(data, now) -> bool``.
        Filtered datagrams count as ``packets_dropped_filter``."""
        self._filter = drop_filter

    def backlog_bytes(self, now: float) -> int:
        """Wire bytes queued or on the wire at ``now`` (read-only view)."""
        return self._backlog_bytes - sum(w for t, w in self._queue if t <= now)

    # ------------------------------------------------------------- stats --
    def stats(self) -> LinkStats:
        return LinkStats(
            name=self._name or "",
            packets_offered=self.packets_offered,
            bytes_offered=self.bytes_offered,
            packets_dropped_filter=self.packets_dropped_filter,
            packets_dropped_mtu=self.packets_dropped_mtu,
            packets_dropped_loss=self.packets_dropped_loss,
            bytes_dropped_loss=self.bytes_dropped_loss,
            packets_dropped_queue=self.packets_dropped_queue,
            bytes_dropped_queue=self.bytes_dropped_queue,
            packets_dropped_aqm=self.packets_dropped_aqm,
            packets_duplicated=self.packets_duplicated,
            packets_corrupted=self.packets_corrupted,
            packets_delivered=self.packets_delivered,
            bytes_delivered=self.bytes_delivered,
            max_backlog_bytes=self.max_backlog_bytes,
            queue_delay_count=self.queue_delay_count,
            queue_delay_sum_s=self.queue_delay_sum_s,
            queue_delay_max_s=self.queue_delay_max_s,
            queue_delay_samples=tuple(self._reservoir),
            packets_marked_ce=self.packets_marked_ce,
        )

    # ---------------------------------------------------------- internal --
    def _bind(
        self, heap: list[tuple[Any, ...]], seq: itertools.count[int], seed: int, name: str
    ) -> None:
        """Adopt the simulator's event heap and sequence; seed the streams."""
        if self._heap is not _UNBOUND_HEAP:
            if self._heap is not heap:
                raise InvalidStateError(f"link {self._name!r} already belongs to a simulator")
            return
        self._name = name
        self._heap = heap
        self._seq = seq
        self._loss_rng = random.Random(f"{seed}/{name}/loss")
        self._jitter_rng = random.Random(f"{seed}/{name}/jitter")
        self._impair_rng = random.Random(f"{seed}/{name}/impair")
        self._res_rng = random.Random(f"{seed}/{name}/reservoir")
        self._draw = self._impair_rng.random
        self._lost = self._make_decider()
        jitter = self._jitter_model
        self._jitter = jitter.sampler(self._jitter_rng) if jitter is not None else None

    def _make_decider(self) -> LossDecider | None:
        decider = self._loss_model.decider(self._loss_rng)
        return None if decider is NEVER_LOST else decider

    def _offer(
        self,
        data: bytes,
        src: Address,
        dst: Address,
        route: tuple[Link, ...],
        hop: int,
        now: float,
        ecn: int = 0,
    ) -> None:
        """A datagram arrives at the link's entrance at ``now`` (hot path);
        ``ecn`` is its ECN codepoint."""
        size = len(data)
        self.packets_offered += 1
        self.bytes_offered += size
        if self._filter is not None and self._filter(data, now):
            self.packets_dropped_filter += 1
            return
        if self._mtu_bytes is not None and size > self._mtu_bytes:
            self.packets_dropped_mtu += 1
            return
        lost = self._lost
        if lost is not None and lost():
            self.packets_dropped_loss += 1
            self.bytes_dropped_loss += size
            return
        if ecn and self._ecn_bleach:
            ecn = 0
        self._enqueue(data, size, src, dst, route, hop, now, ecn)
        if self._duplicate_p and self._draw() < self._duplicate_p:
            self.packets_duplicated += 1
            self._enqueue(data, size, src, dst, route, hop, now, ecn)

    def _enqueue(
        self,
        data: bytes,
        size: int,
        src: Address,
        dst: Address,
        route: tuple[Link, ...],
        hop: int,
        now: float,
        ecn: int = 0,
    ) -> None:
        if self._rate_bps is None:
            depart = now
            wait = 0.0
        else:
            wire = size + self._overhead_bytes
            queue = self._queue
            backlog = self._backlog_bytes
            while queue and queue[0][0] <= now:
                backlog -= queue.popleft()[1]
            if backlog + wire > self._queue_bytes:
                self._backlog_bytes = backlog
                self.packets_dropped_queue += 1
                self.bytes_dropped_queue += size
                return
            start = self._link_free_s
            if start < now:
                start = now
            if self._aqm is not None and self._aqm.drop(start - now, now):
                if not ecn:  # Not-ECT: drop; ECN-capable: mark CE and keep it
                    self._backlog_bytes = backlog
                    self.packets_dropped_aqm += 1
                    return
                ecn = 3
                self.packets_marked_ce += 1
            depart = start + wire * self._s_per_byte
            self._link_free_s = depart
            queue.append((depart, wire))
            backlog += wire
            self._backlog_bytes = backlog
            if backlog > self.max_backlog_bytes:
                self.max_backlog_bytes = backlog
            wait = start - now
        # Queueing-delay statistics: count/sum/max + Algorithm L reservoir.
        index = self.queue_delay_count
        self.queue_delay_count = index + 1
        self.queue_delay_sum_s += wait
        if wait > self.queue_delay_max_s:
            self.queue_delay_max_s = wait
        if index < RESERVOIR_SIZE:
            self._reservoir.append(wait)
            if index == RESERVOIR_SIZE - 1:
                self._res_w = math.exp(math.log(1.0 - self._res_rng.random()) / RESERVOIR_SIZE)
                self._res_next = index + self._reservoir_skip()
        elif index == self._res_next:
            rng = self._res_rng
            self._reservoir[rng.randrange(RESERVOIR_SIZE)] = wait
            self._res_w *= math.exp(math.log(1.0 - rng.random()) / RESERVOIR_SIZE)
            self._res_next = index + self._reservoir_skip()
        if self._corrupt_p and self._draw() < self._corrupt_p and size:
            rng = self._impair_rng
            buf = bytearray(data)
            buf[rng.randrange(size)] ^= 1 << rng.randrange(8)
            data = bytes(buf)
            self.packets_corrupted += 1
        at = depart + self._delay_s
        if self._jitter is not None:
            at += self._jitter()
        if not self._reorder:
            if at < self._last_delivery_s:
                at = self._last_delivery_s
            else:
                self._last_delivery_s = at
        heapq.heappush(
            self._heap, (at, next(self._seq), PACKET_EVENT, data, src, dst, route, hop, ecn)
        )

    def _reservoir_skip(self) -> int:
        """Gap (>= 1) to the next reservoir replacement (Algorithm L)."""
        w = self._res_w
        if w >= 1.0:
            return 1
        if w <= 0.0:
            return 1 << 62
        u = 1.0 - self._res_rng.random()
        return int(math.log(u) / math.log(1.0 - w)) + 1


class CoDel:
    """CoDel (RFC 8289) decided at enqueue time.

    The link is a FIFO with known departure times, so a packet's sojourn time
    is known when it arrives (``start - now``). CoDel's state machine runs on
    that value: once the sojourn has stayed above ``target_s`` for
    ``interval_s``, packets are dropped at the control-law spacing
    ``interval_s / sqrt(count)`` until the sojourn falls below target. The drop
    happens at the tail instead of the head (the only deviation from RFC 8289
    §5), which delays the congestion signal by one queue's worth of time.
    The link marks ECN-capable packets CE where this says "drop".
    """

    __slots__ = ("count", "drop_next_s", "dropping", "first_above_s", "interval_s", "target_s")

    def __init__(self, target_s: float = 0.005, interval_s: float = 0.100) -> None:
        self.target_s = target_s
        self.interval_s = interval_s
        self.first_above_s = 0.0
        self.dropping = False
        self.drop_next_s = 0.0
        self.count = 0

    def drop(self, sojourn_s: float, now: float) -> bool:
        if sojourn_s < self.target_s:
            self.first_above_s = 0.0
            self.dropping = False
            return False
        if self.first_above_s == 0.0:
            self.first_above_s = now + self.interval_s
            return False
        if not self.dropping:
            if now < self.first_above_s:
                return False
            self.dropping = True
            # RFC 8289 §5.4: restart near the previous drop rate if recent.
            self.count = (
                self.count - 2
                if self.count > 2 and now - self.drop_next_s < 8 * self.interval_s
                else 1
            )
            self.drop_next_s = now + self.interval_s / math.sqrt(self.count)
            return True
        if now >= self.drop_next_s:
            self.count += 1
            self.drop_next_s += self.interval_s / math.sqrt(self.count)
            return True
        return False


@dataclass(slots=True)
class Path:
    """Two links between a pair of addresses: ``forward`` carries a→b,
    ``backward`` b→a (as passed to ``Simulator.connect(a, b, path)``)."""

    forward: Link
    backward: Link

    @classmethod
    def symmetric(
        cls,
        rate_bps: float | None,
        rtt_s: float,
        *,
        queue_bdp: float = 1.0,
        queue_bytes: int | None = None,
        loss: LossModel | None = None,
        jitter: Jitter | None = None,
        reorder: bool = False,
        duplicate_p: float = 0.0,
        corrupt_p: float = 0.0,
        overhead_bytes: int = DEFAULT_OVERHEAD_BYTES,
        mtu_bytes: int | None = None,
        loss_backward: LossModel | str | None = "same",
        name: str | None = None,
        aqm: str | None = None,
    ) -> Path:
        """Same rate, ``rtt_s / 2`` one-way delay and impairments both ways.

        The queue is ``queue_bdp`` bandwidth-delay products (floor
        ``MIN_QUEUE_BYTES``) unless ``queue_bytes`` is given. ``loss`` applies
        both ways unless ``loss_backward`` overrides it (``None`` = lossless
        return path). Each direction gets its own loss state and random
        streams. ``name`` names the links ``name + ":fwd"`` / ``":bwd"``.
        """
        if not rtt_s >= 0.0:
            raise ConfigurationError(f"rtt_s must be >= 0, not {rtt_s!r}")
        if queue_bytes is None and rate_bps is not None:
            if not queue_bdp > 0.0:
                raise ConfigurationError("queue_bdp must be > 0")
            queue_bytes = max(round(queue_bdp * bdp_bytes(rate_bps, rtt_s)), MIN_QUEUE_BYTES)
        back_loss = loss if isinstance(loss_backward, str) else loss_backward
        if isinstance(loss_backward, str) and loss_backward != "same":
            raise ConfigurationError("loss_backward must be a loss model, None or 'same'")

        def make(direction: str, loss_model: LossModel | None) -> Link:
            return Link(
                rate_bps=rate_bps,
                delay_s=rtt_s / 2.0,
                queue_bytes=queue_bytes,
                loss=loss_model,
                jitter=jitter,
                reorder=reorder,
                duplicate_p=duplicate_p,
                corrupt_p=corrupt_p,
                overhead_bytes=overhead_bytes,
                mtu_bytes=mtu_bytes,
                name=None if name is None else f"{name}:{direction}",
                aqm=aqm,
            )

        return cls(forward=make("fwd", loss), backward=make("bwd", back_loss))

    def links(self) -> tuple[Link, Link]:
        return (self.forward, self.backward)
