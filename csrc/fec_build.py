"""cffi build script for ``transport._fec`` (GF(2^8) / Reed-Solomon kernels).

How this works
--------------
``setup.py`` names ``csrc/fec_build.py:ffibuilder`` next to the wire codec's
builder; setuptools' cffi plugin generates ``_fec.c`` from the declarations
below plus ``csrc/gf256.c`` and compiles them (out-of-line API mode, ``-O3``)
into the extension module ``transport._fec``. The SIMD paths are compiled with
``__attribute__((target(...)))`` and chosen at load time, so no ``-mavx2`` flag
is needed and the module runs on any x86-64.

Run as a script, ``python csrc/fec_build.py OUTDIR`` builds the module into
``OUTDIR`` (importable as ``_fec`` with ``TRANSPORT_FEC_PATH=OUTDIR``). With
``TRANSPORT_SANITIZE=1`` the build uses AddressSanitizer + UBSan, like
``csrc/ffi_build.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # cffi runs this file directly: find build_common

from build_common import make_builder, script_main  # noqa: E402

SOURCES = ["gf256.c"]

CDEF = """
#define FEC_MAX_K 128
#define FEC_MAX_M 128

enum fec_status {
    FEC_OK = 0,
    FEC_ERR_PARAM = -1,
    FEC_ERR_LENGTH = -2,
    FEC_ERR_INDEX = -3,
    FEC_ERR_SINGULAR = -4,
    FEC_ERR_UNSUPPORTED = -5,
    FEC_ERR_OVERLAP = -6
};

enum fec_path {
    FEC_PATH_SCALAR = 0,
    FEC_PATH_SSSE3 = 1,
    FEC_PATH_AVX2 = 2
};

int fec_path(void);
int fec_best_path(void);
const char *fec_path_name(int path);
int fec_set_path(int path);

uint8_t fec_mul(uint8_t a, uint8_t b);
int fec_div(uint8_t a, uint8_t b);
int fec_coefficient(size_t j, size_t i);

int fec_mul_acc(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c);
int fec_mul_region(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c);
int fec_invert(const uint8_t *mat, uint8_t *inv, size_t n);

int fec_encode(size_t k, size_t m, size_t s, const uint8_t *src, size_t src_len, uint8_t *out,
               size_t out_len);
int fec_decode_matrix(size_t k, const uint8_t *chosen, uint8_t *dm, size_t dm_len,
                      uint8_t *missing, size_t missing_len);
int fec_reconstruct(size_t k, size_t s, const uint8_t *chosen, const uint8_t *rowpos,
                    const uint8_t *recv, size_t recv_rows, size_t recv_len, const uint8_t *dm,
                    const uint8_t *missing, size_t e, uint8_t *out, size_t out_len);
int fec_decode(size_t k, size_t s, const uint8_t *chosen, const uint8_t *recv, size_t recv_len,
               uint8_t *out, size_t out_len);
"""


def _make_builder(module_name: str, absolute: bool) -> FFI:
    return make_builder(module_name, CDEF, "gf256.h", SOURCES, "gnu99", absolute)


ffibuilder = _make_builder("transport._fec", absolute=False)


if __name__ == "__main__":
    sys.exit(script_main(sys.argv, "_fec", _make_builder))
