"""Packet protection: key derivation, seal/open, tampering, key update, header protection.

Known answers: HKDF-Expand against RFC 5869 test case 1; the key/IV schedule and
nonce against an independent computation with ``cryptography``'s own HKDFExpand
and AEAD classes; header-protection masks against RFC 9001 appendix A.2 (AES) and
A.5 (ChaCha20), whose mask function is the one docs/wire-format.md 9.4 specifies.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from transport.crypto.aead import (
    AEAD_AES128GCM,
    AEAD_CHACHA20,
    AEAD_NONE,
    HeaderProtection,
    PacketProtection,
    aead_id,
    aead_name,
    default_aead,
    hkdf_expand,
)
from transport.errors import (
    ConfigurationError,
    DecryptionError,
    FieldValueError,
    InvalidStateError,
    WireError,
)
from transport.wire.constants import TransportParameter

SECRET = bytes(range(32))
HEADER = bytes.fromhex("41") + b"\x11" * 8 + bytes.fromhex("0102")  # short header, PN len 2
AEADS = ["aes128gcm", "chacha20"]


def _payload(seed: int, size: int = 1400) -> bytes:
    return random.Random(seed).randbytes(size)


def test_hkdf_expand_rfc5869_case1() -> None:
    prk = bytes.fromhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
    okm = hkdf_expand(prk, bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


@pytest.mark.parametrize("aead", AEADS)
def test_seal_matches_independent_computation(aead: str) -> None:
    key_len = 16 if aead == "aes128gcm" else 32
    key = HKDFExpand(hashes.SHA256(), key_len, b"transport v1 key").derive(SECRET)
    iv = HKDFExpand(hashes.SHA256(), 12, b"transport v1 iv").derive(SECRET)
    pn = 0x1234_5678_9ABC
    nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + pn.to_bytes(8, "big"), strict=True))
    ref = AESGCM(key) if aead == "aes128gcm" else ChaCha20Poly1305(key)
    payload = _payload(1)
    expected = ref.encrypt(nonce, payload, HEADER)
    assert PacketProtection(SECRET, aead).seal(HEADER, payload, pn) == expected


def test_blake2s_schedule_differs_from_sha256() -> None:
    a = PacketProtection(SECRET, "chacha20", hash_name="SHA256").seal(HEADER, b"x", 0)
    b = PacketProtection(SECRET, "chacha20", hash_name="BLAKE2s").seal(HEADER, b"x", 0)
    assert a != b
    opener = PacketProtection(SECRET, "chacha20", hash_name="BLAKE2s")
    assert opener.open(HEADER, b, 0) == b"x"


@pytest.mark.parametrize("aead", AEADS)
def test_round_trip_and_lengths(aead: str) -> None:
    sender, receiver = PacketProtection(SECRET, aead), PacketProtection(SECRET, aead)
    for pn, size in ((0, 1), (1, 1400), (2**62 - 1, 100)):
        payload = _payload(pn % 97, size)
        ct = sender.seal(HEADER, payload, pn)
        assert len(ct) == size + 16
        assert receiver.open(HEADER, ct, pn) == payload
    assert sender.sealed_count == 3 and receiver.failed_open_count == 0


@pytest.mark.parametrize("aead", AEADS)
def test_seal_into_writes_same_bytes(aead: str) -> None:
    p = PacketProtection(SECRET, aead)
    payload = _payload(3)
    buf = bytearray(len(HEADER) + len(payload) + 16)
    buf[: len(HEADER)] = HEADER
    n = p.seal_into(memoryview(buf)[len(HEADER) :], HEADER, payload, 9)
    assert n == len(payload) + 16
    assert bytes(buf[len(HEADER) :]) == PacketProtection(SECRET, aead).seal(HEADER, payload, 9)


@pytest.mark.parametrize("aead", AEADS)
def test_any_flipped_byte_fails(aead: str) -> None:
    sender, receiver = PacketProtection(SECRET, aead), PacketProtection(SECRET, aead)
    payload = _payload(4, 64)
    ct = sender.seal(HEADER, payload, 5)
    failures = 0
    for i in range(len(HEADER)):
        bad = bytearray(HEADER)
        bad[i] ^= 0x80
        with pytest.raises(DecryptionError):
            receiver.open(bytes(bad), ct, 5)
        failures += 1
    for i in range(len(ct)):
        bad = bytearray(ct)
        bad[i] ^= 0x01
        with pytest.raises(DecryptionError):
            receiver.open(HEADER, bytes(bad), 5)
        failures += 1
    assert receiver.failed_open_count == failures
    assert receiver.open(HEADER, ct, 5) == payload  # nothing changed


@pytest.mark.parametrize("aead", AEADS)
def test_wrong_packet_number_key_or_truncation_fails(aead: str) -> None:
    sender = PacketProtection(SECRET, aead)
    ct = sender.seal(HEADER, b"frames", 7)
    with pytest.raises(DecryptionError):
        PacketProtection(SECRET, aead).open(HEADER, ct, 8)
    with pytest.raises(DecryptionError):
        PacketProtection(bytes(32), aead).open(HEADER, ct, 7)
    with pytest.raises(DecryptionError):
        PacketProtection(SECRET, aead).open(HEADER, ct[:15], 7)
    with pytest.raises(WireError):  # DecryptionError is a WireError: the connection drops it
        PacketProtection(SECRET, aead).open(HEADER, b"", 7)
    with pytest.raises(FieldValueError):
        sender.seal(HEADER, b"x", 2**62)


@pytest.mark.parametrize("aead", AEADS)
def test_key_update_both_sides_agree(aead: str) -> None:
    a0, b0 = PacketProtection(SECRET, aead), PacketProtection(SECRET, aead)
    a1, b1 = a0.next_generation(), b0.next_generation()
    assert (a0.key_phase, a1.key_phase, a1.next_generation().key_phase) == (0, 1, 0)
    assert a1.generation == 1 and a1.header_protection is a0.header_protection
    ct = a1.seal(HEADER, b"after update", 100)
    assert ct != a0.seal(HEADER, b"after update", 100)  # different keys
    assert b1.open(HEADER, ct, 100) == b"after update"
    with pytest.raises(DecryptionError):
        b0.open(HEADER, ct, 100)
    old = a0.seal(HEADER, b"in flight", 99)  # old generation still opens with old keys
    assert b0.open(HEADER, old, 99) == b"in flight"
    assert a1.next_generation().seal(HEADER, b"z", 1) == b1.next_generation().seal(HEADER, b"z", 1)


def test_confidentiality_limit_enforced() -> None:
    p = PacketProtection(SECRET, "aes128gcm")
    assert p.confidentiality_limit == 2**23 and p.integrity_limit == 2**52
    assert PacketProtection(SECRET, "chacha20").integrity_limit == 2**36
    p.sealed_count = p.confidentiality_limit  # public counter; the connection may restore it
    with pytest.raises(InvalidStateError):
        p.seal(HEADER, b"x", 1)
    assert p.next_generation().seal(HEADER, b"x", 1)


def test_bad_configuration() -> None:
    with pytest.raises(ConfigurationError):
        PacketProtection(SECRET[:16], "aes128gcm")
    with pytest.raises(ConfigurationError):
        PacketProtection(SECRET, "aes256")
    with pytest.raises(ConfigurationError):
        PacketProtection(SECRET, "none")
    with pytest.raises(ConfigurationError):
        PacketProtection(SECRET, "chacha20", hash_name="MD5")


def test_aead_ids_match_transport_parameter_values() -> None:
    assert TransportParameter.AEAD_ALGORITHM == 0x41
    assert (AEAD_NONE, AEAD_AES128GCM, AEAD_CHACHA20) == (0, 1, 2)
    assert [aead_id(n) for n in ("none", "aes128gcm", "chacha20")] == [0, 1, 2]
    assert [aead_name(i) for i in (0, 1, 2)] == ["none", "aes128gcm", "chacha20"]
    assert PacketProtection(SECRET, "chacha20").aead_id == 2
    with pytest.raises(ConfigurationError):
        aead_name(3)


def test_default_aead_reads_cpu_flags(tmp_path: Path) -> None:
    with_aes = tmp_path / "cpuinfo-aes"
    with_aes.write_text("processor\t: 0\nflags\t\t: fpu sse2 aes avx2\n")
    without = tmp_path / "cpuinfo-plain"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    arm = tmp_path / "cpuinfo-arm"
    arm.write_text("Features\t: fp asimd aes pmull sha1\n")
    assert default_aead(str(with_aes)) == "aes128gcm"
    assert default_aead(str(without)) == "chacha20"
    assert default_aead(str(arm)) == "aes128gcm"
    assert default_aead() in ("aes128gcm", "chacha20")


# --------------------------------------------------- header protection ----
def test_header_protection_masks_rfc9001() -> None:
    aes = HeaderProtection(bytes.fromhex("9f50449e04a0e810283a1e9933adedd2"), "aes128gcm")
    assert aes.mask(bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b")).hex() == "437b9aec36"
    chacha = HeaderProtection(
        bytes.fromhex("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4"),
        "chacha20",
    )
    assert chacha.mask(bytes.fromhex("5e5cd55c41f69080575d7999c25a5bfb")).hex() == "aefefe7d03"


@pytest.mark.parametrize("aead", AEADS)
@pytest.mark.parametrize("pn_length", [1, 2, 3, 4])
def test_header_protection_round_trip(aead: str, pn_length: int) -> None:
    p = PacketProtection(SECRET, aead)
    pn_offset = 1 + 8
    first = 0x40 | 0x04 | (pn_length - 1)  # key phase 1
    header = bytes((first,)) + b"\x22" * 8 + (0xA1B2C3D4).to_bytes(4, "big")[-pn_length:]
    packet = bytearray(header + p.seal(header, b"\x01" + bytes(20), 77))
    sealed = bytes(packet)
    p.header_protection.apply(packet, pn_offset)
    assert packet[len(header) :] == sealed[len(header) :]  # ciphertext untouched
    assert packet[0] & 0xE0 == 0x40  # form, fixed and spin bits never masked
    assert bytes(packet[: len(header)]) != header
    got_len = p.header_protection.remove(packet, pn_offset)
    assert got_len == pn_length and bytes(packet[: len(header)]) == header
    assert p.open(header, bytes(packet[len(header) :]), 77) == b"\x01" + bytes(20)


def test_header_protection_short_packet_and_bad_key() -> None:
    hp = PacketProtection(SECRET, "aes128gcm").header_protection
    with pytest.raises(FieldValueError):
        hp.remove(bytearray(28), 9)  # needs pn_offset + 20 = 29 bytes
    hp.remove(bytearray(29), 9)
    with pytest.raises(ConfigurationError):
        HeaderProtection(bytes(32), "aes128gcm")
    with pytest.raises(FieldValueError):
        hp.mask(bytes(15))
