"""SendStream and ReceiveStream alone: buffering, retransmission, FIN, reset,
reassembly, final-size and flow-control rules, and a lossy loopback."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport.errors import ConfigurationError, RemoteProtocolError, StreamError
from transport.flow import SendCredit
from transport.streams import ReceiveStream, SendStream
from transport.wire.constants import ErrorCode

BIG = 1 << 40  # "unlimited" credit / frame size


def _payload(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


# ===================================================================== sending


def test_write_is_bounded_and_reports_accepted() -> None:
    s = SendStream(0, buffer_limit_bytes=100)
    assert s.writable_bytes == 100
    assert s.write(b"a" * 60) == 60
    assert s.write(b"b" * 60) == 40  # only the free room
    assert s.writable_bytes == 0
    assert s.write(b"c") == 0
    assert s.bytes_buffered == 100
    assert s.write(b"") == 0


def test_fin_recorded_only_when_everything_accepted() -> None:
    s = SendStream(0, buffer_limit_bytes=100)
    assert s.write(b"x" * 150, fin=True) == 100
    assert not s.fin_written
    frame = s.next_frame(BIG, BIG)
    assert frame is not None and frame[2] is False  # no FIN on the wire either
    s.on_acked(0, 100, False)
    assert s.write(b"x" * 50, fin=True) == 50
    assert s.fin_written
    with pytest.raises(StreamError):
        s.write(b"more")
    with pytest.raises(StreamError):
        s.write(b"", fin=True)


def test_writable_signal_after_ack_opens_room() -> None:
    s = SendStream(0, buffer_limit_bytes=100)
    s.write(b"a" * 100)
    assert s.write(b"b") == 0  # the writer is now blocked
    s.next_frame(40, BIG)
    s.next_frame(40, BIG)
    s.next_frame(40, BIG)
    assert s.on_acked(40, 40, False) is False  # out of order: nothing freed
    assert s.writable_bytes == 0
    assert s.on_acked(0, 40, False) is True  # room opened -> writable event
    assert s.writable_bytes == 80
    assert s.on_acked(80, 20, False) is False  # only once per blockage
    assert s.writable_bytes == 100


def test_no_writable_signal_when_writer_never_blocked() -> None:
    s = SendStream(0, buffer_limit_bytes=100)
    s.write(b"a" * 50)
    s.next_frame(BIG, BIG)
    assert s.on_acked(0, 50, False) is False


def test_next_frame_chunks_by_max_bytes_and_fin_on_last() -> None:
    data = _payload(1000)
    s = SendStream(4, buffer_limit_bytes=4096)
    s.write(data, fin=True)
    frames = []
    while (frame := s.next_frame(300, BIG)) is not None:
        frames.append(frame)
    assert [(o, len(d), f, n) for o, d, f, n in frames] == [
        (0, 300, False, 300),
        (300, 300, False, 300),
        (600, 300, False, 300),
        (900, 100, True, 100),
    ]
    assert b"".join(d for _, d, _, _ in frames) == data
    assert s.highest_sent_offset == 1000
    assert not s.has_data_to_send(BIG)


def test_new_data_limited_by_credit() -> None:
    s = SendStream(0, buffer_limit_bytes=4096)
    s.write(b"z" * 500, fin=True)
    assert s.has_data_to_send(0) is False
    assert s.next_frame(BIG, 0) is None
    frame = s.next_frame(BIG, 120)
    assert frame is not None
    assert (frame[0], len(frame[1]), frame[2], frame[3]) == (0, 120, False, 120)
    assert s.pending_new_bytes == 380
    frame = s.next_frame(BIG, 1000)
    assert frame is not None
    assert (frame[0], len(frame[1]), frame[2], frame[3]) == (120, 380, True, 380)


def test_lost_data_resent_first_and_not_limited_by_credit() -> None:
    data = _payload(900)
    s = SendStream(0, buffer_limit_bytes=4096)
    s.write(data)
    a = s.next_frame(300, BIG)
    b = s.next_frame(300, BIG)
    assert a is not None and b is not None
    s.on_lost(300, 300, False)
    assert s.has_data_to_send(0) is True
    frame = s.next_frame(BIG, 0)  # no credit needed for a retransmission
    assert frame == (300, data[300:600], False, 0)
    frame = s.next_frame(BIG, 0)
    assert frame is None  # new data still needs credit
    frame = s.next_frame(BIG, BIG)
    assert frame == (600, data[600:], False, 300)


def test_lost_range_resent_in_chunks() -> None:
    data = _payload(1000)
    s = SendStream(0, buffer_limit_bytes=4096)
    s.write(data)
    s.next_frame(BIG, BIG)
    s.on_lost(0, 1000, False)
    chunks = [s.next_frame(400, BIG) for _ in range(3)]
    assert chunks == [
        (0, data[:400], False, 0),
        (400, data[400:800], False, 0),
        (800, data[800:], False, 0),
    ]
    assert s.next_frame(400, BIG) is None


def test_loss_resends_only_unacked_parts() -> None:
    data = _payload(300)
    s = SendStream(0, buffer_limit_bytes=4096)
    s.write(data)
    for _ in range(3):
        s.next_frame(100, BIG)  # A [0,100) B [100,200) C [200,300)
    s.on_lost(0, 100, False)
    s.on_lost(100, 100, False)
    assert s.next_frame(BIG, BIG) == (0, data[:200], False, 0)  # D = A+B coalesced
    s.on_acked(100, 100, False)  # the original B arrives after all
    s.on_lost(0, 200, False)  # D lost: only [0,100) is still missing
    assert s.next_frame(BIG, BIG) == (0, data[:100], False, 0)
    assert s.next_frame(BIG, BIG) is None


def test_late_ack_cancels_pending_retransmission() -> None:
    s = SendStream(0, buffer_limit_bytes=4096)
    s.write(b"q" * 200)
    s.next_frame(100, BIG)
    s.next_frame(100, BIG)
    s.on_lost(0, 200, False)
    s.on_acked(50, 100, False)  # spurious loss for the middle part
    assert s.next_frame(BIG, BIG) == (0, b"q" * 50, False, 0)
    assert s.next_frame(BIG, BIG) == (150, b"q" * 50, False, 0)
    assert s.next_frame(BIG, BIG) is None


def test_out_of_order_acks_free_only_the_contiguous_prefix() -> None:
    s = SendStream(0, buffer_limit_bytes=1000)
    s.write(b"m" * 1000)
    for _ in range(4):
        s.next_frame(250, BIG)
    s.on_acked(500, 250, False)
    s.on_acked(250, 250, False)
    assert s.bytes_buffered == 1000  # nothing freed: [0,250) still unacked
    assert s.bytes_acked == 500
    s.on_acked(750, 250, False)
    assert s.bytes_buffered == 1000
    s.on_acked(0, 250, False)
    assert s.bytes_buffered == 0
    assert s.bytes_acked == 1000
    s.on_acked(0, 250, False)  # duplicate ack is harmless
    s.on_lost(250, 250, False)  # a loss after the ack schedules nothing
    assert s.next_frame(BIG, BIG) is None
    assert not s.is_all_acked  # no FIN yet


def test_acks_free_memory_progressively_in_order() -> None:
    s = SendStream(0, buffer_limit_bytes=1000)
    s.write(b"m" * 1000)
    for i in range(4):
        s.next_frame(250, BIG)
        s.on_acked(i * 250, 250, False)
        assert s.bytes_buffered == 1000 - (i + 1) * 250


def test_fin_only_frame_and_its_loss() -> None:
    s = SendStream(0, buffer_limit_bytes=1000)
    s.write(b"d" * 300)
    assert s.next_frame(BIG, BIG) == (0, b"d" * 300, False, 300)
    s.write(b"", fin=True)
    assert s.has_data_to_send(0) is True  # a FIN needs no credit
    assert s.next_frame(BIG, 0) == (300, b"", True, 0)
    assert s.next_frame(BIG, BIG) is None
    s.on_lost(300, 0, True)
    assert s.next_frame(BIG, 0) == (300, b"", True, 0)
    s.on_acked(0, 300, False)
    assert not s.is_all_acked
    s.on_acked(300, 0, True)
    assert s.is_all_acked
    s.on_lost(300, 0, True)  # a stale loss report after the ack
    assert s.next_frame(BIG, BIG) is None


def test_empty_stream_with_fin() -> None:
    s = SendStream(0, buffer_limit_bytes=10)
    s.write(b"", fin=True)
    assert s.next_frame(0, 0) == (0, b"", True, 0)
    s.on_acked(0, 0, True)
    assert s.is_all_acked


def test_fin_resent_with_lost_tail_data() -> None:
    s = SendStream(0, buffer_limit_bytes=1000)
    s.write(b"t" * 200, fin=True)
    assert s.next_frame(100, BIG) == (0, b"t" * 100, False, 100)
    assert s.next_frame(100, BIG) == (100, b"t" * 100, True, 100)
    s.on_acked(0, 100, False)
    s.on_lost(100, 100, True)
    assert s.next_frame(BIG, BIG) == (100, b"t" * 100, True, 0)
    assert s.next_frame(BIG, BIG) is None  # no separate FIN frame needed
    s.on_acked(100, 100, True)
    assert s.is_all_acked
    assert s.bytes_buffered == 0


def test_reset_discards_data_and_reports_final_size() -> None:
    s = SendStream(8, buffer_limit_bytes=1000)
    s.write(b"r" * 800)
    s.next_frame(300, BIG)
    s.next_frame(300, BIG)
    assert s.reset(0x55) == 600  # final size = highest offset sent
    assert s.is_reset and s.reset_error_code == 0x55
    assert s.bytes_buffered == 0
    assert s.writable_bytes == 0
    assert s.next_frame(BIG, BIG) is None
    assert not s.has_data_to_send(BIG)
    s.on_lost(0, 300, False)  # no data retransmission after reset
    assert s.next_frame(BIG, BIG) is None
    with pytest.raises(StreamError):
        s.write(b"x")
    with pytest.raises(StreamError):
        s.reset(1)
    assert s.reset_pending
    assert s.take_reset() == (0x55, 600)
    assert not s.reset_pending and s.take_reset() is None
    s.on_reset_lost()
    assert s.take_reset() == (0x55, 600)
    assert not s.is_all_acked
    s.on_reset_acked()
    assert s.is_all_acked
    s.on_reset_lost()  # stale loss after the ack
    assert not s.reset_pending


def test_stop_sending_triggers_reset() -> None:
    s = SendStream(0, buffer_limit_bytes=100)
    s.write(b"abc")
    s.next_frame(BIG, BIG)
    assert s.on_stop_sending(7) is True
    assert s.stop_sending_error_code == 7
    assert s.take_reset() == (7, 3)
    assert s.on_stop_sending(9) is False  # already reset


def test_stop_sending_after_everything_acked_is_noop() -> None:
    s = SendStream(0, buffer_limit_bytes=100)
    s.write(b"abc", fin=True)
    s.next_frame(BIG, BIG)
    s.on_acked(0, 3, True)
    assert s.on_stop_sending(7) is False
    assert not s.is_reset


def test_buffer_grows_and_wraps_without_corruption() -> None:
    data = _payload(120_000, seed=7)
    s = SendStream(0, buffer_limit_bytes=50_000)
    written = s.write(data[:10_000])
    got = bytearray()
    while written < len(data) or s.has_data_to_send(BIG):
        frame = s.next_frame(1_333, 5_000)
        if frame is not None:
            offset, chunk, _fin, _new = frame
            assert offset == len(got)
            got += chunk
            s.on_acked(offset, len(chunk), False)
        written += s.write(data[written : written + 37_000])
        assert s.bytes_buffered <= 50_000
    assert bytes(got) == data


def test_buffer_grows_late_with_a_large_acked_prefix() -> None:
    data = _payload(200_000, seed=8)
    s = SendStream(0, buffer_limit_bytes=100_000)
    got = bytearray()

    def pump() -> None:
        while (frame := s.next_frame(1_200, BIG)) is not None:
            assert frame[0] == len(got)
            got.extend(frame[1])
            s.on_acked(frame[0], len(frame[1]), False)

    written = 0
    while written < 70_001:  # small writes: the ring stays at its initial size
        written += s.write(data[written : written + 5_000])
        pump()
    assert s.bytes_acked == written
    written += s.write(data[written : written + 5_000])
    held = s.next_frame(BIG, BIG)  # in flight while the ring grows
    assert held is not None
    got += held[1]
    written += s.write(data[written : written + 90_000])  # now it must grow
    s.on_lost(held[0], len(held[1]), False)
    retransmitted = s.next_frame(BIG, BIG)
    assert retransmitted == (held[0], held[1], False, 0)
    s.on_acked(held[0], len(held[1]), False)
    pump()
    written += s.write(data[written:])
    pump()
    assert written == len(data)
    assert bytes(got) == data


def test_invalid_sizes() -> None:
    with pytest.raises(ConfigurationError):
        SendStream(0, buffer_limit_bytes=0)
    with pytest.raises(ConfigurationError):
        ReceiveStream(0, window_bytes=0)
    with pytest.raises(ConfigurationError):
        ReceiveStream(0, window_bytes=100, max_window_bytes=50)


# =================================================================== receiving


def test_in_order_and_partial_reads() -> None:
    r = ReceiveStream(1, window_bytes=1000)
    assert r.on_data(0, b"hello ", False) is True
    assert r.on_data(6, b"world", True) is True
    assert r.fin_received and not r.is_finished
    assert r.readable_bytes == 11
    assert r.read(3) == b"hel"
    assert not r.is_finished
    assert r.read() == b"lo world"
    assert r.is_finished
    assert r.read() == b""


def test_out_of_order_duplicates_and_overlaps() -> None:
    data = _payload(100)
    r = ReceiveStream(1, window_bytes=1000)
    assert r.on_data(50, data[50:80], False) is False
    assert r.on_data(60, data[60:90], False) is False  # overlaps held data
    assert r.readable_bytes == 0
    assert r.on_data(0, data[0:55], False) is True  # fills the gap, overlaps both
    assert r.readable_bytes == 90
    assert r.on_data(0, data[0:90], False) is False  # pure duplicate
    assert r.on_data(85, data[85:], True) is True
    assert r.read() == data
    assert r.is_finished


def test_empty_fin_makes_stream_finished() -> None:
    r = ReceiveStream(1, window_bytes=10)
    assert r.on_data(0, b"", True) is True
    assert r.on_data(0, b"", True) is False  # duplicate FIN
    assert r.read() == b""
    assert r.is_finished


def test_fin_readable_only_when_contiguous() -> None:
    r = ReceiveStream(1, window_bytes=100)
    assert r.on_data(10, b"x" * 10, True) is False  # FIN known, data missing
    assert r.fin_received
    assert r.on_data(0, b"y" * 10, False) is True
    r.read()
    assert r.is_finished


@pytest.mark.parametrize(
    ("frames", "bad"),
    [
        ([(0, 10, True)], (5, 10, False)),  # data beyond the final size
        ([(0, 10, True)], (0, 5, True)),  # final size changed (smaller)
        ([(0, 10, True)], (10, 5, True)),  # final size changed (larger)
        ([(0, 20, False)], (0, 10, True)),  # FIN below received data
        ([(50, 10, False)], (0, 20, True)),  # FIN below out-of-order data
    ],
)
def test_final_size_violations(
    frames: list[tuple[int, int, bool]], bad: tuple[int, int, bool]
) -> None:
    r = ReceiveStream(1, window_bytes=1000)
    for offset, size, fin in frames:
        r.on_data(offset, bytes(size), fin)
    with pytest.raises(RemoteProtocolError) as info:
        r.on_data(bad[0], bytes(bad[1]), bad[2])
    assert info.value.error_code == ErrorCode.FINAL_SIZE_ERROR


def test_flow_control_violation_and_window_update() -> None:
    r = ReceiveStream(1, window_bytes=100)
    assert r.limit == 100
    r.on_data(0, bytes(100), False)  # exactly up to the limit
    with pytest.raises(RemoteProtocolError) as info:
        r.on_data(100, b"x", False)
    assert info.value.error_code == ErrorCode.FLOW_CONTROL_ERROR
    assert r.window_update(now=0.0, rtt_s=0.1) is None  # nothing read yet
    r.read(60)
    assert r.window_update(now=0.0, rtt_s=0.1) == 160  # 40 left < 50 -> update
    assert r.limit == 160
    r.on_data(100, bytes(60), False)  # allowed now
    with pytest.raises(RemoteProtocolError):
        r.on_data(160, b"x", False)


def test_window_autotunes_for_fast_reader() -> None:
    r = ReceiveStream(1, window_bytes=100, max_window_bytes=400)
    offset = 0
    now = 0.0
    limits = []
    for _ in range(5):
        size = r.limit - offset
        r.on_data(offset, bytes(size), False)
        offset += size
        r.read()
        new = r.window_update(now, rtt_s=0.1)
        assert new is not None
        limits.append(new)
        now += 0.01  # fast: well within 2 RTT
    # the first update doubles too: the peer sent up to the limit (it ran dry)
    assert limits == [300, 700, 1100, 1500, 1900]
    assert r.window.window_bytes == 400


def test_no_window_update_after_fin() -> None:
    r = ReceiveStream(1, window_bytes=100)
    r.on_data(0, bytes(90), True)
    r.read()
    assert r.window_update(now=0.0, rtt_s=0.1) is None
    assert r.limit == 100


def test_reset_checks_and_effects() -> None:
    r = ReceiveStream(1, window_bytes=1000)
    r.on_data(0, b"a" * 100, False)
    r.on_data(200, b"b" * 100, False)
    with pytest.raises(RemoteProtocolError) as info:
        r.on_reset(3, 250)  # below data already received
    assert info.value.error_code == ErrorCode.FINAL_SIZE_ERROR
    with pytest.raises(RemoteProtocolError) as info:
        r.on_reset(3, 1001)
    assert info.value.error_code == ErrorCode.FLOW_CONTROL_ERROR
    assert r.on_reset(3, 500) is True
    assert r.is_reset and r.reset_error_code == 3
    assert r.highest_offset == 500  # the connection charges this increase
    assert r.bytes_buffered == 0
    assert r.read() == b""
    assert not r.is_finished and not r.fin_received
    assert r.on_reset(3, 500) is False  # duplicate RESET_STREAM
    assert r.on_data(300, b"c" * 10, False) is False  # late data is ignored
    with pytest.raises(RemoteProtocolError) as info:
        r.on_reset(3, 400)  # final size changed
    assert info.value.error_code == ErrorCode.FINAL_SIZE_ERROR
    with pytest.raises(RemoteProtocolError) as info:
        r.on_data(490, b"c" * 20, False)  # beyond the final size
    assert info.value.error_code == ErrorCode.FINAL_SIZE_ERROR


def test_reset_must_match_fin() -> None:
    r = ReceiveStream(1, window_bytes=1000)
    r.on_data(0, b"a" * 10, True)
    with pytest.raises(RemoteProtocolError) as info:
        r.on_reset(0, 20)
    assert info.value.error_code == ErrorCode.FINAL_SIZE_ERROR
    assert r.on_reset(0, 10) is True


def test_scattered_tiny_fragments_are_refused() -> None:
    r = ReceiveStream(1, window_bytes=4096)
    with pytest.raises(RemoteProtocolError) as info:
        for offset in range(1, 4096, 2):
            r.on_data(offset, b"x", False)
    assert info.value.error_code == ErrorCode.PROTOCOL_VIOLATION
    # ...while a legitimately reordered stream of normal frames is fine:
    r2 = ReceiveStream(1, window_bytes=4096)
    for offset in range(4096 - 100, 0, -100):
        r2.on_data(offset, bytes(min(100, 4096 - offset)), False)
    r2.on_data(0, bytes(100), False)
    assert r2.readable_bytes == 4096


# ------------------------------------------------- reassembly property tests


@st.composite
def chunked_payload(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int]], random.Random]:
    size = draw(st.integers(0, 3000))
    rnd = draw(st.randoms(use_true_random=False))
    payload = rnd.randbytes(size)
    cuts = sorted(draw(st.lists(st.integers(0, size), max_size=30)))
    points = [0, *cuts, size]
    spans = list(itertools.pairwise(points))  # a partition (maybe empty parts)
    extra = draw(st.lists(st.tuples(st.integers(0, size), st.integers(0, 400)), max_size=15))
    spans += [(a, min(size, a + n)) for a, n in extra]  # overlaps
    spans += [spans[i] for i in draw(st.lists(st.integers(0, len(spans) - 1), max_size=10))]
    rnd.shuffle(spans)
    return payload, spans, rnd


@settings(derandomize=True, max_examples=300, deadline=None)
@given(chunked_payload())
def test_reassembly_any_order(case: tuple[bytes, list[tuple[int, int]], random.Random]) -> None:
    payload, spans, rnd = case
    size = len(payload)
    window = max(size, 1)
    r = ReceiveStream(3, window_bytes=window)
    out = bytearray()
    arrived = bytearray(size + 1)  # model: which offsets arrived (plus a sentinel)
    contiguous = 0
    fin_known = False
    for start, end in spans:
        fin = end == size
        # bytes are kept (immutable), other buffers copied: the caller reuses them
        kind = rnd.choice([bytes, bytearray, memoryview])
        piece = kind(payload[start:end])
        became = r.on_data(start, piece, fin)
        if kind is bytearray:
            piece[:] = bytes(len(piece))
        arrived[start:end] = b"\x01" * (end - start)
        old_contiguous = contiguous
        contiguous = arrived.index(0)
        fin_readable_now = (fin and not fin_known) and contiguous == size
        fin_known = fin_known or fin
        # True exactly when new bytes became readable or the FIN did.
        assert became == (contiguous > old_contiguous or fin_readable_now)
        assert len(out) + r.readable_bytes == contiguous
        assert r.bytes_buffered <= window  # reassembly memory within the window
        if rnd.random() < 0.3:
            data = r.read(rnd.randrange(0, 1500))
            assert type(data) is bytes
            out += data
    out += r.read()
    assert bytes(out) == payload
    assert r.is_finished
    assert r.final_size == size
    assert r.highest_offset == size
    assert r.bytes_buffered == 0


# ------------------------------------------------------------ lossy loopback


@settings(derandomize=True, max_examples=150, deadline=None)
@given(
    size=st.integers(0, 60000),
    buffer_limit=st.sampled_from([700, 2500, 40000]),
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.4),
    spurious=st.floats(0.0, 0.3),
)
def test_loopback_lossy_reordering(
    size: int, buffer_limit: int, seed: int, loss: float, spurious: float
) -> None:
    """A SendStream feeds a ReceiveStream through a network that loses, reorders
    and duplicates frames; lost frames get on_lost (some arrive late anyway),
    delivered ones get on_acked. The receiver reads exactly what was written
    and the sender ends with everything acknowledged."""
    rnd = random.Random(seed)
    payload = rnd.randbytes(size)
    window = 3000
    sender = SendStream(0, buffer_limit_bytes=buffer_limit)
    receiver = ReceiveStream(0, window_bytes=window, max_window_bytes=4 * window)
    credit = SendCredit(receiver.limit)
    written = 0
    received = bytearray()
    in_flight: list[tuple[int, bytes, bool]] = []
    late: list[tuple[int, bytes, bool]] = []  # declared lost but still delivered
    now = 0.0
    blocked = False
    for _step in range(20000):
        now += 0.001
        if written < size or not sender.fin_written:
            chunk = payload[written : written + rnd.randrange(1, 3000)]
            n = sender.write(chunk, fin=False)
            written += n
            if n < len(chunk):
                blocked = True
            if written == size:
                sender.write(b"", fin=True)
        for _ in range(rnd.randrange(0, 4)):
            frame = sender.next_frame(rnd.randrange(1, 800), credit.available)
            if frame is None:
                break
            offset, data, fin, new_bytes = frame
            credit.consume(new_bytes)
            in_flight.append((offset, data, fin))
        # The network: deliver, lose or hold back one random frame per step.
        for queue in (in_flight, late):
            if not queue or rnd.random() < 0.2:
                continue
            offset, data, fin = queue.pop(rnd.randrange(len(queue)))
            if queue is in_flight and rnd.random() < loss:
                sender.on_lost(offset, len(data), fin)
                if rnd.random() < spurious:
                    late.append((offset, data, fin))
                continue
            receiver.on_data(offset, data, fin)
            if rnd.random() < 0.1:
                receiver.on_data(offset, data, fin)  # duplicated by the network
            if sender.on_acked(offset, len(data), fin):
                assert blocked
                blocked = False
            assert receiver.bytes_buffered <= receiver.window.window_bytes
        if rnd.random() < 0.7:
            received += receiver.read(rnd.randrange(0, 4000))
            new_limit = receiver.window_update(now, rtt_s=0.01)
            if new_limit is not None:
                credit.raise_limit(new_limit)
        if receiver.is_finished and sender.is_all_acked and not late:
            break
    received += receiver.read()
    assert bytes(received) == payload
    assert receiver.is_finished
    assert sender.is_all_acked
    assert sender.bytes_buffered == 0
    assert credit.used == size  # every new byte charged exactly once
