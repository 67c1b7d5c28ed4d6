"""Batches of received datagrams for one connection (``Connection.receive_datagrams``).

How this works
--------------
A driver reads many datagrams per system call, and in a bulk transfer nearly
all of them are the same kind of packet: short header, in order, one STREAM
frame of an open stream. :func:`receive_datagrams` processes a batch from one
address with the result of calling ``Connection.receive_datagram`` for each,
at a fraction of the cost:

* the per-call set-up (scratch buffers, clock, address) is done once;
* after a bulk packet (the first datagram of a batch never starts a run: it
  is often the one that carries an ACK too), a run of two or more datagrams
  is opened and decoded in one C call (``tp_open_stream_run``,
  :mod:`transport.crypto.packet_runs`) for as long as its packets are the
  bulk kind (compact STREAM frames too: their offsets are rebuilt in C
  against the streams' highest offsets, passed in); when the frames continue
  each other on one stream and no flow-control limit can refuse them, one
  ``on_data`` call takes them all, and each packet number is recorded for
  acknowledgement;
* any other datagram goes through the connection's per-packet path: a direct
  C open and inline STREAM handling when it is one STREAM frame, else the
  generic ``_receive_1rtt`` / ``receive_datagram``.

Nothing here decides anything the per-packet path would decide differently;
tests/test_receive_batch.py compares batches with one-by-one delivery.
"""

from __future__ import annotations

from bisect import bisect_right
from operator import add
from typing import TYPE_CHECKING, Any

from transport import events
from transport.crypto.packet_runs import OPEN_RUN_MAX_PACKETS, StreamRunBuffers
from transport.errors import RemoteProtocolError, WireError
from transport.scratch import scratch
from transport.streams import compact_stream_offset
from transport.wire.constants import (
    HEADER_FORM_LONG,
    MAX_VARINT,
    PN_LENGTH_MASK,
    RESERVED_SHORT_MASK,
)

if TYPE_CHECKING:
    from transport.ack import AckManager
    from transport.connection import Connection

Address = tuple[str, int]

#: (State.ESTABLISHED, State.CLOSING), read from transport.connection on first
#: use (it imports this module, so not at import time)
_STATES: tuple[Any, Any] | None = None


def _load_states() -> tuple[Any, Any]:
    global _STATES
    from transport.connection import _CLOSING, _ESTABLISHED

    _STATES = (_ESTABLISHED, _CLOSING)
    return _STATES


def receive_datagrams(conn: Connection, datagrams: list[bytes], addr: Address,
                      now: float, ecn: int = 0) -> None:
    """``conn.receive_datagram(data, addr, now, ecn)`` for each of
    ``datagrams`` (from ``addr``, all with ECN codepoint ``ecn``), in order,
    done as a batch (see the module doc). Never raises for anything the peer
    sent."""
    _ESTABLISHED, _CLOSING = _STATES or _load_states()
    # (what receive_datagram sets per datagram; the same for the whole batch)
    rx_ecn = conn._rx_ecn = ecn & 3 if ecn and conn.config.ecn else 0

    if now > conn._now:
        conn._now = now
    space = scratch()
    counters = conn.counters
    receive_1rtt = conn._receive_1rtt
    decoder = space.decoder
    opener = space.opener
    acks = conn._acks
    session = conn._session
    local_cid = conn.local_cid
    cid_len = len(local_cid)
    recv_streams = conn._recv_streams
    # the common packet (native backend): opened with one direct C call,
    # then, when it is one STREAM frame for an open stream, in order, from
    # the peer's address, handled inline (_on_1rtt_opened and
    # _handle_frames for that case); anything else takes the generic path
    conn._rx_addr = addr
    conn._decoder = decoder
    conn._fec_decoder = space.fec_decoder
    conn._opener = opener
    direct = getattr(decoder, "open_direct", None)
    open_crc: Any = None
    open_aead: Any = None
    dec_c: Any = None
    frame0: Any = None
    if direct is not None and not conn._in_long_packet:
        open_crc, dec_c, frame0 = direct()
        if opener is not None:
            open_aead, plain_c, plain_cap, plain_view, opened = opener.direct()
    runs = space.stream_runs if open_crc is not None else None
    # (the first datagram goes the per-packet way: a sender's flight often
    # starts with an ACK frame besides the data, which would end a run at once
    # -- after copying the whole batch for it; a bulk one enables runs)
    try_run = False
    count = len(datagrams)
    index = 0
    while index < count:
        data = datagrams[index]
        index += 1
        if (
            conn.state is not _ESTABLISHED
            or not data
            or data[0] & HEADER_FORM_LONG
            or not conn.address_validated
            or conn.peer_addr is None
        ):
            conn.receive_datagram(data, addr, now, ecn)
            continue
        if try_run and runs is not None and index < count and addr == conn.peer_addr:
            # two or more left: try them as one run of bulk packets
            taken = _receive_run(conn, datagrams, index - 1, now, runs, decoder)
            # (a run that ended early stopped at a packet of another kind: the
            # next attempt waits until a bulk packet comes by again)
            try_run = taken == min(count - index + 1, OPEN_RUN_MAX_PACKETS)
            if taken:
                index += taken - 1
                continue
        # receive_datagram's prologue for the common packet (its scratch
        # and address fields were set before the loop: the same every time)
        counters.bytes_received += len(data)
        try:
            keys = session.keys
            status = -1
            if open_crc is None or type(data) is not bytes:
                pass
            elif keys is None:
                status = open_crc(dec_c, data, len(data), local_cid, cid_len, 1)
                if status >= 0:
                    first = data[0]
                    # RFC 9000 A.3 packet-number recovery (as in _receive_1rtt)
                    expected = acks.largest_received + 1
                    window = 1 << (((first & PN_LENGTH_MASK) + 1) * 8)
                    pn = (expected & ~(window - 1)) | (status >> 20)
                    half = window >> 1
                    if pn <= expected - half and pn < (1 << 62) - window:
                        pn += window
                    elif pn > expected + half and pn >= window:
                        pn -= window
                    status &= 0xFFFFF
                    payload: bytes | memoryview = data
            elif open_aead is not None and len(data) <= plain_cap:
                current = keys.recv_current
                native = current.native
                if native is not None and keys.send.generation >= current.generation:
                    status = open_aead(dec_c, native._ctx, data, len(data), local_cid,
                                       cid_len, acks.largest_received + 1,
                                       current.generation & 1, plain_c, plain_cap, opened)
                    if status >= 0:
                        pn = opened[0]
                        first = opened[1]
                        payload = plain_view[: opened[2]]
                        if pn > keys.largest_opened_current:
                            keys.largest_opened_current = pn
            if status < 0:
                receive_1rtt(data, now)  # (opens it again, with its error handling)
            elif (
                status == 1
                and (0x08 <= (ftype := frame0.type) <= 0x0F
                     or (ftype >= 0x38 and conn._compact_rx))  # (0x38..0x3f: compact)
                and not first & RESERVED_SHORT_MASK
                and pn > acks.largest_received
                and addr == conn.peer_addr
                and (stream := recv_streams.get(stream_id := frame0.a)) is not None
            ):
                conn._rx_pn_length = (first & PN_LENGTH_MASK) + 1
                conn._fec_source = None
                start = frame0.data_off
                if type(payload) is not memoryview:
                    payload = memoryview(payload)
                before = stream.highest_offset
                offset = frame0.b
                if ftype >= 0x38:  # compact STREAM: the offset rebuilt (in order: exact)
                    # decode_compact_offset inlined: the value with these low 24
                    # bits in (before - 2^23, before + 2^23]
                    offset = before - 0x7FFFFF + ((offset - before + 0x7FFFFF) & 0xFFFFFF)
                    if offset < 0 or offset + frame0.data_len > MAX_VARINT:
                        # (below 0, or beyond 2^62 - 1: raises FRAME_ENCODING_ERROR)
                        offset = compact_stream_offset(frame0.b, frame0.data_len, before)
                readable = stream.on_data(offset, payload[start : start + frame0.data_len],
                                          ftype & 1 == 1)
                grown = stream.highest_offset - before
                if grown > 0:
                    conn._recv_window.add_received(grown)
                if readable and stream_id not in conn._readable_reported:
                    conn._readable_reported[stream_id] = None
                    conn._push_event(events.StreamReadable(stream_id=stream_id))
                if acks.on_packet_received(pn, True, now) and rx_ecn:
                    acks.on_ecn(rx_ecn, True, now)
                counters.packets_received += 1
                conn._idle_since_s = now
                try_run = runs is not None  # a bulk packet: runs may follow
            else:
                conn._on_1rtt_opened(data, pn, first, status, payload, now)
        except WireError:
            counters.datagrams_dropped_malformed += 1
        except RemoteProtocolError as exc:
            conn._close_on_error(exc.error_code, exc.reason, exc.frame_type)
        if conn.state is _CLOSING and conn._close_sends_left > 0:
            conn._packetizer.close_frame_due = True

def _record_packets(acks: AckManager, pns: Any, count: int, now: float, rx_ecn: int) -> None:
    """``acks.on_packet_received(pn, True, now)`` (and ``on_ecn`` when
    ``rx_ecn``) for the first ``count`` of ``pns``, a run's packet numbers
    (they only grow), one step per stretch of consecutive numbers (a sender
    skips one now and then). A stretch is where ``pn - index`` keeps its value:
    it never falls, so where it rises is found by bisection."""
    start = 0
    while start < count:
        first_pn = pns[start]
        if pns[count - 1] - first_pn == count - 1 - start:
            end = count
        else:
            step = first_pn - start
            end = bisect_right(range(count), step, start + 1, count,
                               key=lambda k: pns[k] - k)
        new = acks.on_packets_received(first_pn, end - start, now)
        if new and rx_ecn:
            acks.on_ecn(rx_ecn, True, now, new)
        start = end


def receive_gro(conn: Connection, data: bytes, segment: int, addr: Address, now: float,
                ecn: int = 0) -> int:
    """The leading bulk packets of a GRO buffer from ``addr`` -- datagrams of
    ``segment`` bytes back to back in ``data``, the last maybe shorter --
    opened where they lie (no cutting, no copy) and processed as
    :func:`receive_datagrams` processes a run of them. Returns how many
    datagrams it took; the caller hands the others, cut apart, to the
    general path (0: none taken, nothing changed but the per-call fields
    every receive sets). Never raises for anything the peer sent."""
    _ESTABLISHED = (_STATES or _load_states())[0]
    size = len(data)
    if (
        type(data) is not bytes
        or segment <= 0
        or size <= segment
        or conn.state is not _ESTABLISHED
        or data[0] & HEADER_FORM_LONG
        or not conn.address_validated
        or addr != conn.peer_addr
        or conn._in_long_packet
    ):
        return 0
    space = scratch()
    decoder = space.decoder
    runs = space.stream_runs
    if runs is None or getattr(decoder, "open_direct", None) is None:
        return 0  # (the pure backend: the general path)
    # receive_datagrams' per-call set-up
    conn._rx_ecn = ecn & 3 if ecn and conn.config.ecn else 0
    if now > conn._now:
        conn._now = now
    conn._rx_addr = addr
    conn._decoder = decoder
    conn._fec_decoder = space.fec_decoder
    conn._opener = space.opener
    count = -(-size // segment)
    local_cid = conn.local_cid
    cid_end = 1 + len(local_cid)
    taken = misses = 0
    while taken < count and conn.state is _ESTABLISHED:
        n = min(count - taken, OPEN_RUN_MAX_PACKETS)
        pos = taken * segment
        sizes = [segment] * n
        if taken + n == count:
            sizes[-1] = size - (count - 1) * segment
        got = _receive_run_sizes(conn, data, pos, sizes, now, runs, decoder)
        taken += got
        if got == n:
            continue
        if got:
            misses = 0
        else:
            misses += 1
            if misses == 2:  # not a buffer of bulk packets: the general path
                break
        # the datagram that ended the run (an ACK with the data, say) takes
        # the per-packet path when it is ours; then runs go on after it
        datagram = data[taken * segment : (taken + 1) * segment]
        if datagram[0] & HEADER_FORM_LONG or datagram[1:cid_end] != local_cid:
            break  # (the endpoint routes it)
        receive_datagrams(conn, [datagram], addr, now, ecn)
        taken += 1
    return taken


def _receive_run(conn: Connection, datagrams: list[bytes], start: int, now: float,
                 runs: StreamRunBuffers, decoder: Any) -> int:
    """:meth:`receive_datagrams` for a run of bulk packets from ``start``:
    opened and decoded in one C call (``tp_open_stream_run``: each one
    STREAM frame, in order), then each frame handed to its stream as the
    per-packet fast path does. Returns how many datagrams it took (0: none;
    the caller goes on packet by packet from the first it did not take)."""
    chunk = datagrams[start : start + OPEN_RUN_MAX_PACKETS]
    try:
        joined = b"".join(chunk)
    except TypeError:  # not bytes-like: the generic path says why
        return 0
    return _receive_run_sizes(conn, joined, 0, list(map(len, chunk)), now, runs, decoder)


def _receive_run_sizes(conn: Connection, buf: bytes, start: int, sizes: list[int], now: float,
                       runs: StreamRunBuffers, decoder: Any) -> int:
    """:func:`_receive_run` for datagrams of ``sizes`` bytes back to back in
    ``buf`` from ``start``."""
    _CLOSING = (_STATES or _load_states())[1]

    keys = conn._session.keys
    protection = None
    if keys is not None:
        protection = keys.recv_current
        if protection.native is None or keys.send.generation < protection.generation:
            return 0
    acks = conn._acks
    recv_streams = conn._recv_streams
    compact = conn._compact_rx
    if compact:  # compact STREAM references: the highest offsets of streams 0..3
        # (a stream that does not exist keeps a stale value: its frames end the
        # run before their offset is used, the per-packet path takes them)
        refs = runs.refs
        if len(recv_streams) <= 4:
            for sid, rstream in recv_streams.items():
                if sid < 4:
                    refs[sid] = rstream._highest
        else:
            for sid in (0, 1, 2, 3):
                found = recv_streams.get(sid)
                if found is not None:
                    refs[sid] = found._highest
    try:
        opened = runs.open_sizes(protection, buf, start, sizes, conn.local_cid,
                                 acks.largest_received + 1, decoder, compact)
    except (TypeError, ValueError):  # (as the generic path would fail)
        return 0
    if opened == 0:
        return 0
    unpack = runs.unpack
    counters = conn.counters
    view = runs.view
    if opened > 1 and _receive_run_merged(conn, buf, start, sizes, opened, now, runs):
        return opened
    pos = taken = done = 0
    try:
        for pn, stream_id, offset, length, fin, size in zip(
            unpack(runs.pns, opened), unpack(runs.stream_ids, opened),
            unpack(runs.offsets, opened), unpack(runs.data_lens, opened),
            unpack(runs.fins, opened), sizes, strict=False,
        ):
            stream = recv_streams.get(stream_id)
            if stream is None:  # a new stream: the generic path opens it
                break
            counters.bytes_received += size
            taken += 1
            before = stream.highest_offset
            readable = stream.on_data(offset, view[pos : pos + length], fin == 1)
            pos += length
            grown = stream.highest_offset - before
            if grown > 0:
                conn._recv_window.add_received(grown)
            if readable and stream_id not in conn._readable_reported:
                conn._readable_reported[stream_id] = None
                conn._push_event(events.StreamReadable(stream_id=stream_id))
            if acks.on_packet_received(pn, True, now) and conn._rx_ecn:
                acks.on_ecn(conn._rx_ecn, True, now)
            counters.packets_received += 1
            done += 1
    except RemoteProtocolError as exc:
        conn._close_on_error(exc.error_code, exc.reason, exc.frame_type)
        if conn.state is _CLOSING and conn._close_sends_left > 0:
            conn._packetizer.close_frame_due = True
    if taken:
        last_first = buf[start + sum(sizes[: taken - 1])]
        conn._rx_pn_length = (last_first & PN_LENGTH_MASK) + 1
        conn._fec_source = None
        if keys is not None:
            pn = runs.pns[taken - 1]
            if pn > keys.largest_opened_current:
                keys.largest_opened_current = pn
    if done:
        conn._idle_since_s = now
    return taken

def _receive_run_merged(conn: Connection, buf: bytes, buf_pos: int, sizes: list[int],
                        opened: int, now: float, runs: StreamRunBuffers) -> bool:
    """The bulk case of :meth:`_receive_run`: all ``opened`` frames continue
    each other on one open stream (FIN at most on the last) and neither the
    stream nor the connection window can refuse them -- then one on_data
    call takes them all, with the same end state as one call per frame.
    False (nothing done) otherwise."""
    unpack = runs.unpack
    stream_ids = unpack(runs.stream_ids, opened)
    stream_id = stream_ids[0]
    stream = conn._recv_streams.get(stream_id)
    if stream is None or stream_ids.count(stream_id) != opened:
        return False
    offsets = unpack(runs.offsets, opened)
    lengths = unpack(runs.data_lens, opened)
    fins = unpack(runs.fins, opened)
    if fins.count(0) < opened - 1 or fins[-1] > 1:
        return False
    # every frame starts where the previous one ended
    if offsets[1:] != list(map(add, offsets[:-1], lengths[:-1])):  # (at C speed)
        return False
    total = sum(lengths)
    start = offsets[0]
    before = stream.highest_offset
    grown = start + total - before
    window = conn._recv_window
    if grown > 0 and window.received + grown > window.limit:
        return False  # one of them breaks flow control: frame by frame says which
    try:
        readable = stream.on_data(start, runs.view[:total], fins[-1] == 1)
    except RemoteProtocolError:
        return False  # (raised before the stream changed) frame by frame says which
    if grown > 0:
        window.add_received(grown)
    if readable and stream_id not in conn._readable_reported:
        conn._readable_reported[stream_id] = None
        conn._push_event(events.StreamReadable(stream_id=stream_id))
    counters = conn.counters
    received = sum(sizes[: opened - 1])
    counters.bytes_received += received + sizes[opened - 1]
    acks = conn._acks
    rx_ecn = conn._rx_ecn
    _record_packets(acks, runs.pns, opened, now, rx_ecn)
    counters.packets_received += opened
    conn._rx_pn_length = (buf[buf_pos + received] & PN_LENGTH_MASK) + 1
    conn._fec_source = None
    keys = conn._session.keys
    if keys is not None:
        pn = runs.pns[opened - 1]
        if pn > keys.largest_opened_current:
            keys.largest_opened_current = pn
    conn._idle_since_s = now
    return True
