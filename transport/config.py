"""Connection and endpoint configuration.

How this works
--------------
One :class:`Config` object describes everything a connection may be tuned by:
limits, timers, the congestion controller factory and the random generator.
It is validated on construction (:class:`~transport.errors.ConfigurationError`)
and never mutated by the core, so one instance can serve many connections.
Tests control behaviour only through these public knobs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from transport.errors import ConfigurationError
from transport.wire.constants import (
    DEFAULT_CID_LENGTH,
    MAX_CID_LENGTH,
    MIN_INITIAL_DATAGRAM_SIZE,
)

if TYPE_CHECKING:
    from transport.congestion.base import CongestionController
    from transport.crypto.keys import KeyPair

SECURITY_MODES = ("noise", "none")

KiB = 1024
MiB = 1024 * 1024


def _default_congestion() -> Callable[..., CongestionController]:
    from transport.congestion.bbr import BBR

    return BBR


@dataclass
class Config:
    """Settings for a connection (and the endpoint that creates it).

    Sizes are bytes, times seconds. ``rng`` supplies every random choice
    (connection IDs, skipped packet numbers, ...); seed it for replayable runs.
    """

    #: "noise": Noise handshake (NK, or IK when the client has a static key) and
    #: AEAD-protected 1-RTT packets. "none": CRC32C integrity only, no
    #: confidentiality -- for trusted networks and benchmarks.
    security: str = "noise"
    #: This side's X25519 key pair (transport.crypto.keys.KeyPair). Required on a
    #: noise server; on a client it turns the handshake into IK (mutual).
    static_key: KeyPair | None = None
    #: The server's 32-byte public key, pinned by a noise client (required there).
    server_public_key: bytes | None = None
    #: Server: which client keys may connect. None accepts anonymous (NK) clients
    #: and any IK client; a collection or predicate requires IK and an allowed key.
    authorized_clients: Callable[[bytes], bool] | Collection[bytes] | None = None
    #: AEAD for our 1-RTT packets: "aes128gcm", "chacha20", or None for AES-GCM
    #: where the CPU has AES instructions and ChaCha20-Poly1305 elsewhere.
    aead: str | None = None
    #: Source of key material (ephemeral keys, tokens). Simulations may pass a
    #: seeded generator's randbytes to replay runs exactly.
    crypto_randbytes: Callable[[int], bytes] = os.urandom
    #: Update the 1-RTT send keys after this many packets under one key.
    key_update_after_packets: int = 1 << 22
    #: Server endpoint: answer INITIALs without a valid token with RETRY.
    require_retry: bool = False
    #: Server endpoint: once this many handshakes are pending (connections
    #: created by an INITIAL that have not completed their handshake), answer
    #: further INITIALs without a valid token with RETRY, so a flood from
    #: spoofed addresses keeps at most this many half-open connections while
    #: real clients, which echo the token, still get in. None: RETRY only with
    #: ``require_retry``.
    retry_when_pending_handshakes: int | None = 128
    #: Server endpoint secret for retry and stateless-reset tokens (32 random
    #: bytes per endpoint when None).
    endpoint_secret: bytes | None = None
    #: Length of the connection IDs this endpoint issues: 0, or 4..20 bytes.
    #: 0 (RFC 9000 §5.2) saves that many bytes in every 1-RTT packet the peer
    #: sends us, but short headers are then routed by the peer's address alone:
    #: one connection per peer address, no migration or NAT rebinding (a packet
    #: from another address is dropped and counted), no stateless reset.
    connection_id_length: int = DEFAULT_CID_LENGTH
    #: Accept compact STREAM frames (wire format §10.25: 2 bytes less per bulk
    #: packet) and say so to the peer (transport parameter COMPACT_STREAM).
    #: Whether *we* send them depends only on the peer's parameter.
    compact_stream_frames: bool = True
    #: Largest UDP payload we send (and advertise we accept).
    max_datagram_size: int = 1400
    #: Probe the path for datagrams larger than 1200 bytes, up to
    #: max_datagram_size (RFC 8899); off: send max_datagram_size at once.
    pmtu_discovery: bool = True
    idle_timeout_s: float = 30.0
    #: Send a PING when nothing ack-eliciting was sent for this long (None: off).
    keepalive_interval_s: float | None = None
    handshake_timeout_s: float = 10.0

    # flow control
    # Initial windows cover a 50 Mbit/s x 100 ms path with room for loss
    # recovery; they grow further (auto-tuning) when the application reads fast.
    initial_max_data: int = 4 * MiB
    initial_max_stream_data: int = 1 * MiB
    max_connection_window: int = 32 * MiB
    max_stream_window: int = 16 * MiB
    max_streams_bidi: int = 128
    max_streams_uni: int = 128
    #: Bytes a stream's send buffer holds before writes are refused.
    #: The buffer grows on demand (a ring starting at 16 KiB). A bulk sender on
    #: a lossy, high-BDP path can run dry at this size (data lost twice holds the
    #: head of the buffer for several round trips): raise it there, e.g. to
    #: 4 MiB (benchmarks/bench_cc.py does); servers with many streams keep less.
    stream_send_buffer_bytes: int = 1 * MiB

    # forward error correction (docs/fec.md)
    #: "off", "fixed" (always ``fec_block`` = (k, m)) or "adaptive" (k and m
    #: from the measured loss; no repair traffic on a clean path).
    fec: str = "off"
    fec_block: tuple[int, int] = (10, 2)
    #: A block closes after this long even if it has fewer than k sources.
    fec_latency_budget_s: float = 0.010
    #: Tell congestion control about losses that FEC repaired (RFC 9265).
    fec_report_losses: bool = True

    # unreliable datagrams
    max_datagram_frame_size: int = 1200
    max_queued_datagrams: int = 256
    max_received_datagrams: int = 256

    # acknowledgements and recovery
    max_ack_delay_s: float = 0.025
    ack_eliciting_threshold: int = 2
    #: ACK decimation cap: at high arrival rates one ACK per this many
    #: ack-eliciting packets, about four per round trip (transport/ack.py);
    #: equal to ``ack_eliciting_threshold`` for plain RFC 9000 behaviour.
    max_ack_eliciting_threshold: int = 10
    ack_delay_exponent: int = 3
    max_ack_ranges: int = 64
    initial_rtt_s: float = 0.333
    #: Factory building the congestion controller: ``factory(max_datagram_size=...)``.
    congestion_control: Callable[..., CongestionController] = field(
        default_factory=_default_congestion
    )
    #: ECN (RFC 9000 §13.4): mark sent datagrams ECT(0) and validate the path's
    #: echo (marking stops for good where validation fails), count received
    #: codepoints and report them in ACK_ECN frames. CE marks are congestion
    #: signals. Drivers must pass codepoints both ways (``ecn_codepoint``,
    #: ``receive_datagram(ecn=...)``); without them validation simply fails.
    ecn: bool = True
    #: Skip one packet number in about this many, to catch optimistic ACKs (0: never).
    skip_packet_number_every: int = 256

    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ConfigurationError(
                f"security must be one of {SECURITY_MODES}, not {self.security!r}"
            )
        if self.connection_id_length != 0 and not 4 <= self.connection_id_length <= MAX_CID_LENGTH:
            raise ConfigurationError("connection_id_length must be 0 or 4..20")
        if not MIN_INITIAL_DATAGRAM_SIZE <= self.max_datagram_size <= 65527:
            raise ConfigurationError("max_datagram_size must be 1200..65527")
        pending = self.retry_when_pending_handshakes
        if pending is not None and pending < 1:
            raise ConfigurationError("retry_when_pending_handshakes must be >= 1 or None")
        for name in (
            "idle_timeout_s",
            "handshake_timeout_s",
            "max_ack_delay_s",
            "initial_rtt_s",
        ):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be positive")
        for name in (
            "initial_max_data",
            "initial_max_stream_data",
            "stream_send_buffer_bytes",
            "max_queued_datagrams",
            "max_received_datagrams",
            "ack_eliciting_threshold",
            "max_ack_eliciting_threshold",
            "max_ack_ranges",
        ):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        if self.max_connection_window < self.initial_max_data:
            raise ConfigurationError("max_connection_window must be >= initial_max_data")
        if self.max_stream_window < self.initial_max_stream_data:
            raise ConfigurationError("max_stream_window must be >= initial_max_stream_data")
        if not 0 <= self.max_streams_bidi < 2**60 or not 0 <= self.max_streams_uni < 2**60:
            raise ConfigurationError("stream limits must be 0..2**60-1")
        if not 0 <= self.ack_delay_exponent <= 20:
            raise ConfigurationError("ack_delay_exponent must be 0..20")
        if self.keepalive_interval_s is not None and self.keepalive_interval_s <= 0:
            raise ConfigurationError("keepalive_interval_s must be positive or None")
        if self.fec not in ("off", "fixed", "adaptive"):
            raise ConfigurationError("fec must be 'off', 'fixed' or 'adaptive'")
        k, m = self.fec_block
        if not (1 <= k <= 64 and 1 <= m <= k):
            raise ConfigurationError("fec_block needs 1 <= k <= 64 and 1 <= m <= k")
        if not self.fec_latency_budget_s > 0:
            raise ConfigurationError("fec_latency_budget_s must be positive")
        if self.aead not in (None, "aes128gcm", "chacha20"):
            raise ConfigurationError("aead must be 'aes128gcm', 'chacha20' or None")
        if self.key_update_after_packets < 16:
            raise ConfigurationError("key_update_after_packets must be at least 16")
        if self.server_public_key is not None and len(self.server_public_key) != 32:
            raise ConfigurationError("server_public_key must be a 32-byte X25519 public key")
        if self.endpoint_secret is not None and len(self.endpoint_secret) < 16:
            raise ConfigurationError("endpoint_secret must be at least 16 bytes")
        if self.skip_packet_number_every < 0:
            raise ConfigurationError("skip_packet_number_every must be >= 0")
