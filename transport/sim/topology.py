"""Topologies: point-to-point and a dumbbell with N flows and cross traffic.

How this works
--------------
:func:`build_topology` wires addresses and links into a
:class:`~transport.sim.Simulator` and returns a :class:`Topology` listing the
flows' ``(client, server)`` address pairs and the two bottleneck links.

* **p2p**: one flow over the path built from the :class:`PathSpec`.
* **dumbbell**: the bottleneck path (rate, queue, loss, AQM) is shared by all
  routes: flow *i* goes client *i* → access link (no rate, one-way delay
  ``i * rtt_step_s / 2``) → bottleneck → server *i*, and back the same way, so
  flow RTTs are ``rtt_s + i * rtt_step_s``. One **cross-traffic** source
  (:class:`CrossTraffic`, unresponsive constant-rate UDP, optionally on/off)
  sends over the same forward bottleneck to a :class:`Sink`.

A capacity schedule in the spec becomes ``Simulator.schedule`` calls that
change the bottleneck links' rates (``touches=()``, no node is polled).
"""

from __future__ import annotations

from dataclasses import dataclass

from transport.sim.link import Address, Link
from transport.sim.scenarios import PathSpec, TopologySpec
from transport.sim.simulator import Simulator

__all__ = ["CrossTraffic", "Sink", "Topology", "build_topology"]

CROSS_SRC: Address = ("10.0.9.1", 9000)
CROSS_DST: Address = ("10.0.9.2", 9000)


class CrossTraffic:
    """Unresponsive UDP source: ``packet_bytes`` at ``rate_bps`` while on."""

    __slots__ = ("dst", "next_s", "off_s", "on_s", "packet", "packets_sent", "period_s", "start_s")

    def __init__(
        self,
        dst: Address,
        rate_bps: float,
        packet_bytes: int,
        on_s: float,
        off_s: float,
        start_s: float = 0.0,
    ) -> None:
        self.dst = dst
        self.packet = bytes(packet_bytes)
        self.period_s = (packet_bytes + 28) * 8.0 / rate_bps
        self.on_s = on_s
        self.off_s = off_s
        self.start_s = start_s
        self.next_s = start_s
        self.packets_sent = 0

    def _advance(self) -> None:
        self.next_s += self.period_s
        if self.off_s > 0:
            cycle = self.on_s + self.off_s
            phase = (self.next_s - self.start_s) % cycle
            if phase >= self.on_s:
                self.next_s += cycle - phase

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        return None

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out: list[tuple[bytes, Address]] = []
        while self.next_s <= now and len(out) < 64:
            out.append((self.packet, self.dst))
            self._advance()
        self.packets_sent += len(out)
        return out

    def get_timer(self) -> float | None:
        return self.next_s

    def handle_timer(self, now: float) -> None:
        return None


class Sink:
    """Counts what arrives; sends nothing."""

    __slots__ = ("bytes_received", "packets_received")

    def __init__(self) -> None:
        self.packets_received = 0
        self.bytes_received = 0

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        self.packets_received += 1
        self.bytes_received += len(data)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        return []

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None


@dataclass
class Topology:
    flows: list[tuple[Address, Address]]
    forward: Link
    backward: Link
    start_times_s: list[float]
    cross: CrossTraffic | None
    sink: Sink | None


def client_addr(index: int) -> Address:
    return (f"10.0.1.{index + 1}", 50000)


def server_addr(index: int) -> Address:
    return (f"10.0.2.{index + 1}", 4433)


def build_topology(sim: Simulator, path: PathSpec, topo: TopologySpec) -> Topology:
    """Add links and routes for ``topo`` to ``sim`` (nodes are attached by the
    caller at the returned addresses; cross traffic is attached here)."""
    flows = [(client_addr(i), server_addr(i)) for i in range(topo.flows)]
    starts = [i * topo.start_interval_s for i in range(topo.flows)]
    if topo.kind == "p2p":
        built = path.build(name="path")
        sim.connect(flows[0][0], flows[0][1], built)
        fwd, bwd = built.forward, built.backward
        cross = sink = None
    else:
        bottleneck = path.build(name="bottleneck")
        fwd, bwd = bottleneck.forward, bottleneck.backward
        for i, (c, s) in enumerate(flows):
            extra = i * topo.rtt_step_s / 2.0
            if extra > 0:
                up = Link(delay_s=extra, name=f"access{i}:fwd")
                down = Link(delay_s=extra, name=f"access{i}:bwd")
                sim.add_route(c, s, (up, fwd))
                sim.add_route(s, c, (bwd, down))
            else:
                sim.add_route(c, s, fwd)
                sim.add_route(s, c, bwd)
        cross = sink = None
        if topo.cross_traffic_bps > 0:
            cross = CrossTraffic(
                CROSS_DST,
                topo.cross_traffic_bps,
                topo.cross_packet_bytes,
                topo.cross_on_s,
                topo.cross_off_s,
            )
            sink = Sink()
            sim.attach(CROSS_SRC, cross)
            sim.attach(CROSS_DST, sink)
            sim.add_route(CROSS_SRC, CROSS_DST, fwd)
    for at_s, rate in path.rate_schedule:

        def change(now: float, rate: float = rate) -> None:
            fwd.set_rate(rate)
            bwd.set_rate(rate)

        sim.schedule(at_s, change, touches=())
    return Topology(
        flows=flows, forward=fwd, backward=bwd, start_times_s=starts, cross=cross, sink=sink
    )
