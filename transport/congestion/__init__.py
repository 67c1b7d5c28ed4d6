"""Congestion control: the controller protocol and the shipped algorithms.

How this works
--------------
:mod:`.base` defines :class:`CongestionController` (hooks with no-op defaults,
``congestion_window_bytes``, ``pacing_rate_bps``, ``available_bytes``) and the
:class:`CongestionControllerFactory` protocol. The connection config holds a
factory (e.g. the class :class:`NewReno` itself); recovery calls the hooks.
New algorithms (CUBIC with HyStart++, BBR) are new modules here with a class
implementing the same hooks, plus an entry in :data:`controllers` so the CLI
can name them.
"""

from __future__ import annotations

from .base import (
    CongestionController,
    CongestionControllerFactory,
    initial_window_bytes,
    minimum_window_bytes,
)
from .newreno import NewReno

__all__ = [
    "CongestionController",
    "CongestionControllerFactory",
    "NewReno",
    "controllers",
    "initial_window_bytes",
    "minimum_window_bytes",
]

#: CLI / config-file names to factories. The core never looks names up itself.
controllers: dict[str, CongestionControllerFactory] = {
    "newreno": NewReno,
}
