"""Sender side: notice a block FEC cannot rebuild and hand it to ARQ at once.

How this works
--------------
A source packet of an FEC block is held back from loss detection until its
block's repair symbols had a chance to arrive (``SentPacket.fec_hold_pn``),
so a loss FEC will repair is not also retransmitted. But a block that lost
more symbols than it has repairs cannot be rebuilt, and holding its sources
only delays their retransmission. :class:`BlockTracker` follows the symbols
of recent blocks (source packets and REPAIR packet numbers): a symbol is
*missing* once recovery declared it lost or it is ``packet_threshold``
packets older than the largest acknowledged one without being acknowledged.
As soon as a block misses more symbols than its ``m`` repairs can cover, the
hold on its unacknowledged sources is dropped, so the next acknowledgement
declares them lost exactly as ARQ alone would. Before the block closed, ``m``
is not known yet and nothing is released early (the hold then ends when the
repairs are sent, as before).

State is bounded: at most ``MAX_BLOCKS`` blocks are followed (the oldest is
dropped; its sources keep their ordinary, finite hold).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol


class HeldPacket(Protocol):
    """What the tracker needs of a sent packet (``transport.recovery.SentPacket``)."""

    packet_number: int
    fec_hold_pn: int
    fec_extra_s: float


MAX_BLOCKS = 64


class _Tracked:
    __slots__ = ("first_pn", "lost", "m", "outstanding", "sources")

    def __init__(self, first_pn: int) -> None:
        self.first_pn = first_pn
        self.m = -1  # not closed yet
        self.lost = 0
        self.outstanding: set[int] = set()
        self.sources: dict[int, HeldPacket] = {}


class BlockTracker:
    """Follows recent blocks' symbols; releases a doomed block's sources to ARQ."""

    def __init__(self) -> None:
        self._blocks: OrderedDict[int, _Tracked] = OrderedDict()
        self._block_of: dict[int, int] = {}
        self.released = 0  # sources handed to ARQ early

    def _block(self, block_id: int, pn: int) -> _Tracked:
        block = self._blocks.get(block_id)
        if block is None:
            block = self._blocks[block_id] = _Tracked(pn)
            while len(self._blocks) > MAX_BLOCKS:
                _, old = self._blocks.popitem(last=False)
                for old_pn in old.outstanding:
                    self._block_of.pop(old_pn, None)
        return block

    def on_source(self, block_id: int, packet: HeldPacket) -> None:
        pn = packet.packet_number
        block = self._block(block_id, pn)
        block.outstanding.add(pn)
        block.sources[pn] = packet
        self._block_of[pn] = block_id

    def on_close(self, block_id: int, m: int) -> None:
        block = self._blocks.get(block_id)
        if block is not None:
            block.m = m

    def on_repair(self, block_id: int, pn: int) -> None:
        block = self._blocks.get(block_id)
        if block is not None:
            block.outstanding.add(pn)
            self._block_of[pn] = block_id

    def _settle(self, pn: int) -> _Tracked | None:
        """Packet ``pn`` was acknowledged or declared lost: it is no longer
        outstanding in its block (returned, if the block is still tracked)."""
        block_id = self._block_of.pop(pn, None)
        if block_id is None:
            return None
        block = self._blocks.get(block_id)
        if block is not None:
            block.outstanding.discard(pn)
            block.sources.pop(pn, None)
        return block

    def on_ack(
        self, acked_pns: list[int], lost_pns: list[int], largest_acked: int, threshold: int
    ) -> int:
        """Account one ACK; returns how many held sources were released."""
        blocks = self._blocks
        block_of = self._block_of
        for pn in acked_pns:
            self._settle(pn)
        for pn in lost_pns:
            block = self._settle(pn)
            if block is not None:
                block.lost += 1
        limit = largest_acked - threshold
        released = 0
        done: list[int] = []
        for block_id, block in blocks.items():
            if block.first_pn > limit:
                break  # later blocks are younger still
            if not block.outstanding:
                if block.m >= 0:
                    done.append(block_id)
                continue
            if block.m < 0:
                continue
            missing = block.lost + sum(1 for pn in block.outstanding if pn <= limit)
            if missing > block.m:
                for packet in block.sources.values():
                    if packet.fec_hold_pn:
                        packet.fec_hold_pn = 0
                        packet.fec_extra_s = 0.0
                        released += 1
                done.append(block_id)
        for block_id in done:
            block = blocks.pop(block_id)
            for pn in block.outstanding:
                block_of.pop(pn, None)
        self.released += released
        return released
