/*
 * fuzz_decoders.c -- libFuzzer harness over the C wire decoders.
 *
 * How this works
 * --------------
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined and
 * linked straight against csrc/{codec,frames,packet,crc32c}.c, so libFuzzer
 * sees the decoders' own branch coverage and AddressSanitizer/UBSan see every
 * byte they touch.  The first input byte picks the target and its knobs; the
 * rest is copied into a heap block of exactly that size (an over-read by one
 * byte is a report, not silent garbage):
 *
 *   sel % 4 == 0  tp_decode_frames over the whole input, with small output
 *                 arrays (max_frames 1..64, max_ranges 2..256) so the "too
 *                 many frames / ranges" paths run too;
 *   sel % 4 == 1  tp_decode_header with a short-header CID length 0..20;
 *   sel % 4 == 2  tp_open_short_packet with the DCID taken from the input
 *                 itself (so it matches) or a fixed one, with and without the
 *                 CRC32C trailer check;
 *   sel % 4 == 3  tp_decode_frames from a start offset inside the input.
 *
 * Beyond "no crash", the harness checks what the Python layer relies on:
 * every decoded frame body and every header field lies inside the input,
 * the counts match the return value and never exceed the output arrays.  A
 * broken invariant calls abort(), which libFuzzer reports as a crash.
 */
#include "transport.h"

#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 64u
#define MAX_RANGES 256u

static tp_frame frames[MAX_FRAMES];
static uint64_t ranges[MAX_RANGES];

static void check_frames(const tp_decoder *dec, int64_t ret, size_t end)
{
    uint32_t i;
    if (ret < 0)
        return;
    if ((uint64_t)ret != dec->n_frames || dec->n_frames > dec->max_frames ||
        dec->n_ranges > dec->max_ranges)
        abort();
    for (i = 0; i < dec->n_frames; i++) {
        const tp_frame *f = &dec->frames[i];
        if ((uint64_t)f->data_off + f->data_len > end)
            abort();
    }
}

static void check_header(const tp_header *h, size_t len)
{
    if ((uint64_t)h->dcid_off + h->dcid_len > len || h->dcid_len > TP_MAX_CID_LENGTH)
        abort();
    if ((uint64_t)h->scid_off + h->scid_len > len || h->scid_len > TP_MAX_CID_LENGTH)
        abort();
    if ((uint64_t)h->token_off + h->token_len > len)
        abort();
    if (h->packet_end > len)
        abort();
    if ((uint64_t)h->versions_off + 4u * (uint64_t)h->n_versions > len)
        abort();
    if ((uint64_t)h->tag_off + h->tag_len > len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tp_decoder dec;
    tp_header h;
    uint8_t *buf;
    uint8_t sel;
    size_t n;
    int64_t ret;
    static const uint8_t fixed_dcid[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                           11, 12, 13, 14, 15, 16, 17, 18, 19, 20};

    if (size < 1)
        return 0;
    sel = data[0];
    n = size - 1;
    buf = (uint8_t *)malloc(n ? n : 1u);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, n);

    dec.frames = frames;
    dec.ranges = ranges;
    dec.max_frames = 1u + ((sel >> 2) & 63u);
    dec.max_ranges = 2u * (1u + ((sel >> 4) & 127u));
    if (dec.max_ranges > MAX_RANGES)
        dec.max_ranges = MAX_RANGES;
    dec.n_frames = dec.n_ranges = 0;

    switch (sel & 3u) {
    case 0:
        dec.max_frames = (sel & 0x80u) ? MAX_FRAMES : dec.max_frames;
        ret = tp_decode_frames(&dec, buf, 0, n);
        check_frames(&dec, ret, n);
        break;
    case 1: {
        int st;
        memset(&h, 0, sizeof(h));
        st = tp_decode_header(buf, n, (size_t)((sel >> 2) % 21u), &h);
        if (st >= 0)
            check_header(&h, n);
        break;
    }
    case 2: {
        size_t cid_len = (size_t)((sel >> 3) % 21u);
        const uint8_t *dcid = (sel & 4u) && n > cid_len ? buf + 1 : fixed_dcid;
        dec.max_frames = MAX_FRAMES;
        dec.max_ranges = MAX_RANGES;
        ret = tp_open_short_packet(&dec, buf, n, dcid, cid_len, (sel & 0x80u) ? 0u : 1u);
        if (ret >= 0) {
            int64_t count = ret & ((1 << TP_OPEN_COUNT_BITS) - 1);
            check_frames(&dec, count, n);
        }
        break;
    }
    default: {
        size_t start = n ? (size_t)(sel >> 2) % (n + 1) : 0u;
        ret = tp_decode_frames(&dec, buf, start, n);
        check_frames(&dec, ret, n);
        break;
    }
    }
    free(buf);
    return 0;
}
