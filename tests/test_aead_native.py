"""The C AEAD (csrc/aead.c, OpenSSL EVP) against its pure twin (``cryptography``).

Same keys, nonces and inputs must give identical bytes; tampered input must be
rejected identically (same exception class and message, same counters); the
fused packet functions (codec + AEAD in one call) must equal codec_pure +
``PacketProtection`` through ``cryptography``.
"""

from __future__ import annotations

import gc
import random
import threading

import pytest

from transport import Config
from transport.crypto.aead import PacketProtection
from transport.crypto.keys import generate_keypair
from transport.crypto.packet_aead import (
    NATIVE_AVAILABLE,
    PacketOpener,
    PacketSealer,
    live_contexts,
    open_short_packet_pure,
    seal_stream_packet,
    seal_stream_packet_pure,
)
from transport.errors import DecryptionError, RemoteProtocolError, WireError
from transport.security import KeySchedule
from transport.sim import Path as SimPath
from transport.sim.transfer import run_transfer
from transport.wire import FrameDecoder, codec_pure, decode_frames
from transport.wire.constants import ErrorCode

pytestmark = pytest.mark.skipif(not NATIVE_AVAILABLE, reason="needs the native backend")

AEADS = ["aes128gcm", "chacha20"]
DCID = bytes.fromhex("0011223344556677")


def _pair(aead: str, seed: int) -> tuple[PacketProtection, PacketProtection]:
    secret = random.Random(seed).randbytes(32)
    return (PacketProtection(secret, aead, native=True),
            PacketProtection(secret, aead, native=False))


@pytest.mark.parametrize("aead", AEADS)
def test_seal_and_open_equal_cryptography(aead: str) -> None:
    rng = random.Random(1)
    native, pure = _pair(aead, 7)
    assert native.native is not None and pure.native is None
    for size in (0, 1, 15, 16, 17, 100, 1200, 1452, 9000):
        pn = rng.choice([0, 1, 255, 2**32 + 5, 2**62 - 1, rng.randrange(2**62)])
        header = rng.randbytes(rng.randrange(0, 30))
        payload = rng.randbytes(size)
        sealed = native.seal(header, payload, pn)
        assert sealed == pure.seal(header, payload, pn)
        assert native.open(header, sealed, pn) == payload == pure.open(header, sealed, pn)
        assert native.open(header, memoryview(sealed), pn) == payload
    assert native.sealed_count == pure.sealed_count


@pytest.mark.parametrize("aead", AEADS)
def test_tampering_rejected_identically(aead: str) -> None:
    rng = random.Random(2)
    native, pure = _pair(aead, 8)
    header, payload, pn = b"\x41hdr", rng.randbytes(64), 77
    sealed = native.seal(header, payload, pn)
    cases = [(header, sealed, pn + 1), (header + b"x", sealed, pn), (header, sealed[:-1], pn),
             (header, sealed[:15], pn), (header, b"", pn)]
    for i in range(len(sealed)):
        cases.append((header, sealed[:i] + bytes([sealed[i] ^ 0x20]) + sealed[i + 1:], pn))
    for h, ct, n in cases:
        errors = []
        for prot in (native, pure):
            with pytest.raises(DecryptionError) as info:
                prot.open(h, ct, n)
            errors.append(str(info.value))
        assert errors[0] == errors[1]
    assert native.failed_open_count == pure.failed_open_count == len(cases)


def test_packet_number_out_of_range_rejected_alike() -> None:
    native, pure = _pair("aes128gcm", 9)
    for prot in (native, pure):
        with pytest.raises(WireError, match="packet number out of range"):
            prot.seal(b"h", b"p", 2**62)
        with pytest.raises(WireError, match="packet number out of range"):
            prot.seal(b"h", b"p", -1)


def test_release_falls_back_to_cryptography() -> None:
    native, pure = _pair("aes128gcm", 10)
    before = native.seal(b"h", b"payload", 5)
    native.release()
    native.release()  # idempotent
    assert native.native is None
    assert native.seal(b"h", b"payload", 5) == before == pure.seal(b"h", b"payload", 5)


def test_key_update_frees_the_old_context() -> None:
    send, _ = _pair("aes128gcm", 11)
    recv, _ = _pair("aes128gcm", 11)
    keys = KeySchedule(send, recv)
    keys.update_send(10)
    assert send.native is None  # released
    assert keys.send.native is not None and keys.send.generation == 1


@pytest.mark.parametrize("aead", AEADS)
@pytest.mark.parametrize("phase", [0, 1])
def test_seal_stream_packet_equals_pure(aead: str, phase: int) -> None:
    rng = random.Random(3 + phase)
    native, pure = _pair(aead, 12 + phase)
    if phase:
        native, pure = native.next_generation(), pure.next_generation()
        pure.release()
    sealed = 0
    for case in range(60):
        pn = rng.randrange(2**30)
        pn_len = rng.randrange(1, 5)
        # flat inclusive (low, high) pairs, highest first; every 7th case invalid
        acks = None if case % 3 == 0 else [pn - 3, pn, 0, 1][: 2 + 2 * (case % 2)]
        if case % 7 == 1:
            acks = [pn, pn - 3]
        data = rng.randbytes(rng.randrange(0, 1300))
        args = (DCID, pn, pn_len, acks, rng.randrange(100), rng.randrange(64),
                rng.randrange(2**40), data, bool(case & 4))
        outcomes = []
        for fn, prot in ((seal_stream_packet, native), (seal_stream_packet_pure, pure)):
            out = bytearray(1500)
            try:
                n = fn(prot, out, *args)
            except WireError as exc:
                outcomes.append(type(exc))
                continue
            assert (out[0] >> 2) & 1 == phase
            outcomes.append(bytes(out[:n]))
        assert outcomes[0] == outcomes[1]
        sealed += isinstance(outcomes[0], bytes)
    assert native.sealed_count == pure.sealed_count == sealed >= 45


def test_crc_sealer_equals_codec() -> None:
    rng = random.Random(6)
    sealer = PacketSealer()
    for case in range(50):
        pn = rng.randrange(2**30)
        acks = None if case % 3 == 0 else [max(pn - 9, 0), pn]
        args = (DCID, pn, rng.randrange(1, 5), acks, rng.randrange(100), rng.randrange(2**20),
                rng.randrange(2**40), rng.randbytes(rng.randrange(0, 1300)), bool(case & 1))
        out = bytearray(1500)
        size = codec_pure.seal_stream_packet(out, *args, True)
        assert sealer.seal_crc(*args) == bytes(out[:size])
    with pytest.raises(WireError):
        sealer.seal_crc(DCID, 5, 1, [6, 5], 0, 0, 0, b"", False)  # an invalid ACK range


def test_seal_stream_packet_too_small_alike() -> None:
    native, pure = _pair("aes128gcm", 14)
    errors = []
    for fn, prot in ((seal_stream_packet, native), (seal_stream_packet_pure, pure)):
        with pytest.raises(WireError) as info:
            fn(prot, bytearray(40), DCID, 1, 1, None, 0, 0, 0, b"x" * 100, False)
        errors.append(type(info.value))
    assert errors[0] is errors[1]
    assert native.sealed_count == pure.sealed_count == 0


def _keys(aead: str, seed: int) -> tuple[KeySchedule, PacketProtection, PacketProtection]:
    """Receive keys (native) for the opener, and the sender's (pure) seal keys."""
    secret = random.Random(seed).randbytes(32)
    recv = PacketProtection(secret, aead, native=True)
    keys = KeySchedule(PacketProtection(bytes(32), aead), recv)
    return keys, PacketProtection(secret, aead, native=False), recv


def _open_both(keys: KeySchedule, pure_recv: PacketProtection, packet: bytes,
               expected: int) -> tuple[object, object]:
    """(native outcome, pure outcome): a result tuple or (exception class, message)."""
    opener = PacketOpener()
    outcomes: list[object] = []
    for side in ("native", "pure"):
        decoder = FrameDecoder()
        try:
            if side == "native":
                count = opener.open(keys, packet, DCID, decoder, expected)
                frames = decode_frames(bytes(opener.payload)) if count >= 0 else None
                outcomes.append((count, opener.pn, opener.first, frames) if count >= 0
                                else (count,))
            else:
                count, pn, first, payload = open_short_packet_pure(
                    pure_recv, packet, DCID, decoder, expected)
                outcomes.append((count, pn, first, decode_frames(payload)) if count >= 0
                                else (count,))
        except (WireError, DecryptionError, RemoteProtocolError) as exc:
            code = getattr(exc, "error_code", None)
            outcomes.append((type(exc), str(exc).replace(" (native codec)", ""), code))
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("aead", AEADS)
def test_open_short_packet_equals_pure(aead: str) -> None:
    rng = random.Random(5)
    keys, sender, pure_recv = _keys(aead, 20)
    for case in range(40):
        pn = 1000 + case * 37
        pn_len = rng.randrange(1, 5)
        acks = None if case % 2 else [pn - 9, pn - 1]
        out = bytearray(1500)
        n = seal_stream_packet_pure(sender, out, DCID, pn, pn_len, acks, 3, 4, case * 1000,
                                    rng.randbytes(rng.randrange(1, 1200)), False)
        packet = bytes(out[:n])
        expected = pn - rng.randrange(0, 50)
        a, b = _open_both(keys, pure_recv, packet, expected)
        assert a == b
        assert a[1] == pn  # type: ignore[index]
    assert keys.largest_opened_current == 1000 + 39 * 37


def test_open_rejects_tampering_and_foreign_packets_alike() -> None:
    keys, sender, pure_recv = _keys("aes128gcm", 21)
    out = bytearray(1500)
    n = seal_stream_packet_pure(sender, out, DCID, 70, 2, [50, 60], 0, 0, 0, b"abc" * 30, True)
    packet = bytes(out[:n])
    variants = [packet[:i] + bytes([packet[i] ^ 0x01]) + packet[i + 1:] for i in range(n)]
    variants += [packet[:i] for i in (0, 1, 5, 10, 11, 12, 27, 28, n - 1)]
    variants.append(packet[:1] + b"\xff" * 8 + packet[9:])  # another connection's DCID
    variants.append(bytes([packet[0] & ~0x40 & 0xFF]) + packet[1:])  # fixed bit clear
    variants.append(bytes([packet[0] ^ 0x04]) + packet[1:])  # the other key phase
    for variant in variants:
        a, b = _open_both(keys, pure_recv, variant, 71)
        assert a == b, variant.hex()
    assert keys.recv_current.failed_open_count == pure_recv.failed_open_count > 0


def test_open_frame_error_after_authentication_alike() -> None:
    keys, sender, pure_recv = _keys("chacha20", 22)
    header = bytes([0x40]) + DCID + b"\x05"  # PN length 1
    body = b"\x1f\x00"  # an unknown frame type: authenticates, does not decode
    packet = header + sender.seal_python(header, body, 5)
    a, b = _open_both(keys, pure_recv, packet, 5)
    assert a == b and a[0] is RemoteProtocolError  # type: ignore[index]
    assert a[2] == ErrorCode.FRAME_ENCODING_ERROR  # type: ignore[index]
    assert keys.largest_opened_current == 5


def test_many_interleaved_keys_share_the_thread_contexts() -> None:
    # more key generations than the per-thread context cache has slots, of
    # both ciphers, used in a shuffled order, with keys freed and new ones made
    # along the way: every seal and open must equal cryptography's
    rng = random.Random(40)
    pairs = [_pair(AEADS[i % 2], 100 + i) for i in range(11)]
    for step in range(400):
        i = rng.randrange(len(pairs))
        native, pure = pairs[i]
        header, payload, pn = rng.randbytes(9), rng.randbytes(rng.randrange(0, 300)), step
        sealed = native.seal(header, payload, pn)
        assert sealed == pure.seal(header, payload, pn)
        j = rng.randrange(len(pairs))
        other_native, other_pure = pairs[j]
        other = other_pure.seal(header, payload, pn)
        assert other_native.open(header, other, pn) == payload
        if i != j and pairs[i][0].aead == pairs[j][0].aead:
            with pytest.raises(DecryptionError):
                other_native.open(header, sealed, pn)  # keyed with j, not i
        if step % 37 == 0:
            native.release()  # wipes this thread's contexts keyed with it
            pairs[i] = _pair(AEADS[step % 2], 1000 + step)
            gc.collect()


def test_threads_key_their_own_contexts() -> None:
    native, pure = _pair("aes128gcm", 41)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            r = random.Random(seed)
            for pn in range(200):
                header, payload = r.randbytes(5), r.randbytes(r.randrange(1, 200))
                sealed = native.seal(header, payload, pn)
                if native.open(header, sealed, pn) != payload:
                    raise AssertionError("round trip failed")
                results.append(sealed)
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(seed,)) for seed in (1, 2, 3)]
    for w in workers:
        w.start()
    work(4)
    for w in workers:
        w.join()
    assert not errors and len(results) == 800
    r = random.Random(4)
    header, payload = r.randbytes(5), r.randbytes(r.randrange(1, 200))
    assert native.seal(header, payload, 0) == pure.seal(header, payload, 0)


def test_contexts_are_freed_by_release_and_by_collection() -> None:
    gc.collect()
    base = live_contexts()
    native, _pure = _pair("aes128gcm", 30)
    nxt = native.next_generation()
    assert live_contexts() == base + 2
    native.release()
    assert live_contexts() == base + 1
    del nxt
    gc.collect()
    assert live_contexts() == base


def test_a_whole_encrypted_transfer_leaves_no_context_behind() -> None:
    gc.collect()
    base = live_contexts()
    keys = generate_keypair(randbytes=random.Random(5).randbytes)
    result = run_transfer(
        300_000, SimPath.symmetric(20e6, 0.010), seed=3,
        config=lambda rng: Config(rng=rng, security="noise", server_public_key=keys.public),
        server_config=lambda rng: Config(rng=rng, security="noise", static_key=keys),
    )
    assert result.completed and result.intact
    gc.collect()
    assert live_contexts() == base
