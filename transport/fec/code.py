"""Systematic Cauchy Reed-Solomon code over GF(2^8) (docs/wire-format.md section 11).

How this works
--------------
A block is k source symbols of s bytes each, kept in ONE contiguous buffer
(symbol i at offset i*s). Repair symbol j (0 <= j < m) is, byte by byte,
``R_j = sum_i C[j][i] * S_i`` with ``C[j][i] = y_i / (j XOR y_i)``, ``y_i = 128 + i``:
a Cauchy matrix with its columns scaled so that row 0 is all ones, so R_0 is the
XOR parity and m = 1 is plain XOR. Every square submatrix of a Cauchy matrix is
invertible, so ANY k of the k + m symbols rebuild the block.

Symbol indexes: i < k is source symbol i, k + j is repair symbol j.

Decoding picks k symbols (all present sources, then the lowest repair indexes),
builds the decode matrix of that erasure pattern -- inverting only the e x e
Cauchy block of the e missing sources -- and applies it in one pass. Decode
matrices are LRU-cached by pattern in each backend.

Backends (one kernel call per block, never per symbol):

* ``"native"`` -- C kernels in ``transport._fec`` (AVX2 / SSSE3 / scalar, chosen
  by CPU feature); see :mod:`transport.fec.native`.
* ``"numpy"`` -- the reference twin and fallback; see
  :mod:`transport.fec.numpy_backend`.
* ``"xor"`` -- pure Python, m = 1 only; see :mod:`transport.fec.xor`.

The default follows ``TRANSPORT_BACKEND`` like :mod:`transport.wire`: ``native``
(default) uses the C kernels and falls back to numpy with a ``RuntimeWarning``
when the module is not built (FEC has a working numpy path); ``pure`` selects
numpy.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from transport.errors import (
    BackendUnavailableError,
    ConfigurationError,
    FecDecodeError,
    FecError,
)
from transport.fec.gf256 import MAX_K, MAX_M
from transport.fec.xor import xor_parity, xor_recover

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "ReedSolomon", "available_backends"]

Buffer = bytes | bytearray | memoryview
Symbols = Mapping[int, Buffer] | Buffer

BACKENDS = ("native", "numpy", "xor")
_IDENTITY = bytes(range(256))
_MODULES = {"native": "transport.fec.native", "numpy": "transport.fec.numpy_backend"}


def _load(name: str) -> ModuleType:
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError as exc:
        raise BackendUnavailableError(
            f"FEC backend {name!r} cannot be loaded: reinstall the package with a C "
            f"compiler available (pip install .), or use backend='numpy' ({exc})"
        ) from exc


def _resolve_default() -> str:
    requested = os.environ.get("TRANSPORT_BACKEND", "native").strip().lower() or "native"
    if requested not in ("native", "pure"):
        raise BackendUnavailableError(
            f"TRANSPORT_BACKEND must be 'native' or 'pure', not {requested!r}"
        )
    if requested == "pure":
        return "numpy"
    try:
        _load("native")
    except BackendUnavailableError as exc:
        warnings.warn(
            f"transport.fec: native kernels unavailable, using the slower numpy backend ({exc})",
            RuntimeWarning,
            stacklevel=3,
        )
        return "numpy"
    return "native"


DEFAULT_BACKEND: str = _resolve_default()


def available_backends() -> list[str]:
    """Backends that load in this process (``"xor"`` is always there)."""
    names = []
    for name in ("native", "numpy"):
        try:
            _load(name)
        except BackendUnavailableError:
            continue
        names.append(name)
    return [*names, "xor"]


def _nbytes(buf: Any) -> int:
    if type(buf) is bytes or type(buf) is bytearray:
        return len(buf)
    try:
        view = memoryview(buf)
    except TypeError:
        raise FecError(f"expected a bytes-like symbol, got {type(buf).__name__}") from None
    if not view.c_contiguous:
        raise FecError("symbol buffers must be C-contiguous")
    return view.nbytes


def _check_count(name: str, value: int, limit: int) -> None:
    if type(value) is not int or not 1 <= value <= limit:
        raise ConfigurationError(f"{name} must be an int in 1..{limit}, not {value!r}")


class ReedSolomon:
    """The (k + m, k) systematic Cauchy Reed-Solomon code of wire-format section 11.2.

    ``k`` and ``m`` may be 1..128 each (the wire format's version 1 limits); the
    sender policy of issue 6 uses k <= 64 and m <= k. Instances are immutable and
    cheap; per-pattern decode state lives in the backends' caches.
    """

    __slots__ = ("_kernels", "backend", "k", "m")

    def __init__(self, k: int, m: int, *, backend: str | None = None) -> None:
        _check_count("k", k, MAX_K)
        _check_count("m", m, MAX_M)
        name = DEFAULT_BACKEND if backend is None else backend
        if name not in BACKENDS:
            raise ConfigurationError(f"FEC backend must be one of {BACKENDS}, not {name!r}")
        if name == "xor" and m != 1:
            raise ConfigurationError("the 'xor' backend supports only m = 1")
        self.k = k
        self.m = m
        self.backend = name
        self._kernels: Any = None if name == "xor" else _load(name)

    def __repr__(self) -> str:
        return f"ReedSolomon(k={self.k}, m={self.m}, backend={self.backend!r})"

    # ---------------------------------------------------------------- encode
    def _symbol_size(self, source: Any) -> int:
        n = len(source) if type(source) is bytes else _nbytes(source)
        if n == 0 or n % self.k:
            raise FecError(f"source of {n} bytes is not k={self.k} equal non-empty symbols")
        return n // self.k

    def encode(self, source: Buffer) -> bytes:
        """The m repair symbols (m * s bytes, contiguous) of a k * s source buffer."""
        s = self._symbol_size(source)
        if self._kernels is None:
            return xor_parity(source, self.k)
        out = bytearray(self.m * s)
        self._kernels.encode_into(self.k, self.m, s, source, out)
        return bytes(out)

    def encode_into(self, source: Buffer, out: bytearray | memoryview) -> None:
        """Write the m repair symbols into ``out``, which must hold exactly m * s bytes."""
        s = self._symbol_size(source)
        if _nbytes(out) != self.m * s:
            raise FecError(f"output must be m*s = {self.m * s} bytes, not {_nbytes(out)}")
        if self._kernels is None:
            memoryview(out).cast("B")[:] = xor_parity(source, self.k)
            return
        self._kernels.encode_into(self.k, self.m, s, source, out)

    # ---------------------------------------------------------------- decode
    def decode(
        self,
        symbols: Symbols,
        symbol_size: int | None = None,
        present: Sequence[int] | None = None,
    ) -> bytes:
        """Rebuild the k * s source buffer from any k of the k + m symbols.

        ``symbols`` is either a mapping ``{index: symbol}`` or one contiguous buffer
        of ``len(present)`` symbols whose indexes ``present`` lists in buffer order.
        ``symbol_size`` is optional (inferred) but checked when given. Raises
        :class:`FecDecodeError` with fewer than k distinct symbols and
        :class:`FecError` for malformed input.
        """
        k = self.k
        if isinstance(symbols, Mapping):
            s, indexes = self._check_mapping(symbols, symbol_size)
            if present is not None:
                raise FecError("'present' is only for a contiguous symbol buffer")
            chosen = self._choose(indexes)
            if chosen[k - 1] < k:  # every source arrived
                return b"".join(symbols[i] for i in range(k))
            if self._kernels is None:
                return xor_recover(symbols, k)
            recv = b"".join(symbols[c] for c in chosen)
            out = bytearray(k * s)
            self._kernels.reconstruct(self._kernels.plan(k, chosen), k, s, recv, None, k, out)
            return bytes(out)
        if present is None:
            raise FecError("a contiguous symbol buffer needs the 'present' index list")
        s, rows = self._check_buffer(symbols, symbol_size, present)
        chosen = self._choose(rows)
        if chosen[k - 1] < k and tuple(present[:k]) == chosen:
            return bytes(memoryview(symbols).cast("B")[: k * s])
        if self._kernels is None:
            view = memoryview(symbols).cast("B")
            return xor_recover({i: view[r * s : (r + 1) * s] for i, r in rows.items()}, k)
        rowpos: bytes | None = bytes(rows[c] for c in chosen)
        if rowpos == _IDENTITY[:k]:
            rowpos = None
        out = bytearray(k * s)
        self._kernels.reconstruct(
            self._kernels.plan(k, chosen), k, s, symbols, rowpos, len(present), out
        )
        return bytes(out)

    def _check_index(self, i: Any) -> int:
        if type(i) is not int or not 0 <= i < self.k + self.m:
            raise FecError(f"symbol index {i!r} outside 0..{self.k + self.m - 1}")
        return i

    def _check_mapping(
        self, symbols: Mapping[int, Buffer], symbol_size: int | None
    ) -> tuple[int, list[int]]:
        limit = self.k + self.m
        s = -1
        for i, v in symbols.items():
            if type(i) is not int or not 0 <= i < limit:
                self._check_index(i)
            n = len(v) if type(v) is bytes else _nbytes(v)
            if n != s:
                if s >= 0:
                    raise FecError(f"symbols differ in size: {s} and {n} bytes")
                s = n
        if s == 0:
            raise FecError("symbols must not be empty")
        if symbol_size is not None and s >= 0 and s != symbol_size:
            raise FecError(f"symbols are {s} bytes, not symbol_size={symbol_size}")
        return s, list(symbols)

    def _check_buffer(
        self, symbols: Any, symbol_size: int | None, present: Sequence[int]
    ) -> tuple[int, dict[int, int]]:
        n = len(present)
        rows = {self._check_index(i): r for r, i in enumerate(present)}
        if len(rows) != n:
            raise FecError("'present' lists an index twice")
        total = _nbytes(symbols)
        if n == 0:
            raise FecDecodeError(f"no symbols; need k={self.k}")
        s = total // n if symbol_size is None else symbol_size
        if type(s) is not int or s < 1 or s * n != total:
            raise FecError(f"buffer of {total} bytes is not {n} symbols of {s} bytes")
        return s, rows

    def _choose(self, indexes: Any) -> tuple[int, ...]:
        """k indexes to decode from: sorted order puts the sources first, then the
        lowest repair indexes."""
        ordered = sorted(indexes)
        if len(ordered) < self.k:
            raise FecDecodeError(f"{len(ordered)} symbols cannot rebuild k={self.k} (need k)")
        return tuple(ordered[: self.k])
