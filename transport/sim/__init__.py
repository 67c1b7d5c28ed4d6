"""Deterministic network simulator: virtual time, seeded impaired links.

How this works
--------------
:class:`Simulator` is a discrete-event loop over a virtual clock (seconds). It
drives *nodes* -- anything with the sans-IO driver shape of ``Connection`` /
``Endpoint`` (:class:`Node`) -- attached at ``(host, port)`` addresses, and
moves their datagrams along routes made of one-direction :class:`Link` objects
that model, in order: a scripted drop filter, MTU, loss on arrival
(:class:`Bernoulli`, :class:`GilbertElliott`, :class:`TraceLoss`),
duplication, a FIFO bottleneck with a drop-tail byte queue at ``rate_bps``,
corruption, propagation delay and jitter (with or without reordering).
:class:`Path` pairs two links; :meth:`Path.symmetric` builds the common
"rate, RTT, queue in BDPs, loss" path. Everything random derives from the
simulator seed and the *names* of links, so runs are reproducible and adding a
link leaves the others' randomness alone. See :mod:`transport.sim.simulator`
and :mod:`transport.sim.link` for the exact event and link semantics.

Example::

    from transport.sim import Bernoulli, Path, Simulator

    sim = Simulator(seed=7)
    sim.attach(A, node_a)
    sim.attach(B, node_b)
    path = sim.connect(A, B, Path.symmetric(50e6, 0.050, loss=Bernoulli(0.01)))
    sim.run(until_s=30.0)
    print(path.forward.stats())
"""

from transport.sim.jitter import ExponentialJitter, Jitter, NormalJitter, UniformJitter
from transport.sim.link import (
    DEFAULT_OVERHEAD_BYTES,
    MIN_QUEUE_BYTES,
    Address,
    DropFilter,
    Link,
    LinkStats,
    Path,
    bdp_bytes,
)
from transport.sim.loss import Bernoulli, GilbertElliott, LossModel, NoLoss, TraceLoss
from transport.sim.simulator import (
    Node,
    Scheduled,
    SimStats,
    Simulator,
    StopReason,
    Tap,
    TimerLivelockError,
)

__all__ = [
    "DEFAULT_OVERHEAD_BYTES",
    "MIN_QUEUE_BYTES",
    "Address",
    "Bernoulli",
    "DropFilter",
    "ExponentialJitter",
    "GilbertElliott",
    "Jitter",
    "Link",
    "LinkStats",
    "LossModel",
    "NoLoss",
    "Node",
    "NormalJitter",
    "Path",
    "Scheduled",
    "SimStats",
    "Simulator",
    "StopReason",
    "Tap",
    "TimerLivelockError",
    "TraceLoss",
    "UniformJitter",
    "bdp_bytes",
]
