"""Security of the transport, attacked in virtual time.

Every test runs real :class:`~transport.endpoint.Endpoint` objects (so RETRY,
stateless reset and the amplification limit, which live in the endpoint, are
exercised) joined by :class:`Net`, a small deterministic wire defined here:
a fixed one-way delay, an explicit clock, and a ``tamper`` hook through which a
test plays the on-path attacker -- it sees every datagram and decides what is
delivered (dropped, delayed, duplicated, rewritten, replayed). Off-path
attackers ``inject`` datagrams from spoofed addresses. The lossy key-update
test also runs through :func:`transport.sim.transfer.run_transfer`.

Malformed handshake packets are built with the scapy dissector
(:mod:`transport.dissect`) from a recorded legitimate client INITIAL, so they
follow whatever the handshake message layout is and break exactly one thing.

Keys come from ``generate_keypair(randbytes=random.Random(seed).randbytes)``
and every config passes a seeded ``crypto_randbytes``: runs replay exactly.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import VirtualTime

from transport import Config, Connection
from transport.crypto.keys import KeyPair, generate_keypair
from transport.endpoint import Endpoint
from transport.errors import ConfigurationError, InvalidStateError
from transport.events import (
    ConnectionTerminated,
    Event,
    HandshakeCompleted,
    StreamReadable,
    StreamWritable,
)
from transport.sim import Bernoulli, Path
from transport.sim.transfer import run_transfer
from transport.wire.constants import ErrorCode, PacketType

d = pytest.importorskip("transport.dissect")

Address = tuple[str, int]
CLIENT: Address = ("10.0.0.1", 50000)
SERVER: Address = ("10.0.0.2", 4433)
MIN_INITIAL = 1200
RESET_SECRET = bytes(range(32))

SERVER_KEYS = generate_keypair(randbytes=random.Random(101).randbytes)
CLIENT_KEYS = generate_keypair(randbytes=random.Random(202).randbytes)
OTHER_KEYS = generate_keypair(randbytes=random.Random(303).randbytes)

#: errors a server may close a garbage handshake with (besides dropping it)
HANDSHAKE_REJECT_CODES = {
    ErrorCode.HANDSHAKE_FAILED,
    ErrorCode.PROTOCOL_VIOLATION,
    ErrorCode.FRAME_ENCODING_ERROR,
    ErrorCode.CRYPTO_BUFFER_EXCEEDED,
    ErrorCode.TRANSPORT_PARAMETER_ERROR,
}


# ---------------------------------------------------------------- configs --
def _config(seed: int, security: str, **kw: Any) -> Config:
    return Config(
        rng=random.Random(seed),
        security=security,
        crypto_randbytes=random.Random(seed + 10_000).randbytes,
        **kw,
    )


def client_config(seed: int = 1, *, ik: bool = False, security: str = "noise",
                  **kw: Any) -> Config:
    if security == "noise":
        kw.setdefault("server_public_key", SERVER_KEYS.public)
        if ik:
            kw.setdefault("static_key", CLIENT_KEYS)
    return _config(seed, security, **kw)


def server_config(seed: int = 2, *, security: str = "noise", **kw: Any) -> Config:
    if security == "noise":
        kw.setdefault("static_key", SERVER_KEYS)
    return _config(seed, security, **kw)


# ------------------------------------------------------------ the wire ----
Tamper = Callable[[float, Address, Address, bytes], list[tuple[float, bytes]]]


def is_long(data: bytes) -> bool:
    return bool(data) and bool(data[0] & 0x80)


def long_type(data: bytes) -> int:
    return (data[0] & 0x30) >> 4


def is_initial(data: bytes) -> bool:
    return is_long(data) and long_type(data) == PacketType.INITIAL


def is_retry(data: bytes) -> bool:
    return is_long(data) and long_type(data) == PacketType.RETRY


def is_short(data: bytes) -> bool:
    return bool(data) and not data[0] & 0x80


class Net(VirtualTime):
    """Endpoints at addresses, a fixed one-way delay, virtual time, and an attacker.
    The run loop is :class:`helpers.VirtualTime`'s, polling once after all the
    deliveries and once after all the timers of a step."""

    poll_each = False

    def __init__(self, delay_s: float = 0.010) -> None:
        self.delay_s = delay_s
        self.now = 0.0
        self.endpoints: dict[Address, Endpoint] = {}
        self.handlers: dict[Address, Callable[[Connection, Event], None]] = {}
        self.events: dict[Address, list[tuple[Connection, Event]]] = {}
        #: every datagram an endpoint emitted: (time, src, dst, data), before tampering
        self.sent: list[tuple[float, Address, Address, bytes]] = []
        #: every datagram handed to an endpoint: (time, src, dst, data)
        self.delivered: list[tuple[float, Address, Address, bytes]] = []
        self.tamper: Tamper | None = None
        self._heap: list[tuple[float, int, Address, Address, bytes]] = []
        self._seq = 0

    def add(self, addr: Address, endpoint: Endpoint,
            on_event: Callable[[Connection, Event], None] | None = None) -> Endpoint:
        self.endpoints[addr] = endpoint
        self.events.setdefault(addr, [])
        if on_event is not None:
            self.handlers[addr] = on_event
        return endpoint

    def send(self, src: Address, dst: Address, data: bytes, delay_s: float | None = None) -> None:
        """Put a datagram on the wire (an attacker's injection when src is spoofed)."""
        self._seq += 1
        at = self.now + (self.delay_s if delay_s is None else delay_s)
        heapq.heappush(self._heap, (at, self._seq, src, dst, bytes(data)))

    def poll(self) -> None:
        for _ in range(16):
            busy = False
            for addr, ep in list(self.endpoints.items()):
                for data, dst in ep.datagrams_to_send(self.now):
                    busy = True
                    self.sent.append((self.now, addr, dst, data))
                    deliveries = (
                        [(0.0, data)] if self.tamper is None
                        else self.tamper(self.now, addr, dst, data)
                    )
                    for extra_s, payload in deliveries:
                        self.send(addr, dst, payload, self.delay_s + extra_s)
                while (item := ep.next_event()) is not None:
                    busy = True
                    self.events[addr].append(item)
                    handler = self.handlers.get(addr)
                    if handler is not None:
                        handler(*item)
            if not busy:
                return

    # -------------------------------------------------- VirtualTime hooks
    def _next_arrival(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def _pop_due(self) -> list[tuple[float, int, Address, Address, bytes]]:
        due = []
        while self._heap and self._heap[0][0] <= self.now:
            due.append(heapq.heappop(self._heap))
        return due

    def _deliver(self, item: tuple[float, int, Address, Address, bytes]) -> None:
        _at, _seq, src, dst, data = item
        ep = self.endpoints.get(dst)
        if ep is None:
            return  # a spoofed address: nobody listens
        self.delivered.append((self.now, src, dst, data))
        ep.receive_datagram(data, src, self.now)

    def _timer_owners(self) -> list[Endpoint]:
        return list(self.endpoints.values())

    # ------------------------------------------------------------ queries
    def of(self, addr: Address, kind: type) -> list[Any]:
        return [e for _c, e in self.events.get(addr, []) if isinstance(e, kind)]

    def bytes_sent(self, src: Address, dst: Address) -> int:
        return sum(len(data) for _t, s, t, data in self.sent if s == src and t == dst)

    def bytes_delivered(self, src: Address, dst: Address) -> int:
        return sum(len(data) for _t, s, t, data in self.delivered if s == src and t == dst)


@dataclass
class Transfer:
    """A client that writes ``payload`` on one stream once the handshake is done,
    and a server that reads it, joined by a :class:`Net`."""

    net: Net
    client_ep: Endpoint
    server_ep: Endpoint
    payload: bytes
    client_conn: Connection | None = None
    server_conns: list[Connection] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)
    fin: bool = False
    sent_bytes: int = 0
    stream_id: int | None = None

    @property
    def server_conn(self) -> Connection:
        assert self.server_conns, "no server connection"
        return self.server_conns[0]

    def on_client(self, conn: Connection, event: Event) -> None:
        if isinstance(event, HandshakeCompleted):
            self.stream_id = conn.open_stream()
            self._fill(conn)
        elif isinstance(event, StreamWritable):
            self._fill(conn)

    def _fill(self, conn: Connection) -> None:
        if self.stream_id is None or self.sent_bytes >= len(self.payload):
            return
        while self.sent_bytes < len(self.payload):
            chunk = self.payload[self.sent_bytes : self.sent_bytes + 65536]
            last = self.sent_bytes + len(chunk) == len(self.payload)
            accepted = conn.send_stream_data(self.stream_id, chunk, end_stream=last)
            self.sent_bytes += accepted
            if accepted < len(chunk):
                return

    def on_server(self, conn: Connection, event: Event) -> None:
        if conn not in self.server_conns:
            self.server_conns.append(conn)
        if isinstance(event, StreamReadable):
            while True:
                data, fin = conn.recv_stream_data(event.stream_id)
                self.received.extend(data)
                if fin:
                    self.fin = True
                if fin or not data:
                    return

    def done(self) -> bool:
        return self.fin

    def run(self, limit_s: float = 60.0) -> bool:
        return self.net.run_until(self.done, limit_s)

    def stats_drops(self) -> int:
        """Every datagram counted as dropped anywhere (connections and endpoints)."""
        total = (
            self.client_ep.counters.datagrams_dropped
            + self.server_ep.counters.datagrams_dropped
        )
        conns = {c for c in (self.client_conn, *self.server_conns) if c is not None}
        conns.update(self.server_ep.connections)  # also any a forgery may have created
        return total + sum(c.get_stats().datagrams_dropped for c in conns)


def make_transfer(
    client_cfg: Config,
    server_cfg: Config,
    size_bytes: int = 64 * 1024,
    *,
    tamper: Tamper | None = None,
    seed: int = 0,
    max_connections: int = 100_000,
) -> Transfer:
    net = Net()
    net.tamper = tamper
    client_ep = Endpoint(client_cfg, is_server=False)
    server_ep = Endpoint(server_cfg, is_server=True, max_connections=max_connections)
    t = Transfer(net, client_ep, server_ep, random.Random(seed).randbytes(size_bytes))
    net.add(CLIENT, client_ep, t.on_client)
    net.add(SERVER, server_ep, t.on_server)
    t.client_conn = client_ep.connect(SERVER, 0.0)
    return t


def established(t: Transfer) -> bool:
    conn = t.client_conn
    return (
        conn is not None
        and conn.is_established
        and bool(t.server_conns)
        and t.server_conn.is_established
    )


def record_client_initial(**client_kw: Any) -> bytes:
    """The first datagram of a legitimate client (its INITIAL), not delivered."""
    ep = Endpoint(client_config(7, **client_kw), is_server=False)
    ep.connect(SERVER, 0.0)
    out = ep.datagrams_to_send(0.0)
    assert out and is_initial(out[0][0])
    return out[0][0]


# ============================================================ handshakes ===
@pytest.mark.parametrize("ik", [False, True], ids=["NK", "IK"])
@pytest.mark.parametrize("aead", ["aes128gcm", "chacha20"])
def test_encrypted_transfer_completes(ik: bool, aead: str) -> None:
    t = make_transfer(client_config(ik=ik, aead=aead), server_config(aead=aead), 200_000)
    assert t.run(30.0)
    assert bytes(t.received) == t.payload
    assert len(t.net.of(CLIENT, HandshakeCompleted)) == 1
    assert len(t.net.of(SERVER, HandshakeCompleted)) == 1


@pytest.mark.parametrize("ik", [False, True], ids=["NK", "IK"])
def test_peer_static_keys_are_reported(ik: bool) -> None:
    t = make_transfer(client_config(ik=ik), server_config())
    assert t.run(30.0)
    assert t.client_conn is not None
    assert t.client_conn.peer_static_key == SERVER_KEYS.public
    assert t.server_conn.peer_static_key == (CLIENT_KEYS.public if ik else None)


def test_update_keys_needs_encryption() -> None:
    t = make_transfer(client_config(security="none"), server_config(security="none"))
    assert t.run(30.0)
    assert t.client_conn is not None
    with pytest.raises(InvalidStateError):
        t.client_conn.update_keys()


def test_each_side_may_pick_its_own_aead() -> None:
    t = make_transfer(client_config(aead="chacha20"), server_config(aead="aes128gcm"))
    assert t.run(30.0)
    assert bytes(t.received) == t.payload


def test_payload_bytes_never_appear_on_the_wire() -> None:
    for security, expect_visible in (("noise", False), ("none", True)):
        t = make_transfer(client_config(security=security),
                          server_config(security=security), 50_000)
        assert t.run(30.0)
        wire = b"".join(data for _t, _s, _d, data in t.net.sent)
        probes = [t.payload[i : i + 24] for i in range(0, 50_000 - 24, 4999)]
        visible = any(p in wire for p in probes)
        assert visible is expect_visible, security


@pytest.mark.parametrize(
    ("client_security", "server_security"), [("none", "noise"), ("noise", "none")]
)
def test_security_mismatch_fails_the_handshake(client_security: str,
                                               server_security: str) -> None:
    t = make_transfer(client_config(security=client_security),
                      server_config(security=server_security))
    t.net.run_for(5.0)
    assert not t.net.of(CLIENT, HandshakeCompleted)
    assert not t.net.of(SERVER, StreamReadable)
    codes = {e.error_code for e in t.net.of(CLIENT, ConnectionTerminated)}
    assert codes == {ErrorCode.HANDSHAKE_FAILED}


def _assert_refused(t: Transfer) -> None:
    """Both sides end with HANDSHAKE_FAILED; no application data moved."""
    t.net.run_for(5.0)
    client_end = t.net.of(CLIENT, ConnectionTerminated)
    server_end = t.net.of(SERVER, ConnectionTerminated)
    assert [e.error_code for e in client_end] == [ErrorCode.HANDSHAKE_FAILED], client_end
    assert client_end[0].by_peer is True
    assert client_end[0].reason
    assert [e.error_code for e in server_end] == [ErrorCode.HANDSHAKE_FAILED], server_end
    assert server_end[0].by_peer is False
    assert not t.net.of(CLIENT, HandshakeCompleted)
    assert not t.net.of(SERVER, HandshakeCompleted)
    assert not t.net.of(SERVER, StreamReadable)
    # the client never sent a 1-RTT (application) packet
    assert not [1 for _t, s, _d, data in t.net.sent if s == CLIENT and is_short(data)]
    assert (t.client_conn is not None and t.client_conn.is_closed) or t.net.run_until(
        lambda: t.client_conn is not None and t.client_conn.is_closed, t.net.now + 5.0
    )


def test_wrong_server_key_fails_the_handshake() -> None:
    t = make_transfer(client_config(server_public_key=OTHER_KEYS.public), server_config())
    _assert_refused(t)


def test_wrong_server_key_fails_ik_too() -> None:
    t = make_transfer(client_config(ik=True, server_public_key=OTHER_KEYS.public),
                      server_config())
    _assert_refused(t)


def test_unauthorised_ik_client_is_refused() -> None:
    t = make_transfer(client_config(ik=True),
                      server_config(authorized_clients=[OTHER_KEYS.public]))
    _assert_refused(t)


def test_authorisation_callback_refusal() -> None:
    asked: list[bytes] = []

    def nobody(key: bytes) -> bool:
        asked.append(key)
        return False

    t = make_transfer(client_config(ik=True), server_config(authorized_clients=nobody))
    _assert_refused(t)
    assert asked == [CLIENT_KEYS.public]


def test_anonymous_client_is_refused_when_clients_must_authenticate() -> None:
    t = make_transfer(client_config(ik=False),
                      server_config(authorized_clients=[CLIENT_KEYS.public]))
    _assert_refused(t)


@pytest.mark.parametrize("rule", ["list", "set", "callable"])
def test_authorised_ik_client_connects(rule: str) -> None:
    allowed: Any
    asked: list[bytes] = []
    if rule == "list":
        allowed = [OTHER_KEYS.public, CLIENT_KEYS.public]
    elif rule == "set":
        allowed = frozenset({CLIENT_KEYS.public})
    else:
        def allowed(key: bytes) -> bool:
            asked.append(key)
            return key == CLIENT_KEYS.public
    t = make_transfer(client_config(ik=True), server_config(authorized_clients=allowed))
    assert t.run(30.0)
    assert bytes(t.received) == t.payload
    if rule == "callable":
        assert asked == [CLIENT_KEYS.public]


def test_noise_client_without_server_key_is_a_configuration_error() -> None:
    cfg = _config(1, "noise")
    with pytest.raises(ConfigurationError):
        Endpoint(cfg).connect(SERVER, 0.0)


def test_noise_server_without_static_key_is_a_configuration_error() -> None:
    # reported when the server is set up, not when the first peer arrives
    with pytest.raises(ConfigurationError):
        Endpoint(_config(2, "noise"), is_server=True)


@pytest.mark.parametrize(
    "kw",
    [
        {"server_public_key": b"\x01" * 31},
        {"aead": "rot13"},
        {"security": "tls"},
    ],
)
def test_bad_security_settings_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Config(**kw)


def test_handshake_transcript_binds_the_connection_ids() -> None:
    # An on-path attacker rewrites the DCID of the client's first INITIAL (and
    # fixes the CRC). The server sees a consistent packet, but the Noise
    # prologue no longer matches what the client encrypted under.
    rewritten = [0]

    def rewrite(now: float, src: Address, dst: Address, data: bytes) -> list[tuple[float, bytes]]:
        if src == CLIENT and is_initial(data) and not rewritten[0]:
            rewritten[0] += 1
            pkt = d.InitialPacket(data)
            pkt.dcid = bytes(b ^ 0x5A for b in pkt.dcid)
            pkt.crc = None
            return [(0.0, bytes(pkt))]
        return [(0.0, data)]

    t = make_transfer(client_config(), server_config(), tamper=rewrite)
    t.net.run_for(3.0)
    assert rewritten[0] == 1
    assert not t.net.of(SERVER, HandshakeCompleted)
    assert not t.net.of(SERVER, StreamReadable)
    codes = {e.error_code for e in t.net.of(SERVER, ConnectionTerminated)}
    assert codes == {ErrorCode.HANDSHAKE_FAILED}


# ============================================ integrity: flips and replays ===
def _flipper(rng: random.Random, counter: list[int], active: Callable[[], bool]) -> Tamper:
    """Before each datagram, deliver copies of it with one byte flipped: every
    one of the first 40 bytes (all header fields), the last byte (CRC or tag)
    and three random payload bytes."""

    def tamper(now: float, src: Address, dst: Address, data: bytes) -> list[tuple[float, bytes]]:
        if not active():
            return [(0.0, data)]
        positions = set(range(min(40, len(data))))
        positions.add(len(data) - 1)
        positions.update(rng.randrange(len(data)) for _ in range(3))
        out: list[tuple[float, bytes]] = []
        for pos in sorted(positions):
            mutated = bytearray(data)
            mutated[pos] ^= rng.randrange(1, 256)
            out.append((0.0, bytes(mutated)))
        counter[0] += len(out)
        out.append((0.0, data))  # the original arrives last, after its forgeries
        return out

    return tamper


@pytest.mark.parametrize("security", ["noise", "none"])
def test_flipping_any_byte_drops_the_packet_and_the_transfer_survives(security: str) -> None:
    forged = [0]
    holder: list[Transfer] = []
    tamper = _flipper(random.Random(5), forged, lambda: not holder or not holder[0].fin)
    t = make_transfer(client_config(security=security), server_config(security=security),
                      64 * 1024, tamper=tamper)
    holder.append(t)
    assert t.run(30.0), "transfer did not complete under byte flips"
    assert bytes(t.received) == t.payload
    assert forged[0] > 500
    t.net.run_for(0.2)  # deliver the forgeries still in flight
    # nothing was closed by a forgery
    assert not t.net.of(CLIENT, ConnectionTerminated)
    assert not t.net.of(SERVER, ConnectionTerminated)
    assert len(t.server_conns) == 1
    # every forgery was dropped and counted
    assert t.stats_drops() >= forged[0]
    # and none of them left state behind on the server
    t.net.run_for(15.0)
    leftover = len(t.server_ep.connections)
    assert leftover <= 1, f"forged INITIALs left {leftover - 1} connections behind"


def test_replayed_1rtt_packets_are_dropped() -> None:
    replays = [0]

    def replay(now: float, src: Address, dst: Address, data: bytes) -> list[tuple[float, bytes]]:
        if is_short(data):
            replays[0] += 2
            return [(0.0, data), (0.030, data), (1.5, data)]
        return [(0.0, data)]

    t = make_transfer(client_config(), server_config(), 64 * 1024, tamper=replay)
    assert t.run(30.0)
    t.net.run_for(2.0)
    assert bytes(t.received) == t.payload
    assert replays[0] > 40
    assert t.client_conn is not None
    dup = t.client_conn.get_stats().duplicate_packets + t.server_conn.get_stats().duplicate_packets
    drops = t.stats_drops()
    assert dup > 0
    assert dup + drops >= replays[0]
    assert not t.net.of(SERVER, ConnectionTerminated)


def test_replayed_client_initial_creates_no_second_connection() -> None:
    t = make_transfer(client_config(), server_config())
    assert t.run(30.0)
    first = next(data for _t, s, _d, data in t.net.sent if s == CLIENT and is_initial(data))
    for _ in range(5):
        t.net.send(CLIENT, SERVER, first)
    t.net.run_for(1.0)
    assert len(t.server_ep.connections) <= 1
    assert len(t.net.of(SERVER, HandshakeCompleted)) == 1


# ============================================== address validation, DoS ===
def test_client_initial_datagrams_are_at_least_1200_bytes() -> None:
    for ik in (False, True):
        # lose the first two client datagrams so retransmitted INITIALs are seen too
        lost = [0]

        def lose_two(now: float, src: Address, dst: Address, data: bytes,
                     lost: list[int] = lost) -> list[tuple[float, bytes]]:
            if src == CLIENT and lost[0] < 2:
                lost[0] += 1
                return []
            return [(0.0, data)]

        t = make_transfer(client_config(ik=ik), server_config(), tamper=lose_two)
        assert t.run(30.0)
        initials = [data for _t, s, _d, data in t.net.sent if s == CLIENT and is_initial(data)]
        assert len(initials) >= 3
        assert all(len(data) >= MIN_INITIAL for data in initials), [len(x) for x in initials]


def test_unvalidated_server_sends_at_most_three_times_what_it_received() -> None:
    # Only the client's first datagram reaches the server; everything after
    # is lost, so the server never validates the address and keeps probing.
    passed = [0]

    def first_only(now: float, src: Address, dst: Address,
                   data: bytes) -> list[tuple[float, bytes]]:
        if src == CLIENT:
            passed[0] += 1
            return [(0.0, data)] if passed[0] == 1 else []
        return [(0.0, data)]

    t = make_transfer(client_config(ik=True), server_config(), tamper=first_only)
    t.net.run_for(20.0)
    received = t.net.bytes_delivered(CLIENT, SERVER)
    sent = t.net.bytes_sent(SERVER, CLIENT)
    assert received >= MIN_INITIAL
    assert sent > 0, "the server never answered"
    assert sent <= 3 * received, (sent, received)


def test_amplification_limit_holds_at_every_moment_of_a_lossy_handshake() -> None:
    # The server's first flights are lost, so it retransmits before the client
    # can validate its address; at every instant sent <= 3 * received.
    lost = [0]

    def lose_server_start(now: float, src: Address, dst: Address,
                          data: bytes) -> list[tuple[float, bytes]]:
        if src == SERVER and lost[0] < 3:
            lost[0] += 1
            return []
        return [(0.0, data)]

    t = make_transfer(client_config(), server_config(), tamper=lose_server_start)
    assert t.run(30.0)
    received = sent = 0
    validated_at = next(
        (at for at, s, _d, data in t.net.delivered if s == CLIENT and not is_initial(data)),
        float("inf"),
    )
    timeline = sorted(
        [(at, 0, len(data)) for at, s, _d, data in t.net.delivered if s == CLIENT]
        + [(at, 1, len(data)) for at, s, _d, data in t.net.sent if s == SERVER]
    )
    for at, outgoing, size in timeline:
        if at >= validated_at:
            break
        if not outgoing:
            received += size
        else:
            sent += size
            assert sent <= 3 * received, (at, sent, received)


def test_retry_flow_completes_and_creates_no_state_before_the_token() -> None:
    t = make_transfer(client_config(), server_config(require_retry=True), 100_000)
    # first exchange: INITIAL in, RETRY out, nothing kept
    t.net.run_until(lambda: any(is_retry(x[3]) for x in t.net.sent), 1.0)
    assert t.server_ep.connections == []
    retry = next(data for _t, s, _d, data in t.net.sent if s == SERVER and is_retry(data))
    first = next(data for _t, s, _d, data in t.net.sent if s == CLIENT and is_initial(data))
    assert len(retry) <= len(first)
    assert t.run(30.0)
    assert bytes(t.received) == t.payload
    initials = [data for _t, s, _d, data in t.net.sent if s == CLIENT and is_initial(data)]
    assert len(initials) >= 2
    assert all(len(data) >= MIN_INITIAL for data in initials)
    token_initial = d.InitialPacket(initials[1])
    assert token_initial.token, "the second INITIAL must carry the retry token"


@pytest.mark.parametrize("security", ["none", "noise"])
def test_an_answer_to_the_initial_a_retry_voided_is_ignored(security: str) -> None:
    # The server demands RETRY, then stops demanding it (its pending-handshake
    # count fell) just as a copy of the client's first INITIAL arrives: it
    # answers that one with a connection of its own. The client, already on
    # the retried attempt, must not take that answer for the new attempt's.
    t = make_transfer(client_config(security=security),
                      server_config(security=security, require_retry=True), 100_000)
    t.net.run_until(lambda: any(is_retry(x[3]) for x in t.net.sent), 1.0)
    first = next(data for _t, s, _d, data in t.net.sent if s == CLIENT and is_initial(data))
    t.server_ep.config = dataclasses.replace(t.server_ep.config, require_retry=False)
    t.net.send(CLIENT, SERVER, first, delay_s=0.0)
    assert t.run(30.0)
    assert bytes(t.received) == t.payload
    assert len(t.server_ep.connections) >= 1


def test_retry_token_is_bound_to_the_client_address() -> None:
    # The attacker takes the client's token-bearing INITIAL off the wire and
    # sends it from its own address: the server must not accept it there.
    attacker: Address = ("10.6.6.6", 40000)
    stolen: list[bytes] = []

    def steal(now: float, src: Address, dst: Address, data: bytes) -> list[tuple[float, bytes]]:
        if src == CLIENT and is_initial(data) and not stolen:
            pkt = d.InitialPacket(data)
            if pkt.token:
                stolen.append(data)
                return []
        return [(0.0, data)]

    t = make_transfer(client_config(), server_config(require_retry=True), tamper=steal)
    t.net.run_until(lambda: bool(stolen), 2.0)
    assert stolen
    t.net.send(attacker, SERVER, stolen[0], delay_s=0.0)
    t.net.run_for(0.005)
    assert t.server_ep.connections == []
    assert not [1 for _t, s, dst, data in t.net.sent
                if s == SERVER and dst == attacker and not is_retry(data)] or (
        # a stateless INVALID_TOKEN close is allowed, within the 3x limit
        t.net.bytes_sent(SERVER, attacker) <= 3 * len(stolen[0])
    )
    # the genuine client retransmits from its own address and gets in
    assert t.run(30.0)
    assert bytes(t.received) == t.payload


def test_expired_retry_token_is_refused() -> None:
    # Everything the client sends after its first INITIAL is delayed by two
    # minutes: the token has expired when it arrives.
    seen = [0]

    def delay(now: float, src: Address, dst: Address, data: bytes) -> list[tuple[float, bytes]]:
        if src == CLIENT:
            seen[0] += 1
            return [(0.0 if seen[0] == 1 else 120.0, data)]
        return [(0.0, data)]

    t = make_transfer(client_config(handshake_timeout_s=300.0, idle_timeout_s=300.0),
                      server_config(require_retry=True), tamper=delay)
    t.net.run_for(125.0)
    assert seen[0] >= 2
    assert not t.net.of(SERVER, HandshakeCompleted)
    assert t.server_ep.connections == []


def _forged_initial(template: bytes, rng: random.Random, **changes: Any) -> bytes:
    pkt = d.InitialPacket(template)
    pkt.dcid = rng.randbytes(8)
    pkt.scid = rng.randbytes(8)
    for name, value in changes.items():
        setattr(pkt, name, value)
    pkt.crc = None
    return bytes(pkt)


def _spoofed(i: int) -> Address:
    return (f"10.{100 + i // 60000}.{(i // 250) % 240}.{i % 250 + 1}", 1024 + i % 60000)


def test_initial_flood_with_require_retry_creates_no_connections() -> None:
    template = record_client_initial()
    rng = random.Random(9)
    t = make_transfer(client_config(), server_config(require_retry=True), 20_000)
    peak = 0
    for burst in range(20):
        for j in range(50):
            t.net.send(_spoofed(burst * 50 + j), SERVER, _forged_initial(template, rng))
        t.net.run_for(0.004)
        peak = max(peak, len(t.server_ep.connections))
    t.net.run_for(0.05)
    peak = max(peak, len(t.server_ep.connections))
    spoofed = {_spoofed(i) for i in range(1000)}
    flood_in = sum(len(x[3]) for x in t.net.delivered if x[1] in spoofed)
    flood_out = sum(len(x[3]) for x in t.net.sent if x[2] in spoofed)
    assert flood_in >= 1000 * MIN_INITIAL
    assert flood_out <= flood_in  # RETRY is smaller than the INITIAL it answers
    assert peak <= 1  # at most the legitimate client's connection
    assert t.run(30.0), "the legitimate client did not get through the flood"
    assert bytes(t.received) == t.payload
    assert len(t.server_conns) == 1
    assert all(not any(x[2] == a for x in t.net.sent if is_short(x[3])) for a in spoofed)


def test_initial_flood_without_retry_is_bounded_and_cleaned_up() -> None:
    template = record_client_initial()
    rng = random.Random(11)
    net = Net()
    server_ep = net.add(SERVER, Endpoint(server_config(handshake_timeout_s=2.0),
                                         is_server=True, max_connections=64))
    peak = 0
    for burst in range(20):
        for j in range(50):
            net.send(_spoofed(burst * 50 + j), SERVER, _forged_initial(template, rng))
        net.run_for(0.004)
        peak = max(peak, len(server_ep.connections))
    assert peak <= 64
    assert server_ep.counters.connections_refused > 0 or peak < 64
    # the copied message 1 is bound to another connection's CIDs: all fail
    assert not net.of(SERVER, HandshakeCompleted)
    net.run_for(10.0)
    assert server_ep.connections == []


# ------------------------------------------------- malformed handshakes ---
def _crypto_data(template: bytes) -> bytes:
    pkt = d.InitialPacket(template)
    return bytes(next(f for f in pkt.frames if isinstance(f, d.CryptoFrame)).data)


def _initial_with(frames: list[Any], rng: random.Random, **fields: Any) -> bytes:
    """A client INITIAL (padded to 1200 bytes) carrying ``frames``."""
    base = dict(dcid=rng.randbytes(8), scid=rng.randbytes(8), pn=0, pn_length=1)
    base.update(fields)
    pad = max(1, MIN_INITIAL - len(bytes(d.InitialPacket(**base, frames=frames))))
    while True:  # the Length varint may grow with the padding
        out = bytes(d.InitialPacket(**base, frames=[*frames, d.PaddingFrame(run_length=pad)]))
        if len(out) >= MIN_INITIAL or "length" in fields:
            return out
        pad += MIN_INITIAL - len(out)


def _malformed_cases() -> dict[str, Callable[[bytes, random.Random], bytes]]:
    def crypto(data: bytes, **kw: Any) -> Any:
        return d.CryptoFrame(data=data, **kw)

    def flip(msg: bytes, pos: int) -> bytes:
        out = bytearray(msg)
        out[pos] ^= 0x20
        return bytes(out)

    return {
        "bad_crc": lambda m, r: flip(_initial_with([crypto(m)], r), MIN_INITIAL - 1),
        "bad_crc_in_dcid": lambda m, r: flip(_initial_with([crypto(m)], r), 7),
        "truncated_crypto": lambda m, r: _initial_with([crypto(m[: len(m) // 2])], r),
        "crypto_prefix_only": lambda m, r: _initial_with([crypto(m[:3])], r),
        "empty_crypto": lambda m, r: _initial_with([crypto(b"")], r),
        "garbage_noise_message": lambda m, r: _initial_with(
            [crypto(m[:3] + r.randbytes(len(m) - 3))], r),
        "flipped_ephemeral_key": lambda m, r: _initial_with([crypto(flip(m, 4))], r),
        "flipped_ciphertext": lambda m, r: _initial_with([crypto(flip(m, len(m) - 20))], r),
        "flipped_tag": lambda m, r: _initial_with([crypto(flip(m, len(m) - 1))], r),
        "unknown_mode_byte": lambda m, r: _initial_with([crypto(bytes([0x7F]) + m[1:])], r),
        "message_length_65535": lambda m, r: _initial_with(
            [crypto(m[:1] + b"\xff\xff" + m[3:])], r),
        "message_length_zero": lambda m, r: _initial_with([crypto(m[:1] + b"\x00\x00")], r),
        "crypto_length_past_packet": lambda m, r: _initial_with(
            [crypto(m, length=5000)], r),
        "crypto_offset_huge": lambda m, r: _initial_with([crypto(m, offset=2**40)], r),
        "crypto_offset_past_buffer": lambda m, r: _initial_with([crypto(m, offset=60_000)], r),
        "conflicting_crypto_frames": lambda m, r: _initial_with(
            [crypto(m), crypto(r.randbytes(len(m)))], r),
        "initial_length_past_datagram": lambda m, r: _initial_with(
            [crypto(m)], r, length=60_000),
        "token_length_huge": lambda m, r: _initial_with([crypto(m)], r, token_len=2**30),
        "garbage_token": lambda m, r: _initial_with([crypto(m)], r, token=r.randbytes(40)),
        "dcid_too_long": lambda m, r: _initial_with([crypto(m)], r, dcid_len=21),
        "short_dcid": lambda m, r: _initial_with([crypto(m)], r, dcid=b"abc"),
        "stream_frame_in_initial": lambda m, r: _initial_with(
            [crypto(m), d.StreamFrame(stream_id=0, data=b"early data")], r),
    }


@pytest.mark.parametrize("case", sorted(_malformed_cases()))
@pytest.mark.parametrize("require_retry", [False, True], ids=["no_retry", "retry"])
def test_malformed_handshake_packets_are_rejected(case: str, require_retry: bool) -> None:
    rng = random.Random(zlib.crc32(case.encode()))  # hash() is salted per process
    message = _crypto_data(record_client_initial())
    datagram = _malformed_cases()[case](message, rng)
    assert len(datagram) >= MIN_INITIAL or case == "dcid_too_long"
    attacker: Address = ("10.66.0.1", 31337)
    net = Net()
    server_ep = net.add(SERVER, Endpoint(
        server_config(require_retry=require_retry, handshake_timeout_s=2.0), is_server=True))
    for _ in range(3):
        net.send(attacker, SERVER, datagram, delay_s=0.0)
        net.run_for(0.1)
    net.run_for(6.0)
    assert not net.of(SERVER, HandshakeCompleted)
    assert not net.of(SERVER, StreamReadable)
    for end in net.of(SERVER, ConnectionTerminated):
        assert end.error_code in HANDSHAKE_REJECT_CODES, (case, end)
    received = net.bytes_delivered(attacker, SERVER)
    assert net.bytes_sent(SERVER, attacker) <= 3 * received
    assert server_ep.connections == []
    if require_retry:
        assert not net.of(SERVER, ConnectionTerminated)  # no state was ever created


@pytest.mark.parametrize("case", ["garbage_noise_message", "flipped_ciphertext", "flipped_tag"])
def test_undecryptable_message_1_closes_with_handshake_failed(case: str) -> None:
    rng = random.Random(3)
    datagram = _malformed_cases()[case](_crypto_data(record_client_initial()), rng)
    net = Net()
    net.add(SERVER, Endpoint(server_config(), is_server=True))
    attacker: Address = ("10.66.0.2", 31337)
    net.send(attacker, SERVER, datagram, delay_s=0.0)
    net.run_for(1.0)
    ends = net.of(SERVER, ConnectionTerminated)
    # dropped silently, or refused with HANDSHAKE_FAILED -- never anything else
    assert all(e.error_code == ErrorCode.HANDSHAKE_FAILED for e in ends), ends
    assert net.bytes_sent(SERVER, attacker) <= 3 * len(datagram)


def test_a_legitimate_client_connects_after_a_burst_of_malformed_packets() -> None:
    rng = random.Random(21)
    message = _crypto_data(record_client_initial())
    t = make_transfer(client_config(), server_config(handshake_timeout_s=2.0))
    for i, build in enumerate(_malformed_cases().values()):
        t.net.send(_spoofed(i), SERVER, build(message, rng), delay_s=0.001)
    assert t.run(30.0)
    assert bytes(t.received) == t.payload


# ===================================================== stateless reset ====
def test_stateless_reset_ends_the_client_quickly() -> None:
    t = make_transfer(client_config(), server_config(endpoint_secret=RESET_SECRET), 40_000)
    assert t.run(30.0)
    t.net.run_for(0.5)
    # the server loses all state; its replacement shares only the secret
    restarted_at = t.net.now
    t.net.add(SERVER, Endpoint(server_config(seed=99, endpoint_secret=RESET_SECRET),
                               is_server=True), t.on_server)
    assert t.client_conn is not None and t.stream_id is not None
    client = t.client_conn
    sid = client.open_stream()
    client.send_stream_data(sid, b"x" * 3000, end_stream=True)
    t.net.poll()
    ended = t.net.run_until(lambda: bool(t.net.of(CLIENT, ConnectionTerminated)),
                            restarted_at + 2.0)
    assert ended, "client did not notice the stateless reset"
    end = t.net.of(CLIENT, ConnectionTerminated)[0]
    assert "stateless reset" in end.reason.lower()
    assert t.net.now - restarted_at < 1.0
    resets = [(data, dst) for at, s, dst, data in t.net.sent
              if s == SERVER and at >= restarted_at]
    assert resets and all(is_short(data) for data, _ in resets)
    triggers = [data for at, s, _d, data in t.net.sent if s == CLIENT and at >= restarted_at]
    assert max(len(r) for r, _ in resets) < max(len(x) for x in triggers)
    t.net.run_for(2.0)
    assert client.is_closed


def test_forged_stateless_reset_is_ignored() -> None:
    t = make_transfer(client_config(), server_config(endpoint_secret=RESET_SECRET), 200_000)
    t.net.run_until(lambda: established(t), 5.0)
    assert t.client_conn is not None
    rng = random.Random(4)
    for _ in range(20):
        # short header, the client's CID is unknown to an off-path attacker,
        # so try random CIDs as well as random tokens
        t.net.send(SERVER, CLIENT, bytes([0x40 | rng.randrange(64)]) + rng.randbytes(40),
                   delay_s=0.0)
    assert t.run(30.0)
    assert bytes(t.received) == t.payload
    assert not t.net.of(CLIENT, ConnectionTerminated)


def test_no_stateless_reset_for_tiny_or_long_header_datagrams() -> None:
    net = Net()
    net.add(SERVER, Endpoint(server_config(endpoint_secret=RESET_SECRET), is_server=True))
    probe: Address = ("10.7.7.7", 7000)
    net.send(probe, SERVER, bytes([0x41]) + bytes(20), delay_s=0.0)  # 21 bytes
    net.send(probe, SERVER, bytes([0xC1]) + bytes(60), delay_s=0.0)  # long header
    net.run_for(0.1)
    assert net.bytes_sent(SERVER, probe) == 0


# ========================================================== key update ====
def _key_phases(t: Transfer, src: Address) -> list[int]:
    return [(data[0] >> 2) & 1 for _at, s, _d, data in t.net.sent if s == src and is_short(data)]


def _flips(bits: list[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(bits) if a != b)


def test_key_update_after_packet_limit_under_loss_loses_nothing() -> None:
    rng = random.Random(8)

    def lossy(now: float, src: Address, dst: Address, data: bytes) -> list[tuple[float, bytes]]:
        if is_short(data) and rng.random() < 0.03:
            return []
        return [(rng.random() * 0.004, data)]  # a little reordering as well

    t = make_transfer(client_config(key_update_after_packets=64),
                      server_config(key_update_after_packets=64), 600_000, tamper=lossy)
    assert t.run(60.0)
    assert bytes(t.received) == t.payload
    assert _flips(_key_phases(t, CLIENT)) >= 3
    assert t.client_conn is not None
    assert t.client_conn.get_stats().packets_lost > 0
    assert not t.net.of(SERVER, ConnectionTerminated)


def test_update_keys_on_request_mid_transfer() -> None:
    t = make_transfer(client_config(), server_config(), 300_000)
    requested = [False]

    def half_done() -> bool:
        return len(t.received) >= 100_000

    assert t.net.run_until(half_done, 30.0)
    assert t.client_conn is not None
    before = _key_phases(t, CLIENT)
    assert before and _flips(before) == 0
    t.client_conn.update_keys()
    requested[0] = True
    assert t.run(30.0)
    assert bytes(t.received) == t.payload
    assert _flips(_key_phases(t, CLIENT)) == 1
    # the server follows: its packets switch phase too
    assert _flips(_key_phases(t, SERVER)) == 1


def test_key_update_in_the_simulator_under_loss() -> None:
    calls = [0]

    def factory(rng: random.Random) -> Config:
        calls[0] += 1
        crypto = random.Random(rng.random()).randbytes
        common = dict(rng=rng, security="noise", crypto_randbytes=crypto,
                      key_update_after_packets=100)
        if calls[0] == 1:  # run_transfer builds the client's config first
            return Config(server_public_key=SERVER_KEYS.public, **common)  # type: ignore[arg-type]
        return Config(static_key=SERVER_KEYS, **common)  # type: ignore[arg-type]

    path = Path.symmetric(20e6, 0.040, loss=Bernoulli(0.02))
    result = run_transfer(1_500_000, path, seed=3, config=factory, time_limit_s=120.0)
    assert result.completed and result.intact
    assert result.client is not None and result.client.packets_lost > 0
    assert not [x for x in result.terminations if x[1] != ErrorCode.NO_ERROR]


def test_keypair_type_is_what_configs_take() -> None:
    assert isinstance(SERVER_KEYS, KeyPair)
    assert len(SERVER_KEYS.public) == 32 and len(SERVER_KEYS.private) == 32
    again = generate_keypair(randbytes=random.Random(101).randbytes)
    assert again == SERVER_KEYS  # seeded: deterministic tests
