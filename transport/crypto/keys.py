"""X25519 key pairs for users: generate, save and load.

How this works
--------------
A Noise static key is an X25519 key pair; this package passes keys around as raw
32-byte ``bytes`` (:class:`KeyPair`). For files and configuration two text forms
are supported, both through ``cryptography``'s serialization:

* PEM: private keys as PKCS#8 (``-----BEGIN PRIVATE KEY-----``, optionally
  encrypted with a password: ``-----BEGIN ENCRYPTED PRIVATE KEY-----``), public
  keys as SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``). DER (the binary
  form of the same structures) is read too.
* raw: the 32 key bytes in standard base64 (44 characters), one line -- handy in
  configuration files and on command lines. Raw text does not say whether it is a
  private or a public key; the caller says which it expects.

Every failure -- a missing or unreadable file, text that is neither form, a key
of another type (RSA, Ed25519, ...), a wrong length, a private key where a public
one is expected or the other way round, a wrong or missing password -- raises
:class:`~transport.errors.KeyFormatError` with a message that names the problem.

:func:`generate_keypair` is an API edge: with no ``randbytes`` it uses
``os.urandom``. Private key files are written with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from transport.crypto.noise import RandBytes
from transport.errors import KeyFormatError

__all__ = [
    "KeyPair",
    "generate_keypair",
    "load_private_key",
    "load_private_key_file",
    "load_public_key",
    "load_public_key_file",
    "private_key_to_pem",
    "private_key_to_raw",
    "public_key_from_private",
    "public_key_to_pem",
    "public_key_to_raw",
    "save_keypair",
]

KEY_LENGTH = 32
_MAX_KEY_FILE_BYTES = 64 * 1024


class KeyPair(NamedTuple):
    """Raw 32-byte X25519 private and public key."""

    private: bytes
    public: bytes


def _private_obj(private: bytes) -> X25519PrivateKey:
    if not isinstance(private, bytes | bytearray | memoryview) or len(private) != KEY_LENGTH:
        raise KeyFormatError("an X25519 private key is 32 raw bytes")
    return X25519PrivateKey.from_private_bytes(bytes(private))


def _public_obj(public: bytes) -> X25519PublicKey:
    if not isinstance(public, bytes | bytearray | memoryview) or len(public) != KEY_LENGTH:
        raise KeyFormatError("an X25519 public key is 32 raw bytes")
    return X25519PublicKey.from_public_bytes(bytes(public))


def generate_keypair(randbytes: RandBytes | None = None) -> KeyPair:
    """A new key pair from ``randbytes(32)`` (default ``os.urandom``)."""
    raw = (randbytes or os.urandom)(KEY_LENGTH)
    key = _private_obj(raw)
    return KeyPair(key.private_bytes_raw(), key.public_key().public_bytes_raw())


def public_key_from_private(private: bytes) -> bytes:
    """The 32-byte public key of a 32-byte private key."""
    return _private_obj(private).public_key().public_bytes_raw()


# --------------------------------------------------------------- dump ----
def private_key_to_pem(private: bytes, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM; encrypted with ``password`` when given (best available scheme)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return _private_obj(private).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_key_to_pem(public: bytes) -> bytes:
    """SubjectPublicKeyInfo PEM."""
    return _public_obj(public).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_key_to_raw(private: bytes) -> str:
    """The private key as base64 text (44 characters)."""
    return base64.b64encode(_private_obj(private).private_bytes_raw()).decode("ascii")


def public_key_to_raw(public: bytes) -> str:
    """The public key as base64 text (44 characters)."""
    return base64.b64encode(_public_obj(public).public_bytes_raw()).decode("ascii")


# --------------------------------------------------------------- load ----
def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8", "replace")
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise KeyFormatError(f"expected key text or bytes, got {type(data).__name__}")


def _raw_b64(text: bytes) -> bytes | None:
    stripped = text.strip()
    if len(stripped) != 44:
        return None
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == KEY_LENGTH else None


def _looks_like_private(text: bytes) -> bool:
    return b"PRIVATE KEY-----" in text


def load_private_key(data: bytes | str, password: bytes | None = None) -> bytes:
    """The raw 32-byte private key from PEM/DER PKCS#8 or base64 raw text."""
    text = _as_bytes(data)
    raw = _raw_b64(text)
    if raw is not None:
        return raw
    if b"PUBLIC KEY-----" in text:
        raise KeyFormatError("this is a public key; a private key is needed here")
    is_pem = b"-----BEGIN" in text
    loader = (
        serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    )
    try:
        key = loader(text, password=password)
    except TypeError as exc:  # password missing / given for an unencrypted key
        raise KeyFormatError(f"private key password problem: {exc}") from None
    except ValueError as exc:
        what = "PEM" if is_pem else "key data"
        raise KeyFormatError(
            f"cannot read the private key ({what} garbled, wrong password, or"
            f" not PKCS#8 / base64): {exc}"
        ) from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd keys
        raise KeyFormatError(f"cannot read the private key: {exc}") from None
    if not isinstance(key, X25519PrivateKey):
        raise KeyFormatError(f"not an X25519 key: {type(key).__name__}")
    return key.private_bytes_raw()


def load_public_key(data: bytes | str) -> bytes:
    """The raw 32-byte public key from PEM/DER SubjectPublicKeyInfo or base64 raw text."""
    text = _as_bytes(data)
    raw = _raw_b64(text)
    if raw is not None:
        return raw
    if _looks_like_private(text):
        raise KeyFormatError("this is a private key; pass the public key (never share the private)")
    is_pem = b"-----BEGIN" in text
    loader = serialization.load_pem_public_key if is_pem else serialization.load_der_public_key
    try:
        key = loader(text)
    except ValueError as exc:
        what = "PEM" if is_pem else "key data"
        raise KeyFormatError(
            f"cannot read the public key ({what} garbled, or not SubjectPublicKeyInfo /"
            f" base64): {exc}"
        ) from None
    except Exception as exc:
        raise KeyFormatError(f"cannot read the public key: {exc}") from None
    if not isinstance(key, X25519PublicKey):
        raise KeyFormatError(f"not an X25519 key: {type(key).__name__}")
    return key.public_bytes_raw()


# -------------------------------------------------------------- files ----
def _read_file(path: str | os.PathLike[str]) -> bytes:
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(_MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeyFormatError(f"key file not found: {p}") from None
    except OSError as exc:
        raise KeyFormatError(f"cannot read key file {p}: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise KeyFormatError(f"{p} is too large to be a key file")
    if not data.strip():
        raise KeyFormatError(f"key file is empty: {p}")
    return data


def load_private_key_file(path: str | os.PathLike[str], password: bytes | None = None) -> bytes:
    """:func:`load_private_key` on a file's contents; errors name the file."""
    try:
        return load_private_key(_read_file(path), password)
    except KeyFormatError as exc:
        raise KeyFormatError(f"{path}: {exc}") from None


def load_public_key_file(path: str | os.PathLike[str]) -> bytes:
    """:func:`load_public_key` on a file's contents; errors name the file."""
    try:
        return load_public_key(_read_file(path))
    except KeyFormatError as exc:
        raise KeyFormatError(f"{path}: {exc}") from None


def save_keypair(
    keypair: KeyPair,
    private_path: str | os.PathLike[str],
    public_path: str | os.PathLike[str] | None = None,
    *,
    fmt: str = "pem",
    password: bytes | None = None,
) -> None:
    """Write the private key (mode 0600) and, if ``public_path``, the public key.

    ``fmt``: "pem" (PKCS#8 / SubjectPublicKeyInfo) or "raw" (base64 line; no
    password support). Refuses to overwrite an existing private key file.
    """
    if fmt == "pem":
        private_text = private_key_to_pem(keypair.private, password)
        public_text = public_key_to_pem(keypair.public)
    elif fmt == "raw":
        if password:
            raise KeyFormatError("the raw format cannot be password-protected; use pem")
        private_text = (private_key_to_raw(keypair.private) + "\n").encode("ascii")
        public_text = (public_key_to_raw(keypair.public) + "\n").encode("ascii")
    else:
        raise KeyFormatError(f"unknown key format {fmt!r} (pem, raw)")
    if public_key_from_private(keypair.private) != bytes(keypair.public):
        raise KeyFormatError("the public key does not belong to the private key")
    try:
        fd = os.open(os.fspath(private_path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFormatError(f"refusing to overwrite existing key file {private_path}") from None
    except OSError as exc:
        raise KeyFormatError(f"cannot write {private_path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(private_text)
    if public_path is not None:
        try:
            Path(public_path).write_bytes(public_text)
        except OSError as exc:
            raise KeyFormatError(f"cannot write {public_path}: {exc.strerror or exc}") from None
