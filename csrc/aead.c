/*
 * aead.c -- 1-RTT packet protection in C: AES-128-GCM and ChaCha20-Poly1305
 * through OpenSSL's libcrypto EVP API, fused with the data-packet codec.
 *
 * How this works
 * --------------
 * A tp_aead holds one direction's key generation: the key, the 12-byte IV,
 * the cipher (fetched once) and a process-unique id.  It owns no
 * EVP_CIPHER_CTX: a keyed AES-GCM context is ~1.1 KiB of OpenSSL state, and a
 * server holds thousands of idle connections.  Each thread keeps a small cache
 * of keyed contexts per direction (CACHE_SLOTS encrypt, CACHE_SLOTS decrypt),
 * tagged with the id of the tp_aead keyed into them; an operation whose
 * tp_aead holds a slot uses it as is, else it re-keys the round-robin victim
 * (EVP_CipherInit_ex2 with the key only: ~1,400 instructions, about a quarter
 * of sealing 1,200 bytes).  One connection's packets, or an in-process pair,
 * never re-key; many connections interleaving packets re-key per switch.  Per
 * packet only the nonce changes: nonce = iv XOR (4 zero bytes || packet
 * number as a big-endian u64) (docs/wire-format.md 9.2), set with
 * EVP_{En,De}cryptInit_ex2(ctx, NULL, NULL, nonce, NULL); the tag moves as an
 * OSSL_PARAM.  The associated data is the unprotected header (first byte
 * through the packet number).  tp_aead_free wipes the key and resets this
 * thread's contexts keyed with it (another thread's copy of the key schedule
 * lasts until that slot is re-keyed or the thread exits).
 *
 *  - tp_aead_live: how many tp_aead exist (created and not yet freed).
 *  - tp_aead_seal / tp_aead_open: one AEAD operation on caller memory
 *    (ciphertext || 16-byte tag).  In-place operation (out == in) is allowed.
 *  - tp_seal_stream_packet_aead: tp_seal_stream_packet without the CRC
 *    trailer, the key phase bit set in the first byte, then the payload
 *    (everything after the packet number) sealed in place, tag appended.
 *  - tp_open_short_packet_aead: the checks and packet-number recovery of
 *    Connection._receive_1rtt (fixed bit and DCID, minimum length, RFC 9000
 *    appendix A.3 against `expected_pn`), the key phase bit compared with the
 *    caller's, the payload opened into `plain`, then its frames decoded into
 *    `dec`.  out[0] receives the full packet number, out[1] the first byte
 *    and, once opened, out[2] the plaintext length.  Status: the frame count, or TP_ERR_FIELD_VALUE (not ours: fixed
 *    bit or DCID), TP_ERR_TRUNCATED (too short), TP_ERR_KEY_PHASE (the other
 *    key phase: the caller takes its key-update path), TP_ERR_AUTH (did not
 *    authenticate) or, for a payload that authenticated but whose frames do
 *    not decode, the decoder's status minus TP_ERR_FRAMES_OFFSET.
 *
 *  - tp_seal_stream_run: up to max_packets 1-RTT packets of one stream, back
 *    to back at out[0:], each made by tp_seal_stream_packet (a == NULL: CRC32C
 *    trailer) or tp_seal_stream_packet_aead, with no ACK frame.  Packet i has
 *    number pn0 + i and the packet-number length the packetizer picks for
 *    pn0 + i - largest_acked; frame_room assumes a 4-byte packet number, so
 *    packet i has room_i = frame_room + 4 - its pn length (the packet fills
 *    the datagram); its STREAM frame (no Length field: the packet's last)
 *    takes min(rest, room_i - overhead) bytes of data, overhead = 1 +
 *    varint_len(stream_id) + varint_len(its offset), the exact frame header
 *    (Packetizer._build_stream_packets sizes its packets the same way);
 *    FIN goes on the frame that ends data when fin.  With cut (data stops at
 *    the end of a ring buffer, more follows) a packet that would be short is
 *    left to the caller.  With TP_SEAL_COMPACT in fin (the peer accepts compact
 *    STREAM frames) a packet's frame is compact (type + 3-byte offset) when
 *    tp_compact_ok(stream_id, its offset, compact_low, max(compact_high, its
 *    offset)) holds.  sizes[i] / lengths[i] get each packet's wire size and
 *    data bytes; returns the count (which may be 0), or an error when the first
 *    packet fails.  Twin: packet_runs.seal_stream_run_pure.
 *
 *  - tp_open_stream_run: n 1-RTT datagrams back to back in buf (sizes in
 *    lens), opened in order with tp_open_short_packet (a == NULL: CRC32C) or
 *    tp_open_short_packet_aead, for as long as each is the bulk packet: it
 *    opens, holds exactly one frame, a STREAM frame, has the reserved header
 *    bits clear (a compact STREAM frame too when refs is not NULL: its
 *    offset rebuilt with tp_compact_offset against refs[stream id], which
 *    moves to the frame's end when that is higher; one that does not rebuild
 *    ends the run) and a packet number (RFC 9000 A.3 against expected_pn, which
 *    then moves to pn + 1) not below expected_pn.  Per packet: pns, stream_ids,
 *    offsets, data_lens, fins; the frame data is copied to out, back to back.
 *    Returns how many packets from the start qualified; the first that did not
 *    is left, untouched, to the caller (nothing else is changed).  Twin:
 *    packet_runs.open_stream_run_pure.
 *
 * The pure-Python twin is transport/crypto/aead.py (the `cryptography`
 * package) with transport/wire/codec_pure.py; tests/test_aead_native.py
 * compares the two byte for byte.
 */
#include "transport.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define TAG_LENGTH 16
#define IV_LENGTH 12
#define FIXED_BIT 0x40u
#define KEY_PHASE_BIT 0x04u
#define MAX_DATAGRAM_SIZE 65527u
#define RUN_RESERVED_SHORT_MASK 0x18u

/* Live tp_aead objects in this process (tests check for leaks with it). */
static int64_t live_contexts;

int64_t tp_aead_live(void)
{
    return __atomic_load_n(&live_contexts, __ATOMIC_RELAXED);
}

struct tp_aead {
    EVP_CIPHER *cipher; /* fetched once per key (explicit fetch: no per-init lookup) */
    uint64_t id;        /* process-unique, never 0: tags the cached contexts keyed with it */
    uint32_t aead_id;
    uint8_t key[32];
    uint8_t iv[IV_LENGTH];
};

static uint64_t next_id;

/* Keyed contexts of one thread, [encrypt][slot] (see the file comment). */
#define CACHE_SLOTS 4
typedef struct {
    EVP_CIPHER_CTX *ctx[2][CACHE_SLOTS];
    uint64_t owner[2][CACHE_SLOTS];   /* id of the tp_aead keyed in; 0: none */
    uint32_t aead_id[2][CACHE_SLOTS]; /* cipher the context is set up for; 0: none */
    unsigned victim[2];               /* next slot to re-key (round robin) */
} ctx_cache;

static __thread ctx_cache *thread_cache;
static pthread_key_t cache_key; /* its destructor frees a thread's cache at exit */
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p)
{
    ctx_cache *c = p;
    int e, i;
    for (e = 0; e < 2; e++)
        for (i = 0; i < CACHE_SLOTS; i++)
            EVP_CIPHER_CTX_free(c->ctx[e][i]);
    OPENSSL_free(c);
}

static void cache_key_create(void)
{
    (void)pthread_key_create(&cache_key, cache_free);
}

static ctx_cache *cache(void)
{
    ctx_cache *c = thread_cache;
    if (c != NULL)
        return c;
    if (pthread_once(&cache_key_once, cache_key_create) != 0)
        return NULL;
    c = OPENSSL_zalloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    if (pthread_setspecific(cache_key, c) != 0) {
        OPENSSL_free(c);
        return NULL;
    }
    thread_cache = c;
    return c;
}

static EVP_CIPHER *cipher_for(uint32_t aead_id, size_t key_len)
{
    if (aead_id == TP_AEAD_AES128GCM && key_len == 16)
        return EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    if (aead_id == TP_AEAD_CHACHA20 && key_len == 32)
        return EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    return NULL;
}

void tp_aead_free(tp_aead *a)
{
    ctx_cache *c;
    int e, i;

    if (a == NULL)
        return;
    c = thread_cache;
    if (c != NULL) /* this thread's contexts keyed with it: wipe them */
        for (e = 0; e < 2; e++)
            for (i = 0; i < CACHE_SLOTS; i++)
                if (c->owner[e][i] == a->id) {
                    EVP_CIPHER_CTX_reset(c->ctx[e][i]);
                    c->owner[e][i] = 0;
                    c->aead_id[e][i] = 0;
                }
    EVP_CIPHER_free(a->cipher);
    OPENSSL_clear_free(a, sizeof(*a)); /* wipes the key and IV */
    __atomic_sub_fetch(&live_contexts, 1, __ATOMIC_RELAXED);
}

tp_aead *tp_aead_new(uint32_t aead_id, const uint8_t *key, size_t key_len, const uint8_t *iv,
                     size_t iv_len)
{
    EVP_CIPHER *cipher;
    tp_aead *a;

    if (iv_len != IV_LENGTH)
        return NULL;
    cipher = cipher_for(aead_id, key_len);
    if (cipher == NULL)
        return NULL;
    a = OPENSSL_zalloc(sizeof(*a));
    if (a == NULL) {
        EVP_CIPHER_free(cipher);
        return NULL;
    }
    __atomic_add_fetch(&live_contexts, 1, __ATOMIC_RELAXED);
    a->cipher = cipher;
    a->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    a->aead_id = aead_id;
    memcpy(a->key, key, key_len);
    memcpy(a->iv, iv, IV_LENGTH);
    return a;
}

/* A context of this thread keyed with `a` for one direction: the cached one,
 * or the round-robin victim re-keyed (created on first use). NULL when
 * OpenSSL fails. */
static EVP_CIPHER_CTX *context(tp_aead *a, int encrypt)
{
    ctx_cache *c = thread_cache;
    EVP_CIPHER_CTX *ctx;
    unsigned i;

    encrypt = encrypt != 0;
    if (c == NULL && (c = cache()) == NULL)
        return NULL;
    for (i = 0; i < CACHE_SLOTS; i++)
        if (c->owner[encrypt][i] == a->id)
            return c->ctx[encrypt][i];
    i = c->victim[encrypt];
    c->victim[encrypt] = (i + 1) % CACHE_SLOTS;
    ctx = c->ctx[encrypt][i];
    if (ctx == NULL) {
        ctx = EVP_CIPHER_CTX_new();
        if (ctx == NULL)
            return NULL;
        c->ctx[encrypt][i] = ctx;
    }
    c->owner[encrypt][i] = 0;
    /* same cipher as before: only the key changes (no provider context rebuild) */
    if (EVP_CipherInit_ex2(ctx, c->aead_id[encrypt][i] == a->aead_id ? NULL : a->cipher, a->key,
                           NULL, encrypt, NULL) != 1) {
        EVP_CIPHER_CTX_reset(ctx);
        c->aead_id[encrypt][i] = 0;
        return NULL;
    }
    c->aead_id[encrypt][i] = a->aead_id;
    c->owner[encrypt][i] = a->id;
    return ctx;
}

/* The tag as an OSSL_PARAM: get_params/set_params skip the ctrl translation. */
static int get_tag(EVP_CIPHER_CTX *ctx, uint8_t *tag)
{
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, TAG_LENGTH);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_CIPHER_CTX_get_params(ctx, params);
}

static int set_tag(EVP_CIPHER_CTX *ctx, uint8_t *tag)
{
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, TAG_LENGTH);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_CIPHER_CTX_set_params(ctx, params);
}

static void make_nonce(const tp_aead *a, uint64_t pn, uint8_t nonce[IV_LENGTH])
{
    int i;
    memcpy(nonce, a->iv, IV_LENGTH);
    for (i = 0; i < 8; i++)
        nonce[IV_LENGTH - 1 - i] ^= (uint8_t)(pn >> (8 * i));
}

int64_t tp_aead_seal(tp_aead *a, uint64_t pn, const uint8_t *ad, size_t ad_len,
                     const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    uint8_t nonce[IV_LENGTH];
    EVP_CIPHER_CTX *ctx;
    int n = 0, tail = 0;

    if (pn > TP_MAX_VARINT)
        return TP_ERR_FIELD_VALUE;
    if (in_len > MAX_DATAGRAM_SIZE || ad_len > MAX_DATAGRAM_SIZE)
        return TP_ERR_FIELD_VALUE;
    if (out_len < in_len + TAG_LENGTH)
        return TP_ERR_BUFFER_TOO_SMALL;
    ctx = context(a, 1);
    if (ctx == NULL)
        return TP_ERR_AUTH;
    make_nonce(a, pn, nonce);
    if (EVP_EncryptInit_ex2(ctx, NULL, NULL, nonce, NULL) != 1 ||
        (ad_len && EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)ad_len) != 1) ||
        (in_len && EVP_EncryptUpdate(ctx, out, &n, in, (int)in_len) != 1) ||
        EVP_EncryptFinal_ex(ctx, out + (in_len ? (size_t)n : 0u), &tail) != 1 ||
        get_tag(ctx, out + in_len) != 1)
        return TP_ERR_AUTH;
    return (int64_t)(in_len + TAG_LENGTH);
}

int64_t tp_aead_open(tp_aead *a, uint64_t pn, const uint8_t *ad, size_t ad_len,
                     const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    uint8_t nonce[IV_LENGTH];
    uint8_t tag[TAG_LENGTH];
    EVP_CIPHER_CTX *ctx;
    size_t body;
    int n = 0, tail = 0;

    if (pn > TP_MAX_VARINT)
        return TP_ERR_FIELD_VALUE;
    if (in_len < TAG_LENGTH)
        return TP_ERR_AUTH;
    if (in_len > MAX_DATAGRAM_SIZE || ad_len > MAX_DATAGRAM_SIZE)
        return TP_ERR_FIELD_VALUE;
    body = in_len - TAG_LENGTH;
    if (out_len < body)
        return TP_ERR_BUFFER_TOO_SMALL;
    ctx = context(a, 0);
    if (ctx == NULL)
        return TP_ERR_AUTH;
    memcpy(tag, in + body, TAG_LENGTH); /* the tag, before an in-place decrypt */
    make_nonce(a, pn, nonce);
    if (EVP_DecryptInit_ex2(ctx, NULL, NULL, nonce, NULL) != 1 ||
        (ad_len && EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)ad_len) != 1) ||
        (body && EVP_DecryptUpdate(ctx, out, &n, in, (int)body) != 1) ||
        set_tag(ctx, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, out + (body ? (size_t)n : 0u), &tail) != 1) {
        if (body)
            memset(out, 0, body); /* no unauthenticated plaintext left behind */
        return TP_ERR_AUTH;
    }
    return (int64_t)body;
}

int64_t tp_seal_stream_packet_aead(tp_aead *a, uint8_t *out, size_t out_len,
                                   const uint8_t *dcid, size_t dcid_len, uint64_t pn,
                                   uint32_t pn_length, const uint64_t *ack_ranges,
                                   size_t n_ack_ints, uint32_t has_ack, uint64_t ack_delay,
                                   uint64_t stream_id, uint64_t offset, const uint8_t *data,
                                   size_t data_len, uint32_t fin, uint32_t key_phase)
{
    int64_t size, sealed;
    size_t header_end;

    if (out_len < TAG_LENGTH)
        return TP_ERR_BUFFER_TOO_SMALL;
    size = tp_seal_stream_packet(out, out_len - TAG_LENGTH, dcid, dcid_len, pn, pn_length,
                                 ack_ranges, n_ack_ints, has_ack, ack_delay, stream_id, offset,
                                 data, data_len, fin, 0);
    if (size < 0)
        return size;
    if (key_phase)
        out[0] |= KEY_PHASE_BIT;
    header_end = 1u + dcid_len + pn_length;
    sealed = tp_aead_seal(a, pn, out, header_end, out + header_end,
                          (size_t)size - header_end, out + header_end,
                          out_len - header_end);
    if (sealed < 0)
        return sealed;
    return (int64_t)header_end + sealed;
}

int64_t tp_open_short_packet_aead(tp_decoder *dec, tp_aead *a, const uint8_t *buf, size_t size,
                                  const uint8_t *dcid, size_t dcid_len, uint64_t expected_pn,
                                  uint32_t key_phase, uint8_t *plain, size_t plain_len,
                                  uint64_t *out)
{
    uint32_t first, pn_length, i;
    size_t header_end;
    uint64_t truncated = 0, window, half, candidate;
    int64_t opened, count;

    dec->n_frames = 0;
    dec->n_ranges = 0;
    if (size == 0 || size > MAX_DATAGRAM_SIZE || dcid_len > TP_MAX_CID_LENGTH)
        return TP_ERR_FIELD_VALUE;
    first = buf[0];
    if (!(first & FIXED_BIT) || size < 1u + dcid_len ||
        (dcid_len && memcmp(buf + 1, dcid, dcid_len) != 0))
        return TP_ERR_FIELD_VALUE;
    pn_length = (first & 3u) + 1u;
    header_end = 1u + dcid_len + pn_length;
    if (size < header_end + TAG_LENGTH + 1u)
        return TP_ERR_TRUNCATED;
    for (i = 0; i < pn_length; i++)
        truncated = (truncated << 8) | buf[1u + dcid_len + i];
    if (expected_pn > TP_MAX_VARINT + 1u)
        return TP_ERR_FIELD_VALUE;
    /* RFC 9000 appendix A.3, as in Connection._receive_1rtt */
    window = (uint64_t)1 << (pn_length * 8u);
    half = window >> 1;
    candidate = (expected_pn & ~(window - 1u)) | truncated;
    if (expected_pn >= half && candidate <= expected_pn - half &&
        candidate < ((uint64_t)1 << 62) - window)
        candidate += window;
    else if (candidate > expected_pn + half && candidate >= window)
        candidate -= window;
    out[0] = candidate;
    out[1] = first;
    if (((first & KEY_PHASE_BIT) ? 1u : 0u) != (key_phase ? 1u : 0u))
        return TP_ERR_KEY_PHASE;
    opened = tp_aead_open(a, candidate, buf, header_end, buf + header_end, size - header_end,
                          plain, plain_len);
    if (opened < 0)
        return opened == TP_ERR_AUTH || opened == TP_ERR_FIELD_VALUE ? TP_ERR_AUTH : opened;
    out[2] = (uint64_t)opened;
    count = tp_decode_frames(dec, plain, 0, (size_t)opened);
    if (count < 0)
        return count - TP_ERR_FRAMES_OFFSET;
    return count;
}

/* Varint length of a value (RFC 9000 16): the packetizer's overhead formula. */
static size_t run_varint_len(uint64_t v)
{
    return v < 64u ? 1u : v < 16384u ? 2u : v < 1073741824u ? 4u : 8u;
}

int64_t tp_seal_stream_run(tp_aead *a, uint8_t *out, size_t out_len, const uint8_t *dcid,
                           size_t dcid_len, uint64_t pn0, uint64_t largest_acked,
                           uint64_t stream_id, uint64_t offset, const uint8_t *data,
                           size_t data_len, size_t frame_room, uint32_t fin, uint32_t cut,
                           uint32_t key_phase, uint32_t max_packets, uint32_t *sizes,
                           uint32_t *lengths, uint64_t compact_low, uint64_t compact_high)
{
    size_t pos = 0, done = 0, overhead, want, take, per_packet, room;
    uint64_t pn, unacked, frame_offset, high;
    uint32_t count = 0, pn_length, last, compact;
    int64_t size;

    if (dcid_len > TP_MAX_CID_LENGTH || frame_room > MAX_DATAGRAM_SIZE ||
        offset > TP_MAX_VARINT || data_len > TP_MAX_VARINT - offset)
        return TP_ERR_FIELD_VALUE;
    /* the most one packet can take: header, frames, trailer or tag */
    per_packet = 1u + dcid_len + 4u + frame_room + TAG_LENGTH;
    while (count < max_packets && done < data_len && out_len - pos >= per_packet) {
        pn = pn0 + count;
        unacked = pn - largest_acked;
        pn_length = unacked <= 128u ? 1u : unacked <= 32768u ? 2u : unacked <= 8388608u ? 3u : 4u;
        room = frame_room + 4u - pn_length;
        /* type + varint(stream_id) + varint(this frame's offset); no Length.
         * Compact (fin & TP_SEAL_COMPACT: the peer accepts them) when every
         * receiver reference in [compact_low, high] rebuilds the offset, high
         * counting the run's packets before this one: type + 3 bytes. */
        frame_offset = offset + done;
        high = compact_high > frame_offset ? compact_high : frame_offset;
        compact = (fin & TP_SEAL_COMPACT) &&
                  tp_compact_ok(stream_id, frame_offset, compact_low, high);
        overhead = compact ? 4u : 1u + run_varint_len(stream_id) + run_varint_len(frame_offset);
        if (overhead >= room)
            break;
        want = room - overhead;
        take = data_len - done < want ? data_len - done : want;
        if (cut && take < want)
            break; /* the rest continues past the ring's end: the caller's slow path */
        last = ((done + take == data_len) && (fin & 1u)) | (compact ? TP_SEAL_COMPACT : 0u);
        if (a == NULL)
            size = tp_seal_stream_packet(out + pos, out_len - pos, dcid, dcid_len, pn, pn_length,
                                         NULL, 0, 0, 0, stream_id, offset + done, data + done,
                                         take, last, 1);
        else
            size = tp_seal_stream_packet_aead(a, out + pos, out_len - pos, dcid, dcid_len, pn,
                                              pn_length, NULL, 0, 0, 0, stream_id, offset + done,
                                              data + done, take, last, key_phase);
        if (size < 0)
            return count ? (int64_t)count : size;
        sizes[count] = (uint32_t)size;
        lengths[count] = (uint32_t)take;
        pos += (size_t)size;
        done += take;
        count++;
    }
    return (int64_t)count;
}

int64_t tp_open_stream_run(tp_decoder *dec, tp_aead *a, const uint8_t *buf, const uint32_t *lens,
                           uint32_t n, const uint8_t *dcid, size_t dcid_len,
                           uint64_t expected_pn, uint32_t key_phase, uint8_t *plain,
                           size_t plain_len, uint8_t *out, size_t out_len, uint64_t *pns,
                           uint64_t *stream_ids, uint64_t *offsets, uint32_t *data_lens,
                           uint8_t *fins, uint64_t *refs)
{
    size_t pos = 0, used = 0, size;
    uint32_t i, first, pn_length;
    uint64_t pn, window, half, opened_out[3], offset, end;
    int64_t rebuilt;
    int64_t status;
    const uint8_t *payload;
    const tp_frame *f;

    if (expected_pn > TP_MAX_VARINT + 1u)
        return TP_ERR_FIELD_VALUE;
    for (i = 0; i < n; i++) {
        size = lens[i];
        if (a == NULL) {
            status = tp_open_short_packet(dec, buf + pos, size, dcid, dcid_len, 1);
            if (status < 0)
                break;
            first = buf[pos];
            pn_length = (first & 3u) + 1u;
            /* RFC 9000 appendix A.3, as in tp_open_short_packet_aead */
            window = (uint64_t)1 << (pn_length * 8u);
            half = window >> 1;
            pn = (expected_pn & ~(window - 1u)) | ((uint64_t)status >> TP_OPEN_COUNT_BITS);
            if (expected_pn >= half && pn <= expected_pn - half &&
                pn < ((uint64_t)1 << 62) - window)
                pn += window;
            else if (pn > expected_pn + half && pn >= window)
                pn -= window;
            status &= ((int64_t)1 << TP_OPEN_COUNT_BITS) - 1;
            payload = buf + pos;
        } else {
            status = tp_open_short_packet_aead(dec, a, buf + pos, size, dcid, dcid_len,
                                               expected_pn, key_phase, plain, plain_len,
                                               opened_out);
            if (status < 0)
                break;
            pn = opened_out[0];
            first = (uint32_t)opened_out[1];
            payload = plain;
        }
        if (status != 1 || (first & RUN_RESERVED_SHORT_MASK) || pn < expected_pn)
            break; /* not one frame, reserved bits, or not in order: the caller's */
        f = &dec->frames[0];
        if (out_len - used < f->data_len)
            break;
        if (f->type >= 0x38u && f->type <= 0x3Fu) {
            /* compact STREAM: the offset rebuilt against refs[stream] (the
             * stream's highest end so far), which then moves past the frame;
             * no refs (not accepted) or an offset that does not rebuild: the
             * caller's (its per-packet path says why) */
            if (refs == NULL)
                break;
            rebuilt = tp_compact_offset(f->b, refs[f->a]);
            if (rebuilt < 0 || f->data_len > TP_MAX_VARINT - (uint64_t)rebuilt)
                break;
            offset = (uint64_t)rebuilt;
            end = offset + f->data_len;
            if (end > refs[f->a])
                refs[f->a] = end;
        } else if (f->type >= 0x08u && f->type <= 0x0Fu) {
            offset = f->b;
        } else {
            break;
        }
        memcpy(out + used, payload + f->data_off, f->data_len);
        used += f->data_len;
        pns[i] = pn;
        stream_ids[i] = f->a;
        offsets[i] = offset;
        data_lens[i] = f->data_len;
        fins[i] = (uint8_t)(f->type & 1u);
        expected_pn = pn + 1u;
        pos += size;
    }
    return (int64_t)i;
}
