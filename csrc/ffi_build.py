"""cffi build script for ``transport._native`` (out-of-line API mode).

How this works
--------------
``setup.py`` names ``csrc/ffi_build.py:ffibuilder``; setuptools' cffi plugin
then generates ``_native.c`` from the declarations below plus the C sources in
this directory and compiles them into the extension module ``transport._native``.

Run as a script, ``python csrc/ffi_build.py OUTDIR`` builds the module into
``OUTDIR`` (importable as ``_native`` with ``TRANSPORT_NATIVE_PATH=OUTDIR``).
With ``TRANSPORT_SANITIZE=1`` the build uses AddressSanitizer + UBSan
(``-fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g``); the Python
process then needs the sanitizer runtimes preloaded (see ``make sanitize``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # cffi runs this file directly: find build_common

from build_common import make_builder, require_header, script_main  # noqa: E402

SOURCES = ["crc32c.c", "codec.c", "frames.c", "packet.c", "aead.c"]

CDEF = """
enum tp_status {
    TP_OK = 0,
    TP_ERR_TRUNCATED = -1,
    TP_ERR_UNKNOWN_FRAME = -2,
    TP_ERR_FIELD_VALUE = -3,
    TP_ERR_BUFFER_TOO_SMALL = -4,
    TP_ERR_FOREIGN_PACKET = -5,
    TP_ERR_CHECKSUM = -6,
    TP_ERR_AUTH = -7,
    TP_ERR_KEY_PHASE = -8
};

#define TP_ERR_FRAMES_OFFSET ...

#define TP_OPEN_COUNT_BITS ...

typedef struct {
    uint64_t type, a, b, c, d;
    uint32_t data_off, data_len;
} tp_frame;

typedef struct {
    tp_frame *frames;
    uint64_t *ranges;
    uint32_t max_frames;
    uint32_t max_ranges;
    uint32_t n_frames;
    uint32_t n_ranges;
} tp_decoder;

typedef struct {
    uint64_t type, a, b, c, d;
    const uint8_t *body;
    uint64_t body_len;
    const uint64_t *ranges;
    uint64_t n_ranges;
} tp_frame_spec;

typedef struct {
    uint32_t first_byte;
    uint32_t packet_type;
    uint32_t version;
    uint32_t dcid_off, dcid_len;
    uint32_t scid_off, scid_len;
    uint32_t token_off, token_len;
    uint32_t pn_offset, pn_length;
    uint32_t packet_end;
    uint32_t versions_off, n_versions;
    uint32_t tag_off, tag_len;
} tp_header;

uint32_t tp_crc32c(uint32_t crc, const uint8_t *data, size_t len);
uint32_t tp_crc32c_sw(uint32_t crc, const uint8_t *data, size_t len);
int tp_crc32c_hw_active(void);
const char *tp_crc32c_path(void);

int tp_varint_size(uint64_t value);
int64_t tp_decode_varint(const uint8_t *buf, size_t len, size_t pos, uint64_t *value);
int64_t tp_encode_varint(uint8_t *out, size_t end, size_t pos, uint64_t value);

int tp_decode_header(const uint8_t *buf, size_t len, size_t short_cid_length, tp_header *h);
int64_t tp_encode_long_header(uint8_t *out, size_t end, size_t pos, uint32_t packet_type,
                              uint32_t version, const uint8_t *dcid, size_t dcid_len,
                              const uint8_t *scid, size_t scid_len, const uint8_t *token,
                              size_t token_len, uint64_t pn, uint32_t pn_length,
                              uint64_t length);
int64_t tp_encode_short_header(uint8_t *out, size_t end, size_t pos, const uint8_t *dcid,
                               size_t dcid_len, uint64_t pn, uint32_t pn_length,
                               uint32_t key_phase, uint32_t spin);

int64_t tp_decode_frames(tp_decoder *dec, const uint8_t *buf, size_t start, size_t end);
int64_t tp_encode_frames(const tp_frame_spec *specs, size_t n, uint8_t *out, size_t pos,
                         size_t end);
int64_t tp_compact_offset(uint64_t truncated, uint64_t reference);
int tp_compact_ok(uint64_t stream_id, uint64_t offset, uint64_t low, uint64_t high);

int64_t tp_seal_stream_packet(uint8_t *out, size_t out_len, const uint8_t *dcid,
                              size_t dcid_len, uint64_t pn, uint32_t pn_length,
                              const uint64_t *ack_ranges, size_t n_ack_ints, uint32_t has_ack,
                              uint64_t ack_delay, uint64_t stream_id, uint64_t offset,
                              const uint8_t *data, size_t data_len, uint32_t fin,
                              uint32_t crc);
int64_t tp_open_short_packet(tp_decoder *dec, const uint8_t *buf, size_t size,
                             const uint8_t *dcid, size_t dcid_len, uint32_t crc);

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
int64_t tp_seal_stream_run(tp_aead *a, uint8_t *out, size_t out_len, const uint8_t *dcid,
                           size_t dcid_len, uint64_t pn0, uint64_t largest_acked,
                           uint64_t stream_id, uint64_t offset, const uint8_t *data,
                           size_t data_len, size_t frame_room, uint32_t fin, uint32_t cut,
                           uint32_t key_phase, uint32_t max_packets, uint32_t *sizes,
                           uint32_t *lengths, uint64_t compact_low, uint64_t compact_high);
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
"""


def _make_builder(module_name: str, absolute: bool) -> FFI:
    # aead.c uses OpenSSL's libcrypto (EVP): headers from libssl-dev / openssl-devel
    require_header("openssl/evp.h", "the OpenSSL development headers (libssl-dev)")
    return make_builder(module_name, CDEF, "transport.h", SOURCES, "c99", absolute,
                        libraries=["crypto"])


ffibuilder = _make_builder("transport._native", absolute=False)


if __name__ == "__main__":
    sys.exit(script_main(sys.argv, "_native", _make_builder))
