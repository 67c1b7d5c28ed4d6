"""GF(2^8) arithmetic in numpy: the reference twin of ``csrc/gf256.c``.

How this works
--------------
The field is GF(2)[x] / (x^8 + x^4 + x^3 + x^2 + 1), polynomial ``0x11d``
(docs/wire-format.md section 11.2); 2 generates its multiplicative group, so
``EXP[i] = 2^i`` and ``LOG`` is its inverse. ``MUL`` is the full 256 x 256 product
table (64 KiB) and ``INV`` the inverses. Addition is XOR.

The code's coefficients are ``C[j][i] = y_i / (j XOR y_i)`` with ``y_i = 128 + i``
(a Cauchy matrix with columns scaled so that row 0 is all ones).

Matrices are ``uint8`` numpy arrays. :func:`invert` is plain Gauss-Jordan
elimination; :func:`decode_matrix` builds the e x k matrix that rebuilds the e
missing source symbols from k received ones by inverting only the e x e Cauchy
block of the missing columns (the same construction as ``fec_decode_matrix``).

:class:`MatrixApplier` multiplies a fixed r x n matrix by n symbols at numpy
speed with "packed lanes": for each input column i a 256-entry table holds the
products of byte b with all r coefficients of that column, packed into one
uint32 (r <= 4) or uint64 (r <= 8) word, so one gather per input byte yields r
products and one XOR-reduction over the inputs sums all rows at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from transport.errors import FecError

__all__ = [
    "EXP",
    "INV",
    "LOG",
    "MAX_K",
    "MAX_M",
    "MUL",
    "POLYNOMIAL",
    "MatrixApplier",
    "coefficient",
    "coefficient_matrix",
    "decode_matrix",
    "div",
    "invert",
    "matmul",
    "mul",
    "region_mul",
    "region_mul_acc",
]

U8 = npt.NDArray[np.uint8]

POLYNOMIAL = 0x11D
MAX_K = 128  # source symbols per block (wire-format section 11.2)
MAX_M = 128  # repair symbols per block


def _build_tables() -> tuple[U8, U8, U8, U8]:
    exp = np.zeros(512, dtype=np.uint8)
    log = np.zeros(256, dtype=np.uint8)
    x = 1
    for i in range(255):
        exp[i] = exp[i + 255] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= POLYNOMIAL
    exp[510:512] = exp[0:2]
    log_i = log.astype(np.intp)
    mul = exp[log_i[:, None] + log_i[None, :]]
    mul[0, :] = 0
    mul[:, 0] = 0
    inv = np.zeros(256, dtype=np.uint8)
    inv[1:] = exp[255 - log_i[1:]]
    return exp, log, np.ascontiguousarray(mul), inv


EXP, LOG, MUL, INV = _build_tables()
for _table in (EXP, LOG, MUL, INV):
    _table.setflags(write=False)


def mul(a: int, b: int) -> int:
    """a * b in GF(2^8)."""
    return int(MUL[a, b])


def div(a: int, b: int) -> int:
    """a / b in GF(2^8); b must be non-zero."""
    if b == 0:
        raise FecError("division by zero in GF(2^8)")
    return int(MUL[a, INV[b]])


def coefficient(j: int, i: int) -> int:
    """C[j][i] = y_i / (j XOR y_i), y_i = 128 + i (wire-format section 11.2)."""
    if not (0 <= j < MAX_M and 0 <= i < MAX_K):
        raise FecError(f"coefficient index out of range: j={j}, i={i}")
    y = 128 + i
    return div(y, j ^ y)


def _full_coefficients() -> U8:
    j = np.arange(MAX_M, dtype=np.intp)[:, None]
    y = 128 + np.arange(MAX_K, dtype=np.intp)[None, :]
    table = MUL[y, INV[j ^ y]]
    table.setflags(write=False)
    return table


_COEF = _full_coefficients()


def coefficient_matrix(k: int, m: int) -> U8:
    """The m x k repair matrix C[0..m)[0..k) (a copy)."""
    if not (1 <= k <= MAX_K and 1 <= m <= MAX_M):
        raise FecError(f"k={k}, m={m} outside 1..{MAX_K} / 1..{MAX_M}")
    return _COEF[:m, :k].copy()


def region_mul(c: int, src: U8) -> U8:
    """c * src for a uint8 array."""
    return MUL[c][src]


def region_mul_acc(dst: U8, c: int, src: U8) -> None:
    """dst ^= c * src, in place."""
    np.bitwise_xor(dst, MUL[c][src], out=dst)


def matmul(a: U8, b: U8) -> U8:
    """Matrix product over GF(2^8) of uint8 matrices a (r x n) and b (n x q)."""
    prod = MUL[a[:, :, None].astype(np.intp), b[None, :, :].astype(np.intp)]
    return np.bitwise_xor.reduce(prod, axis=1).astype(np.uint8)


def invert(matrix: U8) -> U8:
    """Inverse of a square uint8 matrix by Gauss-Jordan elimination.

    Raises :class:`FecError` if the matrix is singular.
    """
    n = matrix.shape[0]
    if matrix.ndim != 2 or matrix.shape[1] != n or n == 0:
        raise FecError(f"cannot invert a matrix of shape {matrix.shape}")
    a = matrix.astype(np.uint8, copy=True)
    inv = np.eye(n, dtype=np.uint8)
    for col in range(n):
        nonzero = np.nonzero(a[col:, col])[0]
        if nonzero.size == 0:
            raise FecError("singular matrix")
        piv = col + int(nonzero[0])
        if piv != col:
            a[[col, piv]] = a[[piv, col]]
            inv[[col, piv]] = inv[[piv, col]]
        f = int(INV[a[col, col]])
        a[col] = MUL[f][a[col]]
        inv[col] = MUL[f][inv[col]]
        factors = a[:, col].copy()
        factors[col] = 0
        rows = np.nonzero(factors)[0]
        if rows.size:
            fr = factors[rows].astype(np.intp)[:, None]
            a[rows] ^= MUL[fr, a[col][None, :]]
            inv[rows] ^= MUL[fr, inv[col][None, :]]
    return inv


def decode_matrix(k: int, chosen: Sequence[int]) -> tuple[U8, tuple[int, ...]]:
    """The e x k decode matrix and the e missing source indexes for ``chosen``.

    ``chosen`` is k strictly increasing symbol indexes (i < k: source i; k + j:
    repair j). Row r rebuilds source ``missing[r]`` as the sum over c of
    ``dm[r][c] * symbol(chosen[c])``.
    """
    if not 1 <= k <= MAX_K or len(chosen) != k:
        raise FecError(f"need exactly k={k} chosen symbols, got {len(chosen)}")
    if any(not 0 <= x < k + MAX_M for x in chosen) or any(b <= a for a, b in pairwise(chosen)):
        raise FecError("chosen symbol indexes must be distinct, sorted and < k + 128")
    present = [x for x in chosen if x < k]
    repairs = [x - k for x in chosen if x >= k]
    have = set(present)
    missing = tuple(i for i in range(k) if i not in have)
    e = len(missing)
    if e == 0:
        return np.zeros((0, k), dtype=np.uint8), ()
    a = _COEF[np.ix_(repairs, missing)]
    ai = invert(a)
    dm = np.empty((e, k), dtype=np.uint8)
    if present:
        dm[:, : len(present)] = matmul(ai, _COEF[np.ix_(repairs, present)])
    dm[:, len(present) :] = ai
    return dm, missing


class MatrixApplier:
    """Computes ``out[r] = sum_i M[r][i] * in[i]`` for a fixed uint8 matrix M.

    Rows that are all ones are XOR parities and bypass the tables.
    """

    __slots__ = ("_groups", "_n", "_ones_rows", "rows")

    def __init__(self, matrix: U8) -> None:
        rows, n = matrix.shape
        self.rows = rows
        self._n = n
        ones = [r for r in range(rows) if bool(np.all(matrix[r] == 1))]
        self._ones_rows = ones
        rest = [r for r in range(rows) if r not in set(ones)]
        groups: list[tuple[list[int], npt.NDArray[np.unsignedinteger]]] = []
        byte = np.arange(256, dtype=np.intp)[None, :]
        for start in range(0, len(rest), 8):
            chunk = rest[start : start + 8]
            dtype = np.uint32 if len(chunk) <= 4 else np.uint64
            table = np.zeros((n, 256), dtype=dtype)
            for lane, r in enumerate(chunk):
                col = matrix[r].astype(np.intp)[:, None]
                table |= MUL[col, byte].astype(dtype) << dtype(8 * lane)
            groups.append((chunk, table.reshape(-1)))
        self._groups = groups

    def apply(self, symbols: U8, out: U8) -> None:
        """symbols: (n, s) uint8; out: (rows, s) uint8, overwritten."""
        s = symbols.shape[1]
        if self._ones_rows:
            parity = _xor_rows(symbols)
            for r in self._ones_rows:
                out[r] = parity
        if not self._groups:
            return
        index = symbols.astype(np.intp)
        index += (np.arange(self._n, dtype=np.intp) * 256)[:, None]
        for chunk, table in self._groups:
            packed = np.bitwise_xor.reduce(table[index], axis=0)
            lanes = packed.view(np.uint8).reshape(s, packed.itemsize)
            out[chunk] = lanes[:, : len(chunk)].T


def _xor_rows(symbols: U8) -> U8:
    """XOR of all rows of a (n, s) uint8 array, 8 bytes at a time when possible."""
    s = symbols.shape[1]
    if s % 8 == 0 and symbols.flags.c_contiguous:
        wide = symbols.view(np.uint64)
        return np.bitwise_xor.reduce(wide, axis=0).view(np.uint8)
    return np.bitwise_xor.reduce(symbols, axis=0)
