"""Discrete-event simulator with a virtual clock for sans-IO transport nodes.

How this works
--------------
The simulator owns one event heap of tuples ``(time_s, seq, kind, ...)``.
``seq`` comes from a single counter, so events at the same virtual time run in
the order they were scheduled and every run with the same seed is identical.
There are three kinds of events:

* **packet** -- a datagram leaves a link (see :mod:`transport.sim.link`):
  either it enters the next link of a multi-hop route, or it is handed to the
  node attached at its destination address (``receive_datagram``);
* **timer** -- a node's deadline (from ``get_timer``) was reached
  (``handle_timer``);
* **call** -- an application callback from :meth:`Simulator.schedule`.

After *any* input to a node -- a datagram, a timer, an application callback
that touches it, or an explicit :meth:`Simulator.poke` -- the simulator
*polls* it: it drains ``datagrams_to_send(now)`` into the route for each
destination and re-arms the node's single timer from ``get_timer()``. Each
node has a generation counter; re-arming bumps it, so superseded heap entries
are recognised as stale and skipped (no heap deletions). A deadline in the
past fires at the current time.

Nodes are anything with the sans-IO driver shape of ``Connection`` /
``Endpoint`` (:class:`Node`). Routes map ``(src address, dst address)`` to a
tuple of :class:`~transport.sim.link.Link` (one link for point-to-point, more
for multi-hop or a shared bottleneck). Datagrams sent to an address with no
route, or arriving at an address with no node, are dropped and counted.

Time is a float in seconds; nothing here reads a clock or global randomness.
:meth:`Simulator.rng` hands out named ``random.Random`` streams derived from
the seed for the nodes themselves (e.g. a connection's config).
"""

from __future__ import annotations

import enum
import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

from transport.errors import ConfigurationError, InvalidStateError
from transport.sim.link import PACKET_EVENT, Address, Link, Path

__all__ = [
    "Node",
    "Scheduled",
    "SimStats",
    "Simulator",
    "StopReason",
    "Tap",
    "TimerLivelockError",
]

_TIMER_EVENT = 1
_CALL_EVENT = 2

TIMER_LIVELOCK_LIMIT = 100_000
"""A node whose timer fires this many times in a row at one virtual instant is
reported as a bug (:class:`TimerLivelockError`) instead of hanging the run."""

Tap = Callable[[float, Address, Address, bytes], None]
"""Observer ``fn(now, src, dst, data)`` called for every datagram handed to a node."""


@runtime_checkable
class Node(Protocol):
    """The sans-IO driver shape the simulator drives (``Connection``, ``Endpoint``).

    Contract: ``now`` never goes backwards; ``get_timer`` returns the earliest
    absolute deadline in virtual seconds or ``None``; ``handle_timer`` may be
    called spuriously (before any deadline) and must then do nothing. Each poll
    calls ``datagrams_to_send`` exactly once and then ``get_timer``, so
    ``datagrams_to_send`` must return everything sendable at ``now``; anything
    a node queues *during* that call waits for its next input or timer.

    ECN: a node with a true ``ecn`` attribute returns ``(data, dst, codepoint)``
    from ``datagrams_to_send`` and gets ``receive_datagram(..., ecn=codepoint)``
    for ECN-marked datagrams; the links carry the codepoint (and may mark CE).
    Other nodes send Not-ECT and never see codepoints.
    """

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None: ...

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class TimerLivelockError(InvalidStateError):
    """A node keeps asking for a timer at the current instant without progress."""


class StopReason(str, enum.Enum):
    """Why :meth:`Simulator.run` returned."""

    IDLE = "idle"  # no events left
    UNTIL = "until"  # the next event lies after until_s
    STOP_WHEN = "stop_when"  # the stop_when predicate returned True
    MAX_EVENTS = "max_events"  # the event budget was used up


@dataclass(frozen=True, slots=True)
class SimStats:
    """Simulator-wide counters."""

    events: int  # events processed (stale timers and cancelled calls excluded)
    timers_fired: int
    stale_timers: int
    callbacks_run: int
    packets_to_nodes: int  # datagrams handed to receive_datagram
    packets_unroutable: int  # sent to an address with no route from the sender
    packets_undeliverable: int  # arrived at an address with no node attached


class Scheduled:
    """Handle of an application callback; :meth:`cancel` before it runs to skip it."""

    __slots__ = ("at_s", "callback", "cancelled", "touches")

    def __init__(
        self,
        at_s: float,
        callback: Callable[[float], object],
        touches: tuple[Any, ...] | None,
    ) -> None:
        self.at_s = at_s
        self.callback = callback
        self.touches = touches
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Slot:
    """Per-node bookkeeping: address, live timer deadline and its generation."""

    __slots__ = ("addr", "attached", "deadline", "ecn", "gen", "node", "repeat_at", "repeats")

    def __init__(self, node: Node, addr: Address) -> None:
        self.node = node
        #: the node moves ECN codepoints: (data, dst, ecn) out, ecn= in
        self.ecn = bool(getattr(node, "ecn", False))
        self.addr = addr
        self.attached = True
        self.deadline: float | None = None
        self.gen = 0
        self.repeat_at = -1.0
        self.repeats = 0


def _format_addr(addr: Address) -> str:
    return f"{addr[0]}:{addr[1]}"


def _noop(now: float) -> None:
    return None


class Simulator:
    """Deterministic discrete-event network simulator (see module docstring).

    Typical use::

        sim = Simulator(seed=1)
        sim.attach(("10.0.0.1", 4433), client)
        sim.attach(("10.0.0.2", 4433), server)
        sim.connect(("10.0.0.1", 4433), ("10.0.0.2", 4433),
                    Path.symmetric(rate_bps=50e6, rtt_s=0.05, loss=Bernoulli(0.01)))
        sim.schedule(0.0, lambda now: client.connect(now=now))
        sim.run(until_s=10.0, stop_when=lambda: done)
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._now = 0.0
        self._heap: list[tuple[Any, ...]] = []
        self._seq = itertools.count()
        self._slots: dict[Address, _Slot] = {}
        self._slot_of_node: dict[int, _Slot] = {}
        self._routes: dict[Address, dict[Address, tuple[Link, ...]]] = {}
        self._links: dict[str, Link] = {}
        self._taps: list[Tap] = []
        self._running = False
        self._events = 0
        self._timers_fired = 0
        self._stale_timers = 0
        self._callbacks_run = 0
        self._packets_to_nodes = 0
        self._unroutable = 0
        self._undeliverable = 0

    # --------------------------------------------------------- basics --
    @property
    def seed(self) -> int:
        return self._seed

    @property
    def now(self) -> float:
        """Current virtual time in seconds."""
        return self._now

    @property
    def pending_events(self) -> int:
        """Entries in the event heap (stale timer entries included)."""
        return len(self._heap)

    def rng(self, name: str) -> random.Random:
        """A ``random.Random`` derived from the seed and ``name`` only (for node configs)."""
        return random.Random(f"{self._seed}|rng|{name}")

    def stats(self) -> SimStats:
        return SimStats(
            events=self._events,
            timers_fired=self._timers_fired,
            stale_timers=self._stale_timers,
            callbacks_run=self._callbacks_run,
            packets_to_nodes=self._packets_to_nodes,
            packets_unroutable=self._unroutable,
            packets_undeliverable=self._undeliverable,
        )

    # ---------------------------------------------------------- nodes --
    def attach(self, addr: Address, node: Node) -> None:
        """Attach ``node`` at ``addr``. It is first polled at the current
        virtual time once the run starts (so routes added later still apply)."""
        addr = (addr[0], addr[1])
        if addr in self._slots:
            raise ConfigurationError(f"address {_format_addr(addr)} already has a node")
        if id(node) in self._slot_of_node:
            raise ConfigurationError("this node is already attached at another address")
        slot = _Slot(node, addr)
        self._slots[addr] = slot
        self._slot_of_node[id(node)] = slot
        self._push_call(self._now, Scheduled(self._now, _noop, (node,)))

    def detach(self, addr: Address) -> Node:
        """Remove the node at ``addr``; datagrams to it are then undeliverable
        and its pending timer is forgotten. Returns the node."""
        slot = self._slots.pop((addr[0], addr[1]), None)
        if slot is None:
            raise ConfigurationError(f"no node at {_format_addr(addr)}")
        del self._slot_of_node[id(slot.node)]
        slot.attached = False
        slot.gen += 1
        return slot.node

    def node_at(self, addr: Address) -> Node | None:
        slot = self._slots.get((addr[0], addr[1]))
        return None if slot is None else slot.node

    def poke(self, target: Node | Address) -> None:
        """Poll one node now: drain its datagrams and re-arm its timer. Call it
        after touching a node outside an event (or inside a callback that
        declared other ``touches``)."""
        self._poll(self._resolve(target), self._now)

    def poke_all(self) -> None:
        """Poll every attached node (in attach order)."""
        for slot in list(self._slots.values()):
            self._poll(slot, self._now)

    def _resolve(self, target: Node | Address) -> _Slot:
        slot = self._slot_of_node.get(id(target))
        if slot is None and isinstance(target, tuple):
            slot = self._slots.get((target[0], target[1]))
        if slot is None:
            raise ConfigurationError(f"not an attached node or address: {target!r}")
        return slot

    # --------------------------------------------------------- routes --
    def connect(self, a: Address, b: Address, path: Path) -> Path:
        """Route a→b over ``path.forward`` and b→a over ``path.backward``."""
        self.add_route(a, b, path.forward)
        self.add_route(b, a, path.backward)
        return path

    def add_route(self, src: Address, dst: Address, links: Link | Sequence[Link]) -> None:
        """Route datagrams from ``src`` to ``dst`` through ``links`` in order.
        A link may serve several routes (a shared bottleneck)."""
        src = (src[0], src[1])
        dst = (dst[0], dst[1])
        route = (links,) if isinstance(links, Link) else tuple(links)
        if not route:
            raise ConfigurationError("a route needs at least one link")
        table = self._routes.setdefault(src, {})
        if dst in table:
            raise ConfigurationError(
                f"route {_format_addr(src)} -> {_format_addr(dst)} already exists"
            )
        base = f"{_format_addr(src)}>{_format_addr(dst)}"
        for hop, link in enumerate(route):
            self._adopt(link, f"{base}#{hop}" if hop else base)
        table[dst] = route

    def remove_route(self, src: Address, dst: Address) -> None:
        table = self._routes.get((src[0], src[1]), {})
        if table.pop((dst[0], dst[1]), None) is None:
            raise ConfigurationError("no such route")

    def _adopt(self, link: Link, default_name: str) -> None:
        if link.bound:
            link._bind(self._heap, self._seq, self._seed, link.name or default_name)
            return
        name = link.name or default_name
        if name in self._links:
            raise ConfigurationError(f"a different link is already named {name!r}")
        link._bind(self._heap, self._seq, self._seed, name)
        self._links[name] = link

    def links(self) -> list[Link]:
        """Links in the order they were adopted."""
        return list(self._links.values())

    def link(self, name: str) -> Link:
        try:
            return self._links[name]
        except KeyError:
            raise ConfigurationError(f"no link named {name!r}") from None

    def add_tap(self, tap: Tap) -> None:
        """Observe every datagram handed to a node: ``tap(now, src, dst, data)``."""
        self._taps.append(tap)

    # ------------------------------------------------------- schedule --
    def schedule(
        self,
        at_s: float,
        callback: Callable[[float], object],
        *,
        touches: Iterable[Node | Address] | None = None,
    ) -> Scheduled:
        """Run ``callback(now)`` at virtual time ``at_s`` (>= now). Afterwards
        the nodes in ``touches`` are polled -- all attached nodes when it is
        ``None``, none when it is empty."""
        if not at_s >= self._now:
            raise ConfigurationError(f"cannot schedule at {at_s!r}, before now={self._now!r}")
        handle = Scheduled(at_s, callback, None if touches is None else tuple(touches))
        self._push_call(at_s, handle)
        return handle

    def call_later(
        self,
        delay_s: float,
        callback: Callable[[float], object],
        *,
        touches: Iterable[Node | Address] | None = None,
    ) -> Scheduled:
        """:meth:`schedule` at ``now + delay_s``."""
        if not delay_s >= 0.0:
            raise ConfigurationError(f"delay_s must be >= 0, not {delay_s!r}")
        return self.schedule(self._now + delay_s, callback, touches=touches)

    def _push_call(self, at_s: float, handle: Scheduled) -> None:
        heapq.heappush(self._heap, (at_s, next(self._seq), _CALL_EVENT, handle))

    # ----------------------------------------------------------- poll --
    def _poll(self, slot: _Slot, now: float) -> None:
        node = slot.node
        out = node.datagrams_to_send(now)
        if out:
            src = slot.addr
            table = self._routes.get(src)
            if slot.ecn:
                marked = cast("list[tuple[bytes, Address, int]]", out)
                for data, dst, ecn in marked:
                    route = None if table is None else table.get(dst)
                    if route is None:
                        self._unroutable += 1
                        continue
                    route[0]._offer(data, src, dst, route, 0, now, ecn)
            else:
                for data, dst in out:
                    route = None if table is None else table.get(dst)
                    if route is None:
                        self._unroutable += 1
                        continue
                    route[0]._offer(data, src, dst, route, 0, now)
        deadline = node.get_timer()
        if deadline != slot.deadline:
            slot.gen += 1
            slot.deadline = deadline
            if deadline is not None:
                at = deadline if deadline > now else now
                heapq.heappush(self._heap, (at, next(self._seq), _TIMER_EVENT, slot, slot.gen))

    # ------------------------------------------------------------ run --
    def run(
        self,
        until_s: float | None = None,
        stop_when: Callable[[], bool] | None = None,
        max_events: int | None = None,
    ) -> StopReason:
        """Process events in time order.

        Stops when no events are left, when the next event lies after
        ``until_s`` (the clock then advances to ``until_s``), when
        ``stop_when()`` -- checked after every event -- returns True, or after
        ``max_events`` events. Returns the :class:`StopReason`. Exceptions
        raised by nodes or callbacks propagate (they are bugs).
        """
        if self._running:
            raise InvalidStateError("Simulator.run is not re-entrant")
        if until_s is not None and not until_s >= self._now:
            raise ConfigurationError(f"until_s={until_s!r} lies before now={self._now!r}")
        limit = float("inf") if until_s is None else until_s
        budget = -1 if max_events is None else max_events
        if budget == 0:
            return StopReason.MAX_EVENTS
        heap = self._heap
        pop = heapq.heappop
        slots = self._slots
        poll = self._poll
        taps = self._taps
        done = 0
        reason = StopReason.IDLE
        self._running = True
        try:
            while heap:
                entry = heap[0]
                t = entry[0]
                if t > limit:
                    reason = StopReason.UNTIL
                    break
                pop(heap)
                self._now = t
                kind = entry[2]
                if kind == PACKET_EVENT:
                    data = entry[3]
                    route = entry[6]
                    hop = entry[7]
                    link = route[hop]
                    link.packets_delivered += 1
                    link.bytes_delivered += len(data)
                    hop += 1
                    if hop < len(route):
                        route[hop]._offer(data, entry[4], entry[5], route, hop, t, entry[8])
                    else:
                        slot = slots.get(entry[5])
                        if slot is None:
                            self._undeliverable += 1
                        else:
                            self._packets_to_nodes += 1
                            if taps:
                                for tap in taps:
                                    tap(t, entry[4], entry[5], data)
                            if slot.ecn and entry[8]:
                                slot.node.receive_datagram(  # type: ignore[call-arg]
                                    data, entry[4], t, ecn=entry[8]
                                )
                            else:
                                slot.node.receive_datagram(data, entry[4], t)
                            poll(slot, t)
                elif kind == _TIMER_EVENT:
                    slot = entry[3]
                    if entry[4] != slot.gen:
                        self._stale_timers += 1
                        continue
                    slot.deadline = None
                    if t == slot.repeat_at:
                        slot.repeats += 1
                        if slot.repeats >= TIMER_LIVELOCK_LIMIT:
                            raise TimerLivelockError(
                                f"node at {_format_addr(slot.addr)} re-armed its timer "
                                f"{slot.repeats} times at t={t!r} without progress"
                            )
                    else:
                        slot.repeat_at = t
                        slot.repeats = 0
                    self._timers_fired += 1
                    slot.node.handle_timer(t)
                    poll(slot, t)
                else:
                    handle = entry[3]
                    if handle.cancelled:
                        continue
                    handle.cancelled = True  # a handle runs at most once
                    self._callbacks_run += 1
                    handle.callback(t)
                    touches = handle.touches
                    if touches is None:
                        for slot in list(slots.values()):
                            poll(slot, t)
                    else:
                        for target in touches:
                            slot = self._slot_of_node.get(id(target))
                            if slot is None and isinstance(target, tuple):
                                slot = slots.get((target[0], target[1]))
                            if slot is not None and slot.attached:
                                poll(slot, t)
                done += 1
                if stop_when is not None and stop_when():
                    reason = StopReason.STOP_WHEN
                    break
                if done == budget:
                    reason = StopReason.MAX_EVENTS
                    break
        finally:
            self._running = False
            self._events += done
        if reason in (StopReason.IDLE, StopReason.UNTIL) and until_s is not None:
            self._now = max(self._now, until_s)
        return reason
