"""Address-validation tokens, stateless reset tokens and the RETRY integrity tag.

How this works (docs/wire-format.md sections 7 and 13)
------------------------------------------------------
Retry tokens are opaque to the client and self-contained for the server, so a
server under load can answer an INITIAL with RETRY and keep no state. Layout::

    u8 kind | u64 expiry_ms | u8 len | original DCID | u8 len | retry SCID | tag (16)
    tag = HMAC-SHA256(token key, kind | expiry | CIDs | addr bytes | port u16)[:16]

``kind`` is 1 for RETRY tokens (bound to the client's IP *and* port) and 2 for
NEW_TOKEN tokens (bound to the IP only: a future connection comes from another
port), so one kind is never accepted as the other. The token key is derived from
the server's secret (``HMAC(secret, "transport v1 token key")``), so the same
static secret can also feed :func:`stateless_reset_token`. Tags are compared in
constant time; expiry is checked after the tag, so a forged token learns nothing
from timing about the clock.

``now`` is in seconds and must come from the same clock for issue and validate.
A single process may use its monotonic clock; servers that share a secret across
a cluster or keep it across restarts must use wall-clock time (a monotonic clock
that restarts lower would stretch the lifetime of old tokens).

Stateless reset tokens are ``HMAC-SHA256(static_key, cid)[:16]`` exactly as the
wire format suggests: derivable from the CID alone, different for every CID.
:func:`retry_integrity_tag` is section 13.2's tag.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct
from typing import NamedTuple

from transport.crypto.noise import RandBytes
from transport.errors import ConfigurationError
from transport.wire.constants import MAX_CID_LENGTH, STATELESS_RESET_TOKEN_LENGTH

__all__ = [
    "MIN_STATELESS_RESET_LENGTH",
    "RetryToken",
    "RetryTokenIssuer",
    "build_stateless_reset",
    "is_stateless_reset",
    "retry_integrity_tag",
    "stateless_reset_token",
]

Address = tuple[str, int]

KIND_RETRY = 1
KIND_NEW_TOKEN = 2
_TAG_LENGTH = 16
_HEADER = struct.Struct("!BQ")  # kind, expiry_ms
_MIN_TOKEN_LENGTH = _HEADER.size + 2 + _TAG_LENGTH
_MAX_TOKEN_LENGTH = _HEADER.size + 2 + 2 * MAX_CID_LENGTH + _TAG_LENGTH
_MIN_SECRET_LENGTH = 16
_RETRY_TAG_KEY = b"transport v1 retry"
#: Smallest stateless reset: first byte + 4 unpredictable bytes + 16-byte token.
MIN_STATELESS_RESET_LENGTH = 21


class RetryToken(NamedTuple):
    """What a valid RETRY token carries."""

    original_dcid: bytes
    retry_scid: bytes


def _address_bytes(addr: Address, with_port: bool) -> bytes:
    host, port = addr[0], addr[1]
    try:
        raw = ipaddress.ip_address(host).packed
    except ValueError:
        raw = str(host).encode("utf-8", "surrogateescape")
    out = bytes((len(raw) & 0xFF,)) + raw
    return out + struct.pack("!H", port & 0xFFFF) if with_port else out


class RetryTokenIssuer:
    """Issues and checks HMAC-authenticated, expiring address-validation tokens.

    ``secret_key``: at least 16 random bytes, known only to the server (cluster).
    ``lifetime_s``: how long a RETRY token stays valid (seconds; a few is enough).
    """

    __slots__ = ("_key", "lifetime_s")

    def __init__(self, secret_key: bytes, lifetime_s: float = 10.0) -> None:
        if len(secret_key) < _MIN_SECRET_LENGTH:
            raise ConfigurationError("token secret must be at least 16 bytes")
        if not lifetime_s > 0:
            raise ConfigurationError("token lifetime_s must be positive")
        self._key = hmac.digest(secret_key, b"transport v1 token key", hashlib.sha256)
        self.lifetime_s = float(lifetime_s)

    def _tag(self, body: bytes, addr: Address, with_port: bool) -> bytes:
        return hmac.digest(self._key, body + _address_bytes(addr, with_port), hashlib.sha256)[
            :_TAG_LENGTH
        ]

    def _make(self, kind: int, expiry_s: float, odcid: bytes, scid: bytes, addr: Address) -> bytes:
        if len(odcid) > MAX_CID_LENGTH or len(scid) > MAX_CID_LENGTH:
            raise ConfigurationError("connection IDs are at most 20 bytes")
        expiry_ms = max(0, int(expiry_s * 1000.0))
        body = (
            _HEADER.pack(kind, expiry_ms)
            + bytes((len(odcid),)) + odcid
            + bytes((len(scid),)) + scid
        )
        return body + self._tag(body, addr, kind == KIND_RETRY)

    def _parse(self, token: bytes, addr: Address, now: float, kind: int) -> RetryToken | None:
        if not _MIN_TOKEN_LENGTH <= len(token) <= _MAX_TOKEN_LENGTH:
            return None
        token = bytes(token)
        body, tag = token[:-_TAG_LENGTH], token[-_TAG_LENGTH:]
        if not hmac.compare_digest(tag, self._tag(body, addr, kind == KIND_RETRY)):
            return None
        # Authentic, so the layout is ours; still parse defensively.
        got_kind, expiry_ms = _HEADER.unpack_from(body)
        pos = _HEADER.size
        odcid_len = body[pos]
        odcid = body[pos + 1 : pos + 1 + odcid_len]
        pos += 1 + odcid_len
        if pos >= len(body):
            return None
        scid_len = body[pos]
        scid = body[pos + 1 : pos + 1 + scid_len]
        if got_kind != kind or pos + 1 + scid_len != len(body):
            return None
        if now * 1000.0 > expiry_ms:
            return None
        return RetryToken(odcid, scid)

    # ------------------------------------------------------------ RETRY --
    def issue(self, client_addr: Address, original_dcid: bytes, now: float,
              retry_scid: bytes = b"") -> bytes:
        """A RETRY token for ``client_addr`` (host, port) valid until ``now + lifetime_s``.

        ``retry_scid`` is the SCID of the RETRY packet the token goes into, needed
        later for RETRY_SOURCE_CID.
        """
        return self._make(KIND_RETRY, now + self.lifetime_s, original_dcid, retry_scid,
                          client_addr)

    def validate(self, token: bytes, client_addr: Address, now: float) -> bytes | None:
        """The original DCID if ``token`` is an authentic, unexpired RETRY token for
        this address, else None."""
        got = self._parse(token, client_addr, now, KIND_RETRY)
        return None if got is None else got.original_dcid

    def validate_retry(self, token: bytes, client_addr: Address, now: float) -> RetryToken | None:
        """Like :meth:`validate`, returning both CIDs the token carries."""
        return self._parse(token, client_addr, now, KIND_RETRY)

    # -------------------------------------------------------- NEW_TOKEN --
    def issue_new_token(self, client_addr: Address, now: float, lifetime_s: float) -> bytes:
        """A NEW_TOKEN token for a future connection from the same IP (any port)."""
        if not 0 < lifetime_s <= 86400:
            raise ConfigurationError("NEW_TOKEN lifetime is 0..1 day")
        return self._make(KIND_NEW_TOKEN, now + lifetime_s, b"", b"", client_addr)

    def validate_new_token(self, token: bytes, client_addr: Address, now: float) -> bool:
        """True if ``token`` is an authentic, unexpired NEW_TOKEN token for this IP."""
        return self._parse(token, client_addr, now, KIND_NEW_TOKEN) is not None


# ----------------------------------------------------- stateless reset ----
def stateless_reset_token(static_key: bytes, cid: bytes) -> bytes:
    """HMAC-SHA256(static_key, cid)[:16] (docs/wire-format.md section 7)."""
    if len(static_key) < _MIN_SECRET_LENGTH:
        raise ConfigurationError("stateless reset key must be at least 16 bytes")
    return hmac.digest(static_key, cid, hashlib.sha256)[:STATELESS_RESET_TOKEN_LENGTH]


def is_stateless_reset(datagram: bytes, token: bytes) -> bool:
    """True if ``datagram`` (one that could not be processed) ends with ``token``
    and is long enough to be a reset. Constant time in the token bytes."""
    if len(datagram) < MIN_STATELESS_RESET_LENGTH or datagram[0] & 0x80:
        return False
    return hmac.compare_digest(bytes(datagram[-STATELESS_RESET_TOKEN_LENGTH:]), token)


def build_stateless_reset(token: bytes, trigger_length: int, randbytes: RandBytes) -> bytes | None:
    """A stateless reset answering a datagram of ``trigger_length`` bytes, or None when
    none may be sent (trigger of 21 bytes or fewer). The reset is one byte shorter
    than the trigger but at most 64 bytes, starts with ``0b01`` followed by
    unpredictable bits from ``randbytes`` (a CSPRNG in production) and ends with
    ``token``."""
    if len(token) != STATELESS_RESET_TOKEN_LENGTH:
        raise ConfigurationError("a stateless reset token is 16 bytes")
    if trigger_length <= MIN_STATELESS_RESET_LENGTH:
        return None
    length = min(trigger_length - 1, 64)
    filler = randbytes(length - STATELESS_RESET_TOKEN_LENGTH)
    first = (filler[0] & 0x3F) | 0x40
    return bytes((first,)) + filler[1:] + token


# -------------------------------------------------------- retry tag -------
def retry_integrity_tag(original_dcid: bytes, retry_without_tag: bytes) -> bytes:
    """Section 13.2: HMAC-SHA256("transport v1 retry", u8 len | ODCID | RETRY bytes)[:16]."""
    if len(original_dcid) > MAX_CID_LENGTH:
        raise ConfigurationError("connection IDs are at most 20 bytes")
    msg = bytes((len(original_dcid),)) + original_dcid + bytes(retry_without_tag)
    return hmac.digest(_RETRY_TAG_KEY, msg, hashlib.sha256)[:_TAG_LENGTH]
