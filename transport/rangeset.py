"""A set of integers stored as sorted, disjoint, half-open ranges.

How this works
--------------
Two parallel sorted lists hold the range starts and ends: ``[starts[i], ends[i])``.
Ranges never touch or overlap (adjacent ranges are merged), so a set of
contiguous packet numbers or stream offsets costs one entry however large it
is. ``add`` has an O(1) fast path for the common case -- extending the last
range (in-order arrival) -- and falls back to ``bisect`` plus a slice
replacement otherwise. Used for received packet numbers (ACK generation),
acknowledged and lost stream byte ranges, and reassembly bookkeeping.

The optional ``max_ranges`` bound keeps memory fixed under hostile input: when
an ``add`` would exceed it, the lowest range is dropped (for ACK tracking the
oldest information is the least useful). Callers that must not lose
information check :attr:`full` first.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator


class RangeSet:
    """Sorted disjoint half-open integer ranges."""

    __slots__ = ("_ends", "_starts", "max_ranges")

    def __init__(
        self, ranges: list[tuple[int, int]] | None = None, max_ranges: int | None = None
    ) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.max_ranges = max_ranges
        if ranges:
            for start, end in ranges:
                self.add(start, end)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(zip(self._starts, self._ends, strict=True))

    def __contains__(self, value: int) -> bool:
        i = bisect_right(self._starts, value) - 1
        return i >= 0 and value < self._ends[i]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._starts == other._starts and self._ends == other._ends

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"

    @property
    def full(self) -> bool:
        """True when another disjoint range would evict the lowest one."""
        return self.max_ranges is not None and len(self._starts) >= self.max_ranges

    def first_start(self) -> int:
        """Smallest member. Raises IndexError when empty."""
        return self._starts[0]

    def last_end(self) -> int:
        """One past the largest member. Raises IndexError when empty."""
        return self._ends[-1]

    def first(self) -> tuple[int, int]:
        return self._starts[0], self._ends[0]

    def total(self) -> int:
        """Number of integers in the set."""
        return sum(self._ends) - sum(self._starts)

    def covers(self, start: int, end: int) -> bool:
        """True when every integer in [start, end) is a member (empty spans are covered)."""
        if start >= end:
            return True
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    def descending(self) -> list[tuple[int, int]]:
        """Ranges highest first, as (start, end) half-open pairs."""
        return list(zip(reversed(self._starts), reversed(self._ends), strict=True))

    # ---------------------------------------------------------------- changes
    def add(self, start: int, end: int) -> None:
        """Add [start, end). Empty or inverted spans are ignored."""
        if start >= end:
            return
        starts, ends = self._starts, self._ends
        if starts:
            last_end = ends[-1]
            if start >= starts[-1] and start <= last_end:  # extends (or inside) the last range
                if end > last_end:
                    ends[-1] = end
                return
            if start > last_end:  # a new highest range
                starts.append(start)
                ends.append(end)
                self._enforce_bound()
                return
        else:
            starts.append(start)
            ends.append(end)
            return
        # General case: ranges i..j-1 touch or overlap [start, end).
        i = bisect_left(ends, start)
        j = bisect_right(starts, end)
        if i < j:
            start = min(start, starts[i])
            end = max(end, ends[j - 1])
        starts[i:j] = [start]
        ends[i:j] = [end]
        self._enforce_bound()

    def subtract(self, start: int, end: int) -> None:
        """Remove [start, end) from the set."""
        if start >= end or not self._starts:
            return
        starts, ends = self._starts, self._ends
        i = bisect_right(ends, start)  # first range ending after start
        j = bisect_left(starts, end)  # ranges before j start before end
        if i >= j:
            return
        new_starts: list[int] = []
        new_ends: list[int] = []
        if starts[i] < start:
            new_starts.append(starts[i])
            new_ends.append(start)
        if ends[j - 1] > end:
            new_starts.append(end)
            new_ends.append(ends[j - 1])
        starts[i:j] = new_starts
        ends[i:j] = new_ends

    def discard_below(self, value: int) -> None:
        """Remove every member smaller than ``value``."""
        starts, ends = self._starts, self._ends
        i = bisect_right(ends, value)
        if i:
            del starts[:i]
            del ends[:i]
        if starts and starts[0] < value:
            starts[0] = value

    def shift(self) -> tuple[int, int]:
        """Remove and return the lowest range. Raises IndexError when empty."""
        return self._starts.pop(0), self._ends.pop(0)

    def clear(self) -> None:
        self._starts.clear()
        self._ends.clear()

    def _enforce_bound(self) -> None:
        limit = self.max_ranges
        if limit is not None and len(self._starts) > limit:
            excess = len(self._starts) - limit
            del self._starts[:excess]
            del self._ends[:excess]
