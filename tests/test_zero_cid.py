"""Zero-length connection IDs (``Config.connection_id_length=0``, RFC 9000 §5.2).

Short headers then carry no DCID: the endpoint routes them by the peer's
address. Checked here: many clients (zero-length and 8-byte CIDs mixed)
against a zero-CID server through the simulator, and on loopback sockets
through the threaded API; the batch receive path; RETRY; a packet from an
unknown address is dropped and counted without a stateless reset; a peer that
moves to a new address (migration, NAT rebinding) is refused: its packets are
dropped and counted, the connection stays on the old address and goes on
when the packets come from there again; one connection per address.
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading
from typing import Any

import pytest
from helpers import Pair, make_config

from transport import Config, Connection, Endpoint, threaded
from transport.errors import ConfigurationError, InvalidStateError
from transport.events import ConnectionTerminated, Event, HandshakeCompleted, StreamReadable
from transport.sim import Path, Simulator
from transport.sim.transfer import AppNode

SERVER_ADDR = ("10.0.0.2", 4433)
C_ADDR = ("10.0.0.1", 5000)
MOVED_ADDR = ("10.0.0.9", 6000)


@pytest.mark.parametrize("length", [0, 4, 8, 20])
def test_valid_lengths(length: int) -> None:
    assert Config(connection_id_length=length).connection_id_length == length


@pytest.mark.parametrize("length", [-1, 1, 3, 21])
def test_invalid_lengths(length: int) -> None:
    with pytest.raises(ConfigurationError):
        Config(connection_id_length=length)


# ------------------------------------------------------------ many clients
def test_many_clients_through_the_simulator() -> None:
    clients = 60
    sim = Simulator(seed=8)
    server_ep = Endpoint(Config(security="none", rng=sim.rng("server"),
                                connection_id_length=0), is_server=True)
    received: dict[Any, hashlib._Hash] = {}
    finished: set[Any] = set()
    server_ends: list[ConnectionTerminated] = []

    def on_server(conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, ConnectionTerminated):
            server_ends.append(event)
        elif isinstance(event, StreamReadable):
            while True:
                data, fin = conn.recv_stream_data(event.stream_id)
                received.setdefault(conn.peer_addr, hashlib.sha256()).update(data)
                if fin:
                    finished.add(conn.peer_addr)
                if fin or not data:
                    return

    sim.attach(SERVER_ADDR, AppNode(server_ep, on_server))
    want: dict[Any, bytes] = {}
    for index in range(clients):
        addr = (f"10.1.0.{index + 1}", 40000 + index)
        payload = random.Random(index).randbytes(30_000 + 97 * index)
        want[addr] = hashlib.sha256(payload).digest()
        # half the clients use zero-length CIDs too, half 8-byte ones
        ep = Endpoint(Config(security="none", rng=sim.rng(f"c{index}"),
                             connection_id_length=0 if index % 2 else 8))

        def on_event(conn: Connection, event: Event, now: float, payload: bytes = payload) -> None:
            if isinstance(event, HandshakeCompleted):
                sid = conn.open_stream()
                conn.send_stream_data(sid, payload, end_stream=True)
                conn.close()

        sim.attach(addr, AppNode(ep, on_event))
        sim.connect(addr, SERVER_ADDR, Path.symmetric(20e6, 0.020, name=f"c{index}"))
        ep.connect(SERVER_ADDR, 0.0)

    sim.run(until_s=60.0, stop_when=lambda: len(server_ends) == clients)
    assert finished == set(want)
    assert {addr: h.digest() for addr, h in received.items()} == want
    assert all(e.error_code == 0 and e.by_peer for e in server_ends)
    assert server_ep.counters.unknown_address_drops == 0
    sim.run(until_s=sim.now + 5.0)
    assert server_ep.connections == []


def test_many_clients_on_loopback_sockets() -> None:
    clients = 12
    config = Config(security="none", connection_id_length=0)
    with threaded.listen(("127.0.0.1", 0), config=config) as listener:
        def serve() -> None:
            for _ in range(clients):
                stream, _peer = listener.accept(timeout=10)
                threading.Thread(target=_echo, args=(stream,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        results: dict[int, bool] = {}
        errors: list[BaseException] = []

        def client(i: int) -> None:
            try:
                with threaded.connect(listener.local_address, config=config,
                                      timeout=10) as stream:
                    message = random.Random(i).randbytes(50_000 + i)
                    stream.sendall(message)
                    stream.shutdown(socket.SHUT_WR)
                    got = bytearray()
                    while part := stream.recv(65536):
                        got += part
                    results[i] = bytes(got) == message
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        assert results == dict.fromkeys(range(clients), True)


def _echo(stream: threaded.Stream) -> None:
    with stream:
        while data := stream.recv(65536):
            stream.sendall(data)


# ------------------------------------------------------ two endpoints, direct
class _Link:
    """A client endpoint and a zero-CID server endpoint joined directly; the
    server sees the client's datagrams from ``client_addr`` (changeable), in
    batches through ``receive_datagrams``."""

    def __init__(self, seed: int = 30, **server_kw: Any) -> None:
        self.client = Endpoint(make_config(seed, connection_id_length=0))
        self.server = Endpoint(make_config(seed + 1, connection_id_length=0, **server_kw),
                               is_server=True)
        self.client_addr = C_ADDR
        self.now = 0.0
        self.conn = self.client.connect(SERVER_ADDR, self.now)
        self.received = bytearray()
        self.gro = False  # hand the server GRO buffers (receive_groups) instead

    def pump(self) -> None:
        for _ in range(200):
            to_server = self.client.datagrams_to_send(self.now)
            to_client = self.server.datagrams_to_send(self.now)
            if not to_server and not to_client:
                return
            if to_server and self.gro:
                self.server.receive_groups(_as_gro_buffers(to_server, self.client_addr),
                                           self.now)
            elif to_server:
                self.server.receive_datagrams([(d, self.client_addr) for d, _ in to_server],
                                              self.now)
            if to_client:
                self.client.receive_datagrams([(d, SERVER_ADDR) for d, _ in to_client],
                                              self.now)
            self._read()
            self.now += 0.005
            for ep in (self.client, self.server):
                deadline = ep.get_timer()
                if deadline is not None and deadline <= self.now:
                    ep.handle_timer(self.now)
        raise AssertionError("never went quiet")

    def _read(self) -> None:
        while (item := self.server.next_event()) is not None:
            conn, event = item
            if isinstance(event, StreamReadable):
                data, _fin = conn.recv_stream_data(event.stream_id)
                self.received += data
        while self.client.next_event() is not None:
            pass

    @property
    def server_conn(self) -> Connection:
        (conn,) = self.server.connections
        return conn


def _as_gro_buffers(flight: list[tuple[bytes, Any]], addr: Any
                    ) -> list[tuple[bytes, int, Any]]:
    """Consecutive datagrams of one size (the last of a group may be shorter)
    joined into one buffer, as a GRO receive hands them over."""
    groups: list[tuple[bytes, int, Any]] = []
    i = 0
    while i < len(flight):
        size = len(flight[i][0])
        j = i + 1
        while j < len(flight) and j - i < 64 and len(flight[j - 1][0]) == size \
                and len(flight[j][0]) <= size:
            j += 1
        groups.append((b"".join(d for d, _ in flight[i:j]), size if j - i > 1 else 0, addr))
        i = j
    return groups


def _transfer_400_kb(link: _Link, seed: int) -> None:
    """400 kB client -> server over ``link``: every byte arrives, nothing dropped."""
    sid = link.conn.open_stream()
    payload = random.Random(seed).randbytes(400_000)
    link.conn.send_stream_data(sid, payload)
    while len(link.received) < len(payload):
        link.pump()
        link.now += 0.05
    assert bytes(link.received) == payload
    assert link.server.counters.datagrams_dropped == 0


def test_gro_buffers_are_routed_by_address_and_opened_uncut(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from transport import rx_batch
    from transport.scratch import scratch

    uncut: list[int] = []
    real = rx_batch.receive_gro

    def counting(*args: Any) -> int:
        uncut.append(real(*args))
        return uncut[-1]

    monkeypatch.setattr(rx_batch, "receive_gro", counting)
    link = _Link()
    link.gro = True
    link.pump()
    _transfer_400_kb(link, seed=2)
    if scratch().stream_runs is not None:  # (native: bulk buffers taken uncut)
        assert sum(uncut) > 50


def test_batches_are_routed_by_address() -> None:
    link = _Link()
    link.pump()
    assert link.conn.is_established and link.server_conn.is_established
    assert link.conn.peer_cid == b"" and link.server_conn.peer_cid == b""
    assert link.server_conn.peer_reset_token is None  # nothing to reset with
    _transfer_400_kb(link, seed=1)


def test_unknown_address_is_dropped_and_counted_without_a_reset() -> None:
    link = _Link()
    link.pump()
    sid = link.conn.open_stream()
    link.conn.send_stream_data(sid, b"x" * 5000)
    packets = [d for d, _ in link.client.datagrams_to_send(link.now)]
    assert packets and not packets[0][0] & 0x80
    before = link.server.counters.datagrams_dropped
    link.server.receive_datagram(packets[0], ("192.0.2.7", 9999), link.now)
    link.server.receive_datagrams([(p, ("192.0.2.8", 9999)) for p in packets], link.now)
    assert link.server.counters.unknown_address_drops == 1 + len(packets)
    assert link.server.counters.datagrams_dropped == before + 1 + len(packets)
    assert link.server.counters.stateless_resets_sent == 0
    assert link.server.datagrams_to_send(link.now) == []


def test_migration_is_refused_and_the_old_path_goes_on() -> None:
    link = _Link()
    link.pump()
    server_conn = link.server_conn
    sid = link.conn.open_stream()
    first = random.Random(2).randbytes(30_000)
    link.conn.send_stream_data(sid, first)
    link.pump()
    assert bytes(link.received) == first
    # the client's NAT rebinds: its packets now come from another address
    link.client_addr = MOVED_ADDR
    link.conn.send_stream_data(sid, b"lost on the new path" * 100)
    drops = link.server.counters.unknown_address_drops
    link.pump()
    assert link.server.counters.unknown_address_drops > drops
    assert server_conn.peer_addr == C_ADDR and server_conn.counters.migrations == 0
    assert bytes(link.received) == first
    # back on the old address: the data is resent and arrives
    link.client_addr = C_ADDR
    for _ in range(20):
        link.now += 0.5
        link.client.handle_timer(link.now)
        link.pump()
    assert bytes(link.received) == first + b"lost on the new path" * 100
    assert server_conn.counters.migrations == 0


def test_a_bare_connection_without_cid_refuses_a_new_peer_address() -> None:
    """The same rule in the Connection itself (without an Endpoint in front)."""
    pair = Pair(make_config(1, connection_id_length=0), make_config(2, connection_id_length=0))
    pair.handshake()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"y" * 1000)
    packets = [d for d, _ in pair.client.datagrams_to_send(pair.now)]
    dropped = pair.server.counters.datagrams_dropped
    for packet in packets:
        pair.server.receive_datagram(packet, MOVED_ADDR, pair.now)
    assert pair.server.counters.datagrams_dropped == dropped + len(packets)
    assert pair.server.counters.migrations == 0
    assert pair.server.peer_addr != MOVED_ADDR


def test_with_an_8_byte_cid_the_same_move_is_a_migration() -> None:
    """The control for the test above: with CIDs the server follows the peer."""
    pair = Pair(make_config(1), make_config(2))
    pair.handshake()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"y" * 1000)
    for packet, _ in pair.client.datagrams_to_send(pair.now):
        pair.server.receive_datagram(packet, MOVED_ADDR, pair.now)
    assert pair.server.counters.migrations == 1 and pair.server.peer_addr == MOVED_ADDR


def test_one_connection_per_peer_address() -> None:
    client = Endpoint(make_config(40, connection_id_length=0))
    client.connect(SERVER_ADDR, 0.0)
    with pytest.raises(InvalidStateError):
        client.connect(SERVER_ADDR, 0.0)
    client.connect(("10.0.0.3", 4433), 0.0)  # another peer is fine
    # a server refuses a second connection from an address in use
    server = Endpoint(make_config(41, connection_id_length=0), is_server=True)
    for seed in (1, 2):
        other = Connection(make_config(seed), is_client=True)
        other.connect(SERVER_ADDR, 0.0)
        for data, _ in other.datagrams_to_send(0.0):
            server.receive_datagram(data, C_ADDR, 0.0)
    assert server.connection_count == 1
    assert server.counters.connections_refused == 1


def test_retry_with_zero_length_cids() -> None:
    link = _Link(require_retry=True)
    link.pump()
    assert link.server.counters.retries_sent == 1
    assert link.conn.is_established and link.server_conn.is_established
    sid = link.conn.open_stream()
    link.conn.send_stream_data(sid, b"after retry")
    link.pump()
    assert bytes(link.received) == b"after retry"


def test_a_known_original_dcid_from_another_address_is_dropped() -> None:
    """The client's original DCID routes its INITIALs only from its own
    address: a copy from elsewhere opens no second connection."""
    server = Endpoint(make_config(42, connection_id_length=0), is_server=True)
    client = Connection(make_config(3), is_client=True)
    client.connect(SERVER_ADDR, 0.0)
    (initial, _), = client.datagrams_to_send(0.0)
    server.receive_datagram(initial, C_ADDR, 0.0)
    server.receive_datagram(initial, MOVED_ADDR, 0.0)
    assert server.connection_count == 1
    assert server.counters.unknown_address_drops == 1
    server.receive_datagram(initial, C_ADDR, 0.0)  # a copy from the client itself is its own
    assert server.connection_count == 1 and server.counters.unknown_address_drops == 1
