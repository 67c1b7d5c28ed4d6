"""Native FEC backend: thin wrappers over the C kernels in ``transport._fec``.

How this works
--------------
``csrc/gf256.c`` is compiled by cffi (``csrc/fec_build.py``, out-of-line API
mode) into ``transport._fec``. Every function here is one C call per block:

* :func:`encode_into` -- all m repair symbols of a contiguous k*s source buffer.
* :func:`plan` -- the decode matrix for one erasure pattern (Gauss-Jordan in C),
  LRU-cached by ``(k, chosen indexes)``.
* :func:`reconstruct` -- copy the present sources and compute the missing ones.

Buffers go in through ``ffi.from_buffer`` (``bytes`` pass through uncopied) and
C status codes map onto :mod:`transport.errors`. The SIMD path (``avx2``,
``ssse3`` or ``scalar``) is picked by the C library at load time;
:func:`set_path` forces another one for tests and benchmarks (process-wide).

``TRANSPORT_FEC_PATH=DIR`` imports ``_fec`` from ``DIR`` instead of the installed
``transport._fec`` (for sanitizer builds made with ``csrc/fec_build.py DIR``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from transport._cffi_load import load_cffi_module
from transport.errors import FecDecodeError, FecError

__all__ = [
    "PATHS",
    "Plan",
    "best_path",
    "encode_into",
    "ffi",
    "lib",
    "path",
    "plan",
    "reconstruct",
    "set_path",
]


_module = load_cffi_module("_fec", "TRANSPORT_FEC_PATH")
ffi: Any = _module.ffi
lib: Any = _module.lib

PATHS = ("scalar", "ssse3", "avx2")
_IDENTITY = bytes(range(256))

_MESSAGES = {
    lib.FEC_ERR_PARAM: "k, m or symbol size out of range",
    lib.FEC_ERR_LENGTH: "buffer shorter than the block needs",
    lib.FEC_ERR_INDEX: "symbol indexes invalid, repeated or unsorted",
    lib.FEC_ERR_SINGULAR: "decode matrix is singular",
    lib.FEC_ERR_UNSUPPORTED: "kernel path not supported by this CPU",
    lib.FEC_ERR_OVERLAP: "input and output buffers overlap",
}


def _raise(status: int, what: str) -> None:
    message = f"{what}: {_MESSAGES.get(status, f'status {status}')} (native FEC)"
    if status == lib.FEC_ERR_SINGULAR:
        raise FecDecodeError(message)
    raise FecError(message)


def path() -> str:
    """Name of the kernel path in use."""
    return PATHS[lib.fec_path()]


def best_path() -> str:
    """Name of the fastest kernel path this CPU supports."""
    return PATHS[lib.fec_best_path()]


def set_path(name: str | None) -> str:
    """Force the kernel path (``None`` = best available); returns the previous one."""
    previous = path()
    code = -1 if name is None else (PATHS.index(name) if name in PATHS else -2)
    status = lib.fec_set_path(code)
    if status < 0:
        raise FecError(f"kernel path {name!r}: {_MESSAGES.get(status, status)}")
    return previous


def _writable(out: Any) -> Any:
    if type(out) is bytearray:
        return ffi.from_buffer(out)
    return ffi.from_buffer(out, require_writable=True)


def encode_into(k: int, m: int, s: int, source: Any, out: Any) -> None:
    """Write the m repair symbols of ``source`` (k*s bytes) into ``out`` (m*s bytes)."""
    src = source if type(source) is bytes else ffi.from_buffer(source)
    dst = _writable(out)
    status = lib.fec_encode(k, m, s, src, len(src), dst, len(dst))
    if status:
        _raise(status, "encode")


class Plan(NamedTuple):
    """How to rebuild one erasure pattern: the chosen indexes (as bytes), the
    e x k decode matrix and the e missing source indexes."""

    chosen: bytes
    matrix: bytes
    missing: bytes
    e: int


@functools.lru_cache(maxsize=512)
def plan(k: int, chosen: tuple[int, ...]) -> Plan:
    """Decode plan for k strictly increasing symbol indexes (cached)."""
    chosen_b = bytes(chosen)
    dm = ffi.new("uint8_t[]", max(1, k * k))
    missing = ffi.new("uint8_t[]", max(1, k))
    e = lib.fec_decode_matrix(k, chosen_b, dm, k * k, missing, k)
    if e < 0:
        _raise(e, "decode matrix")
    return Plan(chosen_b, bytes(ffi.buffer(dm, e * k)), bytes(ffi.buffer(missing, e)), e)


def reconstruct(
    p: Plan, k: int, s: int, recv: Any, rowpos: bytes | None, recv_rows: int, out: Any
) -> None:
    """Rebuild the k source symbols into ``out`` (k*s bytes).

    ``recv`` holds ``recv_rows`` symbols of s bytes; the symbol ``p.chosen[c]`` is
    row ``rowpos[c]`` of it (``None``: row c).
    """
    src = recv if type(recv) is bytes else ffi.from_buffer(recv)
    dst = _writable(out)
    status = lib.fec_reconstruct(
        k,
        s,
        p.chosen,
        _IDENTITY if rowpos is None else rowpos,
        src,
        recv_rows,
        len(src),
        p.matrix or ffi.NULL,
        p.missing or ffi.NULL,
        p.e,
        dst,
        len(dst),
    )
    if status:
        _raise(status, "decode")
