/*
 * codec.c -- varints, packet headers and frame batches of wire format v1.
 *
 * How this works
 * --------------
 * This is the C twin of transport/wire/codec_pure.py and _frames_pure.py,
 * which define the behaviour: the same inputs give the same results, and the
 * same failures give the tp_status that maps to the same exception class.
 * Checks therefore happen in the reference's order (fields are validated as
 * they are read, in wire order; a body overrunning the end is reported before
 * value checks that need the body length; on encode, a frame's own field
 * checks come before the "does it fit" check).
 *
 * Readers never look at buf[end] or beyond: every access is preceded by a
 * comparison against `end`, and lengths read from the wire are compared with
 * the remaining byte count (never added to a pointer first), so hostile
 * lengths up to 2^62-1 cannot overflow.  Writers likewise compare against
 * `end` before writing.
 *
 * Varints: RFC 9000 section 16.  ACK ranges: RFC 9000 section 19.3.1.
 */
#include "transport.h"

#include <string.h>

#define VERSION_1 0x54525001u
#define MAX_DATAGRAM_SIZE 65527u
#define MAX_ACK_RANGES 256u
#define MAX_STREAMS_LIMIT ((uint64_t)1 << 60)
#define CRC_LENGTH 4u
#define RESET_TOKEN_LENGTH 16u
#define PATH_DATA_LENGTH 8u
#define RETRY_TAG_LENGTH 16u

/* ---- varints ------------------------------------------------------------ */

int tp_varint_size(uint64_t value)
{
    if (value < 0x40u)
        return 1;
    if (value < 0x4000u)
        return 2;
    if (value < 0x40000000u)
        return 4;
    if (value <= TP_MAX_VARINT)
        return 8;
    return TP_ERR_FIELD_VALUE;
}

/* Reads a varint from buf[pos..end).  Returns the next position or
 * TP_ERR_TRUNCATED. */
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

int64_t tp_decode_varint(const uint8_t *buf, size_t len, size_t pos, uint64_t *value)
{
    return rd(buf, len, pos, value);
}

/* Writes the minimal varint of v into p (room checked by the caller);
 * returns the byte count.  v must be <= TP_MAX_VARINT. */
static inline size_t put_varint(uint8_t *p, uint64_t v)
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

int64_t tp_encode_varint(uint8_t *out, size_t end, size_t pos, uint64_t value)
{
    int size = tp_varint_size(value);
    if (size < 0)
        return size;
    if (pos > end || (size_t)size > end - pos)
        return TP_ERR_BUFFER_TOO_SMALL;
    return (int64_t)(pos + put_varint(out + pos, value));
}

/* ---- packet headers ----------------------------------------------------- */

static int read_cid(const uint8_t *buf, size_t size, size_t *pos, uint32_t *off, uint32_t *len)
{
    size_t p = *pos, n;
    if (p >= size)
        return TP_ERR_TRUNCATED;
    n = buf[p];
    if (n > TP_MAX_CID_LENGTH)
        return TP_ERR_FIELD_VALUE;
    if (n > size - p - 1)
        return TP_ERR_TRUNCATED;
    *off = (uint32_t)(p + 1);
    *len = (uint32_t)n;
    *pos = p + 1 + n;
    return TP_OK;
}

int tp_decode_header(const uint8_t *buf, size_t size, size_t short_cid_length, tp_header *h)
{
    uint32_t first, pn_length, version, type;
    size_t pos;
    int rc;

    memset(h, 0, sizeof(*h));
    if (size == 0)
        return TP_ERR_TRUNCATED;
    if (size > MAX_DATAGRAM_SIZE)
        return TP_ERR_FIELD_VALUE;
    first = buf[0];
    pn_length = (first & 3u) + 1u;
    h->first_byte = first;
    h->pn_length = pn_length;
    h->packet_end = (uint32_t)size;

    if (!(first & 0x80u)) {
        if (!(first & 0x40u))
            return TP_ERR_FIELD_VALUE;
        if (short_cid_length > TP_MAX_CID_LENGTH)
            return TP_ERR_FIELD_VALUE;
        if (1u + short_cid_length + pn_length > size)
            return TP_ERR_TRUNCATED;
        h->packet_type = 0xFFu;
        h->dcid_off = 1;
        h->dcid_len = (uint32_t)short_cid_length;
        h->pn_offset = (uint32_t)(1u + short_cid_length);
        return TP_OK;
    }

    if (size < 5)
        return TP_ERR_TRUNCATED;
    version = ((uint32_t)buf[1] << 24) | ((uint32_t)buf[2] << 16) | ((uint32_t)buf[3] << 8) |
              (uint32_t)buf[4];
    if (version != 0 && !(first & 0x40u))
        return TP_ERR_FIELD_VALUE;
    h->version = version;
    pos = 5;
    rc = read_cid(buf, size, &pos, &h->dcid_off, &h->dcid_len);
    if (rc)
        return rc;
    rc = read_cid(buf, size, &pos, &h->scid_off, &h->scid_len);
    if (rc)
        return rc;

    if (version == 0) {
        size_t rest = size - pos;
        if (rest == 0 || rest % 4u)
            return TP_ERR_TRUNCATED;
        h->packet_type = 0xFEu;
        h->versions_off = (uint32_t)pos;
        h->n_versions = (uint32_t)(rest / 4u);
        return TP_OK;
    }

    type = (first & 0x30u) >> 4;
    h->packet_type = type;
    if (version != VERSION_1)
        return TP_OK;
    if (type == 2u) { /* RETRY */
        if (size - pos < RETRY_TAG_LENGTH)
            return TP_ERR_TRUNCATED;
        h->token_off = (uint32_t)pos;
        h->token_len = (uint32_t)(size - RETRY_TAG_LENGTH - pos);
        h->tag_off = (uint32_t)(size - RETRY_TAG_LENGTH);
        h->tag_len = RETRY_TAG_LENGTH;
        return TP_OK;
    }
    if (type == 3u)
        return TP_ERR_FIELD_VALUE;
    {
        uint64_t token_length, length;
        int64_t r;
        if (type == 0u) { /* INITIAL */
            r = rd(buf, size, pos, &token_length);
            if (r < 0)
                return (int)r;
            pos = (size_t)r;
            if (token_length > size - pos)
                return TP_ERR_TRUNCATED;
            h->token_off = (uint32_t)pos;
            h->token_len = (uint32_t)token_length;
            pos += (size_t)token_length;
        }
        r = rd(buf, size, pos, &length);
        if (r < 0)
            return (int)r;
        pos = (size_t)r;
        if (length < pn_length + CRC_LENGTH)
            return TP_ERR_FIELD_VALUE;
        if (length > size - pos)
            return TP_ERR_TRUNCATED;
        h->pn_offset = (uint32_t)pos;
        h->packet_end = (uint32_t)(pos + length);
    }
    return TP_OK;
}

static void put_pn(uint8_t *p, uint64_t pn, uint32_t pn_length)
{
    uint32_t i;
    for (i = 0; i < pn_length; i++)
        p[i] = (uint8_t)(pn >> (8u * (pn_length - 1u - i)));
}

/* Copies `len` bytes to out[pos..] if they fit before `end`. */
static int64_t put_bytes(uint8_t *out, size_t end, size_t pos, const uint8_t *src, size_t len)
{
    if (pos > end || len > end - pos)
        return TP_ERR_BUFFER_TOO_SMALL;
    if (len)
        memcpy(out + pos, src, len);
    return (int64_t)(pos + len);
}

int64_t tp_encode_long_header(uint8_t *out, size_t end, size_t pos, uint32_t packet_type,
                              uint32_t version, const uint8_t *dcid, size_t dcid_len,
                              const uint8_t *scid, size_t scid_len, const uint8_t *token,
                              size_t token_len, uint64_t pn, uint32_t pn_length,
                              uint64_t length)
{
    /* byte0 + version + 2 CIDs (with lengths) + token varint + length varint + pn */
    uint8_t head[1 + 4 + 2 * (1 + TP_MAX_CID_LENGTH) + 8 + 8 + 4];
    size_t n = 0;
    uint8_t first;

    if (version == 0)
        return TP_ERR_FIELD_VALUE;
    if (dcid_len > TP_MAX_CID_LENGTH || scid_len > TP_MAX_CID_LENGTH)
        return TP_ERR_FIELD_VALUE;
    if (packet_type > 3u)
        return TP_ERR_FIELD_VALUE;
    first = (uint8_t)(0xC0u | (packet_type << 4));
    head[n++] = first;
    head[n++] = (uint8_t)(version >> 24);
    head[n++] = (uint8_t)(version >> 16);
    head[n++] = (uint8_t)(version >> 8);
    head[n++] = (uint8_t)version;
    head[n++] = (uint8_t)dcid_len;
    if (dcid_len)
        memcpy(head + n, dcid, dcid_len);
    n += dcid_len;
    head[n++] = (uint8_t)scid_len;
    if (scid_len)
        memcpy(head + n, scid, scid_len);
    n += scid_len;
    if (packet_type == 2u) { /* RETRY: byte0, version, CIDs, token */
        if (pos > end || n > end - pos || token_len > end - pos - n)
            return TP_ERR_BUFFER_TOO_SMALL;
        memcpy(out + pos, head, n);
        if (token_len)
            memcpy(out + pos + n, token, token_len);
        return (int64_t)(pos + n + token_len);
    }
    if (packet_type > 1u)
        return TP_ERR_FIELD_VALUE;
    if (pn_length < 1u || pn_length > 4u || pn > TP_MAX_VARINT)
        return TP_ERR_FIELD_VALUE;
    if (length < pn_length + CRC_LENGTH)
        return TP_ERR_FIELD_VALUE;
    if (packet_type == 1u && token_len)
        return TP_ERR_FIELD_VALUE;
    if (length > TP_MAX_VARINT)
        return TP_ERR_FIELD_VALUE;
    head[0] = (uint8_t)(first | (pn_length - 1u));
    if (packet_type == 0u) {
        /* INITIAL: head, token varint, token, length varint, pn */
        size_t tail;
        if (token_len > TP_MAX_VARINT)
            return TP_ERR_FIELD_VALUE;
        n += put_varint(head + n, (uint64_t)token_len);
        tail = (size_t)tp_varint_size(length) + pn_length;
        if (pos > end || n > end - pos || token_len > end - pos - n ||
            tail > end - pos - n - token_len)
            return TP_ERR_BUFFER_TOO_SMALL;
        memcpy(out + pos, head, n);
        pos += n;
        if (token_len)
            memcpy(out + pos, token, token_len);
        pos += token_len;
        n = 0;
    }
    n += put_varint(head + n, length);
    put_pn(head + n, pn, pn_length);
    n += pn_length;
    return put_bytes(out, end, pos, head, n);
}

int64_t tp_encode_short_header(uint8_t *out, size_t end, size_t pos, const uint8_t *dcid,
                               size_t dcid_len, uint64_t pn, uint32_t pn_length,
                               uint32_t key_phase, uint32_t spin)
{
    uint8_t *p;
    if (dcid_len > TP_MAX_CID_LENGTH)
        return TP_ERR_FIELD_VALUE;
    if (pn_length < 1u || pn_length > 4u || pn > TP_MAX_VARINT)
        return TP_ERR_FIELD_VALUE;
    if (key_phase > 1u || spin > 1u)
        return TP_ERR_FIELD_VALUE;
    if (pos > end || 1u + dcid_len + pn_length > end - pos)
        return TP_ERR_BUFFER_TOO_SMALL;
    p = out + pos;
    p[0] = (uint8_t)(0x40u | (pn_length - 1u) | (key_phase ? 0x04u : 0u) | (spin ? 0x20u : 0u));
    if (dcid_len)
        memcpy(p + 1, dcid, dcid_len);
    put_pn(p + 1 + dcid_len, pn, pn_length);
    return (int64_t)(pos + 1u + dcid_len + pn_length);
}
