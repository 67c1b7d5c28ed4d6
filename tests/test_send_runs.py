"""Send runs (``Packetizer._seal_run``: many STREAM packets sealed in one C call,
their records built by ``LossRecovery.on_run_sent``) send exactly what the
per-packet loop sends.

Two worlds are built from the same seeds: in one, runs are switched off (every
packet goes through the per-packet path). A bulk transfer of a few MB -- the
stream's ring buffer wraps many times, packet numbers are skipped, ACKs are
piggybacked -- must give byte-identical datagrams (sizes with Noise), the same
sent records in recovery and the same delivered data. In the world with runs,
the packet that crosses the ring's end goes through the per-packet path and
runs go on after it.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from helpers import make_config

from transport import Endpoint
from transport.events import StreamReadable
from transport.packetizer import Packetizer, expand_items

CLIENT = ("10.0.0.1", 5000)
SERVER = ("10.0.0.2", 4433)
_RECORD_FIELDS = ("packet_number", "sent_time_s", "size_bytes", "ack_eliciting", "in_flight",
                  "items", "delivered_bytes", "delivered_time_s", "first_sent_time_s",
                  "is_app_limited", "fec_hold_pn", "fec_extra_s")


def _configs(security: str) -> tuple[Any, Any]:
    if security == "noise":
        from transport.crypto.keys import generate_keypair

        keypair = generate_keypair(make_config(7).crypto_randbytes)
        server_cfg = make_config(2, security="noise", static_key=keypair)
        client_cfg = make_config(1, security="noise", server_public_key=keypair.public)
    else:
        server_cfg, client_cfg = make_config(2), make_config(1)
    server_cfg = dataclasses.replace(server_cfg, endpoint_secret=b"s" * 32,
                                     crypto_randbytes=random.Random(3).randbytes)
    client_cfg = dataclasses.replace(client_cfg, endpoint_secret=b"c" * 32,
                                     crypto_randbytes=random.Random(4).randbytes)
    return client_cfg, server_cfg


def _transfer(security: str, total: int = 8_000_000) -> list[Any]:
    client_cfg, server_cfg = _configs(security)
    client, server = Endpoint(client_cfg), Endpoint(server_cfg, is_server=True)
    now = 1.0
    conn = client.connect(SERVER, now)
    payload = bytes(random.Random(5).randbytes(100_000))
    sid = None
    sent = received = 0
    trace: list[Any] = []
    step = 0
    while received < total:
        step += 1
        assert step < 5000, "the transfer stalled"
        now += 0.0002
        if sid is None and conn.handshake_completed:
            sid = conn.open_stream()
        while sid is not None and sent < total:
            n = conn.send_stream_data(sid, payload[: min(len(payload), total - sent)])
            if not n:
                break
            sent += n
        deadline = client.get_timer()
        if deadline is not None and now >= deadline:
            client.handle_timer(now)
        flight = client.datagrams_to_send(now)
        trace.append([bytes(d) if security == "none" else len(d) for d, _ in flight])
        if step % 5 == 0:
            # (a run's packets share one ITEM_STREAM_RUN items tuple: compared
            # as the ITEM_STREAM each stands for)
            trace.append([tuple(expand_items(p.items, p.packet_number) if f == "items"
                                else getattr(p, f) for f in _RECORD_FIELDS)
                          for p in conn._recovery.outstanding()])
        server.receive_datagrams([(d, CLIENT) for d, _ in flight], now)
        deadline = server.get_timer()
        if deadline is not None and now >= deadline:
            server.handle_timer(now)
        while (item := server.next_event()) is not None:
            srv_conn, event = item
            if isinstance(event, StreamReadable):
                while True:
                    data, _fin = srv_conn.recv_stream_data(event.stream_id)
                    if not data:
                        break
                    received += len(data)
                    trace.append(("read", data[:8], len(data)))
        client.receive_datagrams([(d, SERVER) for d, _ in server.datagrams_to_send(now)], now)
    trace.append(("stats", conn.get_stats().packets_sent, conn._packetizer.next_packet_number))
    return trace


@pytest.mark.parametrize("security", ["none", "noise"])
def test_runs_send_what_the_per_packet_loop_sends(
    security: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, bool, bool, float]] = []
    seal_run = Packetizer._seal_run

    def recording(self: Packetizer, *args: Any) -> tuple[int, int, int, bool]:
        stream = args[2]
        ring_end = stream._sent_offset // stream._ring_size != (
            stream._sent_offset + self.max_datagram_size) // stream._ring_size
        result = seal_run(self, *args)
        calls.append((result[0], result[3], ring_end, args[0]))
        return result

    monkeypatch.setattr(Packetizer, "_seal_run", recording)
    with_runs = _transfer(security)
    run_packets = sum(call[0] for call in calls)
    monkeypatch.setattr(Packetizer, "_seal_run",
                        lambda self, *args: (0, 0, 0, False))
    without_runs = _transfer(security)
    assert with_runs == without_runs
    packets = with_runs[-1][1]
    assert run_packets > 0.9 * packets  # (the bulk of them really went in runs)
    # a run stopped short of the ring's end goes on after the next packet, in
    # the same build (with runs off for the rest of the call, the per-packet
    # path would fill the window first)
    at_ring_end = [i for i, (n, resume, ring_end, _) in enumerate(calls)
                   if n == 0 and ring_end and resume]
    assert at_ring_end
    assert any(i + 1 < len(calls) and calls[i + 1][0] > 0 and calls[i + 1][3] == calls[i][3]
               for i in at_ring_end)


class _AckRecorder:
    """Stands in for a Connection in ``Connection._on_packets_acked``: records
    the stream ranges it acknowledges."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, bool]] = []

    def _on_stream_acked(self, stream_id: int, offset: int, length: int, fin: bool) -> None:
        self.calls.append((stream_id, offset, length, fin))


@pytest.mark.parametrize("seed", range(40))
def test_run_segments_acknowledge_what_their_packets_carry(seed: int) -> None:
    """Acknowledging packets of send runs (shared ITEM_STREAM_RUN items, found
    segment by segment) makes the same stream calls as the same packets with
    one ITEM_STREAM each, for any subset acknowledged (gaps, runs of one
    packet, several runs and streams, FIN on a run's last packet)."""
    from transport.connection import Connection
    from transport.packetizer import ITEM_STREAM_RUN
    from transport.recovery import SentPacket

    rng = random.Random(seed)
    packets: list[SentPacket] = []
    pn = rng.randrange(5)
    offsets_by_stream = {0: 0, 4: 0}
    for _ in range(rng.randint(1, 6)):
        stream_id = rng.choice([0, 4])
        count = rng.randint(1, 12)
        start = offsets_by_stream[stream_id]
        offsets = [start]
        for _ in range(count):
            offsets.append(offsets[-1] + rng.randint(0, 1400))
        offsets_by_stream[stream_id] = offsets[-1]
        run_items = ((ITEM_STREAM_RUN, stream_id, pn, tuple(offsets), rng.random() < 0.3),)
        packets += [SentPacket(pn + i, 0.0, 1400, True, True, run_items) for i in range(count)]
        pn += count + rng.randrange(2)  # maybe a skipped number
    acked = [p for p in packets if rng.random() < 0.7] or packets[:1]
    expanded = [SentPacket(p.packet_number, 0.0, 1400, True, True,
                           expand_items(p.items, p.packet_number)) for p in acked]
    segments, per_packet = _AckRecorder(), _AckRecorder()
    Connection._on_packets_acked(segments, acked)  # type: ignore[arg-type]
    Connection._on_packets_acked(per_packet, expanded)  # type: ignore[arg-type]
    assert segments.calls == per_packet.calls
    assert sum(call[2] for call in segments.calls) == sum(
        item[3] for p in expanded for item in p.items)
