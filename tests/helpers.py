"""Shared test helpers: the virtual-time run loop, a two-connection driver and a
packet forger.

How this works
--------------
:class:`VirtualTime` is the run loop every virtual-time driver shares
(:class:`Pair` here, ``Net`` in test_security.py): poll the participants,
check the predicate, jump the clock to the next datagram arrival or timer
deadline, deliver the datagrams due, fire the timers due, repeat. A driver
says how to poll, which datagrams are due and how to deliver one, and whose
timers to watch; ``poll_each`` says whether it polls after every delivery and
every fired timer (Pair) or once after all deliveries and once after all
timers (Net).

:class:`Pair` wires a client and a server :class:`~transport.Connection`
together in one process, with an explicit virtual clock and a fixed one-way
delay. It only uses the public driver contract (``receive_datagram``,
``datagrams_to_send``, ``get_timer``, ``handle_timer``, ``next_event``): after
every input it drains both sides' datagrams into an in-flight list and (unless
``auto_drain`` is off) their events into :attr:`Pair.client_events` /
:attr:`Pair.server_events`. Drop filters (``drop_to_server`` /
``drop_to_client``) script losses.

:func:`forge_short_packet` builds a short-header packet with arbitrary frames
and a valid CRC32C trailer (``security="none"``), the way a misbehaving peer
would, from the public codec in :mod:`transport.wire`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from transport import Config, Connection
from transport.events import Event
from transport.wire import crc32c, encode_frames, encode_short_header

Address = tuple[str, int]
CLIENT_ADDR: Address = ("10.0.0.1", 50000)
SERVER_ADDR: Address = ("10.0.0.2", 4433)
DropFilter = Callable[[bytes, float], bool]


def make_config(seed: int, **overrides: Any) -> Config:
    """A Config with a seeded generator and the given knobs. security="none"
    unless overridden: these tests forge CRC32C-protected packets to probe the
    core (the encrypted path has its own tests in test_security.py)."""
    settings: dict[str, Any] = {"security": "none", **overrides}
    return Config(rng=random.Random(seed), **settings)


class TimerOwner(Protocol):
    """What the run loop needs of a Connection or an Endpoint."""

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class VirtualTime:
    """The virtual-time run loop shared by the test drivers (see the module doc).

    A subclass sets ``now`` and implements :meth:`poll`, :meth:`_next_arrival`,
    :meth:`_pop_due`, :meth:`_deliver` and :meth:`_timer_owners`.
    """

    #: poll after every delivered datagram and every fired timer (True), or once
    #: after all the deliveries and once after all the timers of a step (False)
    poll_each = True
    now: float

    def poll(self) -> None:
        """Move what the participants emit onto the wire; collect their events."""
        raise NotImplementedError

    def _next_arrival(self) -> float | None:
        """When the earliest datagram on the wire arrives (None: the wire is empty)."""
        raise NotImplementedError

    def _pop_due(self) -> list[Any]:
        """Take the datagrams due at ``now`` off the wire, in delivery order."""
        raise NotImplementedError

    def _deliver(self, item: Any) -> None:
        """Hand one datagram taken by :meth:`_pop_due` to its receiver."""
        raise NotImplementedError

    def _timer_owners(self) -> Iterable[TimerOwner]:
        raise NotImplementedError

    def _next_time(self) -> float | None:
        arrival = self._next_arrival()
        times = [] if arrival is None else [arrival]
        for owner in self._timer_owners():
            deadline = owner.get_timer()
            if deadline is not None:
                times.append(max(deadline, self.now))
        return min(times) if times else None

    def run_until(self, predicate: Callable[[], bool], limit_s: float = 30.0) -> bool:
        """Advance virtual time until ``predicate()`` holds or ``now`` passes
        ``limit_s`` (absolute). Returns the predicate's final value."""
        spins = 0
        while True:
            self.poll()
            if predicate():
                return True
            at = self._next_time()
            if at is None or at > limit_s:
                self.now = max(self.now, limit_s)
                self.poll()
                return predicate()
            spins = spins + 1 if at == self.now else 0
            if spins > 10_000:
                raise AssertionError(f"timer livelock at t={self.now}")
            self.now = at
            for item in self._pop_due():
                self._deliver(item)
                if self.poll_each:
                    self.poll()
            if not self.poll_each:
                self.poll()
            for owner in list(self._timer_owners()):
                deadline = owner.get_timer()
                if deadline is not None and deadline <= self.now:
                    owner.handle_timer(self.now)
                    if self.poll_each:
                        self.poll()
            if not self.poll_each:
                self.poll()

    def run_for(self, duration_s: float) -> None:
        self.run_until(lambda: False, self.now + duration_s)


class Pair(VirtualTime):
    """A client and a server connection joined by a lossless, fixed-delay wire."""

    def __init__(
        self,
        client_config: Config | None = None,
        server_config: Config | None = None,
        *,
        one_way_delay_s: float = 0.010,
        auto_drain: bool = True,
    ) -> None:
        self.client = Connection(client_config or make_config(1), is_client=True)
        self.server = Connection(
            server_config or make_config(2),
            is_client=False,
            original_dcid=self.client.original_dcid,
        )
        self.delay_s = one_way_delay_s
        self.auto_drain = auto_drain
        self.now = 0.0
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []
        self.drop_to_server: DropFilter | None = None
        self.drop_to_client: DropFilter | None = None
        #: every datagram put on the wire: (send time, "c2s" | "s2c", payload)
        self.sent: list[tuple[float, str, bytes]] = []
        self._in_flight: list[tuple[float, int, bool, bytes]] = []  # (at, seq, to_server, data)
        self._seq = 0
        self.client.connect(SERVER_ADDR, self.now)

    # ------------------------------------------------------------ driving
    def poll(self) -> None:
        """Drain both sides' datagrams (onto the wire) and events."""
        for to_server, conn in ((True, self.client), (False, self.server)):
            for data, _addr in conn.datagrams_to_send(self.now):
                self.sent.append((self.now, "c2s" if to_server else "s2c", data))
                drop = self.drop_to_server if to_server else self.drop_to_client
                if drop is not None and drop(data, self.now):
                    continue
                self._seq += 1
                self._in_flight.append((self.now + self.delay_s, self._seq, to_server, data))
        if self.auto_drain:
            self.drain_events()

    def drain_events(self) -> None:
        for conn, sink in ((self.client, self.client_events), (self.server, self.server_events)):
            while (event := conn.next_event()) is not None:
                sink.append(event)

    def inject(self, data: bytes, *, to_server: bool) -> None:
        """Deliver ``data`` now, as if it came from the other side."""
        self._receive(data, to_server)
        self.poll()

    def _receive(self, data: bytes, to_server: bool) -> None:
        if to_server:
            self.server.receive_datagram(data, CLIENT_ADDR, self.now)
        else:
            self.client.receive_datagram(data, SERVER_ADDR, self.now)

    # -------------------------------------------------- VirtualTime hooks
    def _next_arrival(self) -> float | None:
        return min((p[0] for p in self._in_flight), default=None)

    def _pop_due(self) -> list[tuple[float, int, bool, bytes]]:
        due = sorted(p for p in self._in_flight if p[0] <= self.now)
        self._in_flight = [p for p in self._in_flight if p[0] > self.now]
        return due

    def _deliver(self, item: tuple[float, int, bool, bytes]) -> None:
        _at, _seq, to_server, data = item
        self._receive(data, to_server)

    def _timer_owners(self) -> tuple[Connection, Connection]:
        return (self.client, self.server)

    def handshake(self) -> None:
        ok = self.run_until(
            lambda: self.client.is_established and self.server.is_established, self.now + 10.0
        )
        if not ok:
            raise AssertionError("handshake did not complete")
        # let the last handshake acknowledgements settle
        self.run_for(0.1)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def events_of(self, side: str, kind: type) -> list[Any]:
        source = self.client_events if side == "client" else self.server_events
        return [e for e in source if isinstance(e, kind)]


def read_all(conn: Connection, stream_id: int) -> tuple[bytes, bool]:
    """Read whatever the stream has now."""
    chunks: list[bytes] = []
    finished = False
    while True:
        data, finished = conn.recv_stream_data(stream_id)
        if data:
            chunks.append(data)
        if finished or not data:
            return b"".join(chunks), finished


def forge_short_packet(
    dcid: bytes, packet_number: int, frames: Sequence[tuple[Any, ...]], *, pn_length: int = 4
) -> bytes:
    """A short-header packet carrying ``frames`` (codec frame specs) with a
    correct CRC32C trailer, as ``security="none"`` sends them."""
    buf = bytearray(4096)
    pos = encode_short_header(buf, 0, dcid, packet_number, pn_length)
    pos = encode_frames(list(frames), buf, pos, len(buf) - 4)
    body = bytes(buf[:pos])
    return body + crc32c(body).to_bytes(4, "big")


def reseal(packet: bytes) -> bytes:
    """Recompute the CRC32C trailer of a single-packet datagram after a mutation."""
    if len(packet) < 5:
        return packet
    body = packet[:-4]
    return body + crc32c(body).to_bytes(4, "big")
