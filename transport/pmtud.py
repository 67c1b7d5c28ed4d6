"""Datagram packetization-layer path MTU discovery (RFC 8899, simplified).

How this works
--------------
A connection starts sending packets of ``BASE_SIZE`` = 1200 bytes, which every
path must carry, and then probes upward: a probe is an ack-eliciting packet
(PING + PADDING) of the candidate size. It is not counted in flight and its loss
is not a congestion signal -- the path may simply not carry that size.

* An acknowledged probe raises the packet size in use (the PLPMTU) to the probe
  size, and the next, larger candidate is probed.
* ``MAX_PROBES`` lost probes of one size mean the path does not carry it: the
  search stops at the largest size confirmed (and is retried after
  ``RAISE_TIMER_S``, in case the path changed).
* Black holes: when probe timeouts keep firing (``BLACK_HOLE_PTOS`` in a row)
  while packets larger than the base are in use, the connection falls back to
  the base size at once and searches again later (RFC 8899 §4.3).

Candidates step through common link sizes up to the configured maximum (and the
peer's MAX_UDP_PAYLOAD_SIZE).
"""

from __future__ import annotations

BASE_SIZE = 1200
MAX_PROBES = 3
#: after the search settles (or a black hole), probe again this much later
RAISE_TIMER_S = 30.0
BLACK_HOLE_PTOS = 3
#: sizes worth trying: IPv6 minimum, common tunnels, Ethernet, jumbo
_CANDIDATES = (1280, 1350, 1400, 1452, 1472, 1500, 4000, 8952)


class PathMtu:
    """Search state for one path. Sizes are UDP payload bytes."""

    __slots__ = (
        "ceiling",
        "current",
        "failures",
        "maximum",
        "next_search_s",
        "probe_in_flight",
        "probes_acked",
        "probes_lost",
        "searching",
    )

    def __init__(self, maximum: int) -> None:
        #: the configured largest size; ``maximum`` is the current search limit
        self.ceiling = max(BASE_SIZE, maximum)
        self.maximum = self.ceiling
        self.current = BASE_SIZE
        self.searching = self.maximum > BASE_SIZE
        self.failures = 0
        self.probe_in_flight = 0  # size of the probe in flight, 0 when none
        self.next_search_s = 0.0
        self.probes_acked = 0
        self.probes_lost = 0

    def next_candidate(self) -> int:
        for size in _CANDIDATES:
            if self.current < size <= self.maximum:
                return size
        return self.maximum if self.maximum > self.current else 0

    def probe_due(self, now: float) -> int:
        """Size of a probe to send now, or 0."""
        if self.probe_in_flight:
            return 0
        if not self.searching:
            if self.current >= self.ceiling or now < self.next_search_s:
                return 0
            self.searching = True
            self.failures = 0
            self.maximum = self.ceiling  # the path may have changed: look again
        size = self.next_candidate()
        if not size:
            self.searching = False
            self.next_search_s = now + RAISE_TIMER_S
        return size

    def on_probe_sent(self, size: int) -> None:
        self.probe_in_flight = size

    def on_probe_acked(self, size: int) -> bool:
        """True when the packet size in use grew."""
        self.probes_acked += 1
        if size == self.probe_in_flight:
            self.probe_in_flight = 0
        if size <= self.current:
            return False
        self.current = size
        self.failures = 0
        return True

    def on_probe_lost(self, size: int, now: float) -> None:
        self.probes_lost += 1
        if size == self.probe_in_flight:
            self.probe_in_flight = 0
        if size <= self.current:
            return
        self.failures += 1
        if self.failures >= MAX_PROBES:
            # the path does not carry this size: settle, look again later
            self.searching = False
            self.failures = 0
            self.maximum = size - 1
            self.next_search_s = now + RAISE_TIMER_S

    def on_black_hole(self, now: float) -> bool:
        """Repeated probe timeouts with large packets: back to the base size.
        True when the size in use shrank."""
        if self.current <= BASE_SIZE:
            return False
        self.current = BASE_SIZE
        self.probe_in_flight = 0
        self.searching = False
        self.next_search_s = now + RAISE_TIMER_S
        return True
