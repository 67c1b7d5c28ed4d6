"""Packet building for a :class:`~transport.connection.Connection`.

How this works
--------------
The connection records *what is due* (an ACK, flow-control updates, resets,
handshake bytes, datagrams, stream data, a probe); :meth:`Packetizer.build`
turns that into as many packets as congestion control allows, in priority
order: ACK, control frames, handshake (CRYPTO), unreliable datagrams, then
stream data round-robin across streams. The common packet -- one STREAM frame
and maybe an ACK -- takes a fast path: one codec call writes header and frames
(and the CRC32C trailer with ``security="none"``); everything else is encoded
with one call for the header and one for all frames. 1-RTT packets are then
sealed with the AEAD of the current key generation (header as associated
data, key phase bit set); long-header packets always end in CRC32C.

Limits applied per ``build()``: the congestion window; the pacer, queried
once per call (its tokens are the call's budget); and, on a server that has
not validated the client's address, at most 3x the bytes received from it.
With FEC on, data packets start with FEC_SOURCE and their frames are kept as
source symbols; REPAIR packets go out as blocks close.

Every sent packet is handed to loss recovery with the list of *items* it
carried (stream ranges, control frames). Acknowledgement and loss are then
dispatched back to the owners of those items by the connection, which is how
lost data ends up in new packets (RFC 9000 §13.3) without copying packets.

ACK-only packets bypass the congestion window (they are not in flight);
everything else waits for window space, except probes after a PTO.
"""

from __future__ import annotations

import math
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from transport.crypto.packet_aead import RUN_MAX_PACKETS
from transport.crypto.packet_aead import seal_stream_packet as seal_stream_packet_aead
from transport.recovery import SentPacket
from transport.scratch import scratch
from transport.wire import (
    crc32c,
    encode_frames,
    encode_long_header,
    encode_short_header,
    packet_number_length,
    seal_stream_packet,
)
from transport.wire.constants import (
    AEAD_TAG_LENGTH,
    CRC_LENGTH,
    KEY_PHASE_BIT,
    MIN_INITIAL_DATAGRAM_SIZE,
    VERSION_1,
    ErrorCode,
    FrameType,
    PacketType,
)

if TYPE_CHECKING:
    from transport.connection import Connection
    from transport.crypto.aead import PacketProtection
    from transport.crypto.packet_aead import PacketSealer
    from transport.fec.protocol import FecSender
    from transport.flow import SendCredit
    from transport.streams import SendStream

#: fec_hold_pn of a source whose block is still open
HOLD_UNTIL_BLOCK_CLOSES = 1 << 62
#: a packet may go when the pacer is this close to holding its size in tokens
PACING_SLACK_BYTES = 64

# Kinds of item a sent packet records (first element of each tuple); the
# connection dispatches acknowledgement and loss of each kind to its owner.
ITEM_STREAM = 0  # (kind, stream_id, offset, length, fin)
ITEM_CRYPTO = 1  # (kind, offset, data)
ITEM_ACK = 2  # (kind, largest_acked)
ITEM_MAX_DATA = 3  # (kind,)
ITEM_MAX_STREAM_DATA = 4  # (kind, stream_id)
ITEM_MAX_STREAMS = 5  # (kind, bidirectional)
ITEM_RESET = 6  # (kind, stream_id, error_code)
ITEM_STOP_SENDING = 7  # (kind, stream_id, error_code)
ITEM_PMTU_PROBE = 8  # (kind, size_bytes)
ITEM_PATH_CHALLENGE = 9  # (kind, data)
ITEM_STREAM_OPEN = 10  # (kind, stream_id): an empty STREAM frame announcing a stream
# (kind, stream_id, first_pn, offsets, fin): the items of every packet of a send
# run (one shared tuple): packet ``pn`` carries the STREAM frame of bytes
# ``offsets[i]`` to ``offsets[i + 1]``, ``i = pn - first_pn``, the last one the
# FIN if ``fin`` (:func:`expand_items` gives the packet's ITEM_STREAM)
ITEM_STREAM_RUN = 11

#: Worst-case size of one control frame (type + three 8-byte varints).
CONTROL_FRAME_MAX = 25
#: A stream frame is worth sending only with at least this many payload bytes
#: (unless it carries a FIN or fills what is left).
MIN_STREAM_CHUNK = 32
STREAM_FRAME_TYPE = FrameType.STREAM | 0x04 | 0x02  # OFF and LEN bits set


class Packetizer:
    """Holds what is due to be sent and builds packets from it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.next_packet_number = 0
        self.probes_due = 0
        #: set when the pacer, not the window, stopped the last build
        self.pacing_blocked = False
        self._pace_budget = math.inf
        self._paced_bytes = 0
        self._source_frames = b""
        self._fec_block_packets: list[SentPacket] = []
        self.ping_due = False
        self.close_frame_due = False
        self.max_data_due = False
        # stream-id sets made by due_max_stream_data / due_reset (an empty set
        # is 216 bytes; idle connections hold thousands of packetizers)
        self.max_stream_data_due: set[int] | None = None
        #: MAX_STREAMS due, indexed by ``bidirectional`` (0: uni, 1: bidi)
        self.max_streams_due: list[bool] = [False, False]
        self.resets_due: set[int] | None = None
        #: local streams opened with nothing sent yet: announced with an empty
        #: STREAM frame unless data goes first (so a peer that waits for us to
        #: speak first learns of the stream)
        self.streams_to_announce: dict[int, None] = {}
        self.stop_sending_due: dict[int, int] = {}
        self.path_responses: list[bytes] = []
        self.path_challenges: list[bytes] = []
        self._ready: dict[int, None] = {}  # streams that may have data, in round-robin order
        from transport.connection import State  # (imported here: a cycle at module level)

        # Enum class attribute reads are slow on Python 3.11: build() uses these
        self._state_closing = State.CLOSING
        self._state_handshake = State.HANDSHAKE
        self._skip_every = conn.config.skip_packet_number_every
        self._skip_countdown = self._draw_skip_distance()
        self.set_max_datagram_size(conn.config.max_datagram_size)

    def due_max_stream_data(self, stream_id: int) -> None:
        """Queue a MAX_STREAM_DATA frame for the stream."""
        due = self.max_stream_data_due
        if due is None:
            due = self.max_stream_data_due = set()
        due.add(stream_id)

    def due_reset(self, stream_id: int) -> None:
        """Queue a RESET_STREAM frame for the stream."""
        due = self.resets_due
        if due is None:
            due = self.resets_due = set()
        due.add(stream_id)

    @property
    def short_room(self) -> int:
        """Frame bytes that fit in one 1-RTT packet."""
        return self._short_room

    def room_for(self, size_bytes: int) -> int:
        """Frame bytes that fit in a 1-RTT packet of ``size_bytes``."""
        return size_bytes - (1 + self.conn.config.connection_id_length + 4) - self._trailer

    def set_max_datagram_size(self, size_bytes: int) -> None:
        self.max_datagram_size = size_bytes
        #: payload room in a 1-RTT packet: header (form byte, DCID, up to 4 bytes
        #: of packet number) and the CRC32C trailer taken off
        trailer = AEAD_TAG_LENGTH if self.conn.config.security == "noise" else CRC_LENGTH
        self._trailer = trailer
        self._short_room = size_bytes - (1 + self.conn.config.connection_id_length + 4) - trailer

    # ------------------------------------------------------------- signals
    def stream_ready(self, stream_id: int) -> None:
        self._ready[stream_id] = None

    def wake_all_streams(self) -> None:
        for stream_id in self.conn._send_streams:
            self._ready[stream_id] = None

    # ------------------------------------------------------------- building
    def build(self, now: float) -> list[bytes]:
        conn = self.conn
        out: list[bytes] = []
        self.pacing_blocked = False
        # One pacer query per build(): the tokens it holds now are this call's
        # budget, spent packet by packet and settled with the pacer at the end.
        pacer = conn._pacer
        rate = conn._cc.pacing_rate_bps
        pacer.update(rate, now)
        self._pace_budget = math.inf if rate is None else pacer.tokens_bytes + PACING_SLACK_BYTES
        self._paced_bytes = 0
        if conn.state is self._state_closing:
            if self.close_frame_due and conn._close_sends_left > 0 and conn._close_frame:
                self.close_frame_due = False
                conn._close_sends_left -= 1
                out.append(self._build_close(conn.state))
            return out
        long_header = conn.state is self._state_handshake
        pmtu = conn._pmtu
        if pmtu is not None and not long_header:
            probe_size = pmtu.probe_due(now)
            if probe_size:
                out.append(self._build_mtu_probe(now, probe_size))
                pmtu.on_probe_sent(probe_size)
        generic = long_header or self._needs_generic() or self._fec_active(now)
        while True:
            if not conn.address_validated and (
                3 * conn._unvalidated_received_bytes - conn._unvalidated_sent_bytes
                < self.max_datagram_size
            ):
                break  # anti-amplification: at most 3x what the address sent us
            if generic:
                packet = self._build_one(now, long_header)
                if packet is None:
                    break
                generic = long_header or self._needs_generic() or self._fec_active(now)
            else:
                if self._build_stream_packets(now, out):
                    if not conn.address_validated:
                        conn._unvalidated_sent_bytes += len(out[-1])
                    continue
                # the fast path is done; an ACK-only packet or a BLOCKED
                # frame may still be due
                packet = self._build_one(now, False)
                if packet is None:
                    break
            out.append(packet)
            if not conn.address_validated:
                conn._unvalidated_sent_bytes += len(packet)
        if self._paced_bytes:
            pacer.on_sent(self._paced_bytes, now)
        if self.pacing_blocked:
            pacer.on_blocked()
        recovery = conn._recovery
        if (
            not self._ready
            and not self.pacing_blocked
            and conn._cc.congestion_window_bytes > recovery.bytes_in_flight
        ):
            # window to spare and nothing to send: the application is the limit,
            # so delivery-rate samples from now on must not lower the estimates
            recovery.on_app_limited()
        return out

    def _fec_active(self, now: float) -> bool:
        """True when the next data packet is an FEC source or a repair is due."""
        fec = self.conn._fec_sender
        if fec is None:
            return False
        return bool(fec.repairs) or (
            bool(self._ready) and fec.open_block(now, self.conn.loss_rate)
        )

    def _needs_generic(self) -> bool:
        """True when anything but stream data and ACKs is waiting."""
        conn = self.conn
        return bool(
            conn._fec_recovered_pending
            or conn._crypto_pending
            or conn._datagrams_out
            or self.max_data_due
            or self.max_stream_data_due
            or self.max_streams_due[True]
            or self.max_streams_due[False]
            or self.resets_due
            or self.stop_sending_due
            or self.streams_to_announce
            or self.path_responses
            or self.path_challenges
            or self.ping_due
            or self.probes_due
        )

    def _next_pn(self) -> int:
        pn = self.next_packet_number
        countdown = self._skip_countdown - 1
        if countdown == 0:
            self.conn._recovery.skip_packet_number(pn)
            pn += 1
            countdown = self._draw_skip_distance()
        self._skip_countdown = countdown
        self.next_packet_number = pn + 1
        return pn

    def _draw_skip_distance(self) -> int:
        every = self._skip_every
        if not every:
            return -1  # never reaches zero
        return int(self.conn.config.rng.randint(1, 2 * every))

    def _pacing_allows(self, now: float) -> bool:
        """Whether the pacing budget of this build() still holds a full packet."""
        if self._pace_budget >= self.max_datagram_size:
            return True
        self.pacing_blocked = True
        return False

    def _build_stream_packets(self, now: float, out: list[bytes]) -> int:
        """Fast path: 1-RTT packets of one STREAM frame each (plus a piggybacked
        ACK), appended to ``out`` while window, pacing, credit and data allow.
        Returns how many were built. Everything that does not change from packet
        to packet is looked up once per call."""
        ready = self._ready
        if not ready:
            return 0
        conn = self.conn
        recovery = conn._recovery
        cc = conn._cc
        acks = conn._acks
        send_streams = conn._send_streams
        stream_credits = conn._stream_send_credit
        counters = conn.counters
        keys = conn._session.keys
        crc = keys is None
        peer_cid = conn.peer_cid
        space = scratch()  # per-thread build buffer and sealer (transport/scratch.py)
        buf = space.build
        buf_view = space.build_view
        sealer = space.sealer
        # the C seal calls of PacketSealer made here directly for the common
        # packet (no ACK frame): one Python call less per packet
        seal_direct = seal_aead_direct = sealer_cbuf = null = None
        sealer_bytes: Any = None
        sealer_cap = 0
        cid_len = len(peer_cid)
        if sealer is not None:
            seal_direct, seal_aead_direct, sealer_cbuf, sealer_view, null = sealer.direct()
            sealer_cap = len(sealer_view)
            sealer_bytes = sealer.byte_slicer()  # [a:b] -> bytes in one step
            if not crc:
                seal_direct = None
        conn_credit = conn._send_credit
        compact_peer = conn._compact_tx  # the peer accepts compact STREAM frames
        # keys: _send_protection() decides on key updates, needed only when these hold
        send_update_check = keys is not None and (
            keys.send_first_pn < 0 or conn._key_update_requested
        )
        key_update_after = conn.config.key_update_after_packets
        # (_short_room counts our own CID length; the packets carry the peer's)
        short_room = self._short_room + conn.config.connection_id_length - cid_len
        mds = self.max_datagram_size
        # the anti-amplification limit is checked by build() between packets
        limit = 1 if not conn.address_validated else 1 << 30
        built = sent_bytes = stream_bytes = 0
        try_run = sealer is not None
        pace_budget = self._pace_budget
        while ready and built < limit:
            if cc.congestion_window_bytes <= recovery.bytes_in_flight:
                break
            if pace_budget - sent_bytes < mds:
                self.pacing_blocked = True
                break
            stream_id = next(iter(ready))
            stream = send_streams.get(stream_id)
            if stream is None:
                del ready[stream_id]
                continue
            if (
                try_run
                and sealer is not None
                and len(ready) == 1  # (several streams alternate packet by packet)
                and not acks._ack_pending
                and not send_update_check
                and limit > 1
            ):
                run, run_wire, run_stream, resume = self._seal_run(
                    now, out, stream, stream_id, sealer, pace_budget - sent_bytes)
                if run:
                    built += run
                    sent_bytes += run_wire
                    stream_bytes += run_stream
                    continue
                if not resume:
                    # (retransmissions, or window or pacer nearly spent: not a
                    # packet-number skip or the ring's end, after which runs go on)
                    try_run = False
            # short_room assumes a 4-byte packet number; the packet gets the
            # bytes its shorter one leaves (bound: the number after a skip)
            unacked = self.next_packet_number + 1 - recovery.largest_acked
            room = short_room + (
                3 if unacked <= 128 else 2 if unacked <= 32768 else 1 if unacked <= 8388608 else 0)
            ack_ranges = None
            ack_delay = 0
            if acks._ack_pending:  # acks.ack_pending without the property call
                ack_ranges, ack_delay = acks.build_ack(now)
                if ack_ranges:
                    room -= ack_frame_size(ack_ranges, ack_delay)
                    ecn_counts = acks._ecn_counts
                    if ecn_counts is not None:
                        # ACK_ECN: the sealers take the ranges + ECT(0), ECT(1), CE
                        ecn = (ecn_counts[2], ecn_counts[1], ecn_counts[3])
                        ack_ranges.extend(ecn)
                        room -= _varint_len(ecn[0]) + _varint_len(ecn[1]) + _varint_len(ecn[2])
                else:
                    ack_ranges = None
            # the stream's next frame, charged to flow credit (_take_chunk, inlined)
            stream_credit = stream_credits[stream_id]
            credit = stream_credit.available
            conn_available = conn_credit.available
            if conn_available < credit:
                credit = conn_available
            # 1 + varint(stream_id) + varint(top): the STREAM frame is the
            # packet's last, it has no Length field (seal_stream_packet); no
            # frame starts above the highest sent offset (lost ranges lie below)
            top = stream.highest_sent_offset
            if compact_peer and stream_id < 4 and top - stream._buf_start < 8388608:
                # compact STREAM (type + 3-byte offset): every frame starts in
                # [acked prefix, top], so every receiver reference rebuilds it
                overhead = 4
                flags = 2  # SEAL_COMPACT
            else:
                overhead = (
                    (2 if stream_id < 64 else 3 if stream_id < 16384 else 5)
                    if stream_id < 1073741824
                    else 9
                ) + (1 if top < 64 else 2 if top < 16384 else 4 if top < 1073741824 else 8)
                flags = 0
            chunk = stream.next_frame(room - overhead, credit)
            if chunk is None:
                del ready[stream_id]
                continue
            offset, data, fin, new_bytes = chunk
            length = len(data)
            if fin:
                flags |= 1
            if new_bytes:
                stream_credit.consume(new_bytes)
                conn_credit.consume(new_bytes)
            if length > new_bytes:
                counters.stream_bytes_retransmitted += length - new_bytes
                counters.packets_retransmitted += 1
            stream_bytes += length
            if len(ready) > 1:  # round robin: this stream goes to the back
                del ready[stream_id]
                ready[stream_id] = None
            # the next packet number (inlined _next_pn: this runs per packet)
            pn = self.next_packet_number
            countdown = self._skip_countdown - 1
            if countdown == 0:
                recovery.skip_packet_number(pn)
                pn += 1
                countdown = self._draw_skip_distance()
            self._skip_countdown = countdown
            self.next_packet_number = pn + 1
            unacked = pn - recovery.largest_acked
            # the shortest RFC 9000 A.2 allows (packet_number_length, inlined)
            pn_len = (
                1 if unacked <= 128 else 2 if unacked <= 32768 else 3 if unacked <= 8388608 else 4)
            if crc:
                if seal_direct is not None and ack_ranges is None and type(data) is bytes:
                    # the common packet: PacketSealer.seal_crc's C call, inlined
                    wire_size = seal_direct(sealer_cbuf, sealer_cap, peer_cid, cid_len, pn,
                                            pn_len, null, 0, 0, 0, stream_id, offset, data,
                                            length, flags, 1)
                    if wire_size < 0:  # pragma: no cover - the wrapper raises the error
                        packet = sealer.seal_crc(peer_cid, pn, pn_len, ack_ranges,  # type: ignore[union-attr]
                                                 ack_delay, stream_id, offset, data, flags)
                        wire_size = len(packet)
                    else:
                        packet = sealer_bytes[:wire_size]
                elif sealer is not None:
                    packet = sealer.seal_crc(peer_cid, pn, pn_len, ack_ranges, ack_delay,
                                             stream_id, offset, data, flags)
                    wire_size = len(packet)
                else:
                    wire_size = seal_stream_packet(buf, peer_cid, pn, pn_len, ack_ranges,
                                                   ack_delay, stream_id, offset, data, flags, crc)
                    packet = bytes(buf_view[:wire_size])
            else:  # header + frames + AEAD in one call (C on the native backend)
                send = keys.send  # type: ignore[union-attr]
                if send_update_check or send.sealed_count >= key_update_after:
                    send = self._send_protection(pn)
                native = send.native
                if (
                    seal_aead_direct is not None
                    and native is not None
                    and ack_ranges is None
                    and type(data) is bytes
                    and send.sealed_count < send.confidentiality_limit
                ):
                    # the common packet: PacketSealer.seal's C call, inlined
                    size = seal_aead_direct(native._ctx, sealer_cbuf, sealer_cap, peer_cid,
                                            cid_len, pn, pn_len, null, 0, 0, 0, stream_id,
                                            offset, data, length, flags,
                                            send.generation & 1)
                    if size < 0:  # pragma: no cover - the wrapper raises the error
                        packet = sealer.seal(send, peer_cid, pn, pn_len, ack_ranges,  # type: ignore[union-attr]
                                             ack_delay, stream_id, offset, data, flags)
                    else:
                        send.sealed_count += 1
                        packet = sealer_bytes[:size]
                elif sealer is not None and native is not None:
                    packet = sealer.seal(send, peer_cid, pn, pn_len, ack_ranges, ack_delay,
                                         stream_id, offset, data, flags)
                else:
                    size = seal_stream_packet_aead(send, buf, peer_cid, pn, pn_len, ack_ranges,
                                                   ack_delay, stream_id, offset, data, flags)
                    packet = bytes(buf_view[:size])
                wire_size = len(packet)
            items: list[tuple] = [(ITEM_STREAM, stream_id, offset, length, fin)]
            if ack_ranges is not None:
                largest = ack_ranges[1]
                acks.on_ack_sent(pn, largest)
                items.append((ITEM_ACK, largest))
            recovery.on_packet_sent(SentPacket(pn, now, wire_size, True, True, items), now)
            sent_bytes += wire_size
            out.append(packet)
            built += 1
        if built:
            self._pace_budget -= sent_bytes
            self._paced_bytes += sent_bytes
            counters.packets_sent += built
            counters.bytes_sent += sent_bytes
            counters.stream_bytes_sent += stream_bytes
            conn._last_ack_eliciting_sent_s = now
        return built

    def _seal_run(self, now: float, out: list[bytes], stream: SendStream, stream_id: int,
                  sealer: PacketSealer, pace_left: float) -> tuple[int, int, int, bool]:
        """Up to a GSO batch of STREAM packets of ``stream`` in one C call
        (``tp_seal_stream_run``): the packets the per-packet loop of
        :meth:`_build_stream_packets` would build next, as many as window,
        pacer, packet-number skip and key limits allow for sure (counting each
        packet as a full datagram). Returns ``(packets appended to out, their
        wire bytes, their stream bytes, resume)``; 0 packets: the caller builds
        the next one itself, and with ``resume`` runs go on after it (it is a
        packet-number skip, or the packet that crosses the end of the stream's
        ring buffer)."""
        conn = self.conn
        recovery = conn._recovery
        mds = self.max_datagram_size
        window_left = conn._cc.congestion_window_bytes - recovery.bytes_in_flight
        count = min(-(-window_left // mds), RUN_MAX_PACKETS)
        if pace_left != math.inf:
            count = min(count, int(pace_left // mds))
        if self._skip_countdown > 0:
            count = min(count, self._skip_countdown - 1)
        keys = conn._session.keys
        seal_run, cbuf, cap, _view, sizes, lengths, from_buffer, null, unpack = (
            sealer.run_direct())
        if keys is None:
            ctx = null
            phase = 0
            send = None
        else:
            send = keys.send
            native = send.native
            if native is None:
                return 0, 0, 0, 0 < self._skip_countdown <= 2
            count = min(count, conn.config.key_update_after_packets - send.sealed_count,
                        send.confidentiality_limit - send.sealed_count)
            ctx = native._ctx
            phase = send.generation & 1
        if count < 2:
            return 0, 0, 0, 0 < self._skip_countdown <= 2
        stream_credit = conn._stream_send_credit[stream_id]
        conn_credit = conn._send_credit
        credit = min(stream_credit.available, conn_credit.available)
        found = stream.unsent_run(credit)
        if found is None:
            return 0, 0, 0, 0 < self._skip_countdown <= 2
        offset, data, fin, cut = found
        pn0 = self.next_packet_number
        peer_cid = conn.peer_cid
        n = seal_run(ctx, cbuf, cap, peer_cid, len(peer_cid), pn0,
                     recovery.largest_acked & 0xFFFFFFFFFFFFFFFF, stream_id, offset,
                     from_buffer(data), len(data),
                     self._short_room + conn.config.connection_id_length - len(peer_cid),
                     (1 if fin else 0) | (2 if conn._compact_tx else 0),  # 2: SEAL_COMPACT
                     1 if cut else 0, phase, count, sizes, lengths,
                     # compact window: acked prefix .. highest sent (= offset: new data)
                     stream._buf_start, offset)
        if n <= 0:
            # (an error comes back from the per-packet path's own call; a packet
            # short of the ring's end is the per-packet path's, runs go on after)
            return 0, 0, 0, (n == 0 and cut) or 0 < self._skip_countdown <= 2
        if send is not None:
            send.sealed_count += n
        self.next_packet_number = pn0 + n
        if self._skip_countdown > 0:
            self._skip_countdown -= n
        # the packets as bytes (sliced from the buffer in one step each); the
        # run's packets share one items tuple (no per-packet item objects):
        # packet pn0 + i carries bytes offsets[i]..offsets[i + 1] (expand_items)
        packet_sizes = unpack(sizes, n)
        append_out = out.append
        packet_bytes = sealer.byte_slicer()
        pos = 0
        for size in packet_sizes:
            end = pos + size
            append_out(packet_bytes[pos:end])
            pos = end
        offsets = tuple(accumulate(unpack(lengths, n), initial=offset))
        stream_bytes = offsets[-1] - offset
        fin = fin and stream_bytes == len(data)  # (the last frame carries the FIN)
        run_items = ((ITEM_STREAM_RUN, stream_id, pn0, offsets, fin),)
        recovery.on_run_sent(pn0, packet_sizes, [run_items] * n, now)
        stream.mark_run_sent(stream_bytes, fin)
        stream_credit.consume(stream_bytes)
        conn_credit.consume(stream_bytes)
        return n, pos, stream_bytes, True

    def _take_chunk(
        self, stream_id: int, stream: SendStream, stream_credit: SendCredit, room: int
    ) -> tuple[int, bytes, bool, int] | None:
        """The stream's next frame for ``room`` bytes of packet, charged to flow
        credit: ``(offset, data, fin, frame_overhead)``, or None."""
        conn_credit = self.conn._send_credit
        credit = stream_credit.available
        if conn_credit.available < credit:
            credit = conn_credit.available
        overhead = 3 + _varint_len(stream_id) + _varint_len(stream.highest_sent_offset + room)
        chunk = stream.next_frame(room - overhead, credit)
        if chunk is None:
            return None
        offset, data, fin, new_bytes = chunk
        if new_bytes:
            stream_credit.consume(new_bytes)
            conn_credit.consume(new_bytes)
        resent = len(data) - new_bytes
        if resent > 0:
            counters = self.conn.counters
            counters.stream_bytes_retransmitted += resent
            counters.packets_retransmitted += 1
        return offset, data, fin, overhead

    def _send_protection(self, pn: int) -> PacketProtection:
        """The send keys for packet ``pn``; updates the keys first when it is time."""
        conn = self.conn
        keys = conn._session.keys
        if keys is None:  # pragma: no cover - callers check
            raise RuntimeError("no 1-RTT keys")
        if keys.send_first_pn < 0:
            keys.send_first_pn = pn
        send = keys.send
        if (
            conn._key_update_requested or send.sealed_count >= conn.config.key_update_after_packets
        ) and conn._recovery.largest_acked >= keys.send_first_pn:
            # allowed once a packet under the current keys was acknowledged (§9.3)
            keys.update_send(pn)
            send = keys.send
            conn._key_update_requested = False
        return send

    def _protect(self, buf: bytearray, header_end: int, end: int, pn: int) -> bytes:
        """Seal a 1-RTT packet built in ``buf[:end]`` with the current send keys
        (setting its key phase bit); updates the keys first when it is time."""
        send = self._send_protection(pn)
        if send.key_phase:
            buf[0] |= KEY_PHASE_BIT
        view = memoryview(buf)
        header = bytes(view[:header_end])
        sealed = send.seal(header, view[header_end:end], pn)
        view.release()
        return header + sealed

    def _build_one(self, now: float, long_header: bool) -> bytes | None:
        conn = self.conn
        recovery = conn._recovery
        acks = conn._acks
        mds = self.max_datagram_size
        if long_header:
            token_len = len(conn._retry_token)
            overhead = 1 + 4 + 2 + len(conn.peer_cid) + len(conn.local_cid) + 2 + 4
            overhead += _varint_len(token_len) + token_len
        else:
            overhead = 1 + len(conn.peer_cid) + 4
        overhead += self._trailer
        space = mds - overhead
        specs: list[tuple[int, int, int, int, int, object]] = []
        items: list[tuple] = []

        probe = self.probes_due > 0
        window_open = probe or conn._cc.available_bytes(recovery.bytes_in_flight) > 0
        if window_open and not probe and not self._pacing_allows(now):
            window_open = False
        fec = None if long_header else conn._fec_sender
        if fec is not None and window_open and fec.repairs:
            return self._build_repair(now, fec.repairs.pop(0))
        # an FEC source packet: its frames must fit one symbol
        protect = fec is not None and window_open and self._fec_active(now)
        if protect and fec is not None:
            space = min(space, fec.max_frames_bytes)
        ack_due = acks.should_send_ack(now)
        eliciting = False
        largest_acked_in_ack = -1
        if ack_due or (window_open and acks.ack_pending and self._has_work()):
            ranges, delay = acks.build_ack(now)
            if ranges:
                largest_acked_in_ack = ranges[1]
                space -= ack_frame_size(ranges, delay)
                ecn = acks.ecn_report
                if ecn is None:
                    specs.append((FrameType.ACK, ranges[1], delay, 0, 0, ranges))
                else:  # ACK_ECN: the ranges, then the ECT(0), ECT(1), CE counts
                    specs.append((FrameType.ACK_ECN, ranges[1], delay, 0, 0, ranges + list(ecn)))
                    space -= _varint_len(ecn[0]) + _varint_len(ecn[1]) + _varint_len(ecn[2])
        if window_open:
            if not long_header:  # flow-control and stream frames are 1-RTT only
                space, eliciting = self._add_control(specs, items, space)
            if long_header and conn._crypto_pending and space > 64:
                space = self._add_crypto(specs, items, space)
                eliciting = True
            if not long_header:
                if conn._datagrams_out:
                    space, sent = self._add_datagrams(specs, space)
                    eliciting = eliciting or sent
                if self._ready and space > MIN_STREAM_CHUNK:
                    space, sent = self._add_stream_data(specs, items, space)
                    eliciting = eliciting or sent
            if (probe or self.ping_due) and not eliciting:
                specs.append((FrameType.PING, 0, 0, 0, 0, None))
                eliciting = True
            if eliciting:
                self.ping_due = False
                if probe:
                    self.probes_due -= 1
                    conn.counters.probes_sent += 1
        if not specs:
            return None
        if not eliciting and largest_acked_in_ack < 0:
            return None

        pn = self._next_pn()
        pn_len = packet_number_length(pn, recovery.largest_acked)
        source = protect and any(item[0] == ITEM_STREAM for item in items)
        closed_block = False
        if source and fec is not None:
            block, index = fec.next_index()
            specs.insert(0, (FrameType.FEC_SOURCE, block, index, 0, 0, None))
        if long_header:
            data = self._encode_long(specs, pn, pn_len)
        else:
            data = self._encode_short(specs, pn, pn_len, fec_source=source)
            if source and fec is not None:
                fec.add_source(pn, self._source_frames, now, backlogged=bool(self._ready))
                closed_block = fec.block_id != block
        if largest_acked_in_ack >= 0:
            acks.on_ack_sent(pn, largest_acked_in_ack)
            items.append((ITEM_ACK, largest_acked_in_ack))
        size = len(data)
        record = SentPacket(pn, now, size, eliciting, eliciting, items)
        if source and fec is not None:
            self._hold_for_repair(record, fec, closed_block)
        recovery.on_packet_sent(record, now)
        if eliciting:
            self._pace_budget -= size
            self._paced_bytes += size
        counters = conn.counters
        counters.packets_sent += 1
        counters.bytes_sent += size
        if eliciting:
            conn._last_ack_eliciting_sent_s = now
        return data

    def _hold_for_repair(self, packet: SentPacket, fec: FecSender, closed_block: bool) -> None:
        """Keep loss detection from declaring an FEC source lost before its block's
        repairs have been sent and had time to arrive (see SentPacket.fec_hold_pn)."""
        packet.fec_hold_pn = HOLD_UNTIL_BLOCK_CLOSES
        packet.fec_extra_s = fec.latency_budget_s
        block = self._fec_block_packets
        block.append(packet)
        block_id = fec.block_id - 1 if closed_block else fec.block_id
        fec.tracker.on_source(block_id, packet)
        if closed_block:  # this source closed the block: repairs go out next
            release_pn = self.next_packet_number + len(fec.repairs) + 1
            for sent in block:
                sent.fec_hold_pn = release_pn
            block.clear()
            fec.tracker.on_close(block_id, fec.m)

    def on_fec_block_closed(self, fec: FecSender) -> None:
        """A partial block closed on its timer: release its sources' hold."""
        release_pn = self.next_packet_number + len(fec.repairs) + 1
        for sent in self._fec_block_packets:
            sent.fec_hold_pn = release_pn
        self._fec_block_packets.clear()
        fec.tracker.on_close(fec.block_id - 1, fec.m)

    def _build_mtu_probe(self, now: float, size: int) -> bytes:
        """PING + PADDING to exactly ``size`` bytes: acknowledged means the path
        carries packets that large. Not in flight: its loss is no congestion."""
        conn = self.conn
        pn = self._next_pn()
        pn_len = packet_number_length(pn, conn._recovery.largest_acked)
        padding = size - (1 + len(conn.peer_cid) + pn_len) - self._trailer - 1
        specs = [(FrameType.PING, 0, 0, 0, 0, None), (FrameType.PADDING, padding, 0, 0, 0, None)]
        data = self._encode_short(specs, pn, pn_len, limit=size)
        items = [(ITEM_PMTU_PROBE, size)]
        conn._recovery.on_packet_sent(SentPacket(pn, now, len(data), True, False, items), now)
        counters = conn.counters
        counters.packets_sent += 1
        counters.bytes_sent += len(data)
        return data

    def _build_repair(self, now: float, repair: tuple[int, int, int, int, bytes]) -> bytes:
        """A packet carrying one REPAIR frame (in flight, never retransmitted)."""
        block, k, m, index, symbol = repair
        pn = self._next_pn()
        pn_len = packet_number_length(pn, self.conn._recovery.largest_acked)
        data = self._encode_short([(FrameType.REPAIR, block, k, m, index, symbol)], pn, pn_len)
        size = len(data)
        conn = self.conn
        fec = conn._fec_sender
        if fec is not None:
            fec.tracker.on_repair(block, pn)
        conn._recovery.on_packet_sent(SentPacket(pn, now, size, True, True, []), now)
        self._pace_budget -= size
        self._paced_bytes += size
        counters = conn.counters
        counters.packets_sent += 1
        counters.bytes_sent += size
        counters.fec_repair_bytes_sent += size
        conn._last_ack_eliciting_sent_s = now
        return data

    def _has_work(self) -> bool:
        conn = self.conn
        return bool(
            self._ready
            or conn._crypto_pending
            or conn._datagrams_out
            or self.max_data_due
            or self.max_stream_data_due
            or self.resets_due
            or self.stop_sending_due
            or self.ping_due
            or self.probes_due
        )

    # ------------------------------------------------------------- frames
    def _add_control(self, specs: list, items: list, space: int) -> tuple[int, bool]:
        conn = self.conn
        added = False
        if self.max_data_due and space >= CONTROL_FRAME_MAX:
            self.max_data_due = False
            specs.append((FrameType.MAX_DATA, conn._recv_window.limit, 0, 0, 0, None))
            items.append((ITEM_MAX_DATA,))
            space -= CONTROL_FRAME_MAX
            added = True
        while self.max_stream_data_due and space >= CONTROL_FRAME_MAX:
            stream_id = self.max_stream_data_due.pop()
            stream = conn._recv_streams.get(stream_id)
            if stream is None:
                continue
            specs.append((FrameType.MAX_STREAM_DATA, stream_id, stream.limit, 0, 0, None))
            items.append((ITEM_MAX_STREAM_DATA, stream_id))
            space -= CONTROL_FRAME_MAX
            added = True
        for bidi in (True, False):
            if self.max_streams_due[bidi] and space >= CONTROL_FRAME_MAX:
                self.max_streams_due[bidi] = False
                ftype = FrameType.MAX_STREAMS_BIDI if bidi else FrameType.MAX_STREAMS_UNI
                specs.append((ftype, conn.local_max_streams(bidi), 0, 0, 0, None))
                items.append((ITEM_MAX_STREAMS, bidi))
                space -= CONTROL_FRAME_MAX
                added = True
        while self.resets_due and space >= CONTROL_FRAME_MAX:
            stream_id = self.resets_due.pop()
            send_stream = conn._send_streams.get(stream_id)
            reset = None if send_stream is None else send_stream.take_reset()
            if reset is None:
                continue
            error_code, final_size = reset
            specs.append((FrameType.RESET_STREAM, stream_id, error_code, final_size, 0, None))
            items.append((ITEM_RESET, stream_id, error_code))
            space -= CONTROL_FRAME_MAX
            added = True
        while self.streams_to_announce and space >= CONTROL_FRAME_MAX:
            stream_id = next(iter(self.streams_to_announce))
            del self.streams_to_announce[stream_id]
            send_stream = conn._send_streams.get(stream_id)
            if send_stream is None or not send_stream.needs_announcement:
                continue
            specs.append((STREAM_FRAME_TYPE, stream_id, 0, 0, 0, b""))
            items.append((ITEM_STREAM_OPEN, stream_id))
            space -= CONTROL_FRAME_MAX
            added = True
        while self.stop_sending_due and space >= CONTROL_FRAME_MAX:
            stream_id, error_code = self.stop_sending_due.popitem()
            specs.append((FrameType.STOP_SENDING, stream_id, error_code, 0, 0, None))
            items.append((ITEM_STOP_SENDING, stream_id, error_code))
            space -= CONTROL_FRAME_MAX
            added = True
        while self.path_responses and space >= 9:
            specs.append((FrameType.PATH_RESPONSE, 0, 0, 0, 0, self.path_responses.pop(0)))
            space -= 9
            added = True
        while self.path_challenges and space >= 9:
            challenge = self.path_challenges.pop(0)
            specs.append((FrameType.PATH_CHALLENGE, 0, 0, 0, 0, challenge))
            items.append((ITEM_PATH_CHALLENGE, challenge))
            space -= 9
            added = True
        pending = conn._fec_recovered_pending
        if pending and space >= 64:
            ranges = _descending_ranges(pending, max_ranges=16)
            specs.append((FrameType.FEC_RECOVERED, ranges[1], 0, 0, 0, ranges))
            pending.clear()
            space -= ack_frame_size(ranges, 0)
            added = True
        credit = conn._send_credit
        if self._ready and space >= CONTROL_FRAME_MAX and credit.should_send_blocked():
            specs.append((FrameType.DATA_BLOCKED, credit.limit, 0, 0, 0, None))
            space -= CONTROL_FRAME_MAX
            added = True
        return space, added

    def _add_crypto(self, specs: list, items: list, space: int) -> int:
        pending = self.conn._crypto_pending
        while pending and space > 32:
            offset, data = pending.pop(0)
            room = space - (1 + 8 + 2)
            chunk, rest = data[:room], data[room:]
            if rest:
                pending.insert(0, (offset + len(chunk), rest))
            specs.append((FrameType.CRYPTO, offset, 0, 0, 0, chunk))
            items.append((ITEM_CRYPTO, offset, chunk))
            space -= 1 + 8 + 2 + len(chunk)
        return space

    def _add_datagrams(self, specs: list, space: int) -> tuple[int, bool]:
        queue = self.conn._datagrams_out
        sent = False
        while queue and len(queue[0]) + 3 <= space:
            data = queue.popleft()
            specs.append((FrameType.DATAGRAM_LEN, 0, 0, 0, 0, data))
            space -= len(data) + 3
            sent = True
        if queue and not sent and len(queue[0]) + 3 > self.max_datagram_size - 64:
            queue.popleft()  # can never fit (peer lowered its size): drop it
            self.conn.counters.datagrams_sent_dropped += 1
        return space, sent

    def _add_stream_data(self, specs: list, items: list, space: int) -> tuple[int, bool]:
        conn = self.conn
        ready = self._ready
        counters = conn.counters
        sent = False
        for stream_id in list(ready):
            if space <= MIN_STREAM_CHUNK:
                break
            stream = conn._send_streams.get(stream_id)
            if stream is None:
                del ready[stream_id]
                continue
            stream_credit = conn._stream_send_credit[stream_id]
            took = False
            # several frames from one stream when it has them (a small re-sent
            # range followed by new data), until the packet is full
            while space > MIN_STREAM_CHUNK:
                chunk = self._take_chunk(stream_id, stream, stream_credit, space)
                if chunk is None:
                    del ready[stream_id]
                    break
                offset, data, fin, overhead = chunk
                length = len(data)
                counters.stream_bytes_sent += length
                specs.append((STREAM_FRAME_TYPE | fin, stream_id, offset, 0, 0, data))
                items.append((ITEM_STREAM, stream_id, offset, length, fin))
                space -= overhead + length
                sent = took = True
            if took and stream_id in ready:
                # round robin: the stream goes to the back of the queue
                del ready[stream_id]
                ready[stream_id] = None
        return space, sent

    # ------------------------------------------------------------- encoding
    def _encode_short(
        self, specs: list, pn: int, pn_len: int, fec_source: bool = False, limit: int = 0
    ) -> bytes:
        buf = scratch().build
        end_limit = (limit or self.max_datagram_size) - self._trailer
        pos = encode_short_header(buf, 0, self.conn.peer_cid, pn, pn_len)
        if fec_source:
            # FEC_SOURCE first, then the frames its source symbol protects
            frames_start = encode_frames(specs[:1], buf, pos, end_limit)
            end = encode_frames(specs[1:], buf, frames_start, end_limit)
            self._source_frames = bytes(buf[frames_start:end])
        else:
            end = encode_frames(specs, buf, pos, end_limit)
        if self.conn._session.keys is None:
            return _with_crc(buf, end)
        return self._protect(buf, pos, end, pn)

    def _encode_long(self, specs: list, pn: int, pn_len: int) -> bytes:
        conn = self.conn
        ptype = PacketType.INITIAL if conn.is_client else PacketType.HANDSHAKE
        token = conn._retry_token if ptype == PacketType.INITIAL else b""
        header_len = (
            1 + 4 + 1 + len(conn.peer_cid) + 1 + len(conn.local_cid)
            + (_varint_len(len(token)) + len(token) if ptype == PacketType.INITIAL else 0)
            + 2 + pn_len
        )
        space = scratch()
        payload_buf = space.long_payload
        payload_len = encode_frames(specs, payload_buf, 0, self.max_datagram_size)
        if conn.is_client:
            shortfall = MIN_INITIAL_DATAGRAM_SIZE - (header_len + payload_len + CRC_LENGTH)
            if shortfall > 0:
                payload_len = encode_frames(
                    [(FrameType.PADDING, shortfall, 0, 0, 0, None)],
                    payload_buf,
                    payload_len,
                    len(payload_buf),
                )
        length = pn_len + payload_len + CRC_LENGTH
        buf = space.build
        pos = encode_long_header(
            buf, 0, ptype, VERSION_1, conn.peer_cid, conn.local_cid, token, pn, pn_len, length
        )
        buf[pos : pos + payload_len] = payload_buf[:payload_len]
        return _with_crc(buf, pos + payload_len)

    def _build_close(self, state: object) -> bytes:
        conn = self.conn
        code, frame_type, reason, app = conn._close_frame  # type: ignore[misc]
        spec: tuple[int, int, int, int, int, bytes]
        if app and not conn.handshake_completed:
            # nothing about the application leaks before the handshake (§10.17)
            spec = (FrameType.CONNECTION_CLOSE, int(ErrorCode.APPLICATION_ERROR), 0, 0, 0, b"")
        elif app:
            spec = (FrameType.APPLICATION_CLOSE, code, 0, 0, 0, reason)
        else:
            spec = (FrameType.CONNECTION_CLOSE, code, frame_type, 0, 0, reason)
        pn = self._next_pn()
        pn_len = packet_number_length(pn, conn._recovery.largest_acked)
        if conn.handshake_completed:
            data = self._encode_short([spec], pn, pn_len)
        else:
            data = self._encode_long([spec], pn, pn_len)
        conn.counters.packets_sent += 1
        conn.counters.bytes_sent += len(data)
        return data


def _with_crc(buf: bytearray, end: int) -> bytes:
    view = memoryview(buf)
    try:
        buf[end : end + CRC_LENGTH] = crc32c(view[:end]).to_bytes(4, "big")
    finally:
        view.release()
    return bytes(buf[: end + CRC_LENGTH])


def _varint_len(value: int) -> int:
    return 1 if value < 64 else 2 if value < 16384 else 4 if value < 1073741824 else 8


def ack_frame_size(ranges: list[int], ack_delay: int) -> int:
    """Exact encoded size of an ACK frame for flat inclusive ranges (highest first)."""
    size = 1 + _varint_len(ranges[1]) + _varint_len(ack_delay)
    count = len(ranges) // 2
    size += _varint_len(count - 1) + _varint_len(ranges[1] - ranges[0])
    previous_low = ranges[0]
    for i in range(2, len(ranges), 2):
        low, high = ranges[i], ranges[i + 1]
        size += _varint_len(previous_low - high - 2) + _varint_len(high - low)
        previous_low = low
    return size


def _descending_ranges(packet_numbers: list[int], max_ranges: int) -> list[int]:
    """Flat inclusive (low, high) pairs, highest first, of a set of numbers."""
    ranges: list[int] = []
    for pn in sorted(set(packet_numbers), reverse=True):
        if ranges and pn == ranges[-2] - 1:
            ranges[-2] = pn
        elif len(ranges) < 2 * max_ranges:
            ranges.extend((pn, pn))
        else:
            break
    return ranges


def expand_items(items: Any, packet_number: int) -> list[tuple]:
    """The items of the sent packet ``packet_number`` as a list, an
    ITEM_STREAM_RUN entry replaced by the ITEM_STREAM it stands for."""
    expanded = []
    for item in items:
        if item[0] == ITEM_STREAM_RUN:
            _, stream_id, first_pn, offsets, fin = item
            i = packet_number - first_pn
            offset = offsets[i]
            item = (ITEM_STREAM, stream_id, offset, offsets[i + 1] - offset,
                    fin and i + 2 == len(offsets))
        expanded.append(item)
    return expanded
