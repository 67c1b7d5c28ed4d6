"""``Endpoint.receive_datagrams`` (a batch) behaves exactly as
``Endpoint.receive_datagram`` called for each datagram in turn.

Two worlds are built from the same seeds: in one the server endpoint gets the
client's datagrams one call each, in the other as one batch per flight. Each
flight also carries datagrams that leave the fast path -- a corrupted copy, a
duplicate, a short header for an unknown connection, one from another address
-- placed between runs of good ones. Every output datagram (its size with
Noise, whose ephemeral keys are not seeded), event and counter of both worlds
must be identical.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from helpers import forge_short_packet, make_config

from transport import Endpoint
from transport.events import StreamReadable
from transport.scratch import scratch

Address = tuple[str, int]
CLIENT = ("10.0.0.1", 5000)
OTHER = ("10.0.0.9", 6000)
SERVER = ("10.0.0.2", 4433)


def _gro_groups(flight: list[tuple[bytes, Address]], codepoints: list[int]
                ) -> tuple[list[tuple[bytes, int, Address]], list[int]]:
    """The flight as a GRO receive would hand it over: consecutive datagrams
    from one address with one codepoint and one size (the last of a group may
    be shorter) joined into one buffer (at most 64 each)."""
    groups: list[tuple[bytes, int, Address]] = []
    codes: list[int] = []
    i = 0
    while i < len(flight):
        data, addr = flight[i]
        code = codepoints[i] if codepoints else 0
        j = i + 1
        while (j < len(flight) and j - i < 64 and flight[j][1] == addr
               and (not codepoints or codepoints[j] == code)
               and len(flight[j][0]) <= len(data) and len(flight[j - 1][0]) == len(data)):
            j += 1
        groups.append((b"".join(d for d, _ in flight[i:j]), len(data) if j - i > 1 else 0, addr))
        codes.append(code)
        i = j
    return groups, codes if codepoints else []


def _run(batched: bool, security: str, violate: str = "", ecn: bool = False,
         gro: bool = False) -> list[Any]:
    if security == "noise":
        from transport.crypto.keys import generate_keypair

        keypair = generate_keypair(make_config(7).crypto_randbytes)
        server_cfg = make_config(2, security="noise", static_key=keypair)
        client_cfg = make_config(1, security="noise", server_public_key=keypair.public)
    elif violate == "connection":  # a connection window below the stream window
        server_cfg = make_config(2, initial_max_data=512 * 1024,
                                 initial_max_stream_data=1024 * 1024)
        client_cfg = make_config(1)
    else:
        server_cfg, client_cfg = make_config(2), make_config(1)
    # every random byte seeded too (stateless resets, ephemeral keys): the two
    # worlds must be byte-identical
    server_cfg = dataclasses.replace(server_cfg, endpoint_secret=b"s" * 32,
                                     crypto_randbytes=random.Random(3).randbytes)
    client_cfg = dataclasses.replace(client_cfg, endpoint_secret=b"c" * 32,
                                     crypto_randbytes=random.Random(4).randbytes)
    client, server = Endpoint(client_cfg), Endpoint(server_cfg, is_server=True)
    now = 1.0
    conn = client.connect(SERVER, now)
    sid = None
    sent = 0
    trace: list[Any] = []
    taken: list[int] = []  # (GRO: the segment size of each group)
    for step in range(60):
        now += 0.001
        while (item := client.next_event()) is not None:
            trace.append(("client", type(item[1]).__name__))
        if sid is None and conn.handshake_completed:
            sid = conn.open_stream()
        if sid is not None and sent < 300_000:
            sent += conn.send_stream_data(sid, bytes(range(256)) * 100)
        flight = [(data, CLIENT) for data, _ in client.datagrams_to_send(now)]
        if step % 7 == 3 and len(flight) > 4:
            data = flight[2][0]
            bad = data[:-1] + bytes([data[-1] ^ 1])  # fails its check
            stranger = bytes([0x40]) + bytes(20) + data[21:]  # unknown DCID
            flight[3:3] = [(bad, CLIENT), (flight[1][0], CLIENT), (stranger, CLIENT)]
            flight.append((flight[-1][0], OTHER))  # the same packet from elsewhere
        if violate and step == 30:
            # in-order bulk packets, the first beyond the flow-control limit
            srv = server.connections[0]
            flight = [(forge_short_packet(srv.local_cid, 10**6 + i,
                                          [(0x0E, sid, offset, 0, 0, b"z" * 100)]), CLIENT)
                      for i, offset in enumerate(
                          [900_000, 900_100, 900_200] if violate == "connection"
                          else [10**9, 0, 100])]
        # ECN: ECT(0) on every datagram, CE on some (runs of each in a batch)
        codepoints = [3 if (step + i) % 5 == 0 else 2 for i in range(len(flight))] if ecn else []
        if gro:
            groups, codes = _gro_groups(flight, codepoints)
            taken.extend(segment for _, segment, _ in groups)
            server.receive_groups(groups, now, codes)
        elif batched:
            server.receive_datagrams(flight, now, codepoints)
        else:
            for i, (data, addr) in enumerate(flight):
                server.receive_datagram(data, addr, now, codepoints[i] if ecn else 0)
        deadline = server.get_timer()
        if deadline is not None and deadline <= now:
            server.handle_timer(now)
        while (item := server.next_event()) is not None:
            srv_conn, event = item
            trace.append(("server", type(event).__name__))
            if isinstance(event, StreamReadable):
                data, fin = srv_conn.recv_stream_data(event.stream_id)
                trace.append(("read", len(data), fin))
        replies = server.datagrams_to_send(now)
        # (the Noise handshake's ephemeral keys are not seeded: sizes only there)
        trace.append(("replies", [(bytes(d) if security == "none" else len(d), a)
                                  for d, a in replies]))
        client.receive_datagrams([(d, SERVER) for d, a in replies if a == CLIENT], now)
    for srv_conn in server.connections:
        stats = srv_conn.get_stats()
        trace.append(("stats", stats.packets_received, stats.duplicate_packets,
                      stats.datagrams_dropped, stats.bytes_received, stats.migrations))
        trace.append(("ecn", srv_conn._acks.ecn_report))
    if ecn:
        assert any(item[0] == "ecn" and item[1] and item[1][2] > 0 for item in trace)
    assert sent > 100_000 or violate  # the transfer really ran
    if gro:
        assert sum(1 for segment in taken if segment) > 10  # GRO buffers really came
    return trace


@pytest.mark.parametrize("security", ["none", "noise"])
def test_batch_equals_one_by_one(security: str) -> None:
    one_by_one = _run(False, security)
    batched = _run(True, security)
    assert any(item[0] == "read" and item[1] > 0 for item in one_by_one)
    assert batched == one_by_one


@pytest.mark.parametrize("security", ["none", "noise"])
def test_batch_counts_ecn_codepoints_as_one_by_one(security: str) -> None:
    # a batch with mixed codepoints is split into runs of one codepoint each;
    # every packet's codepoint is counted for ACK_ECN exactly as one by one
    assert _run(True, security, ecn=True) == _run(False, security, ecn=True)


@pytest.mark.parametrize("security", ["none", "noise"])
@pytest.mark.parametrize("ecn", [False, True])
def test_gro_buffers_equal_one_by_one(security: str, ecn: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Endpoint.receive_groups: the flights as GRO buffers, bulk ones opened
    # uncut, the rest (corrupt, duplicate, foreign) cut and routed one by one
    from transport import rx_batch

    one_by_one = _run(False, security, ecn=ecn)
    uncut = []
    real = rx_batch.receive_gro

    def counting(*args: Any) -> int:
        uncut.append(real(*args))
        return uncut[-1]

    monkeypatch.setattr(rx_batch, "receive_gro", counting)
    assert _run(True, security, ecn=ecn, gro=True) == one_by_one
    if scratch().stream_runs is not None:  # (native: most datagrams taken uncut)
        assert sum(uncut) > 150 and 0 in uncut


def test_batches_of_other_buffer_types_take_the_general_path() -> None:
    """bytearray / memoryview datagrams (a driver's choice) are routed one by one
    like receive_datagram does, never raising."""
    for kind in (bytearray, memoryview):
        batch_ep = Endpoint(make_config(2), is_server=True)
        single_ep = Endpoint(make_config(2), is_server=True)
        client = Endpoint(make_config(1))
        client.connect(SERVER, 1.0)
        flight = [(kind(data), CLIENT) for data, _ in client.datagrams_to_send(1.0)]
        flight += [(kind(b"\x41" + bytes(40)), CLIENT)] * 3
        batch_ep.receive_datagrams(flight, 1.0)
        for data, addr in flight:
            single_ep.receive_datagram(data, addr, 1.0)
        assert batch_ep.connection_count == single_ep.connection_count
        assert ([len(d) for d, _ in batch_ep.datagrams_to_send(1.0)]
                == [len(d) for d, _ in single_ep.datagrams_to_send(1.0)])


@pytest.mark.parametrize("violate", ["stream", "connection"])
def test_flow_control_violation_inside_a_run(violate: str) -> None:
    """Bulk packets that break stream or connection flow control in a batch
    close the connection exactly as when they come one by one."""
    one_by_one = _run(False, "none", violate=violate)
    assert any(item == ("server", "ConnectionTerminated") for item in one_by_one)
    assert _run(True, "none", violate=violate) == one_by_one


def test_batches_of_other_packets_do_not_retry_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose packets are not the bulk kind (here each STREAM frame comes
    with a PING, as FEC_SOURCE comes with FEC) tries a run once, not once per
    packet (each attempt copies the rest of the batch): at most once."""
    from transport.crypto.packet_runs import StreamRunBuffers

    if scratch().stream_runs is None:
        pytest.skip("needs the native backend")
    calls = []
    real_open = StreamRunBuffers.open_sizes

    def counting_open(self: StreamRunBuffers, *args: Any) -> int:
        calls.append(len(args[3]))  # (the sizes of the datagrams tried)
        return real_open(self, *args)

    server, srv, sid, now = _established(1)
    monkeypatch.setattr(StreamRunBuffers, "open_sizes", counting_open)
    batch = [(forge_short_packet(srv.local_cid, 1000 + i,
                                 [(0x01, 0, 0, 0, 0, None),
                                  (0x0E, sid, 100 * i, 0, 0, b"p" * 100)]), CLIENT)
             for i in range(40)]
    server.receive_datagrams(batch, now)
    assert len(calls) <= 1
    assert srv.get_stats().packets_received >= 40


def _established(seed: int) -> tuple[Endpoint, Any, int, float]:
    client = Endpoint(make_config(seed))
    server = Endpoint(make_config(seed + 1), is_server=True)
    now = 1.0
    conn = client.connect(SERVER, now)
    for _ in range(6):  # handshake
        server.receive_datagrams([(d, CLIENT) for d, _ in client.datagrams_to_send(now)], now)
        client.receive_datagrams([(d, SERVER) for d, _ in server.datagrams_to_send(now)], now)
        now += 0.01
    assert conn.handshake_completed
    return server, server.connections[0], conn.open_stream(), now


@pytest.mark.parametrize("offsets", [
    [0, 101, 251, 201, 301],  # a gap, then the frame that fills it
    [0, 101, 151, 201, 301],  # an overlap
    [0, 101, 201, 301, 401],  # contiguous: one merged delivery
])
@pytest.mark.parametrize("gro", [False, True])
def test_runs_of_frames_that_do_not_continue_each_other(offsets: list[int], gro: bool) -> None:
    """A run merges its frames into one delivery only when each continues the
    last; otherwise frame by frame, with the same result as one by one."""
    results = []
    for batched in (False, True):
        server, srv, sid, now = _established(1)
        # (101 bytes at offset 0, whose varint is a byte shorter: one size, as GRO has)
        flight = [forge_short_packet(srv.local_cid, 1000 + i,
                                     [(0x0E, sid, offset, 0, 0,
                                       bytes([i + 1]) * (100 if offset else 101))])
                  for i, offset in enumerate(offsets)]
        assert len({len(data) for data in flight}) == 1
        if not batched:
            for data in flight:
                server.receive_datagram(data, CLIENT, now)
        elif gro:
            server.receive_groups([(b"".join(flight), len(flight[0]), CLIENT)], now)
        else:
            server.receive_datagrams([(data, CLIENT) for data in flight], now)
        data, fin = srv.recv_stream_data(sid)
        stats = srv.get_stats()
        results.append((data, fin, stats.packets_received, stats.bytes_received,
                        srv._acks.build_ack(now),
                        [len(d) for d, _ in server.datagrams_to_send(now)]))
    assert results[1] == results[0]
    assert len(results[0][0]) == max(offsets) + 100  # every byte arrived, in order
    assert results[0][2] >= len(offsets)  # (and every packet was processed)
