/*
 * frames.c -- batch frame decode/encode of wire format v1.
 *
 * How this works
 * --------------
 * tp_decode_frames walks buf[start..end) once and fills the caller's
 * tp_frame records and range array (one call per datagram).  Each frame
 * starts with a one-byte type (bytes >= 0x40 begin a multi-byte varint type,
 * which is either a non-minimal encoding of a known type -> FIELD_VALUE, or
 * unknown -> UNKNOWN_FRAME); the per-type fields follow in wire order and
 * are checked as read, exactly as transport/wire/_frames_pure.py does.
 *
 * tp_encode_frames writes an array of specs.  For every frame it first
 * builds the header (type + integer fields) in a stack buffer, running all of
 * the frame's value checks, then checks that header + body fit before `end`,
 * and only then copies both.  So nothing is written at or beyond `end`.
 *
 * ACK-like frames (RFC 9000 section 19.3.1): ranges are (low, high) pairs,
 * highest first; next_high = low - gap - 2, next_low = next_high - length.
 * All arithmetic is done on uint64 with the subtraction guarded first.
 */
#include "transport.h"

#include <string.h>

#define MAX_ACK_RANGES 256u
#define MAX_STREAMS_LIMIT ((uint64_t)1 << 60)
#define RESET_TOKEN_LENGTH 16u
#define PATH_DATA_LENGTH 8u
#define DATA_OFF_LIMIT 0xFFFFFFFFu

enum {
    F_PADDING = 0x00, F_PING = 0x01, F_ACK = 0x02, F_ACK_ECN = 0x03,
    F_RESET_STREAM = 0x04, F_STOP_SENDING = 0x05, F_CRYPTO = 0x06, F_NEW_TOKEN = 0x07,
    F_STREAM = 0x08, F_STREAM_MAX = 0x0F, F_MAX_DATA = 0x10, F_MAX_STREAM_DATA = 0x11,
    F_MAX_STREAMS_BIDI = 0x12, F_MAX_STREAMS_UNI = 0x13, F_DATA_BLOCKED = 0x14,
    F_STREAM_DATA_BLOCKED = 0x15, F_STREAMS_BLOCKED_BIDI = 0x16,
    F_STREAMS_BLOCKED_UNI = 0x17, F_NEW_CONNECTION_ID = 0x18,
    F_RETIRE_CONNECTION_ID = 0x19, F_PATH_CHALLENGE = 0x1A, F_PATH_RESPONSE = 0x1B,
    F_CONNECTION_CLOSE = 0x1C, F_APPLICATION_CLOSE = 0x1D, F_HANDSHAKE_DONE = 0x1E,
    F_ACK_FREQUENCY = 0x20, F_FEC_SOURCE = 0x21, F_REPAIR = 0x22, F_FEC_RECOVERED = 0x23,
    F_DATAGRAM = 0x30, F_DATAGRAM_LEN = 0x31, F_STREAM_COMPACT = 0x38,
    F_STREAM_COMPACT_MAX = 0x3F
};

/* Compact STREAM frames (0x38..0x3f, docs/wire-format.md 10.25): the offset
 * is the low 24 bits of the real one, rebuilt against a reference. */
#define COMPACT_WINDOW ((uint64_t)1 << 24)
#define COMPACT_HALF ((uint64_t)1 << 23)

#define STREAM_OFF 0x04u
#define STREAM_LEN 0x02u

static int known_type(uint64_t t)
{
    return t <= 0x1Eu || (t >= 0x20u && t <= 0x23u) || t == 0x30u || t == 0x31u ||
           (t >= F_STREAM_COMPACT && t <= F_STREAM_COMPACT_MAX);
}

int64_t tp_compact_offset(uint64_t truncated, uint64_t reference)
{
    /* RFC 9000 appendix A.3 with a 2^24 window: the value with these low
     * bits in (reference - 2^23, reference + 2^23]; -1 when it is negative */
    uint64_t candidate;
    if (reference > TP_MAX_VARINT)
        return -1;
    candidate = (reference & ~(COMPACT_WINDOW - 1u)) | (truncated & (COMPACT_WINDOW - 1u));
    if (reference >= COMPACT_HALF && candidate <= reference - COMPACT_HALF)
        candidate += COMPACT_WINDOW;
    else if (candidate > reference + COMPACT_HALF) {
        if (candidate < COMPACT_WINDOW)
            return -1;
        candidate -= COMPACT_WINDOW;
    }
    return (int64_t)candidate;
}

int tp_compact_ok(uint64_t stream_id, uint64_t offset, uint64_t low, uint64_t high)
{
    return stream_id < 4u && (offset < low || offset - low < COMPACT_HALF) &&
           (high <= offset || high - offset < COMPACT_HALF);
}

/* Same varint reader as codec.c (kept static so each unit inlines it). */
static inline int64_t rd(const uint8_t *buf, size_t end, size_t pos, uint64_t *out)
{
    uint64_t v;
    size_t n, i;
    if (pos >= end)
        return TP_ERR_TRUNCATED;
    v = buf[pos];
    if (v < 0x40u) {
        *out = v;
        return (int64_t)(pos + 1);
    }
    n = (size_t)1 << (v >> 6);
    if (n > end - pos)
        return TP_ERR_TRUNCATED;
    v &= 0x3Fu;
    for (i = 1; i < n; i++)
        v = (v << 8) | buf[pos + i];
    *out = v;
    return (int64_t)(pos + n);
}

#define RD(var)                                     \
    do {                                            \
        int64_t r_ = rd(buf, end, pos, &(var));     \
        if (r_ < 0)                                 \
            return r_;                              \
        pos = (size_t)r_;                           \
    } while (0)

#define BODY(length)                                \
    do {                                            \
        uint64_t l_ = (length);                     \
        if (l_ > end - pos)                         \
            return TP_ERR_TRUNCATED;                \
        rec->data_off = (uint32_t)pos;              \
        rec->data_len = (uint32_t)l_;               \
        pos += (size_t)l_;                          \
    } while (0)

/* Decodes the ACK-like frame whose fields start at pos into rec / dec. */
static int64_t read_ack(tp_decoder *dec, tp_frame *rec, const uint8_t *buf, size_t pos,
                        size_t end)
{
    uint64_t largest, delay = 0, count, first, low, gap, length, high, v;
    uint64_t needed, i;
    uint64_t *ranges = dec->ranges;
    uint32_t n = dec->n_ranges;

    RD(largest);
    if (rec->type != F_FEC_RECOVERED)
        RD(delay);
    RD(count);
    RD(first);
    if (count >= MAX_ACK_RANGES)
        return TP_ERR_FIELD_VALUE;
    needed = 2u * (count + 1u) + (rec->type == F_ACK_ECN ? 3u : 0u);
    if (needed > (uint64_t)dec->max_ranges - n)
        return TP_ERR_FIELD_VALUE;
    if (first > largest)
        return TP_ERR_FIELD_VALUE;
    low = largest - first;
    rec->a = largest;
    rec->b = delay;
    rec->c = n;
    rec->d = count + 1u;
    ranges[n++] = low;
    ranges[n++] = largest;
    for (i = 0; i < count; i++) {
        RD(gap);
        RD(length);
        if (gap + 2u > low) /* gap <= 2^62-1: no overflow */
            return TP_ERR_FIELD_VALUE;
        high = low - gap - 2u;
        if (length > high)
            return TP_ERR_FIELD_VALUE;
        low = high - length;
        ranges[n++] = low;
        ranges[n++] = high;
    }
    if (rec->type == F_ACK_ECN) {
        for (i = 0; i < 3; i++) {
            RD(v);
            ranges[n++] = v;
        }
    }
    dec->n_ranges = n;
    return (int64_t)pos;
}

/* Decodes the fields of one frame (type byte already consumed). */
static int64_t read_fields(tp_decoder *dec, tp_frame *rec, const uint8_t *buf, size_t pos,
                           size_t end)
{
    uint64_t t = rec->type, length, v;

    if (t >= F_STREAM && t <= F_STREAM_MAX) {
        RD(rec->a);
        if (t & STREAM_OFF)
            RD(rec->b);
        if (t & STREAM_LEN)
            RD(length);
        else
            length = end - pos;
        BODY(length);
        if (length > TP_MAX_VARINT - rec->b) /* decoded varints are <= 2^62-1 */
            return TP_ERR_FIELD_VALUE;
        return (int64_t)pos;
    }
    if (t >= F_STREAM_COMPACT && t <= F_STREAM_COMPACT_MAX) {
        if (end - pos < 3u)
            return TP_ERR_TRUNCATED;
        rec->a = (t >> 1) & 3u;
        rec->b = ((uint64_t)buf[pos] << 16) | ((uint64_t)buf[pos + 1] << 8) | buf[pos + 2];
        pos += 3u;
        BODY(end - pos);
        return (int64_t)pos;
    }
    switch (t) {
    case F_PADDING: {
        size_t stop = pos;
        while (stop < end && buf[stop] == 0)
            stop++;
        rec->a = stop - pos + 1u;
        return (int64_t)stop;
    }
    case F_PING:
    case F_HANDSHAKE_DONE:
        return (int64_t)pos;
    case F_ACK:
    case F_ACK_ECN:
    case F_FEC_RECOVERED:
        return read_ack(dec, rec, buf, pos, end);
    case F_RESET_STREAM:
    case F_ACK_FREQUENCY:
        RD(rec->a);
        RD(rec->b);
        RD(rec->c);
        return (int64_t)pos;
    case F_STOP_SENDING:
    case F_MAX_STREAM_DATA:
    case F_STREAM_DATA_BLOCKED:
    case F_FEC_SOURCE:
        RD(rec->a);
        RD(rec->b);
        return (int64_t)pos;
    case F_MAX_DATA:
    case F_DATA_BLOCKED:
    case F_RETIRE_CONNECTION_ID:
        RD(rec->a);
        return (int64_t)pos;
    case F_MAX_STREAMS_BIDI:
    case F_MAX_STREAMS_UNI:
    case F_STREAMS_BLOCKED_BIDI:
    case F_STREAMS_BLOCKED_UNI:
        RD(rec->a);
        if (rec->a > MAX_STREAMS_LIMIT)
            return TP_ERR_FIELD_VALUE;
        return (int64_t)pos;
    case F_CRYPTO:
        RD(rec->a);
        RD(length);
        BODY(length);
        if (length > TP_MAX_VARINT - rec->a)
            return TP_ERR_FIELD_VALUE;
        return (int64_t)pos;
    case F_NEW_TOKEN:
        RD(length);
        if (length == 0)
            return TP_ERR_FIELD_VALUE;
        BODY(length);
        return (int64_t)pos;
    case F_NEW_CONNECTION_ID:
        RD(rec->a);
        RD(rec->b);
        if (rec->b > rec->a)
            return TP_ERR_FIELD_VALUE;
        if (pos >= end)
            return TP_ERR_TRUNCATED;
        v = buf[pos];
        if (v < 1u || v > TP_MAX_CID_LENGTH)
            return TP_ERR_FIELD_VALUE;
        rec->c = v;
        pos++;
        BODY(v + RESET_TOKEN_LENGTH);
        return (int64_t)pos;
    case F_PATH_CHALLENGE:
    case F_PATH_RESPONSE:
        BODY(PATH_DATA_LENGTH);
        return (int64_t)pos;
    case F_CONNECTION_CLOSE:
        RD(rec->a);
        RD(rec->b);
        RD(length);
        BODY(length);
        return (int64_t)pos;
    case F_APPLICATION_CLOSE:
        RD(rec->a);
        RD(length);
        BODY(length);
        return (int64_t)pos;
    case F_REPAIR:
        RD(rec->a);
        RD(rec->b);
        if (rec->b < 1u || rec->b > 255u)
            return TP_ERR_FIELD_VALUE;
        RD(rec->c);
        if (rec->c < 1u || rec->c > 255u)
            return TP_ERR_FIELD_VALUE;
        RD(rec->d);
        if (rec->d >= rec->c)
            return TP_ERR_FIELD_VALUE;
        RD(length);
        BODY(length);
        return (int64_t)pos;
    case F_DATAGRAM:
        BODY(end - pos);
        return (int64_t)pos;
    case F_DATAGRAM_LEN:
        RD(length);
        BODY(length);
        return (int64_t)pos;
    default:
        return TP_ERR_UNKNOWN_FRAME;
    }
}

int64_t tp_decode_frames(tp_decoder *dec, const uint8_t *buf, size_t start, size_t end)
{
    size_t pos = start;
    uint32_t count = 0;
    int64_t r;

    dec->n_frames = 0;
    dec->n_ranges = 0;
    if (start > end || end > DATA_OFF_LIMIT)
        return TP_ERR_FIELD_VALUE;
    while (pos < end) {
        uint64_t t = buf[pos];
        tp_frame *rec;
        if (t >= 0x40u) {
            uint64_t value;
            r = rd(buf, end, pos, &value);
            if (r < 0)
                return r;
            return (value < 0x40u && known_type(value)) ? TP_ERR_FIELD_VALUE
                                                         : TP_ERR_UNKNOWN_FRAME;
        }
        if (!known_type(t))
            return TP_ERR_UNKNOWN_FRAME;
        if (count >= dec->max_frames)
            return TP_ERR_FIELD_VALUE;
        rec = &dec->frames[count];
        rec->type = t;
        rec->a = rec->b = rec->c = rec->d = 0;
        rec->data_off = rec->data_len = 0;
        r = read_fields(dec, rec, buf, pos + 1, end);
        if (r < 0)
            return r;
        pos = (size_t)r;
        count++;
        dec->n_frames = count;
    }
    return (int64_t)count;
}

/* ---- encoding ----------------------------------------------------------- */

/* Largest header: ACK_ECN with 256 ranges = 1 + 4*8 + 255*16 + 3*8 bytes. */
#define HEAD_MAX (1u + 4u * 8u + (MAX_ACK_RANGES - 1u) * 16u + 3u * 8u + 16u)

#define PUTV(x)                                      \
    do {                                             \
        uint64_t x_ = (x);                           \
        if (x_ > TP_MAX_VARINT)                      \
            return TP_ERR_FIELD_VALUE;               \
        n += put_varint_(head + n, x_);              \
    } while (0)

static inline size_t put_varint_(uint8_t *p, uint64_t v)
{
    if (v < 0x40u) {
        p[0] = (uint8_t)v;
        return 1;
    }
    if (v < 0x4000u) {
        p[0] = (uint8_t)(0x40u | (v >> 8));
        p[1] = (uint8_t)v;
        return 2;
    }
    if (v < 0x40000000u) {
        p[0] = (uint8_t)(0x80u | (v >> 24));
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
        return 4;
    }
    p[0] = (uint8_t)(0xC0u | (v >> 56));
    p[1] = (uint8_t)(v >> 48);
    p[2] = (uint8_t)(v >> 40);
    p[3] = (uint8_t)(v >> 32);
    p[4] = (uint8_t)(v >> 24);
    p[5] = (uint8_t)(v >> 16);
    p[6] = (uint8_t)(v >> 8);
    p[7] = (uint8_t)v;
    return 8;
}

static int runs_to_end(uint64_t t)
{
    if (t >= F_STREAM && t <= F_STREAM_MAX)
        return !(t & STREAM_LEN);
    return t == F_DATAGRAM || (t >= F_STREAM_COMPACT && t <= F_STREAM_COMPACT_MAX);
}

/* Builds the header of an ACK-like frame; returns its size or an error. */
static int64_t write_ack_head(const tp_frame_spec *s, uint8_t *head)
{
    size_t n = 0;
    uint64_t nr = s->n_ranges, pair_ints, low, high, i;
    const uint64_t *r = s->ranges;
    uint64_t ecn = s->type == F_ACK_ECN ? 3u : 0u;

    if (nr < ecn + 2u)
        return TP_ERR_FIELD_VALUE;
    pair_ints = nr - ecn;
    if (pair_ints % 2u)
        return TP_ERR_FIELD_VALUE;
    if (pair_ints / 2u > MAX_ACK_RANGES)
        return TP_ERR_FIELD_VALUE;
    low = r[0];
    high = r[1];
    if (high != s->a || low > high)
        return TP_ERR_FIELD_VALUE;
    head[n++] = (uint8_t)s->type;
    PUTV(s->a);
    if (s->type != F_FEC_RECOVERED)
        PUTV(s->b);
    PUTV(pair_ints / 2u - 1u);
    PUTV(high - low);
    for (i = 2; i < pair_ints; i += 2) {
        uint64_t next_low = r[i], next_high = r[i + 1];
        if (next_high > low || low - next_high < 2u || next_low > next_high)
            return TP_ERR_FIELD_VALUE;
        PUTV(low - next_high - 2u);
        PUTV(next_high - next_low);
        low = next_low;
    }
    for (i = pair_ints; i < nr; i++)
        PUTV(r[i]);
    return (int64_t)n;
}

/* Builds the header of a non-PADDING frame into head (running every value
 * check of the reference writer); returns its size or an error. */
static int64_t write_head(const tp_frame_spec *s, uint8_t *head)
{
    size_t n = 0;
    uint64_t t = s->type, len = s->body_len;

    if (t >= F_STREAM && t <= F_STREAM_MAX) {
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        if (t & STREAM_OFF)
            PUTV(s->b);
        else if (s->b != 0)
            return TP_ERR_FIELD_VALUE;
        if (len > TP_MAX_VARINT - s->b)
            return TP_ERR_FIELD_VALUE;
        if (t & STREAM_LEN)
            PUTV(len);
        return (int64_t)n;
    }
    if (t >= F_STREAM_COMPACT && t <= F_STREAM_COMPACT_MAX) {
        /* a: the stream the type names; b: truncated offset; c: full offset or 0 */
        if (s->a != ((t >> 1) & 3u) || s->b >= COMPACT_WINDOW || s->c > TP_MAX_VARINT ||
            len > TP_MAX_VARINT - s->c)
            return TP_ERR_FIELD_VALUE;
        head[n++] = (uint8_t)t;
        head[n++] = (uint8_t)(s->b >> 16);
        head[n++] = (uint8_t)(s->b >> 8);
        head[n++] = (uint8_t)s->b;
        return (int64_t)n;
    }
    switch (t) {
    case F_PING:
    case F_HANDSHAKE_DONE:
        head[n++] = (uint8_t)t;
        return (int64_t)n;
    case F_ACK:
    case F_ACK_ECN:
    case F_FEC_RECOVERED:
        return write_ack_head(s, head);
    case F_RESET_STREAM:
    case F_ACK_FREQUENCY:
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        PUTV(s->b);
        PUTV(s->c);
        return (int64_t)n;
    case F_STOP_SENDING:
    case F_MAX_STREAM_DATA:
    case F_STREAM_DATA_BLOCKED:
    case F_FEC_SOURCE:
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        PUTV(s->b);
        return (int64_t)n;
    case F_MAX_DATA:
    case F_DATA_BLOCKED:
    case F_RETIRE_CONNECTION_ID:
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        return (int64_t)n;
    case F_MAX_STREAMS_BIDI:
    case F_MAX_STREAMS_UNI:
    case F_STREAMS_BLOCKED_BIDI:
    case F_STREAMS_BLOCKED_UNI:
        if (s->a > MAX_STREAMS_LIMIT)
            return TP_ERR_FIELD_VALUE;
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        return (int64_t)n;
    case F_CRYPTO:
        if (s->a > TP_MAX_VARINT || len > TP_MAX_VARINT - s->a)
            return TP_ERR_FIELD_VALUE;
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        PUTV(len);
        return (int64_t)n;
    case F_NEW_TOKEN:
        if (len == 0)
            return TP_ERR_FIELD_VALUE;
        head[n++] = (uint8_t)t;
        PUTV(len);
        return (int64_t)n;
    case F_NEW_CONNECTION_ID:
        if (s->b > s->a || s->c < 1u || s->c > TP_MAX_CID_LENGTH ||
            len != s->c + RESET_TOKEN_LENGTH)
            return TP_ERR_FIELD_VALUE;
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        PUTV(s->b);
        head[n++] = (uint8_t)s->c;
        return (int64_t)n;
    case F_PATH_CHALLENGE:
    case F_PATH_RESPONSE:
        if (len != PATH_DATA_LENGTH)
            return TP_ERR_FIELD_VALUE;
        head[n++] = (uint8_t)t;
        return (int64_t)n;
    case F_CONNECTION_CLOSE:
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        PUTV(s->b);
        PUTV(len);
        return (int64_t)n;
    case F_APPLICATION_CLOSE:
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        PUTV(len);
        return (int64_t)n;
    case F_REPAIR:
        if (s->b < 1u || s->b > 255u || s->c < 1u || s->c > 255u || s->d >= s->c)
            return TP_ERR_FIELD_VALUE;
        head[n++] = (uint8_t)t;
        PUTV(s->a);
        PUTV(s->b);
        PUTV(s->c);
        PUTV(s->d);
        PUTV(len);
        return (int64_t)n;
    case F_DATAGRAM:
        head[n++] = (uint8_t)t;
        return (int64_t)n;
    case F_DATAGRAM_LEN:
        head[n++] = (uint8_t)t;
        PUTV(len);
        return (int64_t)n;
    default:
        return TP_ERR_UNKNOWN_FRAME;
    }
}

static int has_body(uint64_t t)
{
    switch (t) {
    case F_CRYPTO: case F_NEW_TOKEN: case F_NEW_CONNECTION_ID: case F_PATH_CHALLENGE:
    case F_PATH_RESPONSE: case F_CONNECTION_CLOSE: case F_APPLICATION_CLOSE: case F_REPAIR:
    case F_DATAGRAM: case F_DATAGRAM_LEN:
        return 1;
    default:
        return (t >= F_STREAM && t <= F_STREAM_MAX) ||
               (t >= F_STREAM_COMPACT && t <= F_STREAM_COMPACT_MAX);
    }
}

int64_t tp_encode_frames(const tp_frame_spec *specs, size_t count, uint8_t *out, size_t pos,
                         size_t end)
{
    uint8_t head[HEAD_MAX];
    size_t i;

    for (i = 0; i < count; i++) {
        const tp_frame_spec *s = &specs[i];
        uint64_t t = s->type, body_len;
        int64_t hn;

        if (t == F_PADDING) {
            if (s->a < 1u)
                return TP_ERR_FIELD_VALUE;
            if (pos > end || s->a > end - pos)
                return TP_ERR_BUFFER_TOO_SMALL;
            memset(out + pos, 0, (size_t)s->a);
            pos += (size_t)s->a;
            continue;
        }
        if (!known_type(t))
            return TP_ERR_UNKNOWN_FRAME;
        if (i + 1u != count && runs_to_end(t))
            return TP_ERR_FIELD_VALUE;
        hn = write_head(s, head);
        if (hn < 0)
            return hn;
        body_len = has_body(t) ? s->body_len : 0u;
        if (pos > end || (uint64_t)hn > end - pos || body_len > end - pos - (size_t)hn)
            return TP_ERR_BUFFER_TOO_SMALL;
        memcpy(out + pos, head, (size_t)hn);
        pos += (size_t)hn;
        if (body_len) {
            memcpy(out + pos, s->body, (size_t)body_len);
            pos += (size_t)body_len;
        }
    }
    return (int64_t)pos;
}
