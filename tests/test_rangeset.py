"""RangeSet against a plain Python set as the model."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from transport.rangeset import RangeSet

span = st.tuples(st.integers(0, 200), st.integers(0, 40)).map(lambda t: (t[0], t[0] + t[1]))
ops = st.lists(st.tuples(st.sampled_from(["add", "sub", "below"]), span), max_size=60)


def _check_invariants(rs: RangeSet) -> None:
    pairs = list(rs)
    for (s1, e1), (s2, e2) in itertools.pairwise(pairs):
        assert s1 < e1 < s2 < e2  # disjoint, non-adjacent, sorted
    for s, e in pairs:
        assert s < e


@given(ops)
def test_matches_set_model(operations: list[tuple[str, tuple[int, int]]]) -> None:
    rs = RangeSet()
    model: set[int] = set()
    for op, (start, end) in operations:
        if op == "add":
            rs.add(start, end)
            model |= set(range(start, end))
        elif op == "sub":
            rs.subtract(start, end)
            model -= set(range(start, end))
        else:
            rs.discard_below(start)
            model = {v for v in model if v >= start}
        _check_invariants(rs)
        members = {v for s, e in rs for v in range(s, e)}
        assert members == model
        assert rs.total() == len(model)
        for probe in (start, end, start - 1):
            assert (probe in rs) == (probe in model)
        assert rs.covers(start, end) == all(v in model for v in range(start, end))


def test_bound_evicts_lowest_range() -> None:
    rs = RangeSet(max_ranges=3)
    for i in range(5):
        rs.add(i * 10, i * 10 + 1)
    assert list(rs) == [(20, 21), (30, 31), (40, 41)]
    assert rs.full


def test_in_order_extension_and_shift() -> None:
    rs = RangeSet()
    for pn in range(100):
        rs.add(pn, pn + 1)
    assert list(rs) == [(0, 100)]
    rs.add(150, 160)
    assert rs.descending() == [(150, 160), (0, 100)]
    assert rs.shift() == (0, 100)
    assert rs.first() == (150, 160)
