"""Connection security: the handshake messages and the 1-RTT packet keys.

How this works
--------------
Each side's CRYPTO byte stream carries one handshake message (wire format
§12). The client's stream starts with a one-byte *handshake mode* so the
server knows how to read what follows, then a ``u16`` length and the message:

    client:  mode (u8: 0 none, 1 NK, 2 IK) || length (u16) || message 1
    server:                                  length (u16) || message 2

With ``security="none"`` the messages are the bare transport-parameter blocks.
With ``security="noise"`` they are Noise messages of
``Noise_NK_25519_AESGCM_SHA256`` (client anonymous, server key pinned by the
client) or ``Noise_IK_25519_AESGCM_SHA256`` (client key sent encrypted and
checked by the server), whose payloads are the parameter blocks. The Noise
prologue binds the transcript to the packets that carry it: ``b"transport v1"``,
the version and the DCID and SCID of the client's INITIAL carrying message 1.

After message 2, ``Split()`` gives one traffic secret per direction. Each side
seals its packets with the AEAD it announced in AEAD_ALGORITHM and opens the
peer's with the peer's choice (:mod:`transport.crypto.aead` derives key and IV).
:class:`KeySchedule` holds the send generation and the receive generations
(current, next once a key update shows, previous) for key update (§9.3).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection

from transport.crypto.aead import PacketProtection, aead_id, aead_name, default_aead
from transport.crypto.keys import KeyPair
from transport.crypto.noise import HandshakeState
from transport.errors import ConfigurationError, HandshakeError, WireError
from transport.wire.constants import ErrorCode

MODE_NONE = 0
MODE_NK = 1
MODE_IK = 2
_PATTERN_OF_MODE = {MODE_NK: "NK", MODE_IK: "IK"}
NOISE_SUITE = "25519_AESGCM_SHA256"
NOISE_HASH = "SHA256"
PROLOGUE_LABEL = b"transport v1"
MAX_MESSAGE_BYTES = 4096


def handshake_prologue(version: int, dcid: bytes, scid: bytes) -> bytes:
    """What the Noise prologue binds: label, version, the client INITIAL's CIDs."""
    return (
        PROLOGUE_LABEL
        + struct.pack("!I", version)
        + bytes([len(dcid)])
        + bytes(dcid)
        + bytes([len(scid)])
        + bytes(scid)
    )


def _failed(reason: str) -> HandshakeError:
    return HandshakeError(ErrorCode.HANDSHAKE_FAILED, reason)


class KeySchedule:
    """1-RTT keys of both directions, with key update (wire format §9.3)."""

    __slots__ = (
        "largest_opened_current",
        "recv_current",
        "recv_next",
        "recv_previous",
        "send",
        "send_first_pn",
    )

    def __init__(self, send: PacketProtection, recv: PacketProtection) -> None:
        self.send = send
        #: first packet number sealed with the current send generation
        self.send_first_pn = -1
        self.recv_current = recv
        #: the next generation, derived when a packet first shows the other key
        #: phase (most connections never update keys: they never build it)
        self.recv_next: PacketProtection | None = None
        self.recv_previous: PacketProtection | None = None
        self.largest_opened_current = -1

    def update_send(self, next_pn: int) -> None:
        old = self.send
        self.send = old.next_generation()
        self.send_first_pn = next_pn
        old.release()  # nothing seals with it again: free its C context now

    def release(self) -> None:
        """Free every generation's C AEAD context now (the connection is over);
        anything sealed or opened later goes through ``cryptography``."""
        for keys in (self.send, self.recv_current, self.recv_next, self.recv_previous):
            if keys is not None:
                keys.release()

    def open(self, header: bytes, payload: bytes | memoryview, pn: int, key_phase: int) -> bytes:
        """Open a 1-RTT packet, rotating receive keys when the peer updated.
        Raises DecryptionError (nothing changes) when it does not authenticate."""
        current = self.recv_current
        if key_phase == current.key_phase:
            plaintext = current.open(header, payload, pn)
            if pn > self.largest_opened_current:
                self.largest_opened_current = pn
            return plaintext
        if pn > self.largest_opened_current or self.recv_previous is None:
            following = self.recv_next
            if following is None:
                following = self.recv_next = current.next_generation()
            plaintext = following.open(header, payload, pn)
            # the peer moved to the next generation: rotate
            self.recv_previous = current
            self.recv_current = following
            self.recv_next = None
            self.largest_opened_current = pn
            return plaintext
        return self.recv_previous.open(header, payload, pn)


class Session:
    """One side's handshake: builds and reads the messages, then makes the keys."""

    __slots__ = (
        "_noise",
        "aead",
        "aead_id",
        "authorized_clients",
        "is_client",
        "keys",
        "mode",
        "peer_static",
        "randbytes",
        "security",
        "server_public_key",
        "static_key",
    )

    def __init__(
        self,
        *,
        is_client: bool,
        security: str,
        static_key: KeyPair | None,
        server_public_key: bytes | None,
        authorized_clients: Callable[[bytes], bool] | Collection[bytes] | None,
        aead: str | None,
        randbytes: Callable[[int], bytes],
    ) -> None:
        self.is_client = is_client
        self.security = security
        self.randbytes = randbytes
        self.static_key = static_key
        self.server_public_key = server_public_key
        self.authorized_clients = authorized_clients
        self.aead = aead or default_aead()
        self.aead_id = aead_id(self.aead) if security == "noise" else 0
        self.mode = MODE_NONE
        if security == "noise":
            if is_client:
                if server_public_key is None or len(server_public_key) != 32:
                    raise ConfigurationError(
                        "a noise client needs server_public_key (the server's 32-byte key)"
                    )
                self.mode = MODE_IK if static_key is not None else MODE_NK
            elif static_key is None:
                raise ConfigurationError("a noise server needs static_key")
        self._noise: HandshakeState | None = None
        #: the peer's static public key once known (the server's, or an IK client's)
        self.peer_static: bytes | None = None
        self.keys: KeySchedule | None = None

    # ------------------------------------------------------------- client
    def client_hello(self, params_block: bytes, prologue: bytes) -> bytes:
        """The client's CRYPTO stream: mode, length, message 1."""
        if self.mode == MODE_NONE:
            message = params_block
        else:
            self._noise = HandshakeState(
                f"Noise_{_PATTERN_OF_MODE[self.mode]}_{NOISE_SUITE}",
                initiator=True,
                prologue=prologue,
                s=self.static_key.private if self.static_key is not None else None,
                rs=self.server_public_key,
                randbytes=self.randbytes,
            )
            message = self._noise.write_message(params_block)
            self.peer_static = self.server_public_key
        return bytes([self.mode]) + len(message).to_bytes(2, "big") + message

    def client_read(self, message: bytes) -> bytes:
        """Read the server's message 2; returns its parameter block."""
        if self.mode == MODE_NONE:
            return message
        noise = self._noise
        if noise is None:  # pragma: no cover - client_hello always runs first
            raise _failed("handshake message before the client hello")
        return noise.read_message(message)

    # ------------------------------------------------------------- server
    def server_read(self, mode: int, message: bytes, prologue: bytes) -> bytes:
        """Read the client's message 1; returns its parameter block."""
        if self.security == "none":
            if mode != MODE_NONE:
                raise _failed("the client wants encryption; this server is security='none'")
            return message
        if mode not in _PATTERN_OF_MODE:
            raise _failed("this server requires an encrypted (noise) handshake")
        if mode == MODE_NK and self.authorized_clients is not None:
            raise _failed("this server requires client authentication (IK)")
        self.mode = mode
        if self.static_key is None:  # pragma: no cover - checked in __init__
            raise _failed("no server static key")
        self._noise = HandshakeState(
            f"Noise_{_PATTERN_OF_MODE[mode]}_{NOISE_SUITE}",
            initiator=False,
            prologue=prologue,
            s=self.static_key.private,
            randbytes=self.randbytes,
        )
        payload = self._noise.read_message(message)
        if mode == MODE_IK:
            client_key = self._noise.remote_static
            self.peer_static = client_key
            if not self._authorized(client_key):
                raise _failed("client key not authorised")
        return payload

    def _authorized(self, key: bytes | None) -> bool:
        rule = self.authorized_clients
        if rule is None:
            return True
        if key is None:
            return False
        if callable(rule):
            return bool(rule(key))
        return key in rule

    def server_reply(self, params_block: bytes) -> bytes:
        """The server's CRYPTO stream: length, message 2."""
        if self.mode == MODE_NONE:
            message = params_block
        else:
            if self._noise is None:  # pragma: no cover - server_read always runs first
                raise _failed("server reply before the client hello")
            message = self._noise.write_message(params_block)
        return len(message).to_bytes(2, "big") + message

    # ------------------------------------------------------------- keys
    def install_keys(self, peer_aead_id: int) -> None:
        """After message 2: derive the 1-RTT keys (noise mode only)."""
        if self.mode == MODE_NONE:
            if peer_aead_id != 0:
                raise _failed("the peer wants encryption; this side is security='none'")
            return
        if peer_aead_id == 0:
            raise _failed("the peer announced no AEAD in an encrypted handshake")
        noise = self._noise
        if noise is None or not noise.complete:
            raise _failed("handshake incomplete")
        send_secret, recv_secret = noise.transport_secrets()
        try:
            peer_aead = aead_name(peer_aead_id)
        except (ConfigurationError, WireError, KeyError, ValueError) as exc:
            raise _failed(f"unknown AEAD {peer_aead_id}") from exc
        self.keys = KeySchedule(
            PacketProtection(send_secret, self.aead, hash_name=NOISE_HASH),
            PacketProtection(recv_secret, peer_aead, hash_name=NOISE_HASH),
        )
        self._noise = None  # both messages are written and read: the state is spent
