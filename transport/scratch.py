"""Per-thread scratch space shared by every connection on a thread.

How this works
--------------
Building a packet needs a work buffer as large as the largest datagram (64 KiB
with GSO in mind), a sealer over it (the C AEAD writes the sealed packet
there) and a second buffer for a long-header payload; reading one needs an
opener (the C AEAD's plaintext buffer) and a
:class:`~transport.wire.FrameDecoder` with a record per possible frame
(~40 KiB of records and ACK-range storage). None of them holds anything between
two calls into a connection -- a built packet leaves as ``bytes``, decoded
records are consumed before the call returns -- so the connections of one
thread share a single set and an idle connection costs none of it.

A connection reads a packet that FEC rebuilt while it is still handling the
frames of the packet that completed the block, so there are two decoders.

The set is per thread (``threading.local``), fetched when a call starts and
never cached across calls: a connection created on one thread and driven from
another (the threaded driver's API calls) always uses the calling thread's set.
"""

from __future__ import annotations

import threading

from transport.crypto.packet_aead import NATIVE_AVAILABLE, PacketOpener, PacketSealer
from transport.crypto.packet_runs import StreamRunBuffers
from transport.wire import FrameDecoder

#: Size of each build buffer: the largest UDP payload.
BUILD_BUFFER_BYTES = 65536


class Scratch:
    """One thread's buffers and decoders."""

    __slots__ = (
        "build", "build_view", "decoder", "fec_decoder", "long_payload", "opener", "sealer",
        "stream_runs",
    )

    def __init__(self) -> None:
        self.build = bytearray(BUILD_BUFFER_BYTES)
        self.build_view = memoryview(self.build)  # bytes(view[:n]): one copy, not two
        self.long_payload = bytearray(BUILD_BUFFER_BYTES)
        self.decoder = FrameDecoder()
        self.fec_decoder = FrameDecoder()
        #: the C AEAD's sealer (over ``build``) and opener; None on the pure backend
        self.sealer: PacketSealer | None = PacketSealer(self.build) if NATIVE_AVAILABLE else None
        self.opener: PacketOpener | None = PacketOpener() if NATIVE_AVAILABLE else None
        #: a receive run's records and data (tp_open_stream_run); None on the pure backend
        self.stream_runs: StreamRunBuffers | None = (
            StreamRunBuffers() if NATIVE_AVAILABLE else None
        )


class _PerThread(threading.local):
    scratch: Scratch | None = None


_per_thread = _PerThread()


def scratch() -> Scratch:
    """The calling thread's scratch set (created on first use)."""
    found = _per_thread.scratch
    if found is None:
        found = _per_thread.scratch = Scratch()
    return found
