"""Congestion control: the controller protocol and the shipped algorithms.

How this works
--------------
:mod:`.base` defines :class:`CongestionController` (hooks with no-op defaults,
``congestion_window_bytes``, ``pacing_rate_bps``, ``available_bytes``) and the
:class:`CongestionControllerFactory` protocol. The connection config holds a
factory (e.g. the class :class:`NewReno` itself); recovery calls the hooks.
:mod:`.cubic` (CUBIC with HyStart++) and :mod:`.bbr` (BBRv3-style, loss
tolerant) implement the same hooks and set ``pacing_rate_bps``; :mod:`.pacing`
holds the token-bucket :class:`Pacer` the connection releases packets with.
:data:`controllers` names them for the CLI.
"""

from __future__ import annotations

from .base import (
    CongestionController,
    CongestionControllerFactory,
    initial_window_bytes,
    minimum_window_bytes,
)
from .bbr import BBR
from .cubic import CUBIC, Cubic
from .newreno import NewReno
from .pacing import Pacer, window_pacing_rate_bps

__all__ = [
    "BBR",
    "CUBIC",
    "CongestionController",
    "CongestionControllerFactory",
    "Cubic",
    "NewReno",
    "Pacer",
    "controllers",
    "initial_window_bytes",
    "minimum_window_bytes",
    "window_pacing_rate_bps",
]

#: CLI / config-file names to factories. The core never looks names up itself.
controllers: dict[str, CongestionControllerFactory] = {
    "newreno": NewReno,
    "cubic": Cubic,
    "bbr": BBR,
}
