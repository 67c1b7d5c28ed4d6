"""Noise Protocol Framework (revision 34): CipherState, SymmetricState, HandshakeState.

How this works
--------------
A protocol name ``Noise_<pattern>_25519_<AESGCM|ChaChaPoly>_<SHA256|BLAKE2s>``
selects the pieces (spec section 8):

* DH: X25519 from ``cryptography`` (section 12.1). An all-zero shared secret
  (low-order peer point) makes the handshake fail.
* Cipher (section 12.3 / 12.4): AES-256-GCM with nonce ``00000000 || n as u64
  big-endian``; ChaCha20-Poly1305 with nonce ``00000000 || n as u64
  little-endian``. Each AEAD context is built once per key.
* Hash (section 12.5 / 12.6): SHA-256 or BLAKE2s from ``hashlib``, HMAC from
  ``hmac`` and the spec's HKDF (section 4.3: ``temp = HMAC(ck, ikm)``,
  ``out_i = HMAC(temp, out_{i-1} || i)``).

:class:`CipherState` (section 5.1) holds ``k`` and the 64-bit nonce ``n``;
``n = 2**64 - 1`` is reserved, so the last usable nonce is ``2**64 - 2``.
``rekey()`` is section 11.3's default: ``k = ENCRYPT(k, 2**64 - 1, b"", 32 zero
bytes)[:32]``. :class:`SymmetricState` (section 5.2) holds the chaining key and
the handshake hash ``h``. :class:`HandshakeState` (section 5.3) interprets a
pattern from :mod:`transport.crypto.noise_patterns` token by token, so every
fundamental and deferred pattern works (PSK modifiers are not supported).

Sans-IO and randomness: nothing here reads a clock or global randomness. An
ephemeral key is either passed in (``e=``, used by the test vectors) or drawn from
the ``randbytes`` callable given to :class:`HandshakeState` (``os.urandom``-like:
``randbytes(n) -> n bytes``). In production that callable MUST be a CSPRNG
(``os.urandom``/``secrets.token_bytes``); a seeded ``random.Random().randbytes``
is only for simulations and tests, where it makes runs repeatable.

Errors: a handshake message that fails to decrypt or is malformed raises
:class:`~transport.errors.HandshakeError` (error code HANDSHAKE_FAILED) and the
HandshakeState is then unusable; a transport message that fails to open raises
:class:`~transport.errors.DecryptionError` and leaves the CipherState unchanged;
API misuse raises :class:`~transport.errors.InvalidStateError` or
:class:`~transport.errors.ConfigurationError`.

Usage (NK, client pins the server's static public key)::

    client = HandshakeState("Noise_NK_25519_AESGCM_SHA256", initiator=True,
                            prologue=p, rs=server_public, randbytes=os.urandom)
    server = HandshakeState("Noise_NK_25519_AESGCM_SHA256", initiator=False,
                            prologue=p, s=server_private, randbytes=os.urandom)
    m1 = client.write_message(client_params);  server.read_message(m1)
    m2 = server.write_message(server_params);  client.read_message(m2)
    assert client.complete and server.complete
    c_send, c_recv = client.transport_secrets()   # 32-byte secrets per direction
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from transport.crypto.noise_patterns import HandshakePattern, get_pattern
from transport.errors import (
    ConfigurationError,
    DecryptionError,
    HandshakeError,
    InvalidStateError,
)
from transport.wire.constants import ErrorCode

__all__ = [
    "DHLEN",
    "HASHLEN",
    "MAX_MESSAGE_LENGTH",
    "CipherState",
    "HandshakeState",
    "NoiseProtocol",
    "RandBytes",
    "SymmetricState",
    "parse_protocol_name",
]

#: ``randbytes(n) -> bytes`` of length n (``os.urandom`` has this shape).
RandBytes = Callable[[int], bytes]

DHLEN = 32
HASHLEN = 32  # both SHA256 and BLAKE2s
TAGLEN = 16
MAX_MESSAGE_LENGTH = 65535  # section 3
_MAX_NONCE = 2**64 - 1  # reserved (section 5.1)
_ZEROS32 = bytes(32)

_CIPHERS = ("AESGCM", "ChaChaPoly")
_HASHES: dict[str, Callable[..., Any]] = {
    "SHA256": hashlib.sha256,
    "BLAKE2s": hashlib.blake2s,
}
_HMAC_NAMES = {"SHA256": "sha256", "BLAKE2s": "blake2s"}


@dataclass(frozen=True, slots=True)
class NoiseProtocol:
    """A parsed protocol name: pattern, DH ("25519"), cipher and hash names."""

    name: str
    pattern: HandshakePattern
    dh: str
    cipher: str
    hash: str


def parse_protocol_name(name: str) -> NoiseProtocol:
    """Parse ``Noise_IK_25519_ChaChaPoly_BLAKE2s``; ConfigurationError if unsupported."""
    parts = name.split("_")
    if len(parts) != 5 or parts[0] != "Noise":
        raise ConfigurationError(f"not a Noise protocol name: {name!r}")
    _, pattern_name, dh, cipher, hash_name = parts
    if dh != "25519":
        raise ConfigurationError(f"unsupported Noise DH {dh!r} (only 25519)")
    if cipher not in _CIPHERS:
        raise ConfigurationError(f"unsupported Noise cipher {cipher!r}")
    if hash_name not in _HASHES:
        raise ConfigurationError(f"unsupported Noise hash {hash_name!r}")
    return NoiseProtocol(name, get_pattern(pattern_name), dh, cipher, hash_name)


# ----------------------------------------------------------------- hash ----
def _hash(hash_name: str, data: bytes) -> bytes:
    return _HASHES[hash_name](data).digest()


def _hmac(hash_name: str, key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, _HASHES[hash_name])


def noise_hkdf(hash_name: str, chaining_key: bytes, ikm: bytes, outputs: int) -> tuple[bytes, ...]:
    """HKDF as Noise section 4.3 defines it (2 or 3 outputs of HASHLEN bytes)."""
    temp_key = _hmac(hash_name, chaining_key, ikm)
    out1 = _hmac(hash_name, temp_key, b"\x01")
    out2 = _hmac(hash_name, temp_key, out1 + b"\x02")
    if outputs == 2:
        return out1, out2
    return out1, out2, _hmac(hash_name, temp_key, out2 + b"\x03")


# --------------------------------------------------------------- cipher ----
class CipherState:
    """Noise CipherState (section 5.1): key ``k`` (or none) and nonce ``n``.

    ``cipher`` is "AESGCM" or "ChaChaPoly". Without a key, encrypt/decrypt pass
    the data through unchanged (as the spec says).
    """

    __slots__ = ("_aead", "_big_endian", "_cipher", "_key", "_n")

    def __init__(self, cipher: str, key: bytes | None = None) -> None:
        if cipher not in _CIPHERS:
            raise ConfigurationError(f"unsupported Noise cipher {cipher!r}")
        self._cipher = cipher
        self._big_endian = cipher == "AESGCM"
        self._key: bytes | None = None
        self._aead: AESGCM | ChaCha20Poly1305 | None = None
        self._n = 0
        self.initialize_key(key)

    def initialize_key(self, key: bytes | None) -> None:
        """Set ``k`` (32 bytes, or None for "empty") and reset ``n`` to 0."""
        if key is not None and len(key) != 32:
            raise ConfigurationError("a Noise cipher key is 32 bytes")
        self._key = key
        self._n = 0
        if key is None:
            self._aead = None
        elif self._big_endian:
            self._aead = AESGCM(key)
        else:
            self._aead = ChaCha20Poly1305(key)

    @property
    def cipher(self) -> str:
        return self._cipher

    @property
    def key(self) -> bytes | None:
        """The current 32-byte key (None if empty). Treat as secret."""
        return self._key

    def has_key(self) -> bool:
        return self._key is not None

    @property
    def nonce(self) -> int:
        """The next nonce ``n`` to be used."""
        return self._n

    def set_nonce(self, nonce: int) -> None:
        if not 0 <= nonce < 2**64:
            raise ConfigurationError("Noise nonce out of range 0..2**64-1")
        self._n = nonce

    def _nonce_bytes(self, n: int) -> bytes:
        if self._big_endian:
            return b"\x00\x00\x00\x00" + n.to_bytes(8, "big")
        return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """Encrypt with nonce ``n`` and increment it (plaintext back if no key)."""
        if self._aead is None:
            return bytes(plaintext)
        if self._n >= _MAX_NONCE:
            raise InvalidStateError("Noise nonce space exhausted; rekey or start over")
        out = self._aead.encrypt(self._nonce_bytes(self._n), plaintext, ad)
        self._n += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Decrypt with nonce ``n``; on success increment it. DecryptionError on failure
        (the nonce is then left unchanged)."""
        if self._aead is None:
            return bytes(ciphertext)
        if self._n >= _MAX_NONCE:
            raise InvalidStateError("Noise nonce space exhausted; rekey or start over")
        try:
            out = self._aead.decrypt(self._nonce_bytes(self._n), ciphertext, ad)
        except InvalidTag:
            raise DecryptionError("Noise message failed authentication") from None
        self._n += 1
        return out

    def rekey(self) -> None:
        """Section 11.3 default REKEY: new ``k`` from ENCRYPT(k, 2**64-1, "", zeros)."""
        if self._aead is None:
            raise InvalidStateError("rekey on a CipherState without a key")
        new_key = self._aead.encrypt(self._nonce_bytes(_MAX_NONCE), _ZEROS32, b"")[:32]
        n = self._n
        self.initialize_key(new_key)
        self._n = n


# ------------------------------------------------------------ symmetric ----
class SymmetricState:
    """Noise SymmetricState (section 5.2): chaining key ``ck``, hash ``h``, and a
    CipherState."""

    __slots__ = ("_ck", "_cs", "_h", "_hash_name")

    def __init__(self, protocol_name: str) -> None:
        proto = parse_protocol_name(protocol_name)
        self._hash_name = proto.hash
        name = protocol_name.encode("ascii")
        if len(name) <= HASHLEN:
            self._h = name + bytes(HASHLEN - len(name))
        else:
            self._h = _hash(proto.hash, name)
        self._ck = self._h
        self._cs = CipherState(proto.cipher)

    @property
    def cipher_state(self) -> CipherState:
        return self._cs

    @property
    def handshake_hash(self) -> bytes:
        """``h`` (GetHandshakeHash); after the handshake, the channel-binding value."""
        return self._h

    def mix_key(self, ikm: bytes) -> None:
        self._ck, temp_k = noise_hkdf(self._hash_name, self._ck, ikm, 2)
        self._cs.initialize_key(temp_k[:32])

    def mix_hash(self, data: bytes) -> None:
        self._h = _hash(self._hash_name, self._h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self._cs.encrypt_with_ad(self._h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self._cs.decrypt_with_ad(self._h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split_secrets(self) -> tuple[bytes, bytes]:
        """The two 32-byte keys of Split(): (initiator->responder, responder->initiator)."""
        k1, k2 = noise_hkdf(self._hash_name, self._ck, b"", 2)
        return k1[:32], k2[:32]

    def split(self) -> tuple[CipherState, CipherState]:
        """Split(): (c1 for initiator->responder, c2 for responder->initiator)."""
        k1, k2 = self.split_secrets()
        cipher = self._cs.cipher
        return CipherState(cipher, k1), CipherState(cipher, k2)


# ------------------------------------------------------------ handshake ----
def _private_key(raw: bytes, what: str) -> X25519PrivateKey:
    if len(raw) != DHLEN:
        raise ConfigurationError(f"{what} must be a 32-byte X25519 private key")
    return _static_key(bytes(raw))


def _ephemeral_key(raw: bytes) -> X25519PrivateKey:
    if len(raw) != DHLEN:
        raise ConfigurationError("ephemeral key e must be a 32-byte X25519 private key")
    return X25519PrivateKey.from_private_bytes(bytes(raw))


@functools.lru_cache(maxsize=64)
def _static_key(raw: bytes) -> X25519PrivateKey:
    """A server's static key is loaded once, not once per handshake (the
    object is immutable; the few keys a process uses are cached)."""
    return X25519PrivateKey.from_private_bytes(raw)


def _public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


class HandshakeState:
    """Noise HandshakeState (section 5.3) for one side of one handshake.

    Keys are raw 32-byte X25519 values: ``s`` local static private key, ``e``
    local ephemeral private key (normally omitted and generated from
    ``randbytes``), ``rs``/``re`` the peer's static/ephemeral public keys known in
    advance (pre-messages). Missing keys the pattern needs raise
    ConfigurationError here, not half-way through the handshake.

    Drive it with :meth:`write_message` / :meth:`read_message` in turn
    (:attr:`writing` says whose turn it is). When :attr:`complete` is true, take the
    transport keys with :meth:`split` / :meth:`transport_secrets`.
    """

    __slots__ = (
        "_complete",
        "_e",
        "_failed",
        "_index",
        "_initiator",
        "_pattern",
        "_protocol",
        "_randbytes",
        "_re",
        "_rs",
        "_s",
        "_ss",
    )

    def __init__(
        self,
        protocol_name: str,
        *,
        initiator: bool,
        prologue: bytes = b"",
        s: bytes | None = None,
        e: bytes | None = None,
        rs: bytes | None = None,
        re: bytes | None = None,
        randbytes: RandBytes | None = None,
    ) -> None:
        self._protocol = parse_protocol_name(protocol_name)
        self._pattern = pattern = self._protocol.pattern
        self._initiator = initiator
        self._s = None if s is None else _private_key(s, "static key s")
        self._e = None if e is None else _ephemeral_key(e)
        for value, what in ((rs, "rs"), (re, "re")):
            if value is not None and len(value) != DHLEN:
                raise ConfigurationError(f"{what} must be a 32-byte X25519 public key")
        self._rs = rs
        self._re = re
        self._randbytes = randbytes
        self._index = 0
        self._complete = False
        self._failed = False
        self._check_keys()
        self._ss = SymmetricState(protocol_name)
        self._ss.mix_hash(prologue)
        # Pre-messages: initiator's keys first, then the responder's (section 5.3).
        for owner_is_initiator, tokens in (
            (True, pattern.initiator_pre),
            (False, pattern.responder_pre),
        ):
            local = owner_is_initiator == initiator
            for token in tokens:
                if token == "s":
                    pub = _public_bytes(self._s) if local and self._s else self._rs
                else:
                    pub = _public_bytes(self._e) if local and self._e else self._re
                if pub is None:  # pragma: no cover - excluded by _check_keys
                    raise ConfigurationError(f"pre-message key {token} missing")
                self._ss.mix_hash(pub)

    def _check_keys(self) -> None:
        pattern, initiator = self._pattern, self._initiator
        my_pre = pattern.initiator_pre if initiator else pattern.responder_pre
        peer_pre = pattern.responder_pre if initiator else pattern.initiator_pre
        my_msgs = [m for i, m in enumerate(pattern.messages) if (i % 2 == 0) == initiator]
        needs_s = "s" in my_pre or any("s" in m for m in my_msgs)
        if needs_s and self._s is None:
            raise ConfigurationError(f"{pattern.name}: this side needs its static key (s)")
        if "s" in peer_pre and self._rs is None:
            raise ConfigurationError(f"{pattern.name}: this side needs the peer's static key (rs)")
        if "e" in my_pre and self._e is None:
            raise ConfigurationError(f"{pattern.name}: pre-message ephemeral (e) missing")
        if "e" in peer_pre and self._re is None:
            raise ConfigurationError(f"{pattern.name}: peer's pre-message ephemeral (re) missing")
        needs_e = any("e" in m for m in my_msgs)
        if needs_e and self._e is None and self._randbytes is None:
            raise ConfigurationError("pass randbytes (e.g. os.urandom) or an ephemeral key e")

    # -------------------------------------------------------- properties --
    @property
    def protocol(self) -> NoiseProtocol:
        return self._protocol

    @property
    def initiator(self) -> bool:
        return self._initiator

    @property
    def complete(self) -> bool:
        """True once the last handshake message was written or read."""
        return self._complete

    @property
    def writing(self) -> bool:
        """True when the next handshake step is this side's write_message()."""
        return (not self._complete) and (self._index % 2 == 0) == self._initiator

    @property
    def handshake_hash(self) -> bytes:
        """The handshake hash ``h``; final (and usable for channel binding) once complete."""
        return self._ss.handshake_hash

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key, if known (pre-message or received)."""
        return self._rs

    @property
    def local_static_public(self) -> bytes | None:
        return None if self._s is None else _public_bytes(self._s)

    # --------------------------------------------------------------- DH --
    def _dh(self, local: X25519PrivateKey | None, remote: bytes | None) -> bytes:
        if local is None or remote is None:  # pragma: no cover - excluded by the pattern checks
            raise InvalidStateError("DH with a missing key")
        try:
            return local.exchange(X25519PublicKey.from_public_bytes(remote))
        except ValueError:  # all-zero output: low-order point
            raise HandshakeError(ErrorCode.HANDSHAKE_FAILED, "invalid X25519 public key") from None

    def _mix_dh(self, token: str) -> None:
        # "es": initiator's e with responder's s, and so on (section 5.3).
        first, second = token[0], token[1]
        if self._initiator:
            local_tok, remote_tok = first, second
        else:
            local_tok, remote_tok = second, first
        local = self._e if local_tok == "e" else self._s
        remote = self._re if remote_tok == "e" else self._rs
        self._ss.mix_key(self._dh(local, remote))

    def _tokens(self, writing: bool) -> tuple[str, ...]:
        if self._failed:
            raise InvalidStateError("the handshake failed; start a new HandshakeState")
        if self._complete:
            raise InvalidStateError("the handshake is already complete")
        if self.writing != writing:
            raise InvalidStateError("not this side's turn to " + ("write" if writing else "read"))
        return self._pattern.messages[self._index]

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(self._pattern.messages):
            self._complete = True

    # ------------------------------------------------------------ write --
    def write_message(self, payload: bytes = b"") -> bytes:
        """Build the next handshake message carrying ``payload`` (encrypted when a
        key exists at that point of the pattern)."""
        tokens = self._tokens(writing=True)
        out = bytearray()
        for token in tokens:
            if token == "e":
                if self._e is None:
                    assert self._randbytes is not None  # guaranteed by _check_keys
                    self._e = X25519PrivateKey.from_private_bytes(self._randbytes(DHLEN))
                pub = _public_bytes(self._e)
                out += pub
                self._ss.mix_hash(pub)
            elif token == "s":
                assert self._s is not None  # guaranteed by _check_keys
                out += self._ss.encrypt_and_hash(_public_bytes(self._s))
            else:
                self._mix_dh(token)
        out += self._ss.encrypt_and_hash(payload)
        if len(out) > MAX_MESSAGE_LENGTH:
            self._failed = True
            raise InvalidStateError("Noise message longer than 65535 bytes")
        self._advance()
        return bytes(out)

    # ------------------------------------------------------------- read --
    def read_message(self, message: bytes) -> bytes:
        """Process the peer's next handshake message; returns its payload.

        HandshakeError (HANDSHAKE_FAILED) if it is malformed or fails to decrypt;
        the HandshakeState is unusable afterwards.
        """
        tokens = self._tokens(writing=False)
        try:
            payload = self._read(tokens, memoryview(message))
        except (DecryptionError, HandshakeError) as exc:
            self._failed = True
            raise HandshakeError(ErrorCode.HANDSHAKE_FAILED, f"Noise: {exc}") from None
        self._advance()
        return payload

    def _read(self, tokens: tuple[str, ...], msg: memoryview) -> bytes:
        if len(msg) > MAX_MESSAGE_LENGTH:
            raise HandshakeError(ErrorCode.HANDSHAKE_FAILED, "message longer than 65535 bytes")
        pos = 0
        for token in tokens:
            if token == "e":
                if len(msg) - pos < DHLEN:
                    raise HandshakeError(ErrorCode.HANDSHAKE_FAILED, "message too short")
                self._re = bytes(msg[pos : pos + DHLEN])
                pos += DHLEN
                self._ss.mix_hash(self._re)
            elif token == "s":
                size = DHLEN + (TAGLEN if self._ss.cipher_state.has_key() else 0)
                if len(msg) - pos < size:
                    raise HandshakeError(ErrorCode.HANDSHAKE_FAILED, "message too short")
                self._rs = self._ss.decrypt_and_hash(bytes(msg[pos : pos + size]))
                pos += size
            else:
                self._mix_dh(token)
        rest = bytes(msg[pos:])
        if self._ss.cipher_state.has_key() and len(rest) < TAGLEN:
            raise HandshakeError(ErrorCode.HANDSHAKE_FAILED, "message too short")
        return self._ss.decrypt_and_hash(rest)

    # ------------------------------------------------------------ split --
    def _require_complete(self) -> None:
        if not self._complete:
            raise InvalidStateError("the handshake is not complete")

    def split(self) -> tuple[CipherState, CipherState]:
        """Split(): (c1 initiator->responder, c2 responder->initiator)."""
        self._require_complete()
        return self._ss.split()

    def split_secrets(self) -> tuple[bytes, bytes]:
        """Split() as raw 32-byte secrets: (initiator->responder, responder->initiator)."""
        self._require_complete()
        return self._ss.split_secrets()

    def transport_secrets(self) -> tuple[bytes, bytes]:
        """(send secret, receive secret) for this side; feed them to
        :class:`transport.crypto.aead.PacketProtection`."""
        k1, k2 = self.split_secrets()
        return (k1, k2) if self._initiator else (k2, k1)
