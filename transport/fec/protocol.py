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

:class:`FecPolicy` picks ``(k, m)`` per block: ``fixed`` uses the configured
pair; ``adaptive`` measures the loss rate and picks the smallest ``m`` whose
chance of leaving a block unrecoverable (binomial tail) is under 1 %, and no
FEC at all on a clean path.
"""

from __future__ import annotations

import math
import struct
from collections import OrderedDict

from transport.errors import ConfigurationError, FecError
from transport.fec.code import ReedSolomon

SYMBOL_HEADER = struct.Struct("!QH")  # packet number, frames length
#: Loss rate under which adaptive FEC sends no repair traffic.
ADAPTIVE_FLOOR = 0.002
#: Target probability that a block cannot be rebuilt.
ADAPTIVE_RESIDUAL = 0.002
ADAPTIVE_K = 10
MAX_ADAPTIVE_M = 4
MAX_BLOCKS_KEPT = 32
FEC_MODES = ("off", "fixed", "adaptive")


def _binomial_tail(n: int, p: float, more_than: int) -> float:
    """P(X > more_than) for X ~ Binomial(n, p)."""
    total = 0.0
    for x in range(more_than + 1, n + 1):
        total += math.comb(n, x) * p**x * (1 - p) ** (n - x)
    return total


class FecPolicy:
    """Chooses the code for the next block, or None for no FEC."""

    def __init__(self, mode: str, k: int = 10, m: int = 2) -> None:
        if mode not in FEC_MODES:
            raise ConfigurationError(f"fec must be one of {FEC_MODES}, not {mode!r}")
        if not (1 <= k <= 64 and 1 <= m <= k):
            raise ConfigurationError("FEC block needs 1 <= k <= 64 and 1 <= m <= k")
        self.mode = mode
        self.k = k
        self.m = m

    def choose(self, loss_rate: float) -> tuple[int, int] | None:
        if self.mode == "off":
            return None
        if self.mode == "fixed":
            return self.k, self.m
        if loss_rate < ADAPTIVE_FLOOR:
            return None
        k = ADAPTIVE_K
        for m in range(1, MAX_ADAPTIVE_M + 1):
            if _binomial_tail(k + m, loss_rate, m) <= ADAPTIVE_RESIDUAL:
                return k, m
        return k, MAX_ADAPTIVE_M


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

    @property
    def max_frames_bytes(self) -> int:
        """Most frame bytes a source packet may carry (they must fit a symbol)."""
        return self.symbol_size - SYMBOL_HEADER.size

    def open_block(self, now: float, loss_rate: float) -> bool:
        """Make sure a block is open if the policy wants FEC; False when it does not."""
        if self.count:
            return True
        code = self.policy.choose(loss_rate)
        if code is None:
            return False
        if (self.k, self.m) != code or not self._buf:
            self.k, self.m = code
            self._buf = bytearray(self.k * self.symbol_size)
        return True

    def next_index(self) -> tuple[int, int]:
        return self.block_id, self.count

    def add_source(self, pn: int, frames: bytes | memoryview, now: float) -> None:
        """Record the source symbol just sent; closes the block when full."""
        if len(frames) > self.max_frames_bytes:
            raise FecError("source frames longer than the symbol size allows")
        if not self.count:
            self.deadline = now + self.latency_budget_s
        start = self.count * self.symbol_size
        SYMBOL_HEADER.pack_into(self._buf, start, pn, len(frames))
        body = start + SYMBOL_HEADER.size
        end = body + len(frames)
        self._buf[body:end] = frames
        self._buf[end : start + self.symbol_size] = bytes(start + self.symbol_size - end)
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
        size = self.symbol_size
        m = min(self.m, k)
        code = ReedSolomon(k, m)
        parity = code.encode(memoryview(self._buf)[: k * size])
        for j in range(m):
            self.repairs.append((self.block_id, k, m, j, parity[j * size : (j + 1) * size]))
        self.block_id += 1
        self.count = 0
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

    def __init__(self) -> None:
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        self.recovered = 0

    def _block(self, block_id: int) -> _Block:
        block = self._blocks.get(block_id)
        if block is None:
            block = self._blocks[block_id] = _Block()
            while len(self._blocks) > MAX_BLOCKS_KEPT:
                self._blocks.popitem(last=False)
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
