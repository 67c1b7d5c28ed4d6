/*
 * packet.c -- packet-level fast paths for 1-RTT (short-header) data packets.
 *
 * How this works
 * --------------
 * The generic codec needs several calls per datagram (header, frames, CRC),
 * and each call from Python costs far more than the work it does.  These two
 * functions do a whole short-header packet in one call, by composing the
 * existing pieces, so they cannot drift from the generic encoders/decoders:
 *
 *  - tp_seal_stream_packet: tp_encode_short_header, then tp_encode_frames with
 *    an optional ACK spec and one STREAM (OFF [|FIN], no LEN) spec, written up to
 *    `out_len - 4` when a CRC32C trailer is wanted, then the big-endian
 *    CRC32C of everything before the trailer.  With TP_SEAL_COMPACT in `fin`
 *    the frame is the compact STREAM frame instead (type 0x38 | stream_id << 1
 *    | FIN, the offset's low 24 bits; docs/wire-format.md 10.25).  The bytes equal header +
 *    encode_frames(specs) + crc32c, and failures come in the reference's
 *    order (header checks, then per frame: value checks before room checks).
 *    The STREAM frame is always the packet's last frame, so it carries no
 *    Length field: its data runs to the end of the payload (LEN bit 0,
 *    docs/wire-format.md 10.9), 2 bytes less per bulk packet.  The offset is
 *    the shortest varint that holds it (tp_encode_frames writes them so).
 *
 *  - tp_open_short_packet: checks the header form and fixed bit, the DCID
 *    (TP_ERR_FOREIGN_PACKET on mismatch), then the CRC32C trailer
 *    (TP_ERR_CHECKSUM), reads the truncated packet number and decodes the
 *    frames between it and the trailer with tp_decode_frames.  The success
 *    value packs the truncated packet number and the frame count:
 *    (pn << TP_OPEN_COUNT_BITS) | count.  The count always fits, because a
 *    datagram is at most 65527 bytes and every frame takes at least one.
 *
 * The check order is the one of seal_stream_packet / open_short_packet in
 * transport/wire/codec_pure.py, which defines the behaviour.  The short
 * header layout is RFC 9000 section 17.3 (our variant, docs/wire-format.md).
 */
#include "transport.h"

#include <string.h>

#define CRC_LENGTH 4u
#define MAX_DATAGRAM_SIZE 65527u
#define F_ACK 0x02u
#define F_ACK_ECN 0x03u
#define F_STREAM_OFF 0x0Cu /* STREAM with OFF, without LEN: runs to the end */
#define F_STREAM_COMPACT 0x38u /* compact STREAM: | stream_id << 1 | FIN */

int64_t tp_seal_stream_packet(uint8_t *out, size_t out_len, const uint8_t *dcid,
                              size_t dcid_len, uint64_t pn, uint32_t pn_length,
                              const uint64_t *ack_ranges, size_t n_ack_ints, uint32_t has_ack,
                              uint64_t ack_delay, uint64_t stream_id, uint64_t offset,
                              const uint8_t *data, size_t data_len, uint32_t fin,
                              uint32_t crc)
{
    tp_frame_spec specs[2];
    size_t n = 0, end;
    int64_t pos;

    pos = tp_encode_short_header(out, out_len, 0, dcid, dcid_len, pn, pn_length, 0, 0);
    if (pos < 0)
        return pos;
    /* With a trailer the frames must end 4 bytes early; when even that is
     * impossible, end = 0 (< pos) makes every frame report "no room" after
     * its value checks, as the reference does. */
    if (crc)
        end = out_len >= CRC_LENGTH ? out_len - CRC_LENGTH : 0u;
    else
        end = out_len;
    memset(specs, 0, sizeof(specs));
    if (has_ack) {
        /* an odd count: ranges + ECT(0), ECT(1), CE counts -> ACK_ECN */
        specs[n].type = (n_ack_ints & 1u) ? F_ACK_ECN : F_ACK;
        specs[n].a = n_ack_ints >= 2u ? ack_ranges[1] : 0u;
        specs[n].b = ack_delay;
        specs[n].ranges = ack_ranges;
        specs[n].n_ranges = n_ack_ints;
        n++;
    }
    if (fin & TP_SEAL_COMPACT) {
        /* compact STREAM (10.25): the type names the stream (write_head refuses
         * stream IDs of 4 and more), the offset's low 24 bits, c = the full
         * offset for the offset + length check */
        specs[n].type = F_STREAM_COMPACT | ((stream_id & 3u) << 1) | (fin & 1u);
        specs[n].a = stream_id;
        specs[n].b = offset & 0xFFFFFFu;
        specs[n].c = offset;
    } else {
        specs[n].type = F_STREAM_OFF | (fin & 1u);
        specs[n].a = stream_id;
        specs[n].b = offset;
    }
    specs[n].body = data;
    specs[n].body_len = data_len;
    n++;
    pos = tp_encode_frames(specs, n, out, (size_t)pos, end);
    if (pos < 0 || !crc)
        return pos;
    {
        /* pos <= end = out_len - 4 here, so the trailer fits. */
        uint32_t c = tp_crc32c(0, out, (size_t)pos);
        uint8_t *p = out + pos;
        p[0] = (uint8_t)(c >> 24);
        p[1] = (uint8_t)(c >> 16);
        p[2] = (uint8_t)(c >> 8);
        p[3] = (uint8_t)c;
    }
    return pos + (int64_t)CRC_LENGTH;
}

int64_t tp_open_short_packet(tp_decoder *dec, const uint8_t *buf, size_t size,
                             const uint8_t *dcid, size_t dcid_len, uint32_t crc)
{
    uint32_t first, pn_length, i;
    size_t pn_offset, pn_end, end;
    uint64_t pn = 0;
    int64_t count;

    dec->n_frames = 0;
    dec->n_ranges = 0;
    if (size == 0)
        return TP_ERR_TRUNCATED;
    if (size > MAX_DATAGRAM_SIZE)
        return TP_ERR_FIELD_VALUE;
    first = buf[0];
    if ((first & 0xC0u) != 0x40u) /* long form, or fixed bit 0 */
        return TP_ERR_FIELD_VALUE;
    if (dcid_len > TP_MAX_CID_LENGTH)
        return TP_ERR_FIELD_VALUE;
    pn_length = (first & 3u) + 1u;
    pn_offset = 1u + dcid_len;
    pn_end = pn_offset + pn_length;
    if (pn_end > size)
        return TP_ERR_TRUNCATED;
    if (dcid_len && memcmp(buf + 1, dcid, dcid_len) != 0)
        return TP_ERR_FOREIGN_PACKET;
    end = size;
    if (crc) {
        uint32_t expected;
        if (size - pn_end < CRC_LENGTH)
            return TP_ERR_TRUNCATED;
        end = size - CRC_LENGTH;
        expected = ((uint32_t)buf[end] << 24) | ((uint32_t)buf[end + 1] << 16) |
                   ((uint32_t)buf[end + 2] << 8) | (uint32_t)buf[end + 3];
        if (tp_crc32c(0, buf, end) != expected)
            return TP_ERR_CHECKSUM;
    }
    for (i = 0; i < pn_length; i++)
        pn = (pn << 8) | buf[pn_offset + i];
    count = tp_decode_frames(dec, buf, pn_end, end);
    if (count < 0)
        return count;
    return (int64_t)((pn << TP_OPEN_COUNT_BITS) | (uint64_t)count);
}
