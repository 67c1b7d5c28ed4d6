"""SendCredit and ReceiveWindow: limits, BLOCKED signalling, window updates, auto-tuning."""

from __future__ import annotations

import pytest
from helpers import Pair, forge_short_packet, make_config
from hypothesis import given
from hypothesis import strategies as st

from transport.errors import ConfigurationError, InvalidStateError, RemoteProtocolError
from transport.flow import ReceiveWindow, SendCredit
from transport.wire.constants import ErrorCode, FrameType

# ------------------------------------------------------------------ SendCredit


def test_send_credit_consume_and_available() -> None:
    credit = SendCredit(1000)
    assert (credit.limit, credit.used, credit.available) == (1000, 0, 1000)
    credit.consume(600)
    assert credit.available == 400
    credit.consume(400)
    assert credit.available == 0
    with pytest.raises(InvalidStateError):
        credit.consume(1)
    assert credit.used == 1000  # a refused consume changes nothing


def test_send_credit_rejects_negative() -> None:
    with pytest.raises(InvalidStateError):
        SendCredit(10).consume(-1)
    with pytest.raises(ConfigurationError):
        SendCredit(-1)


def test_send_credit_raise_limit_ignores_decreases() -> None:
    credit = SendCredit(1000)
    assert credit.raise_limit(2000) is True
    assert credit.raise_limit(1500) is False  # stale / reordered MAX_DATA
    assert credit.raise_limit(2000) is False
    assert credit.limit == 2000


def test_blocked_signalled_once_per_limit() -> None:
    credit = SendCredit(100)
    assert credit.should_send_blocked() is False  # credit left
    credit.consume(100)
    assert credit.should_send_blocked() is True
    assert credit.should_send_blocked() is False  # once per stall
    credit.raise_limit(100)  # no growth: still the same stall
    assert credit.should_send_blocked() is False
    credit.raise_limit(150)
    assert credit.should_send_blocked() is False  # credit available again
    credit.consume(50)
    assert credit.should_send_blocked() is True  # a new stall at a new limit
    assert credit.should_send_blocked() is False


def test_zero_initial_limit_blocks_at_once() -> None:
    credit = SendCredit(0)
    assert credit.available == 0
    assert credit.should_send_blocked() is True
    assert credit.should_send_blocked() is False


# --------------------------------------------------------------- ReceiveWindow


def test_receive_window_rejects_overrun() -> None:
    window = ReceiveWindow(1000, 4000)
    window.on_received(1000)  # exactly at the limit is fine
    with pytest.raises(RemoteProtocolError) as info:
        window.on_received(1001)
    assert info.value.error_code == ErrorCode.FLOW_CONTROL_ERROR
    window.on_received(500)  # lower offsets (reordering) are ignored
    assert window.received == 1000


def test_add_received_charges_increments() -> None:
    window = ReceiveWindow(1000, 1000)
    window.add_received(400)
    window.add_received(600)
    assert window.received == 1000
    with pytest.raises(RemoteProtocolError):
        window.add_received(1)


def test_update_only_below_half_window() -> None:
    window = ReceiveWindow(1000, 1000)
    window.on_received(1000)
    assert window.on_consumed(400, now=0.0, rtt_s=0.1) is None  # 600 left > 500
    assert window.on_consumed(100, now=0.0, rtt_s=0.1) is None  # 500 left, not below half
    assert window.on_consumed(1, now=0.0, rtt_s=0.1) == 1501  # 499 left -> re-advertise
    assert window.limit == 1501
    assert window.window_bytes == 1000


def test_cannot_consume_more_than_received() -> None:
    window = ReceiveWindow(1000, 1000)
    window.on_received(100)
    with pytest.raises(InvalidStateError):
        window.on_consumed(101, now=0.0, rtt_s=0.1)
    with pytest.raises(InvalidStateError):
        window.on_consumed(-1, now=0.0, rtt_s=0.1)


def _drain(window: ReceiveWindow, now: float, rtt_s: float) -> int | None:
    """Receive and consume everything up to one byte short of the current limit
    (the peer never ran out of credit)."""
    window.on_received(window.limit - 1)
    return window.on_consumed(window.received - window.consumed, now, rtt_s)


def test_autotune_doubles_when_updates_are_frequent_and_caps() -> None:
    window = ReceiveWindow(1000, 5000)
    rtt_s = 0.1
    assert _drain(window, now=0.0, rtt_s=rtt_s) == 999 + 1000  # first update: no history
    assert window.window_bytes == 1000
    # Next update 0.05 s later (< 2 RTT): the reader is fast -> double.
    assert _drain(window, now=0.05, rtt_s=rtt_s) == 1998 + 2000
    assert window.window_bytes == 2000
    assert _drain(window, now=0.10, rtt_s=rtt_s) == 3997 + 4000
    assert window.window_bytes == 4000
    assert _drain(window, now=0.15, rtt_s=rtt_s) == 7996 + 5000  # capped at max
    assert window.window_bytes == 5000
    assert _drain(window, now=0.20, rtt_s=rtt_s) == 12995 + 5000
    assert window.window_bytes == 5000


def test_no_autotune_when_updates_are_slow() -> None:
    window = ReceiveWindow(1000, 8000)
    assert _drain(window, now=0.0, rtt_s=0.1) == 1999
    assert _drain(window, now=0.5, rtt_s=0.1) == 2998  # 0.5 s >= 2 RTT
    assert window.window_bytes == 1000


def test_autotune_doubles_when_the_peer_ran_out_of_credit() -> None:
    # Slow updates (a loss held the data above a hole for a round trip or
    # more), but the peer had sent up to the limit: the window was too small.
    window = ReceiveWindow(1000, 8000)
    assert _drain(window, now=0.0, rtt_s=0.1) == 1999
    window.on_received(window.limit)
    assert window.on_consumed(window.received - window.consumed, now=0.5, rtt_s=0.1) == 1999 + 2000
    assert window.window_bytes == 2000


def test_peer_blocked_report_grows_the_window_at_once() -> None:
    window = ReceiveWindow(1000, 3000)
    window.on_received(1000)  # the peer is at the limit; nothing consumed yet
    assert window.on_peer_blocked(999) is None  # not our current limit: stale
    assert window.on_peer_blocked(1000) == 2000  # consumed 0 + doubled window
    assert window.limit == 2000 and window.window_bytes == 2000
    assert window.on_peer_blocked(1000) is None  # stale now
    assert window.on_peer_blocked(2000) == 3000  # capped at max
    assert window.on_peer_blocked(3000) is None  # at the maximum already
    assert window.window_bytes == 3000


def test_no_autotune_without_rtt_sample() -> None:
    window = ReceiveWindow(1000, 8000)
    _drain(window, now=0.0, rtt_s=0.0)
    _drain(window, now=0.0, rtt_s=0.0)
    assert window.window_bytes == 1000


def test_receive_window_config_errors() -> None:
    with pytest.raises(ConfigurationError):
        ReceiveWindow(0, 10)
    with pytest.raises(ConfigurationError):
        ReceiveWindow(100, 10)


@given(st.lists(st.integers(0, 3000), max_size=60), st.integers(1, 5000))
def test_peer_credit_never_exceeds_window(reads: list[int], initial: int) -> None:
    """Whatever the read pattern, advertised credit beyond consumption stays within
    the (current) window, and the limit never decreases."""
    window = ReceiveWindow(initial, initial * 4)
    now = 0.0
    for chunk in reads:
        window.on_received(window.limit)  # peer always fills the window
        take = min(chunk, window.received - window.consumed)
        old_limit = window.limit
        new = window.on_consumed(take, now, rtt_s=0.05)
        now += 0.01
        assert window.limit >= old_limit
        assert window.limit - window.consumed <= window.window_bytes
        assert window.window_bytes <= window.max_window_bytes
        if new is not None:
            assert new == window.limit > old_limit


def _blocked_pair(frame_type: int) -> tuple[Pair, int]:
    """An established pair with 10 kB sent on a client stream (not read yet),
    then a forged BLOCKED frame of ``frame_type`` at the server's current limit."""
    pair = Pair(make_config(1), make_config(2, initial_max_stream_data=64 * 1024))
    pair.handshake()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, bytes(10_000))
    pair.run_for(0.2)
    pair.drop_to_client = lambda data, now: True  # the forger speaks for the client
    server = pair.server
    if frame_type == FrameType.STREAM_DATA_BLOCKED:
        frame: tuple = (frame_type, sid, server._recv_streams[sid].limit, 0, 0, None)
    else:
        frame = (frame_type, server._recv_window.limit, 0, 0, 0, None)
    pair.inject(forge_short_packet(server.local_cid, 1_000_000, [frame]), to_server=True)
    return pair, sid


def test_stream_data_blocked_at_our_limit_doubles_the_stream_window() -> None:
    pair, sid = _blocked_pair(FrameType.STREAM_DATA_BLOCKED)
    window = pair.server._recv_streams[sid].window
    assert window.window_bytes == 128 * 1024
    assert window.limit == 128 * 1024  # nothing consumed yet: 0 + the doubled window


def test_data_blocked_at_our_limit_doubles_the_connection_window() -> None:
    pair, _ = _blocked_pair(FrameType.DATA_BLOCKED)
    window = pair.server._recv_window
    assert window.window_bytes == 2 * pair.server.config.initial_max_data
    assert window.limit == window.window_bytes
