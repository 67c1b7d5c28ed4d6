"""X25519 key pairs: generation, PEM and raw forms, files, and the errors for bad keys."""

from __future__ import annotations

import base64
import os
import random
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transport.crypto.keys import (
    KeyPair,
    generate_keypair,
    load_private_key,
    load_private_key_file,
    load_public_key,
    load_public_key_file,
    private_key_to_pem,
    private_key_to_raw,
    public_key_from_private,
    public_key_to_pem,
    public_key_to_raw,
    save_keypair,
)
from transport.errors import ConfigurationError, KeyFormatError

# RFC 7748 section 6.1: Alice's X25519 private and public key.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")


def test_generate_is_deterministic_with_injected_randomness() -> None:
    a = generate_keypair(random.Random(1).randbytes)
    b = generate_keypair(random.Random(1).randbytes)
    assert a == b and len(a.private) == 32 and len(a.public) == 32
    assert public_key_from_private(a.private) == a.public
    assert generate_keypair() != generate_keypair()  # default: os.urandom


def test_public_key_known_answer() -> None:
    assert public_key_from_private(ALICE_PRIVATE) == ALICE_PUBLIC


def test_pem_round_trip() -> None:
    pem = private_key_to_pem(ALICE_PRIVATE)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_private_key(pem) == ALICE_PRIVATE
    assert load_private_key(pem.decode()) == ALICE_PRIVATE
    pub_pem = public_key_to_pem(ALICE_PUBLIC)
    assert pub_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert load_public_key(pub_pem) == ALICE_PUBLIC
    der = serialization.load_pem_public_key(pub_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert load_public_key(der) == ALICE_PUBLIC


def test_encrypted_pem() -> None:
    pem = private_key_to_pem(ALICE_PRIVATE, password=b"hunter2")
    assert b"ENCRYPTED" in pem
    assert load_private_key(pem, password=b"hunter2") == ALICE_PRIVATE
    with pytest.raises(KeyFormatError):
        load_private_key(pem)  # no password
    with pytest.raises(KeyFormatError):
        load_private_key(pem, password=b"wrong")


def test_raw_round_trip() -> None:
    text = private_key_to_raw(ALICE_PRIVATE)
    assert len(text) == 44 and base64.b64decode(text) == ALICE_PRIVATE
    assert load_private_key(text + "\n") == ALICE_PRIVATE
    assert load_public_key(public_key_to_raw(ALICE_PUBLIC)) == ALICE_PUBLIC


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not a key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        base64.b64encode(bytes(31)),  # wrong length
        base64.b64encode(bytes(33)),
        b"!" * 44,
        bytes(range(256)),
    ],
)
def test_garbage_raises_key_format_error(garbage: bytes) -> None:
    with pytest.raises(KeyFormatError):
        load_private_key(garbage)
    with pytest.raises(KeyFormatError):
        load_public_key(garbage)


def test_wrong_kind_of_key() -> None:
    ed = Ed25519PrivateKey.generate()
    ed_pem = ed.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError, match="X25519"):
        load_private_key(ed_pem)
    ed_pub = ed.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyFormatError, match="X25519"):
        load_public_key(ed_pub)
    with pytest.raises(KeyFormatError, match="private key"):
        load_public_key(private_key_to_pem(ALICE_PRIVATE))
    with pytest.raises(KeyFormatError, match="public key"):
        load_private_key(public_key_to_pem(ALICE_PUBLIC))
    with pytest.raises(KeyFormatError):
        public_key_to_pem(ALICE_PUBLIC[:31])
    assert issubclass(KeyFormatError, ConfigurationError)


@pytest.mark.parametrize("fmt", ["pem", "raw"])
def test_save_and_load_files(tmp_path: Path, fmt: str) -> None:
    pair = KeyPair(ALICE_PRIVATE, ALICE_PUBLIC)
    priv, pub = tmp_path / "server.key", tmp_path / "server.pub"
    save_keypair(pair, priv, pub, fmt=fmt)
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert load_private_key_file(priv) == ALICE_PRIVATE
    assert load_public_key_file(pub) == ALICE_PUBLIC
    with pytest.raises(KeyFormatError, match="overwrite"):
        save_keypair(pair, priv, fmt=fmt)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError, match="not found"):
        load_private_key_file(tmp_path / "missing.key")
    empty = tmp_path / "empty.key"
    empty.write_bytes(b"")
    with pytest.raises(KeyFormatError, match="empty"):
        load_public_key_file(empty)
    with pytest.raises(KeyFormatError, match="garbled"):
        bad = tmp_path / "bad.pem"
        bad.write_text("-----BEGIN PUBLIC KEY-----\nzzzz\n-----END PUBLIC KEY-----\n")
        load_public_key_file(bad)
    with pytest.raises(KeyFormatError):
        save_keypair(KeyPair(ALICE_PRIVATE, bytes(32)), tmp_path / "x.key")  # mismatched pair
    with pytest.raises(KeyFormatError):
        save_keypair(KeyPair(ALICE_PRIVATE, ALICE_PUBLIC), tmp_path / "y.key", fmt="der")
    with pytest.raises(KeyFormatError):
        save_keypair(
            KeyPair(ALICE_PRIVATE, ALICE_PUBLIC), tmp_path / "z.key", fmt="raw", password=b"pw"
        )
