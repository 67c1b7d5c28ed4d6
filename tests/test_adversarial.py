"""Adversarial peers, in virtual time.

Each test plays a hostile or broken peer against a real connection (or
endpoint) and checks the outcome the design promises: a protocol error for
lies, memory within the advertised windows for floods, no busy loop for slow
readers, bounded state for spoofed handshakes and connection-ID floods.

The attacker forges packets with :func:`helpers.forge_short_packet`
(``security="none"``: a valid CRC32C is all a forger needs, so these packets
reach frame handling exactly like the peer's own). Memory is measured from the
outside with :mod:`tracemalloc` (the growth of traced Python allocations
during the attack), never by reading private attributes. Endpoint-level
floods reuse the virtual wire of ``tests/test_security.py`` and extend its
flood tests rather than repeating them.
"""

from __future__ import annotations

import contextlib
import random
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from helpers import (
    CLIENT_ADDR,
    SERVER_ADDR,
    Pair,
    forge_short_packet,
    make_config,
    read_all,
)
from test_security import (
    CLIENT,
    SERVER,
    Net,
    _crypto_data,
    _initial_with,
    _spoofed,
    client_config,
    d,
    make_transfer,
    record_client_initial,
    server_config,
)

from transport.crypto.keys import generate_keypair
from transport.endpoint import Endpoint
from transport.errors import StreamError
from transport.events import ConnectionTerminated, HandshakeCompleted, StreamReadable
from transport.wire import decode_header, decode_packet_number
from transport.wire.constants import ErrorCode, FrameType

KiB = 1024
MiB = 1024 * KiB
FORGED_PN_BASE = 1_000_000  # forged packets use packet numbers above the peer's


# ---------------------------------------------------------------- helpers --
# the package's allocations, minus the dissector (the tests' own forging tool)
_OURS = [tracemalloc.Filter(True, "*/transport/*"),
         tracemalloc.Filter(False, "*/transport/dissect/*")]


@contextmanager
def traced() -> Iterator[dict[str, int]]:
    """Measure allocations during the block: ``current`` is the growth of memory
    still held at the end by code of the ``transport`` package (the test's own
    recordings are excluded), ``peak`` the peak growth of everything traced."""
    result: dict[str, int] = {}
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(_OURS)
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        yield result
        _current, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot().filter_traces(_OURS)
        result["current"] = sum(s.size_diff for s in after.compare_to(before, "filename"))
        result["peak"] = peak - base
    finally:
        tracemalloc.stop()


def established_pair(client_kw: dict | None = None, server_kw: dict | None = None) -> Pair:
    pair = Pair(make_config(1, **(client_kw or {})), make_config(2, **(server_kw or {})))
    pair.handshake()
    return pair


class Forger:
    """Sends forged 1-RTT packets to one side of a pair, with fresh numbers."""

    def __init__(self, pair: Pair, *, to_server: bool) -> None:
        self.pair = pair
        self.to_server = to_server
        self.pn = FORGED_PN_BASE
        # The forger speaks for the other side: the real one must not hear the
        # victim's answers (ACKs of numbers it never used would make it close).
        if to_server:
            pair.drop_to_client = lambda data, now: True
        else:
            pair.drop_to_server = lambda data, now: True

    def send(self, frames: list[tuple], deliver: bool = True) -> bytes:
        target = self.pair.server if self.to_server else self.pair.client
        self.pn += 1
        packet = forge_short_packet(target.local_cid, self.pn, frames)
        if deliver:
            self.pair.inject(packet, to_server=self.to_server)
        return packet


def terminations(pair: Pair, side: str) -> list[ConnectionTerminated]:
    return pair.events_of(side, ConnectionTerminated)


def stream_frame(stream_id: int, offset: int, data: bytes, fin: bool = False) -> tuple:
    # STREAM with OFF and LEN bits (and FIN)
    return (FrameType.STREAM | 0x04 | 0x02 | int(fin), stream_id, offset, 0, 0, data)


def ack_frame(low: int, high: int) -> tuple:
    return (FrameType.ACK, high, 0, 0, 0, (low, high))


def short_packet_numbers(pair: Pair, direction: str, cid_len: int) -> list[int]:
    """Full packet numbers of the short-header packets sent one way (security
    "none" leaves the header in clear)."""
    numbers: list[int] = []
    largest = -1
    for _t, way, data in pair.sent:
        if way != direction or data[0] & 0x80:
            continue
        header = decode_header(data, cid_len)
        truncated = int.from_bytes(
            data[header.pn_offset : header.pn_offset + header.pn_length], "big"
        )
        pn = decode_packet_number(truncated, header.pn_length, largest)
        largest = max(largest, pn)
        numbers.append(pn)
    return numbers


# =========================================================== optimistic ACK
def _bulk_from_server(pair: Pair, size: int) -> int:
    sid = pair.server.open_stream()
    pair.server.send_stream_data(sid, bytes(size))
    return sid


def test_ack_of_a_packet_number_never_sent_closes_with_protocol_violation() -> None:
    pair = established_pair()
    _bulk_from_server(pair, 20_000)
    pair.run_for(0.05)
    sent = short_packet_numbers(pair, "s2c", pair.server.config.connection_id_length)
    Forger(pair, to_server=True).send([ack_frame(0, max(sent) + 1000)])
    ends = terminations(pair, "server")
    assert [e.error_code for e in ends] == [ErrorCode.PROTOCOL_VIOLATION], ends
    assert ends[0].by_peer is False


def test_optimistic_ack_over_a_skipped_packet_number_is_caught() -> None:
    # The server skips about one packet number in 8; the optimistic client acks
    # every number up to the largest it has seen -- including a skipped one.
    pair = established_pair(server_kw={"skip_packet_number_every": 8})
    pair.drop_to_client = lambda data, now: not data[0] & 0x80  # no honest ACK path needed
    _bulk_from_server(pair, 400_000)
    pair.drop_to_server = lambda data, now: True  # the client's honest ACKs never arrive
    pair.run_for(0.02)
    sent = short_packet_numbers(pair, "s2c", pair.server.config.connection_id_length)
    largest = max(sent)
    skipped = sorted(set(range(min(sent), largest)) - set(sent))
    assert skipped, "the server skipped no packet number (raise the load)"
    pair.drop_to_server = None
    Forger(pair, to_server=True).send([ack_frame(0, largest)])
    ends = terminations(pair, "server")
    assert [e.error_code for e in ends] == [ErrorCode.PROTOCOL_VIOLATION], (ends, skipped[:5])


def test_honest_acks_with_frequent_skips_complete_a_transfer() -> None:
    """The control: skipping numbers never trips an honest peer."""
    pair = established_pair(server_kw={"skip_packet_number_every": 4})
    sid = _bulk_from_server(pair, 0)
    payload = random.Random(3).randbytes(300_000)
    sent = 0
    got = bytearray()

    def step() -> bool:
        nonlocal sent
        if sent < len(payload):
            sent += pair.server.send_stream_data(sid, payload[sent : sent + 65536],
                                                 end_stream=sent + 65536 >= len(payload))
        for e in pair.events_of("client", StreamReadable):
            if e.stream_id == sid:
                data, _fin = read_all(pair.client, sid)
                got.extend(data)
        pair.client_events.clear()
        return len(got) == len(payload)

    assert pair.run_until(step, 30.0)
    assert bytes(got) == payload
    assert not terminations(pair, "server") and not terminations(pair, "client")


# ============================================ reorder gaps, huge offsets ====
WINDOW_KW = {
    "initial_max_stream_data": 256 * KiB,
    "max_stream_window": 256 * KiB,
    "initial_max_data": 1 * MiB,
    "max_connection_window": 1 * MiB,
}


def test_reorder_gap_flood_stays_within_the_stream_window() -> None:
    # 1-byte fragments every other byte across the whole stream window: the
    # receiver holds them (or refuses the fragmentation with
    # PROTOCOL_VIOLATION) but never more memory than the window allows.
    pair = established_pair(server_kw=WINDOW_KW)
    forger = Forger(pair, to_server=True)
    window = WINDOW_KW["initial_max_stream_data"]
    with traced() as mem:
        for base in range(2, window, 2 * 100):
            frames = [stream_frame(0, off, b"x") for off in range(base, min(base + 200, window), 2)]
            forger.send(frames)
            if terminations(pair, "server"):
                break
    ends = terminations(pair, "server")
    assert all(e.error_code == ErrorCode.PROTOCOL_VIOLATION for e in ends), ends
    # the window's bytes plus bookkeeping for the ranges, never a multiple of it
    assert mem["peak"] < 2 * window + 512 * KiB, mem


@pytest.mark.parametrize("offset", [2**62 - 20, 2**40, 256 * KiB])
def test_data_beyond_the_advertised_window_is_a_flow_control_error(offset: int) -> None:
    pair = established_pair(server_kw=WINDOW_KW)
    with traced() as mem:
        Forger(pair, to_server=True).send([stream_frame(0, offset, b"y" * 10)])
    ends = terminations(pair, "server")
    assert [e.error_code for e in ends] == [ErrorCode.FLOW_CONTROL_ERROR], ends
    assert mem["peak"] < 256 * KiB, mem


def test_last_byte_of_every_stream_window_hits_the_connection_window() -> None:
    # One byte at the end of each stream's window: each stream alone is legal,
    # but together they exceed the 1 MiB connection window.
    pair = established_pair(server_kw=WINDOW_KW)
    forger = Forger(pair, to_server=True)
    stream_window = WINDOW_KW["initial_max_stream_data"]
    with traced() as mem:
        for index in range(16):
            forger.send([stream_frame(4 * index, stream_window - 1, b"z")])
            if terminations(pair, "server"):
                break
    ends = terminations(pair, "server")
    assert [e.error_code for e in ends] == [ErrorCode.FLOW_CONTROL_ERROR], ends
    assert index <= WINDOW_KW["initial_max_data"] // stream_window
    assert mem["peak"] < WINDOW_KW["initial_max_data"] + 1 * MiB, mem


# ============================================================ stream floods
def test_opening_a_stream_beyond_the_limit_is_a_stream_limit_error() -> None:
    pair = established_pair(server_kw={"max_streams_bidi": 16})
    forger = Forger(pair, to_server=True)
    for index in range(16):  # up to the limit: accepted
        forger.send([stream_frame(4 * index, 0, b"ok")])
    assert not terminations(pair, "server")
    forger.send([stream_frame(4 * 16, 0, b"one too many")])
    ends = terminations(pair, "server")
    assert [e.error_code for e in ends] == [ErrorCode.STREAM_LIMIT_ERROR], ends


def test_highest_stream_id_in_one_frame_is_refused_without_opening_streams() -> None:
    pair = established_pair()
    with traced() as mem:
        Forger(pair, to_server=True).send([stream_frame(4 * (2**60 - 1), 0, b"x")])
    ends = terminations(pair, "server")
    assert [e.error_code for e in ends] == [ErrorCode.STREAM_LIMIT_ERROR], ends
    assert mem["peak"] < 256 * KiB, mem


def test_stream_churn_within_the_limit_keeps_memory_flat() -> None:
    # The peer opens, finishes and abandons streams far beyond the limit in
    # total, but never more than the limit at once (the server reads them all).
    pair = established_pair(server_kw={"max_streams_bidi": 8, "max_streams_uni": 8})
    sizes: list[int] = []
    for _round in range(12):
        with traced() as mem:
            for _ in range(8):
                sid = pair.client.open_stream(bidirectional=False)
                pair.client.send_stream_data(sid, b"q" * 500, end_stream=True)
            pair.run_for(0.2)
            for e in pair.events_of("server", StreamReadable):
                with contextlib.suppress(StreamError):  # retired already
                    read_all(pair.server, e.stream_id)
            pair.server_events.clear()
            pair.run_for(0.2)
        sizes.append(mem["current"])
    assert not terminations(pair, "server") and not terminations(pair, "client")
    assert max(sizes[4:]) < 256 * KiB, sizes


# ======================================================= tiny-window reader
def test_tiny_window_slow_reader_blocks_the_sender_without_busy_looping() -> None:
    server_kw = {"initial_max_stream_data": 4 * KiB, "max_stream_window": 4 * KiB,
                 "initial_max_data": 8 * KiB, "max_connection_window": 8 * KiB}
    pair = established_pair(client_kw={"stream_send_buffer_bytes": 64 * KiB},
                            server_kw=server_kw)
    payload = random.Random(7).randbytes(48 * KiB)
    sid = pair.client.open_stream()
    accepted = pair.client.send_stream_data(sid, payload)
    assert accepted == len(payload)  # fits the send buffer
    assert pair.client.send_stream_data(sid, b"more" * 10_000) < 40_000  # bounded buffer
    got = bytearray()
    start_sent = len(pair.sent)
    start_t = pair.now
    # the reader takes 1 KiB every 100 ms
    while len(got) < len(payload) and pair.now - start_t < 120.0:
        pair.run_for(0.1)
        try:
            data, _fin = pair.server.recv_stream_data(sid, 1024)
        except StreamError:
            data = b""
        got.extend(data)
        stats = pair.client.get_stats()
        assert stats.bytes_in_flight <= 8 * KiB + 2 * 1500, stats  # credit-limited
    elapsed = pair.now - start_t
    assert bytes(got) == payload[: len(got)]
    assert len(got) == len(payload)
    datagrams = len(pair.sent) - start_sent
    # about one data packet and one ACK per read, plus probes: far from a spin
    assert datagrams / elapsed < 60, (datagrams, elapsed)
    assert not terminations(pair, "client") and not terminations(pair, "server")


# ============================================ spoofed handshake floods ====
def test_forged_token_flood_with_require_retry_keeps_no_state() -> None:
    """Extends test_security's flood: INITIALs that carry a (garbage) token from
    spoofed addresses are refused without state or replies, memory stays flat,
    and a legitimate client still gets through the retry during the flood."""
    message = _crypto_data(record_client_initial())
    rng = random.Random(17)
    t = make_transfer(client_config(), server_config(require_retry=True), 50_000)
    with traced() as mem:
        for burst in range(10):
            for j in range(100):
                token = rng.randbytes(rng.choice([16, 48, 80]))
                t.net.send(_spoofed(burst * 100 + j), SERVER,
                           _initial_with([d.CryptoFrame(data=message)], rng, token=token))
            t.net.run_for(0.004)
            assert len(t.server_ep.connections) <= 1
        t.net.run_for(0.02)  # the last bursts arrive
    spoofed = {_spoofed(i) for i in range(1000)}
    assert t.server_ep.counters.invalid_tokens >= 1000
    assert not [x for x in t.net.sent if x[2] in spoofed]  # not one reply to a spoofer
    assert mem["current"] < 512 * KiB, mem
    assert t.run(30.0), "the legitimate client did not connect during the flood"
    assert bytes(t.received) == t.payload


def test_short_header_flood_to_unknown_cids_is_bounded_and_never_amplifies() -> None:
    net = Net()
    server_ep = net.add(SERVER, Endpoint(server_config(), is_server=True))
    rng = random.Random(23)
    sizes = []
    with traced() as mem:
        for burst in range(10):
            for j in range(500):  # more than the stateless queue holds per turn
                size = rng.randint(21, 1200)
                net.send(_spoofed(burst * 500 + j), SERVER,
                         bytes([0x40 | rng.getrandbits(5)]) + rng.randbytes(size - 1),
                         delay_s=0.0)
                sizes.append(size)
            net.run_for(0.002)
    replies = [x for x in net.sent if x[1] == SERVER]
    assert server_ep.connections == []
    assert len(replies) <= len(sizes)
    by_dst: dict[tuple[str, int], int] = {}
    for _t, _s, dst, data in replies:
        by_dst[dst] = by_dst.get(dst, 0) + len(data)
    delivered: dict[tuple[str, int], int] = {}
    for _t, src, _d, data in net.delivered:
        delivered[src] = delivered.get(src, 0) + len(data)
    assert all(by_dst[a] < delivered[a] for a in by_dst)  # a reset is smaller
    assert mem["current"] < 512 * KiB, mem


# ================================================== replayed and truncated
NOISE_KEYS = generate_keypair(randbytes=random.Random(909).randbytes)


@pytest.mark.parametrize("security", ["none", "noise"])
def test_replayed_and_truncated_packets_change_nothing(security: str) -> None:
    kw_c: dict = {"security": security}
    kw_s: dict = {"security": security}
    if security == "noise":
        kw_c["server_public_key"] = NOISE_KEYS.public
        kw_s["static_key"] = NOISE_KEYS
        kw_c["crypto_randbytes"] = random.Random(5).randbytes
        kw_s["crypto_randbytes"] = random.Random(6).randbytes
    pair = established_pair(kw_c, kw_s)
    sid = pair.client.open_stream()
    payload = random.Random(9).randbytes(30_000)
    pair.client.send_stream_data(sid, payload, end_stream=True)
    pair.run_for(1.0)
    data, fin = read_all(pair.server, sid)
    assert data == payload and fin
    pair.server_events.clear()
    before = pair.server.get_stats()
    recorded = [d for _t, direction, d in pair.sent if direction == "c2s"]
    rng = random.Random(11)
    for datagram in recorded:  # replay everything the client ever sent
        pair.inject(datagram, to_server=True)
    for datagram in recorded:  # and truncated copies
        cut = rng.randrange(0, len(datagram))
        pair.inject(datagram[:cut], to_server=True)
    pair.run_for(1.0)
    after = pair.server.get_stats()
    assert not pair.events_of("server", StreamReadable)
    assert not terminations(pair, "server")
    assert after.stream_bytes_delivered == before.stream_bytes_delivered
    absorbed = (after.duplicate_packets - before.duplicate_packets) + (
        after.datagrams_dropped - before.datagrams_dropped)
    assert absorbed >= 2 * len(recorded) - 2, (absorbed, len(recorded))
    # and the connection still works
    sid2 = pair.client.open_stream()
    pair.client.send_stream_data(sid2, b"still alive", end_stream=True)
    assert pair.run_until(lambda: bool(pair.events_of("server", StreamReadable)), pair.now + 5)
    assert read_all(pair.server, sid2) == (b"still alive", True)


# ================================================ connection-ID exhaustion
def _ncid(sequence: int, rng: random.Random) -> tuple:
    cid = rng.randbytes(8)
    token = rng.randbytes(16)
    return (FrameType.NEW_CONNECTION_ID, sequence, 0, len(cid), 0, cid + token)


@pytest.mark.parametrize("kind", ["new_connection_id", "retire_connection_id"])
def test_connection_id_floods_are_ignored_and_memory_stays_flat(kind: str) -> None:
    pair = established_pair()
    forger = Forger(pair, to_server=True)
    rng = random.Random(31)
    make: Callable[[int], tuple] = (
        (lambda seq: _ncid(seq, rng)) if kind == "new_connection_id"
        else (lambda seq: (FrameType.RETIRE_CONNECTION_ID, seq, 0, 0, 0, None))
    )
    # warm up allocations (ACK state, decoders), then measure the flood
    for seq in range(0, 200, 20):
        forger.send([make(s) for s in range(seq, seq + 20)])
    pair.run_for(0.5)
    with traced() as mem:
        for seq in range(200, 20_200, 20):
            forger.send([make(s) for s in range(seq, seq + 20)])
        pair.run_for(0.5)
    assert not terminations(pair, "server"), terminations(pair, "server")
    assert mem["current"] < 256 * KiB, mem
    # the server still serves the (forging) peer
    forger.send([stream_frame(0, 0, b"after the flood", fin=True)])
    assert pair.events_of("server", StreamReadable)
    assert read_all(pair.server, 0) == (b"after the flood", True)


def test_path_challenge_flood_keeps_a_bounded_response_queue() -> None:
    pair = established_pair()
    forger = Forger(pair, to_server=True)
    rng = random.Random(37)
    pair.drop_to_client = lambda data, now: True  # the responses go nowhere
    with traced() as mem:
        for _ in range(500):
            forger.send([(FrameType.PATH_CHALLENGE, 0, 0, 0, 0, rng.randbytes(8))
                         for _ in range(20)])
    assert not terminations(pair, "server")
    assert mem["current"] < 256 * KiB, mem


_ = (CLIENT, CLIENT_ADDR, SERVER_ADDR, HandshakeCompleted)  # shared names for readers


def test_initial_flood_switches_on_retry_and_a_real_client_still_connects() -> None:
    """Without require_retry, a flood of spoofed INITIALs fills the pending-
    handshake budget; from then on INITIALs without a token get a RETRY, so
    half-open state stays bounded and the legitimate client (which echoes the
    token) completes its transfer during the flood."""
    message = _crypto_data(record_client_initial())
    rng = random.Random(29)
    budget = 16
    t = make_transfer(client_config(), server_config(retry_when_pending_handshakes=budget,
                                                     handshake_timeout_s=5.0), 50_000)
    peak = 0
    with traced() as mem:
        for burst in range(10):
            for j in range(100):
                t.net.send(_spoofed(burst * 100 + j), SERVER,
                           _initial_with([d.CryptoFrame(data=message)], rng))
            t.net.run_for(0.004)
            peak = max(peak, t.server_ep.pending_handshake_count)
        t.net.run_for(0.02)
    # filled, and exceeded by at most the real client once it echoes its token
    assert budget <= peak <= budget + 1
    assert t.server_ep.counters.retries_sent >= 1000 - budget
    # ~200 KiB per half-open connection today: 1,000 of them would hold ~200 MiB
    assert mem["current"] < 4 * MiB, mem
    assert t.run(30.0), "the legitimate client did not connect during the flood"
    assert bytes(t.received) == t.payload


def test_completed_handshakes_do_not_count_as_pending() -> None:
    t = make_transfer(client_config(), server_config(retry_when_pending_handshakes=1), 20_000)
    assert t.run(30.0)
    assert t.server_ep.counters.retries_sent == 0
    assert t.server_ep.pending_handshake_count == 0
