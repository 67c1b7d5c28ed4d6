/*
 * gf256.h -- GF(2^8) kernels and the systematic Cauchy Reed-Solomon code of
 * docs/wire-format.md section 11.2, built by cffi into `transport._fec`.
 *
 * How this works
 * --------------
 * Arithmetic is in GF(2^8) with reduction polynomial x^8+x^4+x^3+x^2+1 (0x11d).
 * Repair symbol j of a block of k source symbols S_0..S_{k-1} is, byte by byte,
 *
 *     R_j = sum_i C[j][i] * S_i,     C[j][i] = y_i / (j XOR y_i),  y_i = 128 + i
 *
 * so row 0 is all ones (R_0 is the XOR parity).  Source symbols live in ONE
 * contiguous buffer of k*s bytes (symbol i at offset i*s) and every kernel is one
 * call per block.  Three region-multiply paths exist: a scalar 256x256 product
 * table, SSSE3 and AVX2 split-nibble `pshufb` lookups.  The fastest path the CPU
 * supports is chosen at load time (__builtin_cpu_supports); fec_set_path() can
 * force a slower one for tests and benchmarks.
 *
 * Decoding takes k distinct symbol indexes ("chosen", sorted ascending, index
 * i < k is source symbol i, index k + j is repair symbol j).  With e sources
 * missing and e repairs chosen, the e x e Cauchy submatrix A is inverted by
 * Gauss-Jordan elimination and the missing sources are S_E = A^-1 (R + B S_P)
 * (B: repair coefficients of the present sources).  That gives an e x k decode
 * matrix which fec_reconstruct applies in one pass; fec_decode does both.
 *
 * Nothing allocates: the only workspace (at most 3 x 128 x 128 bytes) is on the
 * stack.  Every length is checked; failures return a negative fec_status.
 * Input and output buffers must not overlap (checked).
 */
#ifndef TRANSPORT_GF256_H
#define TRANSPORT_GF256_H

#include <stddef.h>
#include <stdint.h>

#define FEC_MAX_K 128 /* source symbols per block (wire-format section 11.2) */
#define FEC_MAX_M 128 /* repair symbols per block */

enum fec_status {
    FEC_OK = 0,
    FEC_ERR_PARAM = -1,       /* k, m, s or a coefficient out of range      */
    FEC_ERR_LENGTH = -2,      /* a buffer is shorter than the call needs     */
    FEC_ERR_INDEX = -3,       /* symbol indexes invalid, duplicated, unsorted */
    FEC_ERR_SINGULAR = -4,    /* matrix not invertible                       */
    FEC_ERR_UNSUPPORTED = -5, /* requested SIMD path not supported by CPU    */
    FEC_ERR_OVERLAP = -6      /* input and output buffers overlap            */
};

enum fec_path {
    FEC_PATH_SCALAR = 0,
    FEC_PATH_SSSE3 = 1,
    FEC_PATH_AVX2 = 2
};

/* Kernel path: active one, best one the CPU supports, its name. */
int fec_path(void);
int fec_best_path(void);
const char *fec_path_name(int path);
/* Force a path (-1 = best available).  Returns the path now active, or
 * FEC_ERR_UNSUPPORTED / FEC_ERR_PARAM.  Process-wide; meant for tests/benchmarks. */
int fec_set_path(int path);

/* Single-element arithmetic (for tests). */
uint8_t fec_mul(uint8_t a, uint8_t b);
int fec_div(uint8_t a, uint8_t b); /* a / b, or FEC_ERR_PARAM when b == 0 */
int fec_coefficient(size_t j, size_t i); /* C[j][i], or FEC_ERR_PARAM */

/* Regions (n bytes): dst ^= c * src, and dst = c * src. */
int fec_mul_acc(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c);
int fec_mul_region(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c);

/* In-place-free inversion of an n x n row-major matrix (n <= FEC_MAX_K). */
int fec_invert(const uint8_t *mat, uint8_t *inv, size_t n);

/* All m repair symbols of a block: src holds k symbols of s bytes (k*s bytes),
 * out receives m symbols (m*s bytes). */
int fec_encode(size_t k, size_t m, size_t s, const uint8_t *src, size_t src_len, uint8_t *out,
               size_t out_len);

/* Decode matrix for the k sorted distinct indexes in chosen[] (each < k + FEC_MAX_M).
 * Writes the e x k matrix to dm (column c belongs to chosen[c]) and the e missing
 * source indexes to missing[]; returns e >= 0 or a negative fec_status. */
int fec_decode_matrix(size_t k, const uint8_t *chosen, uint8_t *dm, size_t dm_len,
                      uint8_t *missing, size_t missing_len);

/* Rebuild the k source symbols into out (k*s bytes).  The symbol chosen[c] is row
 * rowpos[c] of recv (recv_rows rows of s bytes).  Present sources are copied,
 * missing ones computed with dm/missing from fec_decode_matrix (e rows). */
int fec_reconstruct(size_t k, size_t s, const uint8_t *chosen, const uint8_t *rowpos,
                    const uint8_t *recv, size_t recv_rows, size_t recv_len, const uint8_t *dm,
                    const uint8_t *missing, size_t e, uint8_t *out, size_t out_len);

/* One-shot decode: recv holds the k chosen symbols in chosen[] order (k*s bytes). */
int fec_decode(size_t k, size_t s, const uint8_t *chosen, const uint8_t *recv, size_t recv_len,
               uint8_t *out, size_t out_len);

#endif /* TRANSPORT_GF256_H */
