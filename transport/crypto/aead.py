"""Packet protection for short-header (1-RTT) packets: AEAD, key update, header protection.

How this works (docs/wire-format.md sections 9.2-9.4)
-----------------------------------------------------
After the Noise handshake each direction has a 32-byte traffic secret ``s``
(:meth:`transport.crypto.noise.HandshakeState.transport_secrets`). With
HKDF-Expand (RFC 5869 section 2.3) over the Noise hash function (SHA-256 or
BLAKE2s) and the raw ASCII labels as ``info``::

    key = HKDF-Expand(s, "transport v1 key", 16 | 32)   AES-128-GCM 16, ChaCha20-Poly1305 32
    iv  = HKDF-Expand(s, "transport v1 iv", 12)
    hp  = HKDF-Expand(s, "transport v1 hp", 16 | 32)    generation 0 only
    s'  = HKDF-Expand(s, "transport v1 ku", 32)          next key generation

A packet is sealed with ``nonce = iv XOR (4 zero bytes || packet number as u64)``
(the full packet number, not the truncated one) and the unprotected header (first
byte through the packet number) as associated data. The AEAD context is built once
per key generation, never per packet; the per-packet work is one int XOR, one
``to_bytes`` and the AEAD call.

Limits (section 9.2): :meth:`PacketProtection.seal` refuses to seal more than
2**23 packets under one AES-128-GCM key (2**62 for ChaCha20-Poly1305);
``failed_open_count`` counts packets that failed to open so the connection can
close with AEAD_LIMIT_REACHED past ``integrity_limit``.

Key update (section 9.3) -- what the connection keeps
-----------------------------------------------------
* send side: one ``PacketProtection``; to update, ``send = send.next_generation()``
  and set the key phase bit to ``send.key_phase``. Start an update only after a
  packet sealed with the current generation was acknowledged, and well before
  ``sealed_count`` reaches ``confidentiality_limit``.
* receive side: ``recv_current`` plus ``recv_next = recv_current.next_generation()``
  (derived by the first packet with the other key phase bit, then kept: idle
  connections do not hold a third key generation) and ``recv_previous``
  (None after about three PTOs). A packet whose key phase bit equals
  ``recv_current.key_phase`` opens with ``recv_current``; otherwise, if its packet
  number is above the largest opened under the current keys, try ``recv_next``
  and, on success, rotate (previous <- current, current <- next, next <-
  current.next_generation()) and update the send side too if it has not already;
  if its packet number is lower, try ``recv_previous``. A failed open changes
  nothing (the caller drops and counts the packet).
* header protection uses the same ``hp`` key for every generation: the object is
  shared (``next_generation()`` hands it on), and it must be removed before the
  key phase bit can be read.

Header protection (section 9.4, optional): :class:`HeaderProtection` masks the
low 5 bits of the first byte and the packet-number bytes with 5 bytes derived
from a 16-byte ciphertext sample starting at ``pn_offset + 4``. AES uses one
ECB context per key; ChaCha20 needs a new cipher context per packet because the
sample is its nonce (``cryptography`` has no re-nonceable context), which costs a
few microseconds more (see benchmarks/bench_crypto.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import platform
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from transport.crypto.packet_aead import NATIVE_AVAILABLE, NativeAead
from transport.errors import (
    ConfigurationError,
    DecryptionError,
    FieldValueError,
    InvalidStateError,
)
from transport.wire.constants import AEAD_TAG_LENGTH

__all__ = [
    "AEAD_AES128GCM",
    "AEAD_CHACHA20",
    "AEAD_IDS",
    "AEAD_NAMES",
    "AEAD_NONE",
    "HP_SAMPLE_LENGTH",
    "HeaderProtection",
    "PacketProtection",
    "aead_id",
    "aead_name",
    "default_aead",
    "hkdf_expand",
]

#: TransportParameter.AEAD_ALGORITHM values (docs/wire-format.md section 14).
AEAD_NONE = 0
AEAD_AES128GCM = 1
AEAD_CHACHA20 = 2
#: name -> AEAD_ALGORITHM value, and back. "none" is security="none" (CRC32C).
AEAD_IDS: dict[str, int] = {
    "none": AEAD_NONE,
    "aes128gcm": AEAD_AES128GCM,
    "chacha20": AEAD_CHACHA20,
}
AEAD_NAMES: dict[int, str] = {v: k for k, v in AEAD_IDS.items()}

HP_SAMPLE_LENGTH = 16
_HP_SAMPLE_OFFSET = 4  # sample starts 4 bytes after the first packet-number byte
_HP_FIRST_BYTE_MASK = 0x1F  # reserved (0x18), key phase (0x04), PN length (0x03)
_MAX_PACKET_NUMBER = 2**62 - 1
_KEY_LENGTH = {AEAD_AES128GCM: 16, AEAD_CHACHA20: 32}
_CONFIDENTIALITY_LIMIT = {AEAD_AES128GCM: 2**23, AEAD_CHACHA20: 2**62}
_INTEGRITY_LIMIT = {AEAD_AES128GCM: 2**52, AEAD_CHACHA20: 2**36}
_HASHES: dict[str, Callable[..., Any]] = {
    "SHA256": hashlib.sha256,
    "BLAKE2s": hashlib.blake2s,
}
_HASHLEN = 32
_LABEL_KEY = b"transport v1 key"
_LABEL_IV = b"transport v1 iv"
_LABEL_HP = b"transport v1 hp"
_LABEL_KU = b"transport v1 ku"


def aead_id(name: str) -> int:
    """AEAD_ALGORITHM value for "none" | "aes128gcm" | "chacha20"."""
    try:
        return AEAD_IDS[name]
    except KeyError:
        raise ConfigurationError(f"unknown AEAD {name!r} (aes128gcm, chacha20, none)") from None


def aead_name(value: int) -> str:
    """Name for an AEAD_ALGORITHM value; ConfigurationError if undefined."""
    try:
        return AEAD_NAMES[value]
    except KeyError:
        raise ConfigurationError(f"unknown AEAD_ALGORITHM value {value}") from None


@functools.lru_cache(maxsize=4)
def default_aead(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """"aes128gcm" when the CPU has AES instructions, else "chacha20".

    Linux: the ``aes`` flag in /proc/cpuinfo (x86 "flags", ARM "Features"). macOS
    on arm64 always has them. Elsewhere (or if the file is unreadable) the answer
    is "chacha20", which is fast without hardware support. Reads a file: call it
    when building a configuration, not from the sans-IO core.
    """
    try:
        with open(cpuinfo_path, encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return "aes128gcm" if "aes" in value.split() else "chacha20"
    except OSError:
        pass
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "aes128gcm"
    return "chacha20"


def hkdf_expand(secret: bytes, label: bytes, length: int, hash_name: str = "SHA256") -> bytes:
    """RFC 5869 HKDF-Expand(PRK=secret, info=label, L=length) over HMAC-``hash_name``."""
    try:
        digest = _HASHES[hash_name]
    except KeyError:
        raise ConfigurationError(f"unknown hash {hash_name!r} (SHA256, BLAKE2s)") from None
    if not 0 < length <= 255 * _HASHLEN:
        raise ConfigurationError("HKDF-Expand length out of range")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(secret, block + label + bytes((counter,)), digest)
        out += block
        counter += 1
    return out[:length]


# --------------------------------------------------- header protection ----
class HeaderProtection:
    """Header-protection key of one direction (docs/wire-format.md section 9.4).

    ``mask(sample)`` gives the 5 mask bytes; ``apply`` / ``remove`` edit a
    short-header packet in place (a ``bytearray``). ``pn_offset`` is the index of
    the first packet-number byte (1 + DCID length for a short header).
    """

    __slots__ = ("_aead_id", "_ecb", "_key")

    def __init__(self, hp_key: bytes, aead: str = "aes128gcm") -> None:
        ident = aead_id(aead)
        if ident == AEAD_NONE:
            raise ConfigurationError("header protection needs an AEAD")
        if len(hp_key) != _KEY_LENGTH[ident]:
            raise ConfigurationError(
                f"header-protection key for {aead} is {_KEY_LENGTH[ident]} bytes"
            )
        self._aead_id = ident
        self._key = bytes(hp_key)
        # the AES context (~1.2 KiB of OpenSSL state) is built by the first mask:
        # connections that never use header protection do not pay for it
        self._ecb: Any = None

    def _aes(self) -> Any:
        """The AES-ECB encryptor, or None for ChaCha20 (built on first use)."""
        ecb = self._ecb
        if ecb is None and self._aead_id == AEAD_AES128GCM:
            ecb = self._ecb = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()
        return ecb

    def mask(self, sample: bytes | bytearray | memoryview) -> bytes:
        """5 mask bytes from a 16-byte ciphertext sample."""
        if len(sample) != HP_SAMPLE_LENGTH:
            raise FieldValueError("header-protection sample must be 16 bytes")
        ecb = self._aes()
        if ecb is not None:
            return bytes(ecb.update(sample)[:5])
        # ChaCha20: counter = sample[0:4] little-endian, nonce = sample[4:16]; the
        # cryptography API takes exactly that 16-byte layout as its "nonce".
        cipher = Cipher(algorithms.ChaCha20(self._key, bytes(sample)), mode=None)
        return cipher.encryptor().update(b"\x00\x00\x00\x00\x00")

    def _packet_mask(self, packet: bytearray, pn_offset: int) -> bytes:
        start = pn_offset + _HP_SAMPLE_OFFSET
        if pn_offset < 1 or len(packet) < start + HP_SAMPLE_LENGTH:
            raise FieldValueError("packet too short for the header-protection sample")
        sample = packet[start : start + HP_SAMPLE_LENGTH]
        ecb = self._aes()
        if ecb is not None:
            return bytes(ecb.update(sample))
        nonce = bytes(sample)
        return Cipher(algorithms.ChaCha20(self._key, nonce), mode=None).encryptor().update(
            b"\x00\x00\x00\x00\x00"
        )

    def apply(self, packet: bytearray, pn_offset: int) -> None:
        """Mask a sealed packet in place (sender, after sealing). FieldValueError if the
        packet is shorter than ``pn_offset + 20`` (pad it)."""
        mask = self._packet_mask(packet, pn_offset)
        first = packet[0]
        packet[0] = first ^ (mask[0] & _HP_FIRST_BYTE_MASK)
        self._xor_pn(packet, pn_offset, (first & 0x03) + 1, mask)

    def remove(self, packet: bytearray, pn_offset: int) -> int:
        """Unmask a received packet in place (receiver, before opening); returns the
        packet-number length. FieldValueError if the packet is too short."""
        mask = self._packet_mask(packet, pn_offset)
        first = packet[0] ^ (mask[0] & _HP_FIRST_BYTE_MASK)
        packet[0] = first
        pn_length = (first & 0x03) + 1
        self._xor_pn(packet, pn_offset, pn_length, mask)
        return pn_length

    @staticmethod
    def _xor_pn(packet: bytearray, pn_offset: int, pn_length: int, mask: bytes) -> None:
        end = pn_offset + pn_length
        value = int.from_bytes(packet[pn_offset:end], "big") ^ (
            int.from_bytes(mask[1:5], "big") >> (8 * (4 - pn_length))
        )
        packet[pn_offset:end] = value.to_bytes(pn_length, "big")


# --------------------------------------------------- packet protection ----
class PacketProtection:
    """AEAD keys of one direction and one key generation.

    ``secret``: the 32-byte traffic secret (from Noise Split() for generation 0).
    ``aead``: "aes128gcm" | "chacha20". ``hash_name``: the Noise hash, "SHA256" |
    "BLAKE2s", used by HKDF-Expand. ``header_protection`` is derived from the
    secret unless handed on from the previous generation.
    """

    __slots__ = (
        "_aead",
        "_hp",
        "_iv",
        "_secret",
        "aead",
        "aead_id",
        "confidentiality_limit",
        "failed_open_count",
        "generation",
        "hash_name",
        "integrity_limit",
        "native",
        "sealed_count",
    )

    def __init__(
        self,
        secret: bytes,
        aead: str = "aes128gcm",
        *,
        hash_name: str = "SHA256",
        generation: int = 0,
        header_protection: HeaderProtection | None = None,
        native: bool | None = None,
    ) -> None:
        ident = aead_id(aead)
        if ident == AEAD_NONE:
            raise ConfigurationError('PacketProtection needs an AEAD (security="none" uses CRC32C)')
        if len(secret) != 32:
            raise ConfigurationError("a traffic secret is 32 bytes")
        key_length = _KEY_LENGTH[ident]
        self.aead = aead
        self.aead_id = ident
        self.hash_name = hash_name
        self.generation = generation
        self._secret = bytes(secret)
        key = hkdf_expand(secret, _LABEL_KEY, key_length, hash_name)
        iv = hkdf_expand(secret, _LABEL_IV, 12, hash_name)
        self._iv = int.from_bytes(iv, "big")
        # the ``cryptography`` AEAD object (~2.5 KiB of OpenSSL state) is built
        # on first use: with the C context below it serves only the reference
        # (``*_python``) paths and operations after ``release``
        self._aead: AESGCM | ChaCha20Poly1305 | None = None
        if native is None:
            native = NATIVE_AVAILABLE
        if not native:
            self._aead = AESGCM(key) if ident == AEAD_AES128GCM else ChaCha20Poly1305(key)
        #: the C context (OpenSSL EVP, see transport.crypto.packet_aead) on the
        #: native backend; None: every operation goes through ``cryptography``
        self.native: NativeAead | None = NativeAead(ident, key, iv) if native else None
        # derived from the secret on first use unless handed on (connections
        # do not use header protection: most never build it)
        self._hp = header_protection
        self.sealed_count = 0
        self.failed_open_count = 0
        self.confidentiality_limit = _CONFIDENTIALITY_LIMIT[ident]
        self.integrity_limit = _INTEGRITY_LIMIT[ident]

    @property
    def header_protection(self) -> HeaderProtection:
        """The header-protection key of this generation (shared by the next ones)."""
        hp = self._hp
        if hp is None:
            key_length = _KEY_LENGTH[self.aead_id]
            hp = self._hp = HeaderProtection(
                hkdf_expand(self._secret, _LABEL_HP, key_length, self.hash_name), self.aead
            )
        return hp

    @property
    def key_phase(self) -> int:
        """The key phase bit value (0 or 1) of packets sealed with this generation."""
        return self.generation & 1

    def next_generation(self) -> PacketProtection:
        """Keys of the next generation: ``s' = HKDF-Expand(s, "transport v1 ku", 32)``,
        same AEAD, hash and header-protection key. This object stays usable."""
        return PacketProtection(
            hkdf_expand(self._secret, _LABEL_KU, 32, self.hash_name),
            self.aead,
            hash_name=self.hash_name,
            generation=self.generation + 1,
            header_protection=self.header_protection,
            native=self.native is not None,
        )

    def _cipher(self) -> AESGCM | ChaCha20Poly1305:
        """The ``cryptography`` AEAD object (built on first use)."""
        cipher = self._aead
        if cipher is None:
            key = hkdf_expand(self._secret, _LABEL_KEY, _KEY_LENGTH[self.aead_id], self.hash_name)
            cipher = self._aead = (
                AESGCM(key) if self.aead_id == AEAD_AES128GCM else ChaCha20Poly1305(key)
            )
        return cipher

    def release(self) -> None:
        """Free the C context now (key update, close); later operations go
        through ``cryptography``."""
        native, self.native = self.native, None
        if native is not None:
            native.release()

    def check_seal_allowed(self) -> None:
        """InvalidStateError once ``confidentiality_limit`` packets were sealed."""
        if self.sealed_count >= self.confidentiality_limit:
            raise InvalidStateError("AEAD confidentiality limit reached: update keys")

    def _nonce(self, packet_number: int) -> bytes:
        if not 0 <= packet_number <= _MAX_PACKET_NUMBER:
            raise FieldValueError("packet number out of range 0..2**62-1")
        return (self._iv ^ packet_number).to_bytes(12, "big")

    def seal(self, header: bytes, payload: bytes | memoryview, packet_number: int) -> bytes:
        """Ciphertext || 16-byte tag of ``payload``, ``header`` as associated data.

        InvalidStateError once ``confidentiality_limit`` packets were sealed with
        this generation (update keys before that).
        """
        if self.sealed_count >= self.confidentiality_limit:
            raise InvalidStateError("AEAD confidentiality limit reached: update keys")
        native = self.native
        if native is not None:
            out = native.seal(packet_number, header, payload)
        else:
            out = self._cipher().encrypt(self._nonce(packet_number), payload, header)
        self.sealed_count += 1
        return out

    def seal_python(self, header: bytes, payload: bytes | memoryview,
                    packet_number: int) -> bytes:
        """:meth:`seal` through ``cryptography`` (the reference of the C path),
        without the limit check and count."""
        return self._cipher().encrypt(self._nonce(packet_number), payload, header)

    def seal_into(self, buf: bytearray | memoryview, header: bytes, payload: bytes,
                  packet_number: int) -> int:
        """Like :meth:`seal`, writing into ``buf`` (exactly len(payload) + 16 bytes,
        e.g. a memoryview slice of the datagram buffer); returns bytes written."""
        if self.sealed_count >= self.confidentiality_limit:
            raise InvalidStateError("AEAD confidentiality limit reached: update keys")
        written = self._cipher().encrypt_into(self._nonce(packet_number), payload, header, buf)
        self.sealed_count += 1
        return int(written)

    def open(self, header: bytes, ciphertext: bytes | memoryview, packet_number: int) -> bytes:
        """Plaintext of ``ciphertext`` (which ends with the tag); DecryptionError if it
        does not authenticate (nothing changes except ``failed_open_count``)."""
        if len(ciphertext) < AEAD_TAG_LENGTH:
            self.failed_open_count += 1
            raise DecryptionError("protected payload shorter than the AEAD tag")
        native = self.native
        if native is not None:
            plain = native.open(packet_number, header, ciphertext)
            if plain is None:
                self.failed_open_count += 1
                raise DecryptionError("packet failed AEAD authentication")
            return plain
        return self.open_python(header, ciphertext, packet_number)

    def open_python(self, header: bytes, ciphertext: bytes | memoryview,
                    packet_number: int) -> bytes:
        """:meth:`open` through ``cryptography`` (the reference of the C path)."""
        if len(ciphertext) < AEAD_TAG_LENGTH:
            self.failed_open_count += 1
            raise DecryptionError("protected payload shorter than the AEAD tag")
        try:
            return self._cipher().decrypt(self._nonce(packet_number), ciphertext, header)
        except InvalidTag:
            self.failed_open_count += 1
            raise DecryptionError("packet failed AEAD authentication") from None
