"""asyncio driver and APIs.

How this works
--------------
One :class:`~transport.aio._driver.EndpointDriver` runs a sans-IO
:class:`~transport.endpoint.Endpoint` on a batched UDP socket inside the
running loop (``add_reader``, one ``call_at`` timer, ``add_writer`` only when
the kernel buffer is full). Three APIs sit on top:

* native: :func:`connect` / :func:`serve` -- an :class:`AsyncConnection` with
  many streams (:meth:`~AsyncConnection.open_stream` gives an asyncio-style
  reader/writer pair), unreliable datagrams, stats, graceful close;
* asyncio streams: :func:`open_connection` / :func:`start_server` with the
  signatures and reader/writer behaviour of :mod:`asyncio`'s own -- existing
  code switches by changing an import;
* asyncio protocols: :func:`create_connection` / :func:`create_server` give each
  stream an :class:`asyncio.Transport`.

See ``docs/api.md`` ("asyncio API").
"""

from transport.aio._api import (
    ConfiguredAPI,
    Server,
    connect,
    open_connection,
    serve,
    start_server,
    with_config,
)
from transport.aio._conn import AsyncConnection, ConnectionLostError, HandshakeFailedError
from transport.aio._driver import EndpointDriver
from transport.aio._stream import StreamReader, StreamWriter
from transport.aio.protocol import StreamTransport, create_connection, create_server

__all__ = [
    "AsyncConnection",
    "ConfiguredAPI",
    "ConnectionLostError",
    "EndpointDriver",
    "HandshakeFailedError",
    "Server",
    "StreamReader",
    "StreamTransport",
    "StreamWriter",
    "connect",
    "create_connection",
    "create_server",
    "open_connection",
    "serve",
    "start_server",
    "with_config",
]
