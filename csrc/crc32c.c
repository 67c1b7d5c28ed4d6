/*
 * crc32c.c -- CRC32C (Castagnoli), reflected polynomial 0x82F63B78,
 * init and final xor 0xFFFFFFFF (RFC 3720 appendix B.4).
 *
 * How this works
 * --------------
 * Two implementations share one "raw state" convention (the register before
 * the final inversion):
 *
 *  - slice-by-8: eight 256-entry tables let the loop fold 8 input bytes per
 *    step with eight independent lookups.  Portable; about 1-2 GB/s.
 *  - SSE4.2: the `crc32` instruction folds 8 bytes per instruction but has a
 *    3-cycle latency, so one dependency chain caps at ~8 bytes / 3 cycles.
 *    The buffer is therefore split into three equal blocks whose CRCs are
 *    computed in interleaved independent chains, then combined:
 *        raw(A||B) = zeros(raw(A), |B|) ^ raw_from_zero(B)
 *    where zeros(x, n) (the effect of feeding n zero bytes) is linear over
 *    GF(2), so for the two fixed block sizes used it is a 4x256 table lookup.
 *
 * Which path tp_crc32c uses is decided once at load time from CPUID
 * (__builtin_cpu_supports), so one binary runs on any x86-64 (and other
 * architectures simply use slice-by-8).
 */
#include "transport.h"

#include <string.h>

#define POLY 0x82F63B78u

/* Block sizes of the 3-way SSE4.2 path (bytes per stream). */
#define LONG_BLOCK 8192u
#define SHORT_BLOCK 256u

static uint32_t sw_table[8][256];
static uint32_t long_shift[4][256];
static uint32_t short_shift[4][256];
static int hw_available;
static int tables_ready;

/* ---- GF(2) helpers used only to build the zero-shift tables ------------ */

/* Multiplies the 32x32 GF(2) matrix mat by vec. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1u)
            sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

/* square = mat * mat */
static void gf2_square(uint32_t *square, const uint32_t *mat)
{
    int n;
    for (n = 0; n < 32; n++)
        square[n] = gf2_times(mat, mat[n]);
}

/* Builds the operator that applies `len` zero bytes to a raw CRC state and
 * tabulates it byte-wise into table[4][256]. */
static void build_shift_table(uint32_t table[4][256], size_t len)
{
    uint32_t even[32], odd[32], op[32];
    uint32_t row;
    int n, k, have_op = 0;

    /* odd = operator for one zero bit */
    odd[0] = POLY;
    row = 1;
    for (n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_square(even, odd); /* 2 zero bits */
    gf2_square(odd, even); /* 4 zero bits */
    gf2_square(even, odd); /* 8 zero bits = one zero byte, in even */

    /* op = product of the powers of two making up len (bytes) */
    for (;;) {
        if (len & 1u) {
            if (!have_op) {
                memcpy(op, even, sizeof(op));
                have_op = 1;
            } else {
                uint32_t tmp[32];
                for (n = 0; n < 32; n++)
                    tmp[n] = gf2_times(even, op[n]);
                memcpy(op, tmp, sizeof(op));
            }
        }
        len >>= 1;
        if (len == 0)
            break;
        gf2_square(odd, even);
        memcpy(even, odd, sizeof(even));
    }
    for (k = 0; k < 4; k++)
        for (n = 0; n < 256; n++)
            table[k][n] = gf2_times(op, (uint32_t)n << (8 * k));
}

static uint32_t shift(uint32_t table[4][256], uint32_t crc)
{
    return table[0][crc & 0xFFu] ^ table[1][(crc >> 8) & 0xFFu] ^
           table[2][(crc >> 16) & 0xFFu] ^ table[3][crc >> 24];
}

static void build_tables(void)
{
    uint32_t n, k, crc;
    for (n = 0; n < 256; n++) {
        crc = n;
        for (k = 0; k < 8; k++)
            crc = (crc & 1u) ? (crc >> 1) ^ POLY : crc >> 1;
        sw_table[0][n] = crc;
    }
    for (n = 0; n < 256; n++) {
        crc = sw_table[0][n];
        for (k = 1; k < 8; k++) {
            crc = sw_table[0][crc & 0xFFu] ^ (crc >> 8);
            sw_table[k][n] = crc;
        }
    }
    build_shift_table(long_shift, LONG_BLOCK);
    build_shift_table(short_shift, SHORT_BLOCK);
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    hw_available = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    hw_available = 0;
#endif
    tables_ready = 1;
}

#if defined(__GNUC__)
__attribute__((constructor))
#endif
static void tp_crc32c_init(void)
{
    build_tables();
}

static void ensure_tables(void)
{
    if (!tables_ready)
        build_tables();
}

static uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
           ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

/* ---- slice-by-8 -------------------------------------------------------- */

static uint32_t sw_raw(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint64_t w = load_le64(p) ^ crc;
        crc = sw_table[7][w & 0xFFu] ^ sw_table[6][(w >> 8) & 0xFFu] ^
              sw_table[5][(w >> 16) & 0xFFu] ^ sw_table[4][(w >> 24) & 0xFFu] ^
              sw_table[3][(w >> 32) & 0xFFu] ^ sw_table[2][(w >> 40) & 0xFFu] ^
              sw_table[1][(w >> 48) & 0xFFu] ^ sw_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) {
        crc = sw_table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    }
    return crc;
}

uint32_t tp_crc32c_sw(uint32_t crc, const uint8_t *data, size_t len)
{
    ensure_tables();
    if (len == 0)
        return crc;
    return ~sw_raw(~crc, data, len);
}

/* ---- SSE4.2 ------------------------------------------------------------ */
#if (defined(__x86_64__)) && defined(__GNUC__)
#define HAVE_HW_PATH 1

__attribute__((target("sse4.2"))) static uint32_t hw_raw(uint32_t crc32, const uint8_t *p,
                                                          size_t len)
{
    uint64_t crc0 = crc32, crc1, crc2;
    const uint8_t *end;

    /* align to 8 bytes so the word loads below are aligned */
    while (len && ((uintptr_t)p & 7u)) {
        crc0 = __builtin_ia32_crc32qi((uint32_t)crc0, *p++);
        len--;
    }
    /* three interleaved chains over LONG_BLOCK-sized thirds */
    while (len >= 3u * LONG_BLOCK) {
        crc1 = 0;
        crc2 = 0;
        end = p + LONG_BLOCK;
        do {
            uint64_t w0, w1, w2;
            memcpy(&w0, p, 8);
            memcpy(&w1, p + LONG_BLOCK, 8);
            memcpy(&w2, p + 2u * LONG_BLOCK, 8);
            crc0 = __builtin_ia32_crc32di(crc0, w0);
            crc1 = __builtin_ia32_crc32di(crc1, w1);
            crc2 = __builtin_ia32_crc32di(crc2, w2);
            p += 8;
        } while (p < end);
        crc0 = shift(long_shift, (uint32_t)crc0) ^ (uint32_t)crc1;
        crc0 = shift(long_shift, (uint32_t)crc0) ^ (uint32_t)crc2;
        p += 2u * LONG_BLOCK;
        len -= 3u * LONG_BLOCK;
    }
    while (len >= 3u * SHORT_BLOCK) {
        crc1 = 0;
        crc2 = 0;
        end = p + SHORT_BLOCK;
        do {
            uint64_t w0, w1, w2;
            memcpy(&w0, p, 8);
            memcpy(&w1, p + SHORT_BLOCK, 8);
            memcpy(&w2, p + 2u * SHORT_BLOCK, 8);
            crc0 = __builtin_ia32_crc32di(crc0, w0);
            crc1 = __builtin_ia32_crc32di(crc1, w1);
            crc2 = __builtin_ia32_crc32di(crc2, w2);
            p += 8;
        } while (p < end);
        crc0 = shift(short_shift, (uint32_t)crc0) ^ (uint32_t)crc1;
        crc0 = shift(short_shift, (uint32_t)crc0) ^ (uint32_t)crc2;
        p += 2u * SHORT_BLOCK;
        len -= 3u * SHORT_BLOCK;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        crc0 = __builtin_ia32_crc32di(crc0, w);
        p += 8;
        len -= 8;
    }
    while (len) {
        crc0 = __builtin_ia32_crc32qi((uint32_t)crc0, *p++);
        len--;
    }
    return (uint32_t)crc0;
}
#else
#define HAVE_HW_PATH 0
#endif

uint32_t tp_crc32c(uint32_t crc, const uint8_t *data, size_t len)
{
    ensure_tables();
    if (len == 0)
        return crc;
#if HAVE_HW_PATH
    if (hw_available)
        return ~hw_raw(~crc, data, len);
#endif
    return ~sw_raw(~crc, data, len);
}

int tp_crc32c_hw_active(void)
{
    ensure_tables();
#if HAVE_HW_PATH
    return hw_available;
#else
    return 0;
#endif
}

const char *tp_crc32c_path(void)
{
    return tp_crc32c_hw_active() ? "sse4.2-3way" : "slice-by-8";
}
