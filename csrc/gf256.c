/*
 * gf256.c -- GF(2^8) region kernels and Cauchy Reed-Solomon encode/decode.
 * See gf256.h for the code and the API contract.
 *
 * How the SIMD paths work
 * -----------------------
 * c * x for a constant c is linear over GF(2), so c*x = c*(x & 0x0f) ^ c*(x & 0xf0).
 * nib[c][0..15] holds c*v and nib[c][16..31] holds c*(v << 4) for v = 0..15;
 * `pshufb` looks 16 (SSSE3) or 32 (AVX2) bytes up in those 16-entry tables at once.
 * A kernel computes a group of up to 4 output symbols per pass over the inputs,
 * keeping the accumulators in registers, and a group whose first row is all ones
 * (repair row 0) XORs instead of multiplying there.  Outputs are stored, not
 * accumulated, so the final partial vector is handled by recomputing the last
 * full vector of the symbol (overlapping the previous one) -- no scalar tail.
 */
#include "gf256.h"

#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define FEC_X86 1
#include <immintrin.h>
#else
#define FEC_X86 0
#endif

#define GF_POLY 0x11du
#define GROUP 4

static uint8_t gf_exp[512];
static uint8_t gf_log[256];
static uint8_t gf_inv[256];
static uint8_t gf_mul_tbl[256][256];
static uint8_t nib[256][32] __attribute__((aligned(32)));
static uint8_t coef[FEC_MAX_M][FEC_MAX_K];
static volatile int tables_ready = 0;
static int best_path = FEC_PATH_SCALAR;
static int active_path = FEC_PATH_SCALAR;

static void build_tables(void)
{
    unsigned x = 1, i, j;
    for (i = 0; i < 255; i++) {
        gf_exp[i] = (uint8_t)x;
        gf_exp[i + 255] = (uint8_t)x;
        gf_log[x] = (uint8_t)i;
        x <<= 1;
        if (x & 0x100u)
            x ^= GF_POLY;
    }
    gf_exp[510] = gf_exp[0];
    gf_exp[511] = gf_exp[1];
    gf_log[0] = 0; /* never used for 0 */
    for (i = 0; i < 256; i++) {
        for (j = 0; j < 256; j++) {
            gf_mul_tbl[i][j] =
                (i == 0 || j == 0) ? 0 : gf_exp[(unsigned)gf_log[i] + gf_log[j]];
        }
        gf_inv[i] = i == 0 ? 0 : gf_exp[255u - gf_log[i]];
    }
    for (i = 0; i < 256; i++) {
        for (j = 0; j < 16; j++) {
            nib[i][j] = gf_mul_tbl[i][j];
            nib[i][16 + j] = gf_mul_tbl[i][j << 4];
        }
    }
    for (j = 0; j < FEC_MAX_M; j++) {
        for (i = 0; i < FEC_MAX_K; i++) {
            unsigned y = 128u + i;
            coef[j][i] = gf_mul_tbl[y][gf_inv[j ^ y]];
        }
    }
#if FEC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        best_path = FEC_PATH_AVX2;
    else if (__builtin_cpu_supports("ssse3"))
        best_path = FEC_PATH_SSSE3;
#endif
    active_path = best_path;
    tables_ready = 1;
}

#if defined(__GNUC__)
__attribute__((constructor))
#endif
static void fec_init(void)
{
    build_tables();
}

static inline void ensure_tables(void)
{
    if (!tables_ready)
        build_tables();
}

/* ---- path control ----------------------------------------------------- */

int fec_path(void)
{
    ensure_tables();
    return active_path;
}

int fec_best_path(void)
{
    ensure_tables();
    return best_path;
}

const char *fec_path_name(int path)
{
    switch (path) {
    case FEC_PATH_SCALAR:
        return "scalar";
    case FEC_PATH_SSSE3:
        return "ssse3";
    case FEC_PATH_AVX2:
        return "avx2";
    default:
        return "unknown";
    }
}

int fec_set_path(int path)
{
    ensure_tables();
    if (path == -1)
        path = best_path;
    if (path < FEC_PATH_SCALAR || path > FEC_PATH_AVX2)
        return FEC_ERR_PARAM;
    if (path > best_path)
        return FEC_ERR_UNSUPPORTED;
    active_path = path;
    return path;
}

/* ---- element arithmetic ----------------------------------------------- */

uint8_t fec_mul(uint8_t a, uint8_t b)
{
    ensure_tables();
    return gf_mul_tbl[a][b];
}

int fec_div(uint8_t a, uint8_t b)
{
    ensure_tables();
    if (b == 0)
        return FEC_ERR_PARAM;
    return gf_mul_tbl[a][gf_inv[b]];
}

int fec_coefficient(size_t j, size_t i)
{
    ensure_tables();
    if (j >= FEC_MAX_M || i >= FEC_MAX_K)
        return FEC_ERR_PARAM;
    return coef[j][i];
}

/* ---- scalar kernels ----------------------------------------------------- */

static void scalar_mul_acc(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c)
{
    size_t x;
    if (c == 0)
        return;
    if (c == 1) {
        for (x = 0; x < n; x++)
            dst[x] ^= src[x];
        return;
    }
    {
        const uint8_t *t = gf_mul_tbl[c];
        for (x = 0; x < n; x++)
            dst[x] ^= t[src[x]];
    }
}

/* out[r] = sum_i co[r*stride + i] * in[i], r < rows, each of len bytes. */
static void scalar_apply(const uint8_t *const *in, size_t n_in, uint8_t *const *out,
                         const uint8_t *co, size_t stride, size_t rows, size_t len)
{
    size_t r, i;
    for (r = 0; r < rows; r++) {
        memset(out[r], 0, len);
        for (i = 0; i < n_in; i++)
            scalar_mul_acc(out[r], in[i], len, co[r * stride + i]);
    }
}

/* ---- SSSE3 kernels ------------------------------------------------------ */
#if FEC_X86

#define TGT_SSSE3 __attribute__((target("ssse3")))
#define TGT_AVX2 __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline))

TGT_SSSE3 static void ssse3_mul_acc(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c)
{
    const __m128i mask = _mm_set1_epi8(0x0f);
    const __m128i tlo = _mm_load_si128((const __m128i *)nib[c]);
    const __m128i thi = _mm_load_si128((const __m128i *)(nib[c] + 16));
    size_t x = 0;
    for (; x + 16 <= n; x += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(src + x));
        __m128i lo = _mm_and_si128(v, mask);
        __m128i hi = _mm_and_si128(_mm_srli_epi64(v, 4), mask);
        __m128i p = _mm_xor_si128(_mm_shuffle_epi8(tlo, lo), _mm_shuffle_epi8(thi, hi));
        __m128i d = _mm_loadu_si128((const __m128i *)(dst + x));
        _mm_storeu_si128((__m128i *)(dst + x), _mm_xor_si128(d, p));
    }
    scalar_mul_acc(dst + x, src + x, n - x, c);
}

INLINE TGT_SSSE3 void ssse3_group(const uint8_t *const *in, size_t n_in, uint8_t *const *out,
                                  const uint8_t *co, size_t stride, const int G, const int ones,
                                  size_t len)
{
    const __m128i mask = _mm_set1_epi8(0x0f);
    size_t pos = 0;
    while (pos < len) {
        size_t p = pos + 16 <= len ? pos : len - 16;
        __m128i acc[GROUP];
        size_t i;
        int g;
        for (g = 0; g < G; g++)
            acc[g] = _mm_setzero_si128();
        for (i = 0; i < n_in; i++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(in[i] + p));
            __m128i lo = _mm_and_si128(v, mask);
            __m128i hi = _mm_and_si128(_mm_srli_epi64(v, 4), mask);
            for (g = 0; g < G; g++) {
                if (ones && g == 0) {
                    acc[0] = _mm_xor_si128(acc[0], v);
                } else {
                    const uint8_t *t = nib[co[(size_t)g * stride + i]];
                    __m128i tl = _mm_load_si128((const __m128i *)t);
                    __m128i th = _mm_load_si128((const __m128i *)(t + 16));
                    acc[g] = _mm_xor_si128(acc[g], _mm_xor_si128(_mm_shuffle_epi8(tl, lo),
                                                                 _mm_shuffle_epi8(th, hi)));
                }
            }
        }
        for (g = 0; g < G; g++)
            _mm_storeu_si128((__m128i *)(out[g] + p), acc[g]);
        pos += 16;
    }
}

TGT_SSSE3 static void ssse3_group_dispatch(const uint8_t *const *in, size_t n_in,
                                           uint8_t *const *out, const uint8_t *co, size_t stride,
                                           int G, int ones, size_t len)
{
    switch (G * 2 + ones) {
    case 2: ssse3_group(in, n_in, out, co, stride, 1, 0, len); break;
    case 3: ssse3_group(in, n_in, out, co, stride, 1, 1, len); break;
    case 4: ssse3_group(in, n_in, out, co, stride, 2, 0, len); break;
    case 5: ssse3_group(in, n_in, out, co, stride, 2, 1, len); break;
    case 6: ssse3_group(in, n_in, out, co, stride, 3, 0, len); break;
    case 7: ssse3_group(in, n_in, out, co, stride, 3, 1, len); break;
    case 8: ssse3_group(in, n_in, out, co, stride, 4, 0, len); break;
    default: ssse3_group(in, n_in, out, co, stride, 4, 1, len); break;
    }
}

/* ---- AVX2 kernels ------------------------------------------------------- */

INLINE TGT_AVX2 __m256i avx2_table(const uint8_t *t)
{
    return _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *)t));
}

TGT_AVX2 static void avx2_mul_acc(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c)
{
    const __m256i mask = _mm256_set1_epi8(0x0f);
    const __m256i tlo = avx2_table(nib[c]);
    const __m256i thi = avx2_table(nib[c] + 16);
    size_t x = 0;
    for (; x + 32 <= n; x += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(src + x));
        __m256i lo = _mm256_and_si256(v, mask);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi64(v, 4), mask);
        __m256i p =
            _mm256_xor_si256(_mm256_shuffle_epi8(tlo, lo), _mm256_shuffle_epi8(thi, hi));
        __m256i d = _mm256_loadu_si256((const __m256i *)(dst + x));
        _mm256_storeu_si256((__m256i *)(dst + x), _mm256_xor_si256(d, p));
    }
    if (x < n)
        ssse3_mul_acc(dst + x, src + x, n - x, c);
}

/* 64 bytes (two vectors) per step while they fit, then one overlapping 32-byte step. */
INLINE TGT_AVX2 void avx2_group(const uint8_t *const *in, size_t n_in, uint8_t *const *out,
                                const uint8_t *co, size_t stride, const int G, const int ones,
                                size_t len)
{
    const __m256i mask = _mm256_set1_epi8(0x0f);
    size_t pos = 0;
    size_t i;
    int g;
    for (; pos + 64 <= len; pos += 64) {
        __m256i a0[GROUP], a1[GROUP];
        for (g = 0; g < G; g++) {
            a0[g] = _mm256_setzero_si256();
            a1[g] = _mm256_setzero_si256();
        }
        for (i = 0; i < n_in; i++) {
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(in[i] + pos));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(in[i] + pos + 32));
            __m256i lo0 = _mm256_and_si256(v0, mask);
            __m256i hi0 = _mm256_and_si256(_mm256_srli_epi64(v0, 4), mask);
            __m256i lo1 = _mm256_and_si256(v1, mask);
            __m256i hi1 = _mm256_and_si256(_mm256_srli_epi64(v1, 4), mask);
            for (g = 0; g < G; g++) {
                if (ones && g == 0) {
                    a0[0] = _mm256_xor_si256(a0[0], v0);
                    a1[0] = _mm256_xor_si256(a1[0], v1);
                } else {
                    const uint8_t *t = nib[co[(size_t)g * stride + i]];
                    __m256i tl = avx2_table(t);
                    __m256i th = avx2_table(t + 16);
                    a0[g] = _mm256_xor_si256(
                        a0[g], _mm256_xor_si256(_mm256_shuffle_epi8(tl, lo0),
                                                _mm256_shuffle_epi8(th, hi0)));
                    a1[g] = _mm256_xor_si256(
                        a1[g], _mm256_xor_si256(_mm256_shuffle_epi8(tl, lo1),
                                                _mm256_shuffle_epi8(th, hi1)));
                }
            }
        }
        for (g = 0; g < G; g++) {
            _mm256_storeu_si256((__m256i *)(out[g] + pos), a0[g]);
            _mm256_storeu_si256((__m256i *)(out[g] + pos + 32), a1[g]);
        }
    }
    while (pos < len) {
        size_t p = pos + 32 <= len ? pos : len - 32;
        __m256i acc[GROUP];
        for (g = 0; g < G; g++)
            acc[g] = _mm256_setzero_si256();
        for (i = 0; i < n_in; i++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(in[i] + p));
            __m256i lo = _mm256_and_si256(v, mask);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi64(v, 4), mask);
            for (g = 0; g < G; g++) {
                if (ones && g == 0) {
                    acc[0] = _mm256_xor_si256(acc[0], v);
                } else {
                    const uint8_t *t = nib[co[(size_t)g * stride + i]];
                    acc[g] = _mm256_xor_si256(
                        acc[g], _mm256_xor_si256(_mm256_shuffle_epi8(avx2_table(t), lo),
                                                 _mm256_shuffle_epi8(avx2_table(t + 16), hi)));
                }
            }
        }
        for (g = 0; g < G; g++)
            _mm256_storeu_si256((__m256i *)(out[g] + p), acc[g]);
        pos += 32;
    }
}

TGT_AVX2 static void avx2_group_dispatch(const uint8_t *const *in, size_t n_in,
                                         uint8_t *const *out, const uint8_t *co, size_t stride,
                                         int G, int ones, size_t len)
{
    switch (G * 2 + ones) {
    case 2: avx2_group(in, n_in, out, co, stride, 1, 0, len); break;
    case 3: avx2_group(in, n_in, out, co, stride, 1, 1, len); break;
    case 4: avx2_group(in, n_in, out, co, stride, 2, 0, len); break;
    case 5: avx2_group(in, n_in, out, co, stride, 2, 1, len); break;
    case 6: avx2_group(in, n_in, out, co, stride, 3, 0, len); break;
    case 7: avx2_group(in, n_in, out, co, stride, 3, 1, len); break;
    case 8: avx2_group(in, n_in, out, co, stride, 4, 0, len); break;
    default: avx2_group(in, n_in, out, co, stride, 4, 1, len); break;
    }
}
#endif /* FEC_X86 */

/* ---- dispatch ------------------------------------------------------------ */

static int row_is_ones(const uint8_t *row, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (row[i] != 1)
            return 0;
    return 1;
}

/* out[r] = sum_i co[r*stride+i] * in[i] for r < rows (stores, never accumulates). */
static void apply(const uint8_t *const *in, size_t n_in, uint8_t *const *out, const uint8_t *co,
                  size_t stride, size_t rows, size_t len)
{
    int path = active_path;
    size_t r;
    if (len == 0 || rows == 0)
        return;
#if FEC_X86
    if (path == FEC_PATH_AVX2 && len >= 32) {
        for (r = 0; r < rows; r += GROUP) {
            size_t g = rows - r < GROUP ? rows - r : GROUP;
            avx2_group_dispatch(in, n_in, out + r, co + r * stride, stride, (int)g,
                                row_is_ones(co + r * stride, n_in), len);
        }
        return;
    }
    if (path >= FEC_PATH_SSSE3 && len >= 16) {
        for (r = 0; r < rows; r += GROUP) {
            size_t g = rows - r < GROUP ? rows - r : GROUP;
            ssse3_group_dispatch(in, n_in, out + r, co + r * stride, stride, (int)g,
                                 row_is_ones(co + r * stride, n_in), len);
        }
        return;
    }
#else
    (void)path;
    (void)r;
#endif
    scalar_apply(in, n_in, out, co, stride, rows, len);
}

static int overlaps(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    if (a_len == 0 || b_len == 0)
        return 0;
    return a0 < b0 + b_len && b0 < a0 + a_len;
}

/* ---- regions ------------------------------------------------------------ */

int fec_mul_acc(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c)
{
    ensure_tables();
    if (n && (!dst || !src))
        return FEC_ERR_PARAM;
    if (dst != src && overlaps(dst, n, src, n))
        return FEC_ERR_OVERLAP;
#if FEC_X86
    if (active_path == FEC_PATH_AVX2) {
        avx2_mul_acc(dst, src, n, c);
        return FEC_OK;
    }
    if (active_path == FEC_PATH_SSSE3) {
        ssse3_mul_acc(dst, src, n, c);
        return FEC_OK;
    }
#endif
    scalar_mul_acc(dst, src, n, c);
    return FEC_OK;
}

int fec_mul_region(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c)
{
    const uint8_t *in[1];
    uint8_t *out[1];
    ensure_tables();
    if (n && (!dst || !src))
        return FEC_ERR_PARAM;
    if (overlaps(dst, n, src, n))
        return FEC_ERR_OVERLAP;
    in[0] = src;
    out[0] = dst;
    apply(in, 1, out, &c, 1, 1, n);
    return FEC_OK;
}

/* ---- matrices ------------------------------------------------------------ */

/* Gauss-Jordan on a (row-major, n x n) copy; inv receives the inverse. */
static int invert(uint8_t *a, uint8_t *inv, size_t n)
{
    size_t r, c, col;
    memset(inv, 0, n * n);
    for (r = 0; r < n; r++)
        inv[r * n + r] = 1;
    for (col = 0; col < n; col++) {
        size_t piv = col;
        uint8_t f;
        while (piv < n && a[piv * n + col] == 0)
            piv++;
        if (piv == n)
            return FEC_ERR_SINGULAR;
        if (piv != col) {
            for (c = 0; c < n; c++) {
                uint8_t t = a[col * n + c];
                a[col * n + c] = a[piv * n + c];
                a[piv * n + c] = t;
                t = inv[col * n + c];
                inv[col * n + c] = inv[piv * n + c];
                inv[piv * n + c] = t;
            }
        }
        f = gf_inv[a[col * n + col]];
        if (f != 1) {
            const uint8_t *t = gf_mul_tbl[f];
            for (c = 0; c < n; c++) {
                a[col * n + c] = t[a[col * n + c]];
                inv[col * n + c] = t[inv[col * n + c]];
            }
        }
        for (r = 0; r < n; r++) {
            uint8_t x = a[r * n + col];
            if (r != col && x != 0) {
                const uint8_t *t = gf_mul_tbl[x];
                for (c = 0; c < n; c++) {
                    a[r * n + c] ^= t[a[col * n + c]];
                    inv[r * n + c] ^= t[inv[col * n + c]];
                }
            }
        }
    }
    return FEC_OK;
}

int fec_invert(const uint8_t *mat, uint8_t *inv, size_t n)
{
    uint8_t work[FEC_MAX_K * FEC_MAX_K];
    ensure_tables();
    if (n == 0 || n > FEC_MAX_K || !mat || !inv)
        return FEC_ERR_PARAM;
    if (overlaps(mat, n * n, inv, n * n))
        return FEC_ERR_OVERLAP;
    memcpy(work, mat, n * n);
    return invert(work, inv, n);
}

/* ---- the code ------------------------------------------------------------ */

int fec_encode(size_t k, size_t m, size_t s, const uint8_t *src, size_t src_len, uint8_t *out,
               size_t out_len)
{
    const uint8_t *in[FEC_MAX_K];
    uint8_t *outs[FEC_MAX_M];
    size_t i;
    ensure_tables();
    if (k == 0 || k > FEC_MAX_K || m == 0 || m > FEC_MAX_M || s == 0 || !src || !out)
        return FEC_ERR_PARAM;
    if (src_len / k < s || out_len / m < s)
        return FEC_ERR_LENGTH;
    if (overlaps(src, k * s, out, m * s))
        return FEC_ERR_OVERLAP;
    for (i = 0; i < k; i++)
        in[i] = src + i * s;
    for (i = 0; i < m; i++)
        outs[i] = out + i * s;
    apply(in, k, outs, &coef[0][0], FEC_MAX_K, m, s);
    return FEC_OK;
}

/* Check chosen[0..k) is strictly increasing with every index < k + FEC_MAX_M. */
static int check_chosen(size_t k, const uint8_t *chosen)
{
    size_t c;
    for (c = 0; c < k; c++) {
        if ((size_t)chosen[c] >= k + FEC_MAX_M)
            return FEC_ERR_INDEX;
        if (c > 0 && chosen[c] <= chosen[c - 1])
            return FEC_ERR_INDEX;
    }
    return FEC_OK;
}

int fec_decode_matrix(size_t k, const uint8_t *chosen, uint8_t *dm, size_t dm_len,
                      uint8_t *missing, size_t missing_len)
{
    uint8_t a[FEC_MAX_M * FEC_MAX_M];
    uint8_t ai[FEC_MAX_M * FEC_MAX_M];
    size_t e = 0, n_src = 0, c, r, q, i;
    int st;
    ensure_tables();
    if (k == 0 || k > FEC_MAX_K || !chosen)
        return FEC_ERR_PARAM;
    st = check_chosen(k, chosen);
    if (st != FEC_OK)
        return st;
    while (n_src < k && chosen[n_src] < k)
        n_src++;
    e = k - n_src; /* chosen is sorted: sources first, then the e repairs */
    if (e == 0)
        return 0;
    if (!dm || !missing)
        return FEC_ERR_PARAM;
    if (dm_len / k < e || missing_len < e)
        return FEC_ERR_LENGTH;
    /* missing sources = those absent from chosen[0..n_src) */
    for (i = 0, c = 0, q = 0; i < k; i++) {
        if (c < n_src && chosen[c] == i)
            c++;
        else
            missing[q++] = (uint8_t)i;
    }
    /* A[a][b] = C[rep_a][missing_b] */
    for (r = 0; r < e; r++) {
        size_t rep = (size_t)chosen[n_src + r] - k;
        for (q = 0; q < e; q++)
            a[r * e + q] = coef[rep][missing[q]];
    }
    st = invert(a, ai, e);
    if (st != FEC_OK)
        return st;
    /* dm[r][c]: repair column n_src + a -> Ai[r][a]; source column c -> (Ai B)[r][c] */
    for (r = 0; r < e; r++) {
        uint8_t *row = dm + r * k;
        for (c = 0; c < n_src; c++) {
            uint8_t acc = 0;
            size_t src_i = chosen[c];
            for (q = 0; q < e; q++) {
                size_t rep = (size_t)chosen[n_src + q] - k;
                acc ^= gf_mul_tbl[ai[r * e + q]][coef[rep][src_i]];
            }
            row[c] = acc;
        }
        for (q = 0; q < e; q++)
            row[n_src + q] = ai[r * e + q];
    }
    return (int)e;
}

int fec_reconstruct(size_t k, size_t s, const uint8_t *chosen, const uint8_t *rowpos,
                    const uint8_t *recv, size_t recv_rows, size_t recv_len, const uint8_t *dm,
                    const uint8_t *missing, size_t e, uint8_t *out, size_t out_len)
{
    const uint8_t *in[FEC_MAX_K];
    uint8_t *outs[FEC_MAX_K];
    size_t c;
    int st;
    ensure_tables();
    if (k == 0 || k > FEC_MAX_K || s == 0 || e > k || !chosen || !rowpos || !recv || !out)
        return FEC_ERR_PARAM;
    if (e > 0 && (!dm || !missing))
        return FEC_ERR_PARAM;
    if (recv_len / s < recv_rows || out_len / k < s)
        return FEC_ERR_LENGTH;
    if (overlaps(recv, recv_rows * s, out, k * s))
        return FEC_ERR_OVERLAP;
    st = check_chosen(k, chosen);
    if (st != FEC_OK)
        return st;
    if (k - e > 0 && (size_t)chosen[k - e - 1] >= k)
        return FEC_ERR_INDEX; /* the first k - e chosen must be sources */
    if (e > 0 && (size_t)chosen[k - e] < k)
        return FEC_ERR_INDEX; /* ... and the last e must be repairs */
    for (c = 0; c < e; c++)
        if ((size_t)missing[c] >= k)
            return FEC_ERR_INDEX;
    for (c = 0; c < k; c++) {
        if ((size_t)rowpos[c] >= recv_rows)
            return FEC_ERR_INDEX;
        in[c] = recv + (size_t)rowpos[c] * s;
        if (c < k - e)
            memcpy(out + (size_t)chosen[c] * s, in[c], s);
    }
    for (c = 0; c < e; c++)
        outs[c] = out + (size_t)missing[c] * s;
    apply(in, k, outs, dm, k, e, s);
    return FEC_OK;
}

int fec_decode(size_t k, size_t s, const uint8_t *chosen, const uint8_t *recv, size_t recv_len,
               uint8_t *out, size_t out_len)
{
    uint8_t dm[FEC_MAX_K * FEC_MAX_K];
    uint8_t missing[FEC_MAX_K];
    uint8_t rowpos[FEC_MAX_K];
    size_t c;
    int e;
    ensure_tables();
    if (k == 0 || k > FEC_MAX_K || s == 0 || !chosen || !recv || !out)
        return FEC_ERR_PARAM;
    e = fec_decode_matrix(k, chosen, dm, sizeof dm, missing, sizeof missing);
    if (e < 0)
        return e;
    for (c = 0; c < k; c++)
        rowpos[c] = (uint8_t)c;
    return fec_reconstruct(k, s, chosen, rowpos, recv, k, recv_len, dm, missing, (size_t)e, out,
                           out_len);
}
