"""Retry / NEW_TOKEN tokens, stateless reset tokens and the RETRY integrity tag."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

from transport.crypto.tokens import (
    MIN_STATELESS_RESET_LENGTH,
    RetryToken,
    RetryTokenIssuer,
    build_stateless_reset,
    is_stateless_reset,
    retry_integrity_tag,
    stateless_reset_token,
)
from transport.errors import ConfigurationError

KEY = bytes(range(32))
ADDR = ("192.0.2.7", 4433)
ADDR6 = ("2001:db8::1", 4433)
ODCID = bytes.fromhex("8394c8f03e515708")
SCID = bytes.fromhex("f067a5502a4262b5")


def test_retry_token_round_trip() -> None:
    issuer = RetryTokenIssuer(KEY, lifetime_s=10.0)
    for addr in (ADDR, ADDR6, ("localhost", 1)):
        token = issuer.issue(addr, ODCID, now=1000.0, retry_scid=SCID)
        assert issuer.validate(token, addr, now=1000.0) == ODCID
        assert issuer.validate_retry(token, addr, now=1009.9) == RetryToken(ODCID, SCID)
    empty = issuer.issue(ADDR, b"", now=0.0)
    assert issuer.validate(empty, ADDR, now=0.0) == b""


def test_retry_token_expiry() -> None:
    issuer = RetryTokenIssuer(KEY, lifetime_s=3.0)
    token = issuer.issue(ADDR, ODCID, now=50.0)
    assert issuer.validate(token, ADDR, now=53.0) == ODCID
    assert issuer.validate(token, ADDR, now=53.002) is None


def test_retry_token_bound_to_host_and_port() -> None:
    issuer = RetryTokenIssuer(KEY)
    token = issuer.issue(ADDR, ODCID, now=1.0)
    assert issuer.validate(token, ("192.0.2.8", 4433), now=1.0) is None
    assert issuer.validate(token, ("192.0.2.7", 4434), now=1.0) is None
    assert issuer.validate(token, ADDR6, now=1.0) is None


def test_forged_and_mangled_tokens_rejected() -> None:
    issuer = RetryTokenIssuer(KEY)
    token = issuer.issue(ADDR, ODCID, now=1.0, retry_scid=SCID)
    for i in range(len(token)):
        bad = bytearray(token)
        bad[i] ^= 0x01
        assert issuer.validate(bytes(bad), ADDR, now=1.0) is None
    other = RetryTokenIssuer(bytes(32)).issue(ADDR, ODCID, now=1.0)
    assert issuer.validate(other, ADDR, now=1.0) is None  # other server's key
    rng = random.Random(5)
    for size in (0, 1, 16, 26, 27, 40, 76, 77, 200):
        assert issuer.validate(rng.randbytes(size), ADDR, now=1.0) is None
    # extending the expiry without the key fails
    forged = bytearray(token)
    forged[1:9] = (2**63).to_bytes(8, "big")
    assert issuer.validate(bytes(forged), ADDR, now=10**6) is None


def test_new_token_kind_is_separate_and_ignores_port() -> None:
    issuer = RetryTokenIssuer(KEY)
    new = issuer.issue_new_token(ADDR, now=0.0, lifetime_s=3600)
    assert issuer.validate_new_token(new, ("192.0.2.7", 50000), now=3599.0)
    assert not issuer.validate_new_token(new, ("192.0.2.9", 4433), now=1.0)
    assert not issuer.validate_new_token(new, ADDR, now=3601.0)
    assert issuer.validate(new, ADDR, now=1.0) is None  # never accepted as a RETRY token
    retry = issuer.issue(ADDR, ODCID, now=0.0)
    assert not issuer.validate_new_token(retry, ADDR, now=0.0)


def test_issuer_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        RetryTokenIssuer(b"short")
    with pytest.raises(ConfigurationError):
        RetryTokenIssuer(KEY, lifetime_s=0)
    with pytest.raises(ConfigurationError):
        RetryTokenIssuer(KEY).issue(ADDR, bytes(21), now=0.0)
    with pytest.raises(ConfigurationError):
        RetryTokenIssuer(KEY).issue_new_token(ADDR, now=0.0, lifetime_s=2 * 86400)


def test_stateless_reset_token_known_answer() -> None:
    cid = bytes.fromhex("0102030405060708")
    token = stateless_reset_token(KEY, cid)
    assert token == hmac.new(KEY, cid, hashlib.sha256).digest()[:16]
    assert len(token) == 16
    assert stateless_reset_token(KEY, cid) == token  # stateless: same input, same token
    assert stateless_reset_token(KEY, cid[:-1] + b"\x09") != token
    assert stateless_reset_token(bytes(32), cid) != token
    with pytest.raises(ConfigurationError):
        stateless_reset_token(b"k", cid)


def test_build_and_detect_stateless_reset() -> None:
    token = stateless_reset_token(KEY, b"cid-1234")
    rng = random.Random(3)
    assert build_stateless_reset(token, MIN_STATELESS_RESET_LENGTH, rng.randbytes) is None
    for trigger in (22, 50, 1200):
        reset = build_stateless_reset(token, trigger, rng.randbytes)
        assert reset is not None
        assert MIN_STATELESS_RESET_LENGTH <= len(reset) < trigger and len(reset) <= 64
        assert reset[0] & 0xC0 == 0x40 and reset.endswith(token)
        assert is_stateless_reset(reset, token)
        assert not is_stateless_reset(reset, stateless_reset_token(KEY, b"other"))
    assert not is_stateless_reset(b"\x40" + bytes(3) + token, token)  # 20 bytes: too short
    assert not is_stateless_reset(b"\xc0" + bytes(8) + token, token)  # long header


def test_retry_integrity_tag() -> None:
    retry = bytes.fromhex("e05452500108") + SCID + b"token-bytes"
    tag = retry_integrity_tag(ODCID, retry)
    expected = hmac.new(
        b"transport v1 retry", bytes((len(ODCID),)) + ODCID + retry, hashlib.sha256
    ).digest()[:16]
    assert tag == expected
    assert retry_integrity_tag(ODCID[:-1] + b"\x00", retry) != tag
    assert retry_integrity_tag(ODCID, retry + b"x") != tag
