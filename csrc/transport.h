/*
 * transport.h -- C99 hot paths of the `transport` wire codec.
 *
 * How this works
 * --------------
 * Everything here works on caller-provided memory: no function allocates,
 * keeps state between calls (apart from the CRC tables and CPU-feature probe
 * filled once at load time) or touches Python.  Every read and write is
 * bounds-checked against the lengths passed in.  Functions that produce a
 * count or a position return it as a non-negative int64_t; failures return
 * one of the negative tp_status codes below, which the Python wrapper
 * (transport/wire/codec_native.py) maps onto transport.errors classes.
 *
 * The wire layout is documented in docs/wire-format.md and numbered in
 * transport/wire/constants.py; varints are QUIC variable-length integers
 * (RFC 9000 section 16), ACK range arithmetic follows RFC 9000 section 19.3.1,
 * and the CRC is CRC32C (Castagnoli, RFC 3720 appendix B.4).
 */
#ifndef TRANSPORT_H
#define TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

/* Status codes.  Success values are >= 0; failures are these negatives. */
enum tp_status {
    TP_OK = 0,
    TP_ERR_TRUNCATED = -1,        /* input ended inside a structure       */
    TP_ERR_UNKNOWN_FRAME = -2,    /* frame type not defined by v1         */
    TP_ERR_FIELD_VALUE = -3,      /* field out of range / inconsistent    */
    TP_ERR_BUFFER_TOO_SMALL = -4, /* output does not fit                  */
    TP_ERR_FOREIGN_PACKET = -5,   /* packet carries another DCID          */
    TP_ERR_CHECKSUM = -6,         /* CRC32C trailer does not match        */
    TP_ERR_AUTH = -7,             /* AEAD: does not authenticate          */
    TP_ERR_KEY_PHASE = -8         /* AEAD: packet of the other key phase  */
};

/* tp_open_short_packet_aead: a frame-decoding failure after a successful
 * open is reported as (decoder status - TP_ERR_FRAMES_OFFSET). */
#define TP_ERR_FRAMES_OFFSET 16
/* AEAD identifiers (TransportParameter.AEAD_ALGORITHM values). */
#define TP_AEAD_AES128GCM 1u
#define TP_AEAD_CHACHA20 2u

#define TP_MAX_VARINT ((uint64_t)0x3FFFFFFFFFFFFFFFULL)
#define TP_MAX_CID_LENGTH 20u
/* tp_open_short_packet packs (truncated_pn << TP_OPEN_COUNT_BITS) | count. */
#define TP_OPEN_COUNT_BITS 20
/* The seal functions' `fin`: bit 0 FIN, this bit = a compact STREAM frame. */
#define TP_SEAL_COMPACT 2u

/* One decoded frame ("compact record"; field meaning per frame type is
 * FRAME_FIELDS in constants.py).  data_off is absolute in the decoded buffer. */
typedef struct {
    uint64_t type, a, b, c, d;
    uint32_t data_off, data_len;
} tp_frame;

/* Where decode results go.  The caller owns both arrays. */
typedef struct {
    tp_frame *frames;     /* max_frames entries                         */
    uint64_t *ranges;     /* max_ranges entries                         */
    uint32_t max_frames;
    uint32_t max_ranges;
    uint32_t n_frames;    /* out: records written by the last decode    */
    uint32_t n_ranges;    /* out: ints written to ranges                */
} tp_decoder;

/* One frame to encode.  body/body_len: body bytes for frames that carry one.
 * ranges/n_ranges: the flat int list of ACK-like frames (low0, high0, ...,
 * then ect0, ect1, ce for ACK_ECN); c and d are ignored for those. */
typedef struct {
    uint64_t type, a, b, c, d;
    const uint8_t *body;
    uint64_t body_len;
    const uint64_t *ranges;
    uint64_t n_ranges;
} tp_frame_spec;

/* Decoded packet header; byte fields are (offset, length) pairs into buf. */
typedef struct {
    uint32_t first_byte;
    uint32_t packet_type;   /* 0..3 long types, 0xFF short, 0xFE VN    */
    uint32_t version;
    uint32_t dcid_off, dcid_len;
    uint32_t scid_off, scid_len;
    uint32_t token_off, token_len;
    uint32_t pn_offset, pn_length;
    uint32_t packet_end;
    uint32_t versions_off, n_versions;  /* VN: u32 list at versions_off */
    uint32_t tag_off, tag_len;          /* RETRY integrity tag          */
} tp_header;

/* ---- CRC32C ---------------------------------------------------------- */
/* crc32c(data) continuing from a previous result `crc` (0 to start). */
uint32_t tp_crc32c(uint32_t crc, const uint8_t *data, size_t len);
/* The portable slice-by-8 path, whatever the CPU supports. */
uint32_t tp_crc32c_sw(uint32_t crc, const uint8_t *data, size_t len);
/* 1 when tp_crc32c uses the SSE4.2 crc32 instruction, 0 for slice-by-8. */
int tp_crc32c_hw_active(void);
/* Name of the active CRC path ("sse4.2-3way" or "slice-by-8"). */
const char *tp_crc32c_path(void);

/* ---- varints --------------------------------------------------------- */
/* 1, 2, 4 or 8; TP_ERR_FIELD_VALUE when value > 2^62-1. */
int tp_varint_size(uint64_t value);
/* Reads a varint at buf[pos]; returns the next position or an error. */
int64_t tp_decode_varint(const uint8_t *buf, size_t len, size_t pos, uint64_t *value);
/* Writes a minimal varint at out[pos]; returns the next position. */
int64_t tp_encode_varint(uint8_t *out, size_t end, size_t pos, uint64_t value);

/* ---- packet headers -------------------------------------------------- */
int tp_decode_header(const uint8_t *buf, size_t len, size_t short_cid_length, tp_header *h);
int64_t tp_encode_long_header(uint8_t *out, size_t end, size_t pos, uint32_t packet_type,
                              uint32_t version, const uint8_t *dcid, size_t dcid_len,
                              const uint8_t *scid, size_t scid_len, const uint8_t *token,
                              size_t token_len, uint64_t pn, uint32_t pn_length,
                              uint64_t length);
int64_t tp_encode_short_header(uint8_t *out, size_t end, size_t pos, const uint8_t *dcid,
                               size_t dcid_len, uint64_t pn, uint32_t pn_length,
                               uint32_t key_phase, uint32_t spin);

/* ---- frames ---------------------------------------------------------- */
/* Decodes every frame in buf[start:end] into dec; returns the frame count. */
int64_t tp_decode_frames(tp_decoder *dec, const uint8_t *buf, size_t start, size_t end);
/* Encodes specs[0..n-1] into out[pos:end]; returns the new position. */
int64_t tp_encode_frames(const tp_frame_spec *specs, size_t n, uint8_t *out, size_t pos,
                         size_t end);
/* Compact STREAM offsets (docs/wire-format.md 10.25; twin transport/wire/compact.py):
 * the offset with these low 24 bits in (reference - 2^23, reference + 2^23], or
 * -1 when negative; whether a frame at `offset` may be compact given a lower
 * (`low`) and upper (`high`) bound of the receiver's reference. */
int64_t tp_compact_offset(uint64_t truncated, uint64_t reference);
int tp_compact_ok(uint64_t stream_id, uint64_t offset, uint64_t low, uint64_t high);

/* ---- packet-level fast paths (packet.c) ------------------------------ */
/* Writes a whole short-header packet at out[0]: header, an ACK frame when
 * has_ack (ranges = flat inclusive (low, high) pairs, highest first), one
 * STREAM frame with OFF and LEN (and FIN when fin), then when crc a
 * big-endian CRC32C trailer.  Returns the packet length or an error. */
int64_t tp_seal_stream_packet(uint8_t *out, size_t out_len, const uint8_t *dcid,
                              size_t dcid_len, uint64_t pn, uint32_t pn_length,
                              const uint64_t *ack_ranges, size_t n_ack_ints, uint32_t has_ack,
                              uint64_t ack_delay, uint64_t stream_id, uint64_t offset,
                              const uint8_t *data, size_t data_len, uint32_t fin,
                              uint32_t crc);
/* Checks and decodes a whole short-header datagram addressed to dcid (see
 * packet.c); returns (truncated_pn << TP_OPEN_COUNT_BITS) | frame_count. */
int64_t tp_open_short_packet(tp_decoder *dec, const uint8_t *buf, size_t size,
                             const uint8_t *dcid, size_t dcid_len, uint32_t crc);

/* ---- aead.c: packet protection through OpenSSL libcrypto (EVP) ---- */
typedef struct tp_aead tp_aead;
tp_aead *tp_aead_new(uint32_t aead_id, const uint8_t *key, size_t key_len, const uint8_t *iv,
                     size_t iv_len);
void tp_aead_free(tp_aead *a);
int64_t tp_aead_live(void);
int64_t tp_aead_seal(tp_aead *a, uint64_t pn, const uint8_t *ad, size_t ad_len,
                     const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len);
int64_t tp_aead_open(tp_aead *a, uint64_t pn, const uint8_t *ad, size_t ad_len,
                     const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len);
int64_t tp_seal_stream_packet_aead(tp_aead *a, uint8_t *out, size_t out_len,
                                   const uint8_t *dcid, size_t dcid_len, uint64_t pn,
                                   uint32_t pn_length, const uint64_t *ack_ranges,
                                   size_t n_ack_ints, uint32_t has_ack, uint64_t ack_delay,
                                   uint64_t stream_id, uint64_t offset, const uint8_t *data,
                                   size_t data_len, uint32_t fin, uint32_t key_phase);
/* A run of STREAM packets of one stream, back to back (aead.c). */
int64_t tp_seal_stream_run(tp_aead *a, uint8_t *out, size_t out_len, const uint8_t *dcid,
                           size_t dcid_len, uint64_t pn0, uint64_t largest_acked,
                           uint64_t stream_id, uint64_t offset, const uint8_t *data,
                           size_t data_len, size_t frame_room, uint32_t fin, uint32_t cut,
                           uint32_t key_phase, uint32_t max_packets, uint32_t *sizes,
                           uint32_t *lengths, uint64_t compact_low, uint64_t compact_high);
/* A run of bulk STREAM packets opened in order (aead.c). */
int64_t tp_open_stream_run(tp_decoder *dec, tp_aead *a, const uint8_t *buf, const uint32_t *lens,
                           uint32_t n, const uint8_t *dcid, size_t dcid_len,
                           uint64_t expected_pn, uint32_t key_phase, uint8_t *plain,
                           size_t plain_len, uint8_t *out, size_t out_len, uint64_t *pns,
                           uint64_t *stream_ids, uint64_t *offsets, uint32_t *data_lens,
                           uint8_t *fins, uint64_t *refs);
int64_t tp_open_short_packet_aead(tp_decoder *dec, tp_aead *a, const uint8_t *buf, size_t size,
                                  const uint8_t *dcid, size_t dcid_len, uint64_t expected_pn,
                                  uint32_t key_phase, uint8_t *plain, size_t plain_len,
                                  uint64_t *out);

#endif /* TRANSPORT_H */
