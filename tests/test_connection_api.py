"""The Connection's public API, driven as a pair in virtual time.

Every test builds a client and a server :class:`~transport.Connection` joined
by :class:`helpers.Pair` (fixed 10 ms one-way delay, scripted drops) and only
uses public calls, events, ``get_stats()`` and config knobs. Misbehaving peers
are forged with the public codec (:func:`helpers.forge_short_packet`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from helpers import Pair, forge_short_packet, make_config, read_all

from transport import Config, Connection
from transport.errors import (
    ConfigurationError,
    ConnectionClosedError,
    InvalidStateError,
    LocalError,
    StreamError,
    StreamLimitError,
)
from transport.events import (
    ConnectionTerminated,
    DatagramReceived,
    HandshakeCompleted,
    StopSendingReceived,
    StreamReadable,
    StreamReset,
    StreamsAvailable,
    StreamWritable,
)
from transport.wire.constants import ErrorCode, FrameType

STREAM_OFF_LEN = FrameType.STREAM | 0x04 | 0x02
STREAM_OFF_LEN_FIN = STREAM_OFF_LEN | 0x01


def _pair(client: dict[str, object] | None = None, server: dict[str, object] | None = None,
          **kw: object) -> Pair:
    pair = Pair(make_config(1, **(client or {})), make_config(2, **(server or {})), **kw)  # type: ignore[arg-type]
    pair.handshake()
    return pair


def _terminated(pair: Pair, side: str) -> list[ConnectionTerminated]:
    return pair.events_of(side, ConnectionTerminated)


class _Reader:
    """Reads every readable stream of one side into per-stream buffers."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.data: dict[int, bytearray] = {}
        self.finished: set[int] = set()
        self._seen = 0

    def pump(self, events: Sequence[object]) -> bool:
        """Handle the events appended to ``events`` since the last call.
        Always True, so it chains into run_until predicates with ``and``."""
        for event in events[self._seen :]:
            if isinstance(event, StreamReadable) and event.stream_id not in self.finished:
                data, fin = read_all(self.conn, event.stream_id)
                self.data.setdefault(event.stream_id, bytearray()).extend(data)
                if fin:
                    self.finished.add(event.stream_id)
        self._seen = len(events)
        return True


def _pattern(size: int, seed: int = 0) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


# ------------------------------------------------------------------ handshake
def test_handshake_reports_completion_once_on_each_side() -> None:
    pair = _pair()
    assert pair.client.is_established and pair.server.is_established
    assert len(pair.events_of("client", HandshakeCompleted)) == 1
    assert len(pair.events_of("server", HandshakeCompleted)) == 1
    assert pair.client.handshake_completed and pair.server.handshake_completed


def test_handshake_completes_while_every_ack_is_lost() -> None:
    # The server's handshake reply is lost and so is every ACK the client sends
    # afterwards. The server->client direction works, so the server's probe
    # timeouts must re-send its unacknowledged handshake data (RFC 9002
    # §6.2.4), not bare PINGs that only an ACK could turn into a retransmission.
    pair = Pair(make_config(1), make_config(2))
    client_sent = [0]
    server_sent = [0]

    def drop_client(data: bytes, now: float) -> bool:
        client_sent[0] += 1
        return client_sent[0] > 1  # the first INITIAL gets through, nothing after

    def drop_server(data: bytes, now: float) -> bool:
        server_sent[0] += 1
        return server_sent[0] == 1  # the handshake reply

    pair.drop_to_server = drop_client
    pair.drop_to_client = drop_server
    assert pair.run_until(lambda: pair.client.is_established, 8.0), (
        f"client still handshaking after {server_sent[0] - 1} server probes reached it"
    )


def test_probes_resend_unacknowledged_data_while_acks_are_lost() -> None:
    # After the handshake every ACK from the server is lost and the first data
    # datagram too. With no new data left, the client's probes must carry the
    # unacknowledged bytes, so the server can still read the whole stream.
    pair = _pair()
    reader = _Reader(pair.server)
    first_data = [True]

    def drop_first_data(data: bytes, now: float) -> bool:
        if first_data[0] and len(data) > 1000:
            first_data[0] = False
            return True
        return False

    pair.drop_to_server = drop_first_data
    pair.drop_to_client = lambda data, now: True
    sid = pair.client.open_stream()
    payload = _pattern(20_000)
    pair.client.send_stream_data(sid, payload, end_stream=True)
    done = pair.run_until(
        lambda: reader.pump(pair.server_events) and sid in reader.finished, pair.now + 8.0
    )
    assert done, f"server read {len(reader.data.get(sid, b''))} of {len(payload)} bytes"
    assert bytes(reader.data[sid]) == payload


# -------------------------------------------------------------- stream limits
def test_open_stream_past_the_peer_limit_raises() -> None:
    pair = _pair(server={"max_streams_bidi": 2, "max_streams_uni": 1})
    pair.client.open_stream()
    pair.client.open_stream()
    with pytest.raises(StreamLimitError):
        pair.client.open_stream()
    pair.client.open_stream(bidirectional=False)
    with pytest.raises(StreamLimitError):
        pair.client.open_stream(bidirectional=False)
    assert issubclass(StreamLimitError, LocalError)


def test_max_streams_lets_more_streams_open_after_peer_streams_finish() -> None:
    pair = _pair(server={"max_streams_bidi": 2})
    reader = _Reader(pair.server)
    ids = [pair.client.open_stream(), pair.client.open_stream()]
    with pytest.raises(StreamLimitError):
        pair.client.open_stream()
    for sid in ids:
        assert pair.client.send_stream_data(sid, b"request", end_stream=True) == 7
    pair.run_until(lambda: reader.pump(pair.server_events) and len(reader.finished) == 2, 5.0)
    assert {sid: bytes(d) for sid, d in reader.data.items()} == {sid: b"request" for sid in ids}
    # still full: the server's sending halves of both bidirectional streams are open
    pair.run_for(0.5)
    with pytest.raises(StreamLimitError):
        pair.client.open_stream()
    for sid in ids:
        pair.server.send_stream_data(sid, b"", end_stream=True)
    client_reader = _Reader(pair.client)
    pair.run_until(
        lambda: client_reader.pump(pair.client_events) and len(client_reader.finished) == 2,
        pair.now + 5.0,
    )
    pair.run_for(0.5)  # the server's MAX_STREAMS reaches the client
    assert any(
        isinstance(e, StreamsAvailable) and e.bidirectional for e in pair.client_events
    ), "the client was not told that it may open streams again"
    third = pair.client.open_stream()
    fourth = pair.client.open_stream()
    assert third not in ids and fourth not in ids and third != fourth
    with pytest.raises(StreamLimitError):
        pair.client.open_stream()


def test_unidirectional_limit_is_raised_when_peer_reads_to_the_end() -> None:
    pair = _pair(server={"max_streams_uni": 1})
    reader = _Reader(pair.server)
    sid = pair.client.open_stream(bidirectional=False)
    with pytest.raises(StreamLimitError):
        pair.client.open_stream(bidirectional=False)
    pair.client.send_stream_data(sid, b"one-way", end_stream=True)
    pair.run_until(lambda: reader.pump(pair.server_events) and sid in reader.finished, 5.0)
    pair.run_for(0.5)
    second = pair.client.open_stream(bidirectional=False)
    assert second != sid


# ------------------------------------------------------- unidirectional streams
def test_unidirectional_stream_carries_bytes_one_way_only() -> None:
    pair = _pair()
    reader = _Reader(pair.server)
    sid = pair.client.open_stream(bidirectional=False)
    payload = _pattern(50_000)
    assert pair.client.send_stream_data(sid, payload, end_stream=True) == len(payload)
    pair.run_until(lambda: reader.pump(pair.server_events) and sid in reader.finished, 5.0)
    assert bytes(reader.data[sid]) == payload
    # the receiving side has no sending half; the sender has no receiving half
    with pytest.raises(StreamError):
        pair.server.send_stream_data(sid, b"back")
    with pytest.raises(StreamError):
        pair.client.recv_stream_data(sid)


def test_peer_sending_on_our_unidirectional_stream_is_a_stream_state_error() -> None:
    pair = _pair()
    sid = pair.client.open_stream(bidirectional=False)
    pair.client.send_stream_data(sid, b"hello")
    pair.run_for(0.2)
    forged = forge_short_packet(
        pair.client.local_cid, 5000, [(STREAM_OFF_LEN, sid, 0, 0, 0, b"not yours")]
    )
    pair.inject(forged, to_server=False)
    pair.run_for(0.2)
    [mine] = _terminated(pair, "client")
    assert mine.error_code == ErrorCode.STREAM_STATE_ERROR
    assert not mine.by_peer and not mine.application
    [theirs] = _terminated(pair, "server")
    assert theirs.error_code == ErrorCode.STREAM_STATE_ERROR
    assert theirs.by_peer and not theirs.application
    with pytest.raises(ConnectionClosedError):
        pair.client.send_stream_data(sid, b"more")


# ---------------------------------------------------------------- backpressure
def test_send_backpressure_partial_accept_then_writable_event() -> None:
    buffer_bytes = 64 * 1024
    pair = _pair(client={"stream_send_buffer_bytes": buffer_bytes})
    reader = _Reader(pair.server)
    sid = pair.client.open_stream()
    payload = _pattern(300_000)
    accepted = pair.client.send_stream_data(sid, payload, end_stream=True)
    assert accepted == buffer_bytes
    assert pair.client.stream_writable_bytes(sid) == 0
    # nothing more fits until the peer acknowledges
    assert pair.client.send_stream_data(sid, payload[accepted:], end_stream=True) == 0
    offset = accepted
    writable_events = 0
    while offset < len(payload):
        got_event = pair.run_until(
            lambda: bool(pair.events_of("client", StreamWritable)), pair.now + 5.0
        )
        reader.pump(pair.server_events)
        assert got_event, f"no StreamWritable after {offset} bytes"
        writable_events += len(pair.events_of("client", StreamWritable))
        pair.client_events.clear()
        room = pair.client.stream_writable_bytes(sid)
        assert room > 0
        n = pair.client.send_stream_data(sid, payload[offset:], end_stream=True)
        assert 0 < n <= room
        offset += n
    assert writable_events >= 2
    pair.run_until(lambda: reader.pump(pair.server_events) and sid in reader.finished,
                   pair.now + 10.0)
    assert bytes(reader.data[sid]) == payload


def test_end_stream_only_takes_effect_when_everything_was_accepted() -> None:
    pair = _pair(client={"stream_send_buffer_bytes": 1000})
    sid = pair.client.open_stream()
    assert pair.client.send_stream_data(sid, b"a" * 1500, end_stream=True) == 1000
    # FIN was not recorded: writing more later is allowed
    pair.run_until(lambda: bool(pair.events_of("client", StreamWritable)), 5.0)
    assert pair.client.send_stream_data(sid, b"a" * 500, end_stream=True) == 500
    with pytest.raises(StreamError):
        pair.client.send_stream_data(sid, b"after fin")


# ----------------------------------------------------------- reset / stop sending
def test_reset_stream_reaches_the_peer_with_its_code() -> None:
    pair = _pair()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, _pattern(10_000))
    pair.run_for(0.2)
    pair.client.reset_stream(sid, error_code=42)
    pair.run_for(0.2)
    resets = pair.events_of("server", StreamReset)
    assert resets == [StreamReset(stream_id=sid, error_code=42)]
    with pytest.raises(StreamError):
        pair.client.send_stream_data(sid, b"after reset")
    # the connection is still fine
    assert pair.client.is_established and pair.server.is_established
    assert not _terminated(pair, "server")


def test_reset_below_received_data_is_a_final_size_error() -> None:
    pair = _pair()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, _pattern(10_000))
    pair.run_for(0.2)
    forged = forge_short_packet(
        pair.server.local_cid, 5000, [(FrameType.RESET_STREAM, sid, 1, 4_000, 0, None)]
    )
    pair.inject(forged, to_server=True)
    pair.run_for(0.2)
    [event] = _terminated(pair, "server")
    assert event.error_code == ErrorCode.FINAL_SIZE_ERROR and not event.by_peer
    [peer] = _terminated(pair, "client")
    assert peer.error_code == ErrorCode.FINAL_SIZE_ERROR and peer.by_peer


def test_data_past_the_final_size_is_a_final_size_error() -> None:
    pair = _pair()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"x" * 100, end_stream=True)
    pair.run_for(0.2)  # the server now knows the final size (100) and has not read
    forged = forge_short_packet(
        pair.server.local_cid, 5000, [(STREAM_OFF_LEN, sid, 100, 0, 0, b"more")]
    )
    pair.inject(forged, to_server=True)
    pair.run_for(0.2)
    [event] = _terminated(pair, "server")
    assert event.error_code == ErrorCode.FINAL_SIZE_ERROR


def test_reset_with_a_different_final_size_than_the_fin_is_an_error() -> None:
    pair = _pair()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"x" * 100, end_stream=True)
    pair.run_for(0.2)
    forged = forge_short_packet(
        pair.server.local_cid, 5000, [(FrameType.RESET_STREAM, sid, 1, 150, 0, None)]
    )
    pair.inject(forged, to_server=True)
    pair.run_for(0.2)
    [event] = _terminated(pair, "server")
    assert event.error_code == ErrorCode.FINAL_SIZE_ERROR


def test_reset_releases_connection_credit() -> None:
    window = 16 * 1024
    pair = _pair(server={"initial_max_data": window, "initial_max_stream_data": window,
                         "max_connection_window": window})
    a = pair.client.open_stream()
    assert pair.client.send_stream_data(a, b"a" * window) == window
    pair.run_for(0.3)  # the server holds 16 KiB unread: the connection window is used up
    pair.client.reset_stream(a, error_code=1)
    b = pair.client.open_stream()
    pair.client.send_stream_data(b, b"b" * 10_000, end_stream=True)
    pair.run_for(1.0)
    assert StreamReset(stream_id=a, error_code=1) in pair.server_events
    assert read_all(pair.server, b) == (b"b" * 10_000, True)


def test_stop_sending_makes_the_peer_reset_its_stream() -> None:
    pair = _pair()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, _pattern(20_000))
    pair.run_for(0.2)
    pair.server.stop_sending(sid, error_code=7)
    pair.run_for(0.3)
    assert pair.events_of("client", StopSendingReceived) == [
        StopSendingReceived(stream_id=sid, error_code=7)
    ]
    assert pair.events_of("server", StreamReset) == [StreamReset(stream_id=sid, error_code=7)]
    with pytest.raises(StreamError):
        pair.client.send_stream_data(sid, b"more")
    assert pair.client.is_established and not _terminated(pair, "client")


def test_stop_sending_on_a_stream_without_receiving_side_is_misuse() -> None:
    pair = _pair()
    sid = pair.client.open_stream(bidirectional=False)
    with pytest.raises(StreamError):
        pair.client.stop_sending(sid)
    with pytest.raises(StreamError):
        pair.client.reset_stream(sid + 4)  # never opened


# ------------------------------------------------------------------ datagrams
def test_unreliable_datagrams_round_trip() -> None:
    pair = _pair()
    assert pair.client.send_datagram(b"ping-1") is True
    assert pair.server.send_datagram(b"pong-1") is True
    pair.run_for(0.1)
    assert [e.data for e in pair.events_of("server", DatagramReceived)] == [b"ping-1"]
    assert [e.data for e in pair.events_of("client", DatagramReceived)] == [b"pong-1"]


def test_oversized_datagram_raises_local_error() -> None:
    pair = _pair(server={"max_datagram_frame_size": 500})
    assert pair.client.send_datagram(b"x" * 500)
    with pytest.raises(LocalError):
        pair.client.send_datagram(b"x" * 501)
    # the local limit applies too
    with pytest.raises(LocalError):
        pair.server.send_datagram(b"x" * (Config().max_datagram_frame_size + 1))


def test_datagram_send_queue_is_bounded() -> None:
    pair = _pair(client={"max_queued_datagrams": 4})
    results = [pair.client.send_datagram(bytes([i]) * 10) for i in range(10)]
    assert results == [True] * 4 + [False] * 6
    assert pair.client.get_stats().datagrams_sent_dropped == 6
    pair.run_for(0.1)
    got = [e.data for e in pair.events_of("server", DatagramReceived)]
    assert got == [bytes([i]) * 10 for i in range(6, 10)]  # the newest survive


def test_datagram_receive_queue_is_bounded() -> None:
    pair = _pair(server={"max_received_datagrams": 3})
    pair.auto_drain = False
    pair.drain_events()
    pair.server_events.clear()
    for i in range(10):
        pair.client.send_datagram(bytes([i]))
    pair.run_for(0.1)
    pair.drain_events()
    got = [e.data for e in pair.events_of("server", DatagramReceived)]
    assert len(got) == 3
    assert pair.server.get_stats().datagrams_received_dropped == 7


# ------------------------------------------------------------------------ ping
def test_ping_is_sent_and_acknowledged() -> None:
    pair = _pair()
    before_c = pair.client.get_stats()
    before_s = pair.server.get_stats()
    pair.client.ping()
    pair.run_for(0.2)
    after_c = pair.client.get_stats()
    after_s = pair.server.get_stats()
    assert after_c.packets_sent > before_c.packets_sent
    assert after_s.packets_received > before_s.packets_received
    assert after_s.packets_sent > before_s.packets_sent  # the ACK
    assert after_c.bytes_in_flight == 0
    assert not pair.server_events or all(
        isinstance(e, HandshakeCompleted) for e in pair.server_events
    )


# ----------------------------------------------------------------------- close
def test_graceful_close_delivers_everything_before_terminating() -> None:
    pair = _pair()
    reader = _Reader(pair.server)
    payload = _pattern(400_000)
    sids = [pair.client.open_stream() for _ in range(3)]
    for sid in sids:
        assert pair.client.send_stream_data(sid, payload, end_stream=True) == len(payload)
    # lose a few datagrams so the close has to wait for retransmissions
    lost = [0]
    start = pair.now

    def drop_some(data: bytes, now: float) -> bool:
        if len(data) > 1000 and lost[0] < 5 and now > start + 0.02:
            lost[0] += 1
            return True
        return False

    pair.drop_to_server = drop_some
    pair.client.close(error_code=0, reason="done")
    with pytest.raises(ConnectionClosedError):
        pair.client.send_stream_data(sids[0], b"late")
    seen_at_termination: list[int] = []

    def step() -> bool:
        # the application reads first, then learns of the termination
        reader.pump(pair.server_events)
        if pair.events_of("server", ConnectionTerminated) and not seen_at_termination:
            seen_at_termination.append(sum(len(d) for d in reader.data.values()))
        return pair.client.is_closed and pair.server.is_closed

    assert pair.run_until(step, 30.0)
    assert lost[0] == 5
    assert seen_at_termination == [3 * len(payload)]
    # the termination came after the last StreamReadable, not before
    kinds = [type(e) for e in pair.server_events]
    last_readable = max(i for i, k in enumerate(kinds) if k is StreamReadable)
    assert kinds.index(ConnectionTerminated) > last_readable
    assert all(bytes(reader.data[sid]) == payload for sid in sids)
    [mine] = _terminated(pair, "client")
    assert mine == ConnectionTerminated(
        error_code=0, reason="done", by_peer=False, application=True
    )


def test_graceful_close_with_a_stream_left_open_completes_promptly() -> None:
    # Bytes were written without a FIN. Once they are acknowledged nothing is
    # left to deliver, so the close must go out -- not wait for the idle timeout.
    pair = _pair()
    reader = _Reader(pair.server)
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"x" * 1000)
    pair.run_until(lambda: reader.pump(pair.server_events) and bool(reader.data), 5.0)
    start = pair.now
    pair.client.close(error_code=5, reason="bye")
    pair.run_until(lambda: pair.client.is_closed and pair.server.is_closed, start + 60.0)
    assert bytes(reader.data[sid]) == b"x" * 1000
    assert _terminated(pair, "server") == [
        ConnectionTerminated(error_code=5, reason="bye", by_peer=True, application=True)
    ]
    assert pair.now - start < 2.0


def test_graceful_close_by_the_side_that_never_wrote_on_a_peer_stream() -> None:
    # The server read a request on a client-opened bidirectional stream and
    # closes without answering: its untouched sending half holds no data.
    pair = _pair()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"request", end_stream=True)
    pair.run_for(0.2)
    assert read_all(pair.server, sid) == (b"request", True)
    start = pair.now
    pair.server.close(error_code=6, reason="no answer")
    pair.run_until(lambda: pair.client.is_closed and pair.server.is_closed, start + 60.0)
    assert _terminated(pair, "client") == [
        ConnectionTerminated(error_code=6, reason="no answer", by_peer=True, application=True)
    ]
    assert pair.now - start < 2.0


def test_abrupt_close_abandons_unsent_data() -> None:
    pair = _pair()
    reader = _Reader(pair.server)
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, _pattern(500_000), end_stream=True)
    pair.run_for(0.015)
    pair.client.close(error_code=3, reason="abort", graceful=False)
    assert pair.run_until(
        lambda: reader.pump(pair.server_events) and pair.server.is_closed, 10.0
    )
    assert sum(len(d) for d in reader.data.values()) < 500_000
    [theirs] = _terminated(pair, "server")
    assert (theirs.error_code, theirs.reason, theirs.by_peer, theirs.application) == (
        3, "abort", True, True,
    )


def test_close_reasons_are_reported_on_both_sides() -> None:
    pair = _pair()
    pair.server.close(error_code=99, reason="maintenance")
    pair.run_until(lambda: pair.client.is_closed and pair.server.is_closed, 10.0)
    assert _terminated(pair, "server") == [
        ConnectionTerminated(error_code=99, reason="maintenance", by_peer=False, application=True)
    ]
    assert _terminated(pair, "client") == [
        ConnectionTerminated(error_code=99, reason="maintenance", by_peer=True, application=True)
    ]
    assert pair.client.get_timer() is None and pair.server.get_timer() is None
    assert pair.client.datagrams_to_send(pair.now + 1) == []


def test_close_before_connect_needs_no_peer() -> None:
    conn = Connection(make_config(5), is_client=True)
    conn.close()
    assert conn.is_closed
    assert conn.get_timer() is None and conn.next_event() is None


def test_calls_after_close_raise_connection_closed() -> None:
    pair = _pair()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"x")
    pair.run_for(0.1)
    pair.client.close(graceful=False)
    calls = [
        lambda: pair.client.open_stream(),
        lambda: pair.client.send_stream_data(sid, b"y"),
        lambda: pair.client.send_datagram(b"d"),
        lambda: pair.client.ping(),
        lambda: pair.client.reset_stream(sid),
        lambda: pair.client.stop_sending(sid),
    ]
    for call in calls:
        with pytest.raises(ConnectionClosedError):
            call()
    pair.client.close()  # a second close is a no-op
    assert len(_terminated(pair, "client")) <= 1
    pair.run_until(lambda: pair.client.is_closed, 10.0)
    for call in calls:
        with pytest.raises(ConnectionClosedError):
            call()
    assert issubclass(ConnectionClosedError, LocalError)


# ---------------------------------------------------------- idle and keepalive
def test_idle_timeout_uses_the_smaller_advertised_value() -> None:
    pair = _pair(client={"idle_timeout_s": 2.0}, server={"idle_timeout_s": 30.0})
    start = pair.now
    pair.run_until(lambda: pair.client.is_closed and pair.server.is_closed, start + 10.0)
    for side in ("client", "server"):
        [event] = _terminated(pair, side)
        assert event.error_code == ErrorCode.IDLE_TIMEOUT and not event.by_peer
    assert 1.5 <= pair.now - start <= 2.5


def test_keepalive_keeps_an_idle_connection_alive() -> None:
    pair = _pair(client={"idle_timeout_s": 2.0, "keepalive_interval_s": 0.5})
    pair.run_for(10.0)
    assert pair.client.is_established and pair.server.is_established
    assert not _terminated(pair, "client") and not _terminated(pair, "server")
    # without keepalive the same pair dies
    quiet = _pair(client={"idle_timeout_s": 2.0})
    quiet.run_for(10.0)
    assert quiet.client.is_closed and quiet.server.is_closed


# -------------------------------------------------------------- misuse errors
def test_misuse_raises_typed_local_errors() -> None:
    client = Connection(make_config(3), is_client=True)
    with pytest.raises(InvalidStateError):
        client.open_stream()
    with pytest.raises(InvalidStateError):
        client.send_datagram(b"x")
    client.connect(("10.0.0.2", 4433), 0.0)
    with pytest.raises(InvalidStateError):
        client.connect(("10.0.0.2", 4433), 0.0)
    server = Connection(make_config(4), is_client=False)
    with pytest.raises(InvalidStateError):
        server.connect(("10.0.0.1", 1), 0.0)
    with pytest.raises(LocalError):
        Connection(make_config(4), is_client=True, local_cid=b"\x01\x02")
    with pytest.raises(ConfigurationError):
        Config(max_datagram_size=100)
    with pytest.raises(ConfigurationError):
        Config(security="tls-but-not-really")

    pair = _pair()
    with pytest.raises(StreamError):
        pair.client.send_stream_data(400, b"never opened")
    with pytest.raises(StreamError):
        pair.client.recv_stream_data(400)
    with pytest.raises(StreamError):
        pair.client.stream_writable_bytes(400)
    with pytest.raises(StreamError):
        pair.client.send_stream_data(3, b"server's uni stream")
    for exc in (InvalidStateError, StreamError, ConfigurationError, StreamLimitError):
        assert issubclass(exc, LocalError)


# ------------------------------------------------------------- timer contract
def test_spurious_handle_timer_is_a_no_op() -> None:
    pair = _pair()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"abc")
    pair.run_for(1.0)
    for conn in (pair.client, pair.server):
        deadline = conn.get_timer()
        assert deadline is not None and deadline > pair.now
        stats = conn.get_stats()
        conn.handle_timer(pair.now)
        conn.handle_timer((pair.now + deadline) / 2)
        assert conn.datagrams_to_send((pair.now + deadline) / 2) == []
        assert conn.get_timer() == deadline
        assert conn.get_stats() == stats
        assert conn.next_event() is None


def test_handle_timer_before_connect_does_nothing() -> None:
    conn = Connection(make_config(6), is_client=True)
    assert conn.get_timer() is None
    conn.handle_timer(5.0)
    assert conn.datagrams_to_send(5.0) == []
    assert conn.next_event() is None
    assert not conn.is_closed


def test_handshake_timeout_when_no_one_answers() -> None:
    conn = Connection(make_config(7, handshake_timeout_s=2.0), is_client=True)
    conn.connect(("10.0.0.2", 4433), 0.0)
    now = 0.0
    initials = 0
    while not conn.is_closed and now < 10.0:
        initials += len(conn.datagrams_to_send(now))
        deadline = conn.get_timer()
        assert deadline is not None
        now = max(now, deadline)
        conn.handle_timer(now)
    assert conn.is_closed and 1.9 <= now <= 2.1
    assert initials >= 2  # retried before giving up
    event = conn.next_event()
    assert isinstance(event, ConnectionTerminated)
    assert event.error_code == ErrorCode.HANDSHAKE_FAILED and not event.by_peer


# --------------------------------------------------------------- flow control
def test_stream_flow_control_overrun_closes_with_flow_control_error() -> None:
    pair = _pair(server={"initial_max_stream_data": 16 * 1024})
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"x" * 100)
    pair.run_for(0.2)
    forged = forge_short_packet(
        pair.server.local_cid, 5000, [(STREAM_OFF_LEN, sid, 16 * 1024 - 10, 0, 0, b"y" * 20)]
    )
    pair.inject(forged, to_server=True)
    pair.run_for(0.2)
    [event] = _terminated(pair, "server")
    assert event.error_code == ErrorCode.FLOW_CONTROL_ERROR and not event.by_peer
    [peer] = _terminated(pair, "client")
    assert peer.error_code == ErrorCode.FLOW_CONTROL_ERROR and peer.by_peer


def test_connection_flow_control_overrun_closes_with_flow_control_error() -> None:
    pair = _pair(server={"initial_max_data": 32 * 1024, "initial_max_stream_data": 24 * 1024,
                         "max_connection_window": 32 * 1024})
    a = pair.client.open_stream()
    b = pair.client.open_stream()
    pair.client.send_stream_data(a, b"x")
    pair.client.send_stream_data(b, b"x")
    pair.run_for(0.2)
    # each stream stays inside its own 24 KiB window, together they pass 32 KiB
    forged = forge_short_packet(
        pair.server.local_cid,
        5000,
        [
            (STREAM_OFF_LEN, a, 20_000, 0, 0, b"y" * 10),
            (STREAM_OFF_LEN, b, 20_000, 0, 0, b"z" * 10),
        ],
    )
    pair.inject(forged, to_server=True)
    pair.run_for(0.2)
    [event] = _terminated(pair, "server")
    assert event.error_code == ErrorCode.FLOW_CONTROL_ERROR


def test_small_windows_still_carry_a_large_transfer() -> None:
    pair = _pair(server={"initial_max_data": 16 * 1024, "initial_max_stream_data": 8 * 1024})
    reader = _Reader(pair.server)
    sids = [pair.client.open_stream() for _ in range(2)]
    payload = _pattern(200_000)
    for sid in sids:
        assert pair.client.send_stream_data(sid, payload, end_stream=True) == len(payload)
    assert pair.run_until(
        lambda: reader.pump(pair.server_events) and len(reader.finished) == 2, 30.0
    )
    assert all(bytes(reader.data[sid]) == payload for sid in sids)
    assert not _terminated(pair, "server")


# ---------------------------------------------------------------- event bound
def test_event_queue_is_bounded_by_coalescing() -> None:
    # Stream events are coalesced: however many packets arrive, each stream has
    # at most one pending StreamReadable until the application reads it.
    pair = _pair(server={"max_streams_bidi": 64})
    pair.auto_drain = False
    pair.drain_events()
    pair.server_events.clear()
    sids = [pair.client.open_stream() for _ in range(40)]
    for round_ in range(5):
        for sid in sids:
            pair.client.send_stream_data(sid, b"hello", end_stream=round_ == 4)
        pair.run_for(0.1)
    pending = []
    while (event := pair.server.next_event()) is not None:
        pending.append(event)
    readable = [e for e in pending if isinstance(e, StreamReadable)]
    assert len(readable) == len({e.stream_id for e in readable}) == 40
    assert len(pending) <= 41  # plus at most the handshake event
    # nothing was lost for the application: every stream is still readable
    for sid in sids:
        assert read_all(pair.server, sid) == (b"hello" * 5, True)


def test_event_overflow_never_hides_a_readable_stream() -> None:
    # An application that reads only the streams it is told about must still
    # get every stream, even when more streams became readable at once than
    # the event queue holds.
    pair = _pair(server={"max_streams_bidi": 64})
    pair.auto_drain = False
    pair.drain_events()
    sids = [pair.client.open_stream() for _ in range(40)]
    for sid in sids:
        pair.client.send_stream_data(sid, b"hello", end_stream=True)
    finished: set[int] = set()
    for _ in range(20):
        pair.run_for(0.2)
        while (event := pair.server.next_event()) is not None:
            if isinstance(event, StreamReadable):
                _data, fin = read_all(pair.server, event.stream_id)
                if fin:
                    finished.add(event.stream_id)
    assert finished == set(sids)


# ---------------------------------------------------------------------- stats
def test_stats_counters_move_as_expected() -> None:
    pair = _pair()
    reader = _Reader(pair.server)
    before = pair.client.get_stats()
    assert before.smoothed_rtt_s == pytest.approx(0.020, rel=0.5)
    assert before.min_rtt_s >= 0.020 - 1e-9
    sid = pair.client.open_stream()
    payload = _pattern(300_000)
    dropped_bytes: list[int] = []

    def drop_three(data: bytes, now: float) -> bool:
        if len(data) > 1000 and len(dropped_bytes) < 3:
            dropped_bytes.append(len(data))
            return True
        return False

    pair.drop_to_server = drop_three
    pair.client.send_stream_data(sid, payload, end_stream=True)
    assert pair.run_until(lambda: reader.pump(pair.server_events) and sid in reader.finished,
                          10.0)
    pair.run_for(1.0)
    c = pair.client.get_stats()
    s = pair.server.get_stats()
    # stream_bytes_sent counts retransmitted bytes too
    assert c.stream_bytes_sent == len(payload) + c.stream_bytes_retransmitted
    assert c.stream_bytes_retransmitted >= 3 * 1000
    assert c.packets_lost >= 3 and c.packets_retransmitted >= 3
    assert s.stream_bytes_delivered == len(payload)
    assert c.bytes_in_flight == 0
    assert c.congestion_window_bytes > 0
    assert c.smoothed_rtt_s >= 0.020 - 1e-9 and c.latest_rtt_s >= 0.020 - 1e-9
    # every datagram the client sent reached the server except the three dropped
    c2s = [data for _t, direction, data in pair.sent if direction == "c2s"]
    assert c.packets_sent == len(c2s)
    assert c.bytes_sent == sum(len(d) for d in c2s)
    assert s.bytes_received == c.bytes_sent - sum(dropped_bytes)
    assert s.packets_received == c.packets_sent - 3
    # a corrupted datagram is counted, not raised
    sid2 = pair.client.open_stream()
    pair.client.send_stream_data(sid2, b"z" * 500)
    [(good, _addr)] = pair.client.datagrams_to_send(pair.now)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x10
    pair.inject(bytes(bad), to_server=True)
    assert pair.server.get_stats().datagrams_dropped == s.datagrams_dropped + 1



# ----------------------------------------------- streams announced on open --
def test_an_opened_stream_is_announced_before_any_data() -> None:
    """The side that opens a stream may wait for the peer to speak first: the
    peer learns of the stream from an empty STREAM frame and answers on it."""
    pair = Pair(make_config(71), make_config(72))
    pair.handshake()
    sid = pair.client.open_stream()
    pair.run_for(0.2)
    opened = pair.events_of("server", StreamReadable)
    assert [e.stream_id for e in opened] == [sid]
    assert pair.server.recv_stream_data(sid) == (b"", False)
    pair.server.send_stream_data(sid, b"220 ready\n")
    pair.run_for(0.2)
    assert read_all(pair.client, sid) == (b"220 ready\n", False)


def test_a_stream_with_data_at_once_sends_no_announcement() -> None:
    pair = Pair(make_config(73), make_config(74))
    pair.handshake()
    before = pair.client.counters.packets_sent
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"hello", end_stream=True)
    pair.run_for(0.2)
    assert read_all(pair.server, sid) == (b"hello", True)
    # one packet carried the stream (plus at most an ACK-only packet)
    assert pair.client.counters.packets_sent - before <= 2


def test_a_lost_announcement_is_sent_again() -> None:
    pair = Pair(make_config(75), make_config(76))
    pair.handshake()
    dropped: list[bytes] = []

    def drop_first(data: bytes, _now: float) -> bool:
        if not dropped:
            dropped.append(data)
            return True
        return False

    pair.drop_to_server = drop_first
    sid = pair.client.open_stream()
    pair.run_for(3.0)
    assert dropped  # the first announcement never arrived
    assert [e.stream_id for e in pair.events_of("server", StreamReadable)] == [sid]


def test_every_lower_numbered_peer_stream_is_reported_when_a_later_one_arrives() -> None:
    pair = Pair(make_config(77), make_config(78))
    pair.handshake()
    first = pair.client.open_stream()
    second = pair.client.open_stream()
    pair.client.send_stream_data(second, b"x")
    pair.run_for(0.5)
    reported = sorted(e.stream_id for e in pair.events_of("server", StreamReadable))
    assert reported == [first, second]
