"""transport: reliable, encrypted, congestion-controlled streams over UDP.

The core is sans-IO: :class:`Connection` (one peer) and :class:`Endpoint` (one
socket, many peers) take datagrams and the current time as arguments and hand
back datagrams, a deadline and events. Drivers and the simulator wrap them.
"""

from transport.config import Config
from transport.connection import Connection
from transport.endpoint import Endpoint
from transport.stats import ConnectionStats

__version__ = "0.1.0"

__all__ = ["Config", "Connection", "ConnectionStats", "Endpoint", "__version__"]
