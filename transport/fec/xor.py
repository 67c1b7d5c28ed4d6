"""Pure-Python XOR parity: the m = 1 case of the code, with no numpy or C.

How this works
--------------
Row 0 of the Cauchy matrix is all ones (docs/wire-format.md section 11.2), so
repair symbol 0 is the XOR of the k source symbols, and any single lost source
is the XOR of the parity and the other k - 1 sources. Each symbol becomes one
Python int (``int.from_bytes``), so the XOR runs a machine word at a time inside
CPython (~0.5 GB/s) instead of a Python loop per byte. An XOR-only peer
(FEC_CAPABILITY bit 1) interoperates with the Reed-Solomon implementation.
"""

from __future__ import annotations

from collections.abc import Mapping

from transport.errors import FecDecodeError, FecError

__all__ = ["xor_parity", "xor_recover"]

Buffer = bytes | bytearray | memoryview


def xor_parity(source: Buffer, k: int) -> bytes:
    """The XOR of the k equal-sized symbols of a contiguous ``source`` buffer."""
    view = memoryview(source).cast("B")
    if k < 1 or len(view) % k:
        raise FecError(f"source of {len(view)} bytes is not k={k} equal symbols")
    s = len(view) // k
    acc = 0
    for i in range(k):
        acc ^= int.from_bytes(view[i * s : (i + 1) * s], "little")
    return acc.to_bytes(s, "little")


def xor_recover(symbols: Mapping[int, Buffer], k: int) -> bytes:
    """Rebuild the contiguous k-symbol source from k of the k + 1 symbols
    (index k is the parity)."""
    if k < 1:
        raise FecError(f"k={k} must be >= 1")
    if any(not 0 <= i <= k for i in symbols):
        raise FecError(f"symbol index outside 0..{k}")
    sizes = {len(memoryview(v).cast("B")) for v in symbols.values()}
    if len(sizes) > 1:
        raise FecError("symbols differ in size")
    missing = [i for i in range(k) if i not in symbols]
    if not missing:
        return b"".join(bytes(symbols[i]) for i in range(k))
    if len(missing) > 1 or k not in symbols:
        raise FecDecodeError(f"XOR parity rebuilds one lost symbol; {len(missing)} are lost")
    s = sizes.pop()
    acc = 0
    for v in symbols.values():
        acc ^= int.from_bytes(v, "little")
    rebuilt = acc.to_bytes(s, "little")
    return b"".join(rebuilt if i == missing[0] else bytes(symbols[i]) for i in range(k))
