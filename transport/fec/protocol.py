"""FEC in the protocol: source blocks, repair symbols, recovery, and the policy.

How this works (docs/wire-format.md section 11)
-----------------------------------------------
A sender with FEC on groups the 1-RTT packets that carry stream data into
*blocks*. Each such packet starts with ``FEC_SOURCE(block, index)``; its
*source symbol* is ``packet number (u64) || length (u16) || the frames after
FEC_SOURCE``, zero-padded to the block's symbol size. When a block holds ``k``
symbols -- or its latency budget runs out first -- the sender computes ``m``
repair symbols with the systematic Cauchy Reed-Solomon code
(:class:`transport.fec.code.ReedSolomon`, one kernel call per block; m = 1 is
XOR) and sends each in a REPAIR frame of its own packet.

A receiver keeps the symbols of the last few blocks (bounded). As soon as any
``k`` symbols of a block are present and sources are missing, it rebuilds
them, processes their frames as if the packets had arrived, acknowledges
their packet numbers, and lists them in FEC_RECOVERED so the sender can
report the loss to congestion control (RFC 9265's reasoning) even though
nothing needs re-sending.

:class:`~transport.fec.policy.FecPolicy` picks the code per block: ``fixed``
uses the configured pair; ``adaptive`` sizes blocks to the latency budget and
picks ``m`` when a block closes, from the measured loss rate and burst length
(:mod:`transport.fec.policy`), and sends no FEC at all on a clean path.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from transport.errors import FecError
from transport.fec.code import ReedSolomon
from transport.fec.policy import ADAPTIVE_FLOOR, FEC_MODES, FecPolicy
from transport.fec.tracker import BlockTracker

__all__ = ["ADAPTIVE_FLOOR", "FEC_MODES", "FecPolicy", "FecReceiver", "FecSender"]

SYMBOL_HEADER = struct.Struct("!QH")  # packet number, frames length
MAX_BLOCKS_KEPT = 32
#: weight of each new gap in the sender's source-interval estimate
INTERVAL_WEIGHT = 0.125


class FecSender:
    """Builds blocks from source packets and yields their repair symbols."""

    def __init__(self, policy: FecPolicy, symbol_size: int, latency_budget_s: float) -> None:
        self.policy = policy
        self.symbol_size = symbol_size
        self.latency_budget_s = latency_budget_s
        self.block_id = 0
        self.k = 0
        self.m = 0
        self.count = 0
        self._buf = bytearray()
        self.deadline: float | None = None
        self.repairs: list[tuple[int, int, int, int, bytes]] = []
        self.repair_bytes_sent = 0
        #: the path's measured loss (set by the connection's estimator)
        self.loss_rate = 0.0
        self.burst_length = 1.0
        #: smoothed time between source packets (None until two were sent)
        self.source_interval_s: float | None = None
        self._last_source_s: float | None = None
        self._block_symbol_bytes = 0  # the largest source symbol of the open block
        self._block_backlogged = 0  # sources of the open block sent with data waiting
        #: which symbols of recent blocks were lost (early hand-over to ARQ)
        self.tracker = BlockTracker()

    @property
    def max_frames_bytes(self) -> int:
        """Most frame bytes a source packet may carry (they must fit a symbol)."""
        return self.symbol_size - SYMBOL_HEADER.size

    def open_block(self, now: float, loss_rate: float) -> bool:
        """Make sure a block is open if the policy wants FEC; False when it does not."""
        if self.count:
            return True
        self.loss_rate = loss_rate
        if not self.policy.active(loss_rate):
            return False
        self.k = self.policy.block_sources(self.source_interval_s, self.latency_budget_s)
        if len(self._buf) < self.k * self.symbol_size:
            self._buf = bytearray(self.k * self.symbol_size)
        return True

    def next_index(self) -> tuple[int, int]:
        return self.block_id, self.count

    def add_source(
        self, pn: int, frames: bytes | memoryview, now: float, backlogged: bool = False
    ) -> None:
        """Record the source symbol just sent; closes the block when full.
        ``backlogged``: more data was waiting to be sent behind this packet."""
        if len(frames) > self.max_frames_bytes:
            raise FecError("source frames longer than the symbol size allows")
        if not self.count:
            self.deadline = now + self.latency_budget_s
        last = self._last_source_s
        if last is not None:
            gap_s = min(now - last, self.latency_budget_s)
            interval = self.source_interval_s
            self.source_interval_s = (
                gap_s if interval is None else interval + INTERVAL_WEIGHT * (gap_s - interval)
            )
        self._last_source_s = now
        start = self.count * self.symbol_size
        SYMBOL_HEADER.pack_into(self._buf, start, pn, len(frames))
        body = start + SYMBOL_HEADER.size
        end = body + len(frames)
        self._buf[body:end] = frames
        self._buf[end : start + self.symbol_size] = bytes(start + self.symbol_size - end)
        used = SYMBOL_HEADER.size + len(frames)
        if used > self._block_symbol_bytes:
            self._block_symbol_bytes = used
        self._block_backlogged += backlogged
        self.count += 1
        if self.count == self.k:
            self._close()

    def on_timer(self, now: float) -> None:
        """Close a partial block whose latency budget ran out."""
        if self.deadline is not None and now >= self.deadline:
            if self.count:
                self._close()
            self.deadline = None

    def _close(self) -> None:
        k = self.count
        stride = self.symbol_size
        # the block's symbol size is its largest source symbol (wire format
        # 11.1): small messages get small repair packets
        size = self._block_symbol_bytes
        # a block sent mostly with data queued behind it belongs to a transfer
        # that fills its window: there repair symbols take the place of data
        bulk = 2 * self._block_backlogged > k
        m = self.m = self.policy.repairs(k, self.loss_rate, self.burst_length, bulk=bulk)
        view = memoryview(self._buf)
        if size == stride:
            source: bytes | memoryview = view[: k * size]
        else:
            source = b"".join(view[i * stride : i * stride + size] for i in range(k))
        parity = ReedSolomon(k, m).encode(source)
        for j in range(m):
            self.repairs.append((self.block_id, k, m, j, parity[j * size : (j + 1) * size]))
        self.block_id += 1
        self.count = 0
        self._block_symbol_bytes = 0
        self._block_backlogged = 0
        self.deadline = None


class _Block:
    __slots__ = ("done", "k", "m", "repairs", "sources")

    def __init__(self) -> None:
        self.k = 0
        self.m = 0
        self.sources: dict[int, bytes] = {}
        self.repairs: dict[int, bytes] = {}
        self.done = False


class FecReceiver:
    """Keeps recent blocks' symbols and rebuilds missing source packets."""

    __slots__ = ("_blocks", "recovered")

    def __init__(self) -> None:
        # created by the first FEC symbol: most connections never see one
        self._blocks: OrderedDict[int, _Block] | None = None
        self.recovered = 0

    def _block(self, block_id: int) -> _Block:
        blocks = self._blocks
        if blocks is None:
            blocks = self._blocks = OrderedDict()
        block = blocks.get(block_id)
        if block is None:
            block = blocks[block_id] = _Block()
            while len(blocks) > MAX_BLOCKS_KEPT:
                blocks.popitem(last=False)
        return block

    def on_source(self, block_id: int, index: int, pn: int, frames: bytes) -> None:
        if index >= 255:
            return
        block = self._block(block_id)
        if not block.done:
            symbol = SYMBOL_HEADER.pack(pn, len(frames)) + frames
            block.sources[index] = symbol

    def on_repair(
        self, block_id: int, k: int, m: int, index: int, symbol: bytes
    ) -> list[tuple[int, bytes]]:
        """Store a repair symbol; returns the (packet number, frames) rebuilt."""
        if len(symbol) <= SYMBOL_HEADER.size or k < 1 or m < 1:
            return []  # not a symbol this protocol sends (peer input: ignore)
        block = self._block(block_id)
        if block.done or index >= m or (block.k and (block.k, block.m) != (k, m)):
            return []
        if block.repairs and len(next(iter(block.repairs.values()))) != len(symbol):
            return []  # symbols of one block have one size
        if any(len(source) > len(symbol) for source in block.sources.values()):
            return []  # a source longer than the symbol size: not a consistent block
        block.k, block.m = k, m
        block.repairs[index] = bytes(symbol)
        missing = [i for i in range(k) if i not in block.sources]
        if not missing:
            block.done = True
            return []
        if len(block.sources) + len(block.repairs) < k:
            return []
        size = len(symbol)
        symbols: dict[int, bytes] = {}
        for i, data in block.sources.items():
            if i < k:
                symbols[i] = data.ljust(size, b"\0")[:size]
        for j, data in block.repairs.items():
            symbols[k + j] = data
        try:
            source = ReedSolomon(k, m).decode(symbols, size)
        except (FecError, ValueError):
            block.done = True
            return []
        block.done = True
        rebuilt: list[tuple[int, bytes]] = []
        for i in missing:
            chunk = source[i * size : (i + 1) * size]
            pn, length = SYMBOL_HEADER.unpack_from(chunk, 0)
            if length > size - SYMBOL_HEADER.size:
                continue  # not a symbol we can trust
            rebuilt.append((pn, bytes(chunk[SYMBOL_HEADER.size : SYMBOL_HEADER.size + length])))
        self.recovered += len(rebuilt)
        return rebuilt
