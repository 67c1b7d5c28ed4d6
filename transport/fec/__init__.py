"""Forward error correction: systematic Cauchy Reed-Solomon over GF(2^8).

How this works
--------------
:class:`ReedSolomon` (``transport.fec.code``) is the code of docs/wire-format.md
section 11.2: k source symbols in one contiguous buffer, m repair symbols, any k
of the k + m rebuild the block; repair row 0 is all ones, so m = 1 is XOR
parity. Kernels come from a backend chosen like :mod:`transport.wire`'s codec
(``TRANSPORT_BACKEND``): the C kernels in ``transport._fec`` (AVX2 / SSSE3 /
scalar by CPU feature), or the numpy reference twin -- also the fallback, with a
``RuntimeWarning``, when the C module is not built. ``backend`` names the
default. :mod:`transport.fec.gf256` holds the field arithmetic and
:mod:`transport.fec.xor` a pure-Python XOR parity for m = 1.

Public API
----------
``ReedSolomon(k, m, *, backend=None)`` with ``.encode(source) -> bytes``,
``.encode_into(source, out)``, ``.decode(symbols, symbol_size=None, present=None) -> bytes``
``xor_parity(source, k) -> bytes``; ``xor_recover(symbols, k) -> bytes``
``backend``; ``available_backends() -> list[str]``; ``MAX_K``; ``MAX_M``
"""

from __future__ import annotations

from transport.fec.code import BACKENDS, DEFAULT_BACKEND, ReedSolomon, available_backends
from transport.fec.gf256 import MAX_K, MAX_M
from transport.fec.xor import xor_parity, xor_recover

backend: str = DEFAULT_BACKEND

__all__ = [
    "BACKENDS",
    "MAX_K",
    "MAX_M",
    "ReedSolomon",
    "available_backends",
    "backend",
    "xor_parity",
    "xor_recover",
]
