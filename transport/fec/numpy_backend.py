"""numpy FEC backend: the reference behaviour and the fallback of the C kernels.

How this works
--------------
Same three operations as :mod:`transport.fec.native`, on numpy arrays viewed
over the caller's buffers (no per-symbol Python loop):

* :func:`encode_into` applies the m x k coefficient matrix with a cached
  :class:`~transport.fec.gf256.MatrixApplier` (packed-lane product tables; the
  all-ones row 0 is an XOR reduction).
* :func:`plan` builds the decode matrix of one erasure pattern
  (:func:`~transport.fec.gf256.decode_matrix`, Gauss-Jordan in numpy) and its
  applier, LRU-cached by ``(k, chosen indexes)`` -- inversion in numpy costs
  ~100 us, so the cache matters here.
* :func:`reconstruct` copies the present sources and computes the missing ones.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from transport.errors import FecError
from transport.fec.gf256 import U8, MatrixApplier, coefficient_matrix, decode_matrix

__all__ = ["Plan", "encode_into", "plan", "reconstruct"]


@functools.lru_cache(maxsize=256)
def _encoder(k: int, m: int) -> MatrixApplier:
    return MatrixApplier(coefficient_matrix(k, m))


def _rows(buf: Any, rows: int, s: int, writable: bool = False) -> U8:
    arr = np.frombuffer(buf, dtype=np.uint8)
    if writable and not arr.flags.writeable:
        raise FecError("output buffer is read-only")
    if arr.size < rows * s:
        raise FecError(f"buffer of {arr.size} bytes is shorter than {rows} x {s}")
    return arr[: rows * s].reshape(rows, s)


def encode_into(k: int, m: int, s: int, source: Any, out: Any) -> None:
    """Write the m repair symbols of ``source`` (k*s bytes) into ``out`` (m*s bytes)."""
    _encoder(k, m).apply(_rows(source, k, s), _rows(out, m, s, writable=True))


class Plan(NamedTuple):
    """How to rebuild one erasure pattern (see :func:`plan`)."""

    chosen: tuple[int, ...]
    n_src: int
    missing: tuple[int, ...]
    applier: MatrixApplier | None


@functools.lru_cache(maxsize=512)
def plan(k: int, chosen: tuple[int, ...]) -> Plan:
    """Decode plan for k strictly increasing symbol indexes (cached)."""
    dm, missing = decode_matrix(k, chosen)
    applier = MatrixApplier(dm) if missing else None
    return Plan(chosen, k - len(missing), missing, applier)


def reconstruct(
    p: Plan, k: int, s: int, recv: Any, rowpos: bytes | None, recv_rows: int, out: Any
) -> None:
    """Rebuild the k source symbols into ``out`` (k*s bytes); see the native twin."""
    received = _rows(recv, recv_rows, s)
    if rowpos is None:
        received = received[:k]
    else:
        received = received[np.frombuffer(rowpos, dtype=np.uint8)[:k].astype(np.intp)]
    result = _rows(out, k, s, writable=True)
    if p.n_src:
        result[list(p.chosen[: p.n_src])] = received[: p.n_src]
    if p.applier is not None:
        rebuilt = np.empty((len(p.missing), s), dtype=np.uint8)
        p.applier.apply(received, rebuilt)
        result[list(p.missing)] = rebuilt
