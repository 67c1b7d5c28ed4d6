"""The sans-IO connection: one per peer.

How this works
--------------
A :class:`Connection` turns datagrams into ordered byte streams and back
without touching a socket, a clock or a thread. The caller owns all I/O.

Inputs (each takes the current time ``now`` in seconds, from a monotonic clock
the caller reads -- the connection never reads one):

* ``connect(addr, now)`` -- client only, starts the handshake;
* ``receive_datagram(data, addr, now)`` -- a UDP payload from the peer
  (``receive_datagrams(payloads, addr, now)``: several, same result, with
  runs of bulk packets opened in one C call);
* ``handle_timer(now)`` -- the deadline from ``get_timer()`` passed;
* stream and datagram calls: ``open_stream``, ``send_stream_data``,
  ``recv_stream_data``, ``reset_stream``, ``stop_sending``, ``send_datagram``,
  ``ping``, ``close``. These use the ``now`` of the most recent input.

Outputs, pulled by the caller:

* ``datagrams_to_send(now)`` -- a list of ``(payload, addr)`` to transmit;
* ``get_timer()`` -- the earliest deadline (absolute seconds) or ``None``;
* ``next_event()`` -- the next :mod:`transport.events` event or ``None``.

Call order: after *any* input, drain ``datagrams_to_send``, re-arm the timer
from ``get_timer``, and drain ``next_event``. A spurious or early
``handle_timer`` is a no-op. ``now`` must never go backwards.

Guarantees: peer input never raises. Malformed, truncated, corrupted or
duplicated datagrams are dropped and counted (``get_stats()``); protocol
violations close the connection with an error code and a
:class:`~transport.events.ConnectionTerminated` event. Misuse by the caller
raises a :class:`~transport.errors.LocalError` subclass. Every buffer has a
limit: ``send_stream_data`` returns how many bytes it accepted and a
:class:`~transport.events.StreamWritable` event says when there is room again.
All randomness comes from the config: ``Config.rng`` for protocol choices
(connection IDs, skipped packet numbers) and ``Config.crypto_randbytes`` for
key material (simulations pass a seeded generator's ``randbytes``).

Inside, the work is split: :mod:`transport.ack` decides when to acknowledge,
:mod:`transport.recovery` tracks sent packets and declares losses (RFC 9002),
:mod:`transport.congestion` limits what is in flight, :mod:`transport.streams`
and :mod:`transport.flow` hold stream bytes and credit, and
:mod:`transport.packetizer` builds packets. Lost data is re-sent in new
packets: each sent packet records the items it carried, and acknowledgement or
loss is dispatched back to their owners (RFC 9000 §13.3).
"""

from __future__ import annotations

from collections import deque
from enum import IntEnum
from itertools import repeat
from typing import Any

from transport import events, rx_batch
from transport.ack import AckManager
from transport.config import Config
from transport.congestion.pacing import DEFAULT_BURST_PACKETS, MAX_BURST_PACKETS, Pacer
from transport.crypto.packet_aead import PacketOpener
from transport.crypto.tokens import is_stateless_reset, retry_integrity_tag
from transport.ecn import MAX_CE_SIGNALS_PER_ACK, NOT_ECT, EcnSender
from transport.errors import (
    ChecksumError,
    ConnectionClosedError,
    DecryptionError,
    ForeignPacketError,
    InvalidStateError,
    LocalError,
    RemoteProtocolError,
    StreamError,
    StreamLimitError,
    WireError,
)
from transport.fec.policy import LossEstimator, fec_policy
from transport.fec.protocol import FecReceiver, FecSender
from transport.flow import ReceiveWindow, SendCredit
from transport.packetizer import (
    ITEM_ACK,
    ITEM_CRYPTO,
    ITEM_MAX_DATA,
    ITEM_MAX_STREAM_DATA,
    ITEM_MAX_STREAMS,
    ITEM_PATH_CHALLENGE,
    ITEM_PMTU_PROBE,
    ITEM_RESET,
    ITEM_STOP_SENDING,
    ITEM_STREAM,
    ITEM_STREAM_OPEN,
    ITEM_STREAM_RUN,
    Packetizer,
    expand_items,
)
from transport.params import TransportParameters
from transport.pmtud import BASE_SIZE as PMTU_BASE_SIZE
from transport.pmtud import BLACK_HOLE_PTOS as PMTU_BLACK_HOLE_PTOS
from transport.pmtud import PathMtu
from transport.rangeset import RangeSet
from transport.recovery import LossRecovery, RttEstimator, SentPacket
from transport.scratch import scratch
from transport.security import KeySchedule, Session, handshake_prologue
from transport.stats import ConnectionStats, Counters
from transport.streams import ReceiveStream, SendStream, compact_stream_offset
from transport.wire import (
    FrameDecoder,
    crc32c,
    decode_header,
    decode_packet_number,
    open_short_packet,
    varint_size,
)
from transport.wire.constants import (
    AEAD_TAG_LENGTH,
    CRC_LENGTH,
    FIXED_BIT,
    HEADER_FORM_LONG,
    PACKET_TYPE_SHORT,
    PN_LENGTH_MASK,
    RESERVED_LONG_MASK,
    RESERVED_SHORT_MASK,
    SUPPORTED_VERSIONS,
    VERSION_1,
    ErrorCode,
    FrameType,
    PacketType,
)

Address = tuple[str, int]
#: FEC_CAPABILITY bits (wire format §14): 1 XOR, 2 Reed-Solomon over GF(256)
FEC_CAPABILITY_RS = 3
#: REPAIR frame bytes besides the symbol (type, block, k, m, index, length)
REPAIR_FRAME_OVERHEAD = 16

MAX_CRYPTO_BYTES = 8192
#: Frames a long-header (handshake) packet may carry (wire format §10.1).
LONG_HEADER_FRAMES = frozenset(
    {FrameType.PING, FrameType.CRYPTO, FrameType.CONNECTION_CLOSE}
)  # plus PADDING and ACK, which are handled before this check
#: Times a closing connection re-sends CONNECTION_CLOSE in answer to packets.
MAX_CLOSE_REPEATS = 8


class State(IntEnum):
    """Connection lifecycle. Transitions happen only inside this module."""

    IDLE = 0  # created, not connected
    HANDSHAKE = 1
    ESTABLISHED = 2
    CLOSING = 3  # we sent CONNECTION_CLOSE; answer packets with it until the deadline
    DRAINING = 4  # the peer closed; send nothing until the deadline
    CLOSED = 5


# Enum class attribute reads go through EnumType.__getattr__'s slot hook in
# Python 3.11 (~900 instructions each): the per-packet paths use these.
_IDLE = State.IDLE
_ESTABLISHED = State.ESTABLISHED
_CLOSING = State.CLOSING

# offsets into Connection._stream_counts: each counter is a (uni, bidi) pair,
# read as ``counts[_X + bidirectional]``
_NEXT_ID = 0  # our next stream id
_LOCAL_OPENED = 2  # streams we opened
_PEER_MAX = 4  # how many streams the peer lets us open
_PEER_OPENED = 6  # streams the peer opened
_LOCAL_MAX = 8  # how many streams we let the peer open
_PEER_CLOSED = 10  # peer streams created so far (each one raises _LOCAL_MAX)
_DRAINING = State.DRAINING
_CLOSED = State.CLOSED


def is_client_initiated(stream_id: int) -> bool:
    return not stream_id & 1


def is_bidirectional(stream_id: int) -> bool:
    return not stream_id & 2


class Connection:
    """A reliable, multi-stream connection to one peer. See the module docstring
    for the call contract."""

    # one slot per attribute: a dict of ~75 entries would cost ~4 KiB per
    # connection (idle servers hold thousands)
    __slots__ = (
        "__weakref__", "_acks", "_cc", "_close_deadline", "_close_frame", "_close_graceful_pending",
        "_close_request", "_close_sends_left", "_compact_rx", "_compact_tx", "_crypto_pending",
        "_crypto_received",
        "_crypto_recv", "_datagrams_out", "_datagrams_queued", "_decoder", "_ecn", "_events",
        "_events_head", "_fec_decoder", "_fec_policy", "_fec_receiver", "_fec_recovered_pending",
        "_fec_sender", "_fec_source", "_idle_limit_s", "_idle_since_s", "_idle_timeout_s",
        "_in_long_packet", "_in_recovered", "_key_update_requested", "_last_ack_eliciting_sent_s",
        "_loss_estimator", "_now", "_opener", "_pacer", "_packetizer", "_path_challenge",
        "_peer_ack_delay_exponent", "_peer_max_datagram_frame_size", "_pmtu", "_readable_reported",
        "_recovery", "_recv_streams", "_recv_window", "_retry_source_cid", "_retry_token", "_rtt",
        "_rx_addr", "_rx_ecn", "_rx_pn_behind", "_rx_pn_length", "_send_credit", "_send_streams",
        "_session",
        "_stateless_reset_token", "_stream_counts", "_stream_send_credit",
        "_unvalidated_received_bytes", "_unvalidated_sent_bytes", "_writable_wanted",
        "address_validated", "config", "counters", "handshake_completed", "initial_dcid",
        "is_client", "local_cid", "loss_rate", "on_activity", "original_dcid", "peer_addr",
        "peer_cid", "peer_params", "state",
    )

    def __init__(
        self,
        config: Config,
        *,
        is_client: bool,
        local_cid: bytes | None = None,
        original_dcid: bytes | None = None,
        initial_dcid: bytes | None = None,
        retry_source_cid: bytes | None = None,
        stateless_reset_token: bytes | None = None,
    ) -> None:
        """``original_dcid``: the DCID of the client's very first INITIAL (a server
        learns it from the datagram, or from a retry token); ``initial_dcid``: the
        DCID of the INITIAL carrying the handshake (differs after a RETRY);
        ``retry_source_cid``: the SCID of the RETRY a server endpoint sent;
        ``stateless_reset_token``: the token a server announces for its CID."""
        self.config = config
        self.is_client = is_client
        rng = config.rng
        cid_len = config.connection_id_length
        self.local_cid: bytes = local_cid or rng.randbytes(cid_len)
        if len(self.local_cid) != cid_len:
            raise LocalError("local_cid length must equal config.connection_id_length")
        #: The connection ID the client first sent to (routes the first packets).
        # at least 8 bytes: servers ignore INITIALs to shorter IDs (wire format §12)
        self.original_dcid: bytes = original_dcid or rng.randbytes(max(8, cid_len))
        self.peer_cid: bytes = self.original_dcid if is_client else b""
        self.peer_addr: Address | None = None
        self.state = State.IDLE
        #: True once the handshake finished (stays true while closing).
        self.handshake_completed = False
        self._now = 0.0
        # a list read from _events_head, made by the first event of a burst and
        # dropped when drained (an empty deque would be ~0.7 KiB per idle
        # connection, and making one per burst a 528-byte malloc)
        self._events: list[events.Event] | None = None
        self._events_head = 0
        self.counters = Counters()

        # recovery and congestion
        self._rtt = RttEstimator(initial_rtt_s=config.initial_rtt_s)
        self._cc = config.congestion_control(
            max_datagram_size=config.max_datagram_size, rng=config.rng
        )
        self._pacer = Pacer(
            max_burst_bytes=DEFAULT_BURST_PACKETS * config.max_datagram_size,
            burst_cap_bytes=MAX_BURST_PACKETS * config.max_datagram_size,
        )
        self._recovery = LossRecovery(
            congestion=self._cc, rtt=self._rtt, max_ack_delay_s=config.max_ack_delay_s
        )
        self._acks = AckManager(
            max_ack_delay_s=config.max_ack_delay_s,
            ack_eliciting_threshold=config.ack_eliciting_threshold,
            max_ranges=config.max_ack_ranges,
            ack_delay_exponent=config.ack_delay_exponent,
            max_ack_eliciting_threshold=max(
                config.max_ack_eliciting_threshold, config.ack_eliciting_threshold
            ),
            rtt=self._rtt,
        )
        self._peer_ack_delay_exponent = 3
        self._ecn = EcnSender(config.ecn)
        self._rx_ecn = NOT_ECT  # codepoint of the datagram being processed
        self._in_long_packet = False  # frames being processed came in a long header
        # frame decoders are per-thread scratch (transport/scratch.py), set on
        # entry to receive_datagram
        self._decoder: FrameDecoder = scratch().decoder
        #: opens 1-RTT packets in one C call (native backend; None: the Python
        #: path); per-thread scratch like the decoders, set in receive_datagram
        self._opener: PacketOpener | None = scratch().opener
        self._session = Session(
            is_client=is_client,
            security=config.security,
            static_key=config.static_key,
            server_public_key=config.server_public_key,
            authorized_clients=config.authorized_clients,
            aead=config.aead,
            randbytes=config.crypto_randbytes,
        )
        self._key_update_requested = False
        self._rx_addr: Address | None = None
        #: PATH_CHALLENGE data we wait to see echoed (a new peer address)
        self._path_challenge: bytes | None = None
        self._pmtu: PathMtu | None = None  # set when the handshake completes
        # forward error correction (transport/fec/protocol.py)
        self._fec_policy = fec_policy(config.fec, *config.fec_block)
        self._fec_sender: FecSender | None = None  # set once the peer can decode
        self._fec_receiver = FecReceiver()
        self._fec_decoder: FrameDecoder = self._decoder
        self._fec_recovered_pending: list[int] = []
        #: (block, index, start, end of the protected frames) of the packet being read
        self._fec_source: tuple[int, int, int, int] | None = None
        self._rx_pn_length = 1
        #: how far the packet being read is behind the largest number received
        #: before it (> 0: it arrived late; compact STREAM offsets, 10.25)
        self._rx_pn_behind = 0
        self._in_recovered = False
        # loss rate estimate for the adaptive FEC policy (packets, windowed)
        self.loss_rate = 0.0
        self._loss_estimator = LossEstimator()
        #: DCID of the client INITIAL that carried message 1 (bound by the prologue)
        self.initial_dcid: bytes = initial_dcid or self.original_dcid
        self._retry_source_cid = retry_source_cid
        self._retry_token = b""  # client: the token of a RETRY, echoed in INITIALs
        self._stateless_reset_token = stateless_reset_token
        #: servers may send at most 3x what an unvalidated address sent them (a
        #: valid retry token validates the address at once)
        self.address_validated = is_client or retry_source_cid is not None
        self._unvalidated_received_bytes = 0
        self._unvalidated_sent_bytes = 0

        # handshake
        self._crypto_pending: list[tuple[int, bytes]] = []
        # the peer's CRYPTO stream: created by its first CRYPTO frame, dropped
        # once its handshake message has been read
        self._crypto_recv: bytearray | None = None
        self._crypto_received: RangeSet | None = None
        self.peer_params: TransportParameters | None = None

        # streams
        self._send_streams: dict[int, SendStream] = {}
        self._recv_streams: dict[int, ReceiveStream] = {}
        self._stream_send_credit: dict[int, SendCredit] = {}
        # the per-direction stream counters in one list (instead of six
        # two-item lists: ~360 bytes less per connection); counter _X of
        # direction ``bidirectional`` (False = 0: uni, True = 1: bidi) is at
        # ``_X + bidirectional`` (offsets at the top of this module)
        self._stream_counts = [
            2 if is_client else 3, 0 if is_client else 1,  # _NEXT_ID: our next stream id
            0, 0,  # _LOCAL_OPENED: streams we opened
            0, 0,  # _PEER_MAX: how many the peer lets us open
            0, 0,  # _PEER_OPENED: streams the peer opened
            config.max_streams_uni, config.max_streams_bidi,  # _LOCAL_MAX: what we allow
            0, 0,  # _PEER_CLOSED: peer streams created (each raises _LOCAL_MAX)
        ]
        # stream-id sets kept as dicts (keys only): an empty set is 216 bytes,
        # an empty dict 64
        self._readable_reported: dict[int, None] = {}
        self._writable_wanted: dict[int, None] = {}

        # connection-level flow control
        self._send_credit = SendCredit(0)
        self._recv_window = ReceiveWindow(config.initial_max_data, config.max_connection_window)

        # unreliable datagrams
        self._datagrams_out: deque[bytes] | None = None  # created by send_datagram
        self._datagrams_queued = 0  # DatagramReceived events waiting in _events
        self._peer_max_datagram_frame_size = 0
        # compact STREAM frames (wire format 10.25): we accept them (announced
        # in COMPACT_STREAM) / the peer does (we may send them)
        self._compact_rx = config.compact_stream_frames
        self._compact_tx = False

        # close
        self._close_frame: tuple[int, int, bytes, bool] | None = None  # code, frame, reason, app
        self._close_graceful_pending = False
        self._close_request: tuple[int, str] = (0, "")  # code, reason of a pending close
        self._close_deadline: float | None = None
        self._close_sends_left = 0
        # idle timer: deadline = _idle_since_s + _idle_limit_s (kept as two numbers
        # so that each received packet only stores a timestamp)
        self._idle_since_s: float | None = None
        self._idle_limit_s = config.handshake_timeout_s
        self._idle_timeout_s = config.idle_timeout_s
        self._last_ack_eliciting_sent_s = 0.0

        self._packetizer = Packetizer(self)
        self.on_activity: object = None  # set by an Endpoint: callable(conn)

    # ======================================================================
    # Inputs
    # ======================================================================
    def connect(self, addr: Address, now: float) -> None:
        """Start the handshake towards ``addr`` (client only)."""
        if not self.is_client:
            raise InvalidStateError("connect() is for client connections")
        if self.state is not State.IDLE:
            raise InvalidStateError("connect() may be called once")
        self._now = now
        self.peer_addr = addr
        self.state = State.HANDSHAKE
        self._idle_since_s = now
        self._queue_handshake_message()

    def receive_datagram(
        self, data: bytes, addr: Address, now: float, ecn: int = NOT_ECT
    ) -> None:
        """Process one UDP payload. Never raises for anything the peer sent.
        ``ecn`` is the datagram's ECN codepoint (the IP header's two low TOS
        bits, :mod:`transport.ecn`), where the driver can read it."""
        if now > self._now:
            self._now = now
        state = self.state
        if state is _CLOSED or state is _DRAINING:
            return
        if self.peer_addr is None:
            self.peer_addr = addr
        self._rx_addr = addr
        self._rx_ecn = ecn & 3 if ecn and self.config.ecn else NOT_ECT
        space = scratch()
        self._decoder = space.decoder
        self._fec_decoder = space.fec_decoder
        self._opener = space.opener
        self.counters.bytes_received += len(data)
        if not self.address_validated:
            self._unvalidated_received_bytes += len(data)
        try:
            if state is _ESTABLISHED and data and not data[0] & HEADER_FORM_LONG:
                self._receive_1rtt(data, now)
            else:
                self._receive(data, now)
        except WireError:
            self.counters.datagrams_dropped_malformed += 1
        except RemoteProtocolError as exc:
            self._close_on_error(exc.error_code, exc.reason, exc.frame_type)
        if self.state is _CLOSING and self._close_sends_left > 0:
            self._packetizer.close_frame_due = True

    def receive_datagrams(self, datagrams: list[bytes], addr: Address, now: float,
                          ecn: int = NOT_ECT) -> None:
        """Process several UDP payloads from ``addr``, in order: the same as
        :meth:`receive_datagram` for each (``ecn``: the codepoint they all
        arrived with), with the per-call set-up done once, established
        short-header packets going straight to the 1-RTT path and runs of bulk
        packets opened in one C call (transport/rx_batch.py). Never raises for
        anything the peer sent."""
        rx_batch.receive_datagrams(self, datagrams, addr, now, ecn)

    def receive_gro(self, data: bytes, segment: int, addr: Address, now: float,
                    ecn: int = NOT_ECT) -> int:
        """Take the leading bulk packets of a GRO buffer from ``addr``
        (datagrams of ``segment`` bytes back to back, the last maybe shorter)
        without cutting it: the same as :meth:`receive_datagram` for each of
        them. Returns how many it took; the caller passes the others on
        (transport/rx_batch.py). Never raises for anything the peer sent."""
        return rx_batch.receive_gro(self, data, segment, addr, now, ecn)

    def handle_timer(self, now: float) -> None:
        """Run whatever deadline passed. Early or spurious calls do nothing."""
        if now > self._now:
            self._now = now
        if self.state is State.CLOSED:
            return
        if self._close_deadline is not None:
            if now >= self._close_deadline:
                self.state = State.CLOSED
                self._close_deadline = None
            return
        idle_since = self._idle_since_s
        if idle_since is not None and now >= idle_since + self._idle_limit_s:
            handshaking = self.state in (State.IDLE, State.HANDSHAKE)
            self.state = State.CLOSED
            self._push_event(
                events.ConnectionTerminated(
                    error_code=(
                        ErrorCode.HANDSHAKE_FAILED if handshaking else ErrorCode.IDLE_TIMEOUT
                    ),
                    reason="handshake timed out" if handshaking else "idle timeout",
                    by_peer=False,
                )
            )
            self._recovery.discard_all()
            return
        deadline = self._recovery.get_timer()
        if deadline is not None and now >= deadline:
            lost, probes = self._recovery.on_timeout(now)
            if lost:
                self._on_packets_lost(lost)
            if probes:
                self._ecn.on_pto(self._recovery.pto_count, self._packetizer.next_packet_number)
                self._packetizer.probes_due += probes
                self._requeue_oldest_for_probe()
                pmtu = self._pmtu
                if (
                    pmtu is not None
                    and self._recovery.pto_count >= PMTU_BLACK_HOLE_PTOS
                    and pmtu.on_black_hole(now)
                ):
                    # large packets keep vanishing: back to what every path carries
                    self._packetizer.set_max_datagram_size(pmtu.current)
        fec = self._fec_sender
        if fec is not None and fec.deadline is not None and now >= fec.deadline:
            fec.on_timer(now)
            self._packetizer.on_fec_block_closed(fec)
            self._notify()
        keepalive = self.config.keepalive_interval_s
        if (
            keepalive is not None
            and self.state is State.ESTABLISHED
            and now >= self._last_ack_eliciting_sent_s + keepalive
        ):
            self._packetizer.ping_due = True

    # ======================================================================
    # Outputs
    # ======================================================================
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Datagrams to transmit now, each with its destination."""
        if now > self._now:
            self._now = now
        state = self.state
        if state is _IDLE or state is _CLOSED or state is _DRAINING or self.peer_addr is None:
            return []
        if self._close_graceful_pending and self._all_streams_done():
            self._start_closing(*self._pending_close_args())
        addr = self.peer_addr
        return list(zip(self._packetizer.build(now), repeat(addr)))  # (pairs at C speed)

    @property
    def ecn_codepoint(self) -> int:
        """ECN codepoint to set on the datagrams ``datagrams_to_send`` returns
        (ECT(0) while ECN is being validated or works, else Not-ECT)."""
        return self._ecn.codepoint

    @property
    def ecn_state(self) -> str:
        """"testing", "capable" or "failed" (also when ``Config.ecn`` is off)."""
        return self._ecn.state

    def get_timer(self) -> float | None:
        """The earliest absolute deadline for ``handle_timer``, or None."""
        state = self.state
        if state is _CLOSED or state is _IDLE:
            return None
        if self._close_deadline is not None:
            return self._close_deadline
        idle_since = self._idle_since_s
        deadline = None if idle_since is None else idle_since + self._idle_limit_s
        for candidate in (self._recovery.get_timer(), self._acks.get_timer()):
            if candidate is not None and (deadline is None or candidate < deadline):
                deadline = candidate
        fec = self._fec_sender
        if fec is not None and fec.deadline is not None and (
            deadline is None or fec.deadline < deadline
        ):
            deadline = fec.deadline
        if self._packetizer.pacing_blocked:
            candidate = self._pacer.next_send_time(self.config.max_datagram_size, self._now)
            if deadline is None or candidate < deadline:
                deadline = candidate
        keepalive = self.config.keepalive_interval_s
        if keepalive is not None and state is _ESTABLISHED:
            candidate = self._last_ack_eliciting_sent_s + keepalive
            if deadline is None or candidate < deadline:
                deadline = candidate
        return deadline

    def next_event(self) -> events.Event | None:
        """Pop the next event, or None when there is none."""
        queue = self._events
        if queue:
            head = self._events_head
            event = queue[head]
            head += 1
            if head == len(queue):
                self._events = None
                head = 0
            self._events_head = head
            if isinstance(event, events.DatagramReceived):
                self._datagrams_queued -= 1
            return event
        return None

    @property
    def is_closed(self) -> bool:
        """True once the connection holds no more state worth keeping."""
        return self.state is _CLOSED

    def release_keys(self) -> None:
        """Free the C contexts of the 1-RTT keys now (the endpoint calls this
        when it forgets a closed connection; the garbage collector would do it
        later). Safe to call at any time: later packets use the Python AEAD."""
        keys = self._session.keys
        if keys is not None:
            keys.release()

    @property
    def is_established(self) -> bool:
        return self.state is _ESTABLISHED

    # ======================================================================
    # Stream and datagram API
    # ======================================================================
    def local_max_streams(self, bidirectional: bool) -> int:
        """How many streams of this direction we allow the peer to open (the
        MAX_STREAMS value to advertise)."""
        return self._stream_counts[_LOCAL_MAX + bidirectional]

    def open_stream(self, bidirectional: bool = True) -> int:
        """Open a new local stream and return its id. Raises StreamLimitError when
        the peer's stream limit is reached."""
        self._check_usable()
        counts = self._stream_counts
        if counts[_LOCAL_OPENED + bidirectional] >= counts[_PEER_MAX + bidirectional]:
            raise StreamLimitError(
                f"peer allows {counts[_PEER_MAX + bidirectional]} "
                f"{'bidirectional' if bidirectional else 'unidirectional'} streams"
            )
        stream_id = counts[_NEXT_ID + bidirectional]
        counts[_NEXT_ID + bidirectional] += 4
        counts[_LOCAL_OPENED + bidirectional] += 1
        self._create_stream(stream_id)
        self._packetizer.streams_to_announce[stream_id] = None
        self._notify()
        return stream_id

    def send_stream_data(
        self, stream_id: int, data: bytes | bytearray | memoryview, end_stream: bool = False
    ) -> int:
        """Queue bytes on a stream; returns how many were accepted (the rest must
        be offered again after a StreamWritable event). ``end_stream`` takes
        effect only if every byte was accepted."""
        self._check_usable()
        if self._close_graceful_pending:
            raise ConnectionClosedError("the connection is closing")
        stream = self._send_streams.get(stream_id)
        if stream is None:
            stream = self._stream_for_local_send(stream_id)
        accepted = stream.write(data, end_stream)
        if accepted < len(data):
            self._writable_wanted[stream_id] = None
        if accepted or end_stream:
            self._packetizer.stream_ready(stream_id)
            self._notify()
        return accepted

    def stream_writable_bytes(self, stream_id: int) -> int:
        """Room left in the stream's send buffer."""
        stream = self._send_streams.get(stream_id)
        if stream is None:
            raise StreamError(f"stream {stream_id} has no open sending side")
        return int(stream.writable_bytes)

    def recv_stream_data(self, stream_id: int, max_bytes: int = -1) -> tuple[bytes, bool]:
        """Read in-order bytes from a stream. Returns ``(data, finished)`` where
        ``finished`` is true once the peer's FIN has been read."""
        stream = self._recv_streams.get(stream_id)
        if stream is None:
            raise StreamError(f"stream {stream_id} has no receiving side (or it finished)")
        data = stream.read(max_bytes)
        self._readable_reported.pop(stream_id, None)
        finished = bool(stream.is_finished)
        if data:
            self.counters.stream_bytes_delivered += len(data)
            rtt_s = self._rtt.smoothed_rtt_s
            if not finished and stream.window_update(self._now, rtt_s) is not None:
                self._packetizer.due_max_stream_data(stream_id)
            if self._recv_window.on_consumed(len(data), self._now, rtt_s) is not None:
                self._packetizer.max_data_due = True
            self._notify()
        if finished:
            self._retire_receive_stream(stream_id)
        return data, finished

    def reset_stream(self, stream_id: int, error_code: int = 0) -> None:
        """Abandon the sending side of a stream (RESET_STREAM)."""
        self._check_usable()
        stream = self._stream_for_local_send(stream_id)
        if stream.is_reset:
            return
        stream.reset(error_code)
        self._packetizer.due_reset(stream_id)
        self._notify()

    def stop_sending(self, stream_id: int, error_code: int = 0) -> None:
        """Ask the peer to stop sending on a stream; unread data is discarded."""
        self._check_usable()
        stream = self._recv_streams.get(stream_id)
        if stream is None:
            raise StreamError(f"stream {stream_id} has no receiving side")
        self._packetizer.stop_sending_due[stream_id] = error_code
        self._notify()

    def send_datagram(self, data: bytes) -> bool:
        """Queue an unreliable datagram. Returns False when the queue was full and
        the oldest queued datagram was dropped to make room."""
        self._check_usable()
        limit = min(self._peer_max_datagram_frame_size, self.config.max_datagram_frame_size)
        if len(data) > limit:
            raise LocalError(f"datagram of {len(data)} bytes exceeds the limit of {limit}")
        dropped = False
        queue = self._datagrams_out
        if queue is None:
            queue = self._datagrams_out = deque()
        if len(queue) >= self.config.max_queued_datagrams:
            queue.popleft()
            self.counters.datagrams_sent_dropped += 1
            dropped = True
        queue.append(bytes(data))
        self._notify()
        return not dropped

    def ping(self) -> None:
        """Send an ack-eliciting PING (also used to probe liveness)."""
        self._check_usable()
        self._packetizer.ping_due = True
        self._notify()

    def close(
        self, error_code: int = 0, reason: str = "", *, graceful: bool = True
    ) -> None:
        """Close the connection with an application error code.

        Graceful (default): no new data is accepted, and CONNECTION_CLOSE is sent
        once every byte already queued has been acknowledged. Abrupt
        (``graceful=False``): close now; unacknowledged data is abandoned."""
        if self.state in (State.CLOSING, State.DRAINING, State.CLOSED):
            return
        if self.state is State.IDLE:
            self.state = State.CLOSED
            return
        self._close_request = (error_code, reason)
        if graceful and self.state is State.ESTABLISHED and not self._all_streams_done():
            self._close_graceful_pending = True
        else:
            self._start_closing(error_code, 0, reason.encode(), True)
        self._notify()

    def update_keys(self) -> None:
        """Update the 1-RTT send keys as soon as the protocol allows (after a
        packet under the current keys has been acknowledged)."""
        self._check_usable()
        if self._session.mode == 0:
            raise InvalidStateError("key update needs security='noise'")
        self._key_update_requested = True
        self._notify()

    @property
    def peer_static_key(self) -> bytes | None:
        """The peer's authenticated static public key (the server's, or an IK client's)."""
        return self._session.peer_static

    def get_stats(self) -> ConnectionStats:
        """A snapshot of the connection's counters and estimates."""
        c = self.counters
        rtt = self._rtt
        return ConnectionStats(
            packets_sent=c.packets_sent,
            packets_received=c.packets_received,
            packets_lost=c.packets_lost,
            packets_retransmitted=c.packets_retransmitted,
            spurious_retransmits=int(self._recovery.spurious_losses),
            probes_sent=c.probes_sent,
            bytes_sent=c.bytes_sent,
            bytes_received=c.bytes_received,
            stream_bytes_sent=c.stream_bytes_sent,
            stream_bytes_retransmitted=c.stream_bytes_retransmitted,
            stream_bytes_delivered=c.stream_bytes_delivered,
            duplicate_packets=c.duplicate_packets,
            datagrams_dropped=c.datagrams_dropped_malformed + c.datagrams_dropped,
            datagrams_received_dropped=c.datagrams_received_dropped,
            datagrams_sent_dropped=c.datagrams_sent_dropped,
            fec_recovered=c.fec_recovered,
            fec_repair_bytes_sent=c.fec_repair_bytes_sent,
            fec_reported_recovered=c.fec_reported_recovered,
            migrations=c.migrations,
            smoothed_rtt_s=rtt.smoothed_rtt_s,
            latest_rtt_s=rtt.latest_rtt_s,
            min_rtt_s=rtt.min_rtt_s,
            rttvar_s=rtt.rttvar_s,
            congestion_window_bytes=int(self._cc.congestion_window_bytes),
            bytes_in_flight=int(self._recovery.bytes_in_flight),
            congestion_state=str(getattr(self._cc, "state", "")),
            ecn_state=self._ecn.state,
            ecn_ce_reported=self._ecn.ce_count,
        )

    # ======================================================================
    # Receiving
    # ======================================================================
    def _receive(self, data: bytes, now: float) -> None:
        view = memoryview(data)
        pos = 0
        total = len(data)
        cid_len = self.config.connection_id_length
        while pos < total:
            packet = view[pos:] if pos else view
            header = decode_header(packet, cid_len)
            end = header.packet_end
            if header.packet_type == PACKET_TYPE_SHORT:
                self._receive_short(packet, header, now)
                return
            if header.version not in SUPPORTED_VERSIONS:
                self.counters.datagrams_dropped += 1
                return
            self._receive_long(packet[:end], header, now)
            pos += end

    def _receive_1rtt(self, data: bytes, now: float) -> None:
        """A short-header (1-RTT) packet. With security="none" one codec call
        checks the header, DCID and CRC32C and decodes every frame; with
        security="noise" one call (native backend) checks the header, opens the
        payload with the AEAD and decodes every frame (a packet that does not
        authenticate is dropped and changes nothing); packets of the other key
        phase and the pure backend go through :meth:`_open_1rtt_slow`."""
        keys = self._session.keys
        acks = self._acks
        if keys is None:
            try:
                first, truncated, pn_length, count = open_short_packet(
                    data, self.local_cid, self._decoder
                )
            except (ChecksumError, ForeignPacketError):
                raise
            except WireError as exc:
                if len(data) > 4 and crc32c(memoryview(data)[:-4]) == int.from_bytes(
                    data[-4:], "big"
                ):
                    # intact per its checksum, yet its frames do not decode
                    raise RemoteProtocolError(ErrorCode.FRAME_ENCODING_ERROR, str(exc)) from exc
                raise
            payload: bytes | memoryview = data
            # RFC 9000 A.3 packet-number recovery, inlined
            expected = acks.largest_received + 1
            window = 1 << (pn_length * 8)
            pn = (expected & ~(window - 1)) | truncated
            half = window >> 1
            if pn <= expected - half and pn < (1 << 62) - window:
                pn += window
            elif pn > expected + half and pn >= window:
                pn -= window
        else:
            opener = self._opener
            count = PacketOpener.OTHER_PHASE
            if opener is not None and keys.recv_current.native is not None:
                # one C call: header checks, packet number, AEAD open, frame decode
                try:
                    count = opener.open(keys, data, self.local_cid, self._decoder,
                                        acks.largest_received + 1)
                except DecryptionError:
                    self._on_open_failed(data, keys)
                    return
                pn = opener.pn
                first = opener.first
                payload = opener.payload
            if count == PacketOpener.OTHER_PHASE:
                opened = self._open_1rtt_slow(data, keys)
                if opened is None:
                    return
                pn, first, count, payload = opened
            if keys.send.generation < keys.recv_current.generation:
                # the peer updated its keys: follow with ours (wire format §9.3)
                keys.update_send(-1)
        self._on_1rtt_opened(data, pn, first, count, payload, now)

    def _on_1rtt_opened(self, data: bytes, pn: int, first: int, count: int,
                        payload: bytes | memoryview, now: float) -> None:
        """The rest of :meth:`_receive_1rtt` once packet ``pn`` opened and its
        ``count`` frames are in the decoder."""
        acks = self._acks
        if first & RESERVED_SHORT_MASK:
            raise RemoteProtocolError(ErrorCode.PROTOCOL_VIOLATION, "reserved header bits set")
        if acks.is_duplicate(pn):
            self.counters.duplicate_packets += 1
            return
        if count == 0:
            raise RemoteProtocolError(ErrorCode.PROTOCOL_VIOLATION, "packet without frames")
        rx_addr = self._rx_addr
        if rx_addr is not None and rx_addr != self.peer_addr and not self.local_cid:
            # zero-length CIDs route by address (RFC 9000 §5.2): no migration
            self.counters.datagrams_dropped += 1
            return
        if (
            rx_addr is not None
            and rx_addr != self.peer_addr
            and pn > acks.largest_received
            and self.handshake_completed
        ):
            self._on_peer_address_change(rx_addr, len(data))
        elif not self.address_validated and self._path_challenge is None:
            self.address_validated = True  # it could open our 1-RTT keys: it is the peer
        self._rx_pn_length = (first & PN_LENGTH_MASK) + 1
        self._fec_source = None
        self._rx_pn_behind = acks.largest_received - pn
        ack_eliciting = self._handle_frames(payload, count, now)
        if self._fec_source is not None:
            block, index, start, end = self._fec_source
            self._fec_receiver.on_source(block, index, pn, bytes(payload[start:end]))
        if acks.on_packet_received(pn, ack_eliciting, now) and self._rx_ecn:
            acks.on_ecn(self._rx_ecn, ack_eliciting, now)
        self.counters.packets_received += 1
        self._idle_since_s = now

    def _on_open_failed(self, data: bytes, keys: KeySchedule) -> None:
        """A 1-RTT packet did not authenticate: a stateless reset, or dropped
        (DecryptionError); past the integrity limit the connection closes."""
        if self._is_stateless_reset(data):
            self._on_stateless_reset()
            return
        current = keys.recv_current
        if current.failed_open_count > current.integrity_limit:
            # too many forgeries against one key: its integrity is spent
            raise RemoteProtocolError(
                ErrorCode.AEAD_LIMIT_REACHED, "AEAD integrity limit reached"
            ) from None
        raise DecryptionError("packet failed AEAD authentication")

    def _open_1rtt_slow(
        self, data: bytes, keys: KeySchedule
    ) -> tuple[int, int, int, bytes] | None:
        """Open an encrypted 1-RTT packet through ``KeySchedule.open`` (key
        updates, the pure backend): ``(pn, first_byte, frame_count, payload)``,
        or None when it was a stateless reset."""
        cid_end = 1 + len(self.local_cid)
        first = data[0]
        if not first & FIXED_BIT or data[1:cid_end] != self.local_cid:
            raise WireError("not a 1-RTT packet for this connection")
        pn_length = (first & PN_LENGTH_MASK) + 1
        header_end = cid_end + pn_length
        if len(data) < header_end + AEAD_TAG_LENGTH + 1:
            raise WireError("1-RTT packet too short")
        truncated = int.from_bytes(data[cid_end:header_end], "big")
        pn = decode_packet_number(truncated, pn_length, self._acks.largest_received)
        try:
            payload = keys.open(
                data[:header_end], memoryview(data)[header_end:], pn, 1 if first & 4 else 0
            )
        except DecryptionError:
            self._on_open_failed(data, keys)
            return None
        try:
            count = self._decoder.decode(payload, 0, len(payload))
        except WireError as exc:  # it authenticated: a real encoding error
            raise RemoteProtocolError(ErrorCode.FRAME_ENCODING_ERROR, str(exc)) from exc
        return pn, first, count, payload

    def _on_retry(self, packet: memoryview, header: object) -> None:
        """A server demands address validation (wire format §13): start the
        handshake again towards the CID it chose, echoing its token."""
        h = header
        valid = (
            self.is_client
            and self.state is State.HANDSHAKE
            and self._retry_source_cid is None
            and self._acks.largest_received < 0  # nothing from the server yet
            and h.dcid == self.local_cid  # type: ignore[attr-defined]
            and len(h.token) > 0  # type: ignore[attr-defined]
            and retry_integrity_tag(self.original_dcid, bytes(packet[:-16]))
            == bytes(h.integrity_tag)  # type: ignore[attr-defined]
        )
        if not valid:
            self.counters.datagrams_dropped += 1
            return
        self._retry_token = bytes(h.token)  # type: ignore[attr-defined]
        self._retry_source_cid = self.peer_cid = self.initial_dcid = bytes(h.scid)  # type: ignore[attr-defined]
        # A new CID of ours too: the server may still answer the first INITIAL
        # (a retransmission of it can reach the server when RETRY is no longer
        # demanded), and nothing else tells that answer from the retried
        # attempt's -- without a new CID it would be taken for the new
        # attempt's and fail it ("retry_source_cid mismatch"). An Endpoint
        # re-registers the connection under the new CID.
        self.local_cid = self.config.rng.randbytes(len(self.local_cid))
        # the first INITIAL is void: rebuild message 1 for the new CIDs
        self._recovery.discard_all()
        self._crypto_pending.clear()
        self._session = Session(
            is_client=True,
            security=self.config.security,
            static_key=self.config.static_key,
            server_public_key=self.config.server_public_key,
            authorized_clients=None,
            aead=self.config.aead,
            randbytes=self.config.crypto_randbytes,
        )
        self._queue_handshake_message()

    def _on_peer_address_change(self, addr: Address, datagram_bytes: int) -> None:
        """The peer's newest packet came from a new address (NAT rebinding or
        migration, RFC 9000 §9): send to it from now on, but validate the path
        with PATH_CHALLENGE and, until it answers, send no more than 3x what the
        new address sent us. A new host (not just a new port) also restarts
        congestion control and the RTT estimate."""
        old = self.peer_addr
        self.peer_addr = addr
        self.counters.migrations += 1
        challenge = self.config.crypto_randbytes(8)
        self._path_challenge = challenge
        self._packetizer.path_challenges.append(challenge)
        self.address_validated = False
        self._unvalidated_received_bytes = datagram_bytes
        self._unvalidated_sent_bytes = 0
        if old is not None and old[0] != addr[0]:
            self._rtt = RttEstimator(initial_rtt_s=self.config.initial_rtt_s)
            self._cc = self.config.congestion_control(
                max_datagram_size=self.config.max_datagram_size, rng=self.config.rng
            )
            self._recovery.congestion = self._cc
            self._recovery.rtt = self._rtt
            self._ecn.restart(self._packetizer.next_packet_number)

    @property
    def peer_reset_token(self) -> bytes | None:
        """The stateless reset token the peer announced, once known."""
        params = self.peer_params
        return None if params is None else params.stateless_reset_token

    def handle_stateless_reset(self, data: bytes) -> bool:
        """A datagram that may be a stateless reset from the peer (the endpoint
        found our peer's token at its end). True when it was one."""
        if self.state in (State.CLOSED, State.DRAINING) or not self._is_stateless_reset(data):
            return False
        self._on_stateless_reset()
        return True

    # -- forward error correction --------------------------------------------
    def _on_fec_source(self, frame: Any, packet: bytes | memoryview) -> None:
        """FEC_SOURCE (first frame): remember where the protected frames start."""
        if self._in_recovered or self._in_long_packet or frame is not self._decoder.frames[0]:
            return  # only the first frame of a 1-RTT packet marks a source symbol
        block, index = frame.a, frame.b
        if self._session.keys is None:  # frames sit between header and CRC32C
            frames_start = 1 + len(self.local_cid) + self._rx_pn_length
            frames_end = len(packet) - CRC_LENGTH
        else:  # the packet is the decrypted payload: all frames
            frames_start, frames_end = 0, len(packet)
        # the frames after FEC_SOURCE start right after its (minimal) encoding
        start = frames_start + 1 + varint_size(block) + varint_size(index)
        self._fec_source = (block, index, start, frames_end)

    def _on_repair(
        self, block: int, k: int, m: int, index: int, symbol: bytes, now: float
    ) -> None:
        if self._in_recovered:
            return
        for pn, frames in self._fec_receiver.on_repair(block, k, m, index, symbol):
            self._process_recovered(pn, frames, now)

    def _process_recovered(self, pn: int, frames: bytes, now: float) -> None:
        """Process a packet rebuilt from repair symbols as if it had arrived."""
        acks = self._acks
        if acks.is_duplicate(pn):
            return
        decoder = self._fec_decoder
        try:
            count = decoder.decode(frames, 0, len(frames))
        except WireError:
            return  # a symbol we cannot trust: the sender will retransmit
        main = self._decoder
        self._decoder, self._in_recovered = decoder, True
        behind = self._rx_pn_behind
        self._rx_pn_behind = acks.largest_received - pn
        try:
            ack_eliciting = self._handle_frames(frames, count, now)
        except WireError:
            return  # (an ambiguous compact STREAM offset) the sender will retransmit
        finally:
            self._decoder, self._in_recovered = main, False
            self._rx_pn_behind = behind
        if acks.on_packet_received(pn, ack_eliciting, now) and self._rx_ecn:
            # a rebuilt packet has no IP header of its own: it counts with the
            # codepoint of the repair packet that completed it (same path), so
            # the peer's ECN validation sees every packet it acknowledges
            acks.on_ecn(self._rx_ecn, ack_eliciting, now)
        self.counters.fec_recovered += 1
        if len(self._fec_recovered_pending) < 256:
            self._fec_recovered_pending.append(pn)

    def _on_fec_recovered(self, ranges: list[int], now: float) -> None:
        """The peer rebuilt these packets: nothing to resend, but the path did
        lose them, so congestion control hears of it (unless configured not to)."""
        lost = 0
        for i in range(0, len(ranges), 2):
            lost += ranges[i + 1] - ranges[i] + 1
        self.counters.fec_reported_recovered += lost
        if lost <= 256:  # a sane report: the rebuilt packet numbers feed the estimator
            self._loss_estimator.on_recovered(
                [pn for i in range(0, len(ranges), 2) for pn in range(ranges[i], ranges[i + 1] + 1)]
            )
        if self.config.fec_report_losses:
            for _ in range(min(lost, 64)):
                self._cc.on_ecn_ce(now)

    def _update_loss_rate(self, acked: list[SentPacket], lost: list[SentPacket]) -> None:
        """Feed the adaptive FEC policy's loss-rate and burst estimate, and hand
        the sources of a block FEC can no longer rebuild to ARQ (nothing to do
        unless this side sends FEC)."""
        fec = self._fec_sender
        if fec is None:
            return
        lost_pns = [packet.packet_number for packet in lost]
        estimator = self._loss_estimator
        estimator.on_ack(len(acked), lost_pns)
        self.loss_rate = estimator.loss_rate
        fec.burst_length = estimator.burst_length
        recovery = self._recovery
        fec.tracker.on_ack(
            [packet.packet_number for packet in acked],
            lost_pns,
            recovery.largest_acked,
            recovery.packet_threshold,
        )

    def _is_stateless_reset(self, data: bytes) -> bool:
        params = self.peer_params
        token = None if params is None else params.stateless_reset_token
        return token is not None and is_stateless_reset(data, token)

    def _on_stateless_reset(self) -> None:
        """The peer lost its state (wire format §7): end at once, send nothing."""
        self._push_event(
            events.ConnectionTerminated(
                error_code=ErrorCode.NO_ERROR, reason="stateless reset", by_peer=True
            )
        )
        self.state = State.CLOSED
        self._recovery.discard_all()

    def _check_crc(self, packet: memoryview, end: int) -> bool:
        body_end = end - CRC_LENGTH
        if body_end < 0:
            return False
        expected = int.from_bytes(packet[body_end:end], "big")
        return bool(crc32c(packet[:body_end]) == expected)

    def _receive_short(self, packet: memoryview, header: object, now: float) -> None:
        if (
            self.state is State.IDLE
            or (self.is_client and self.state is State.HANDSHAKE)
            or (self._session.mode and self._session.keys is None)
        ):
            self.counters.datagrams_dropped += 1  # no 1-RTT context yet
            return
        received_before = self.counters.packets_received
        self._receive_1rtt(bytes(packet), now)
        if (
            self.state is State.HANDSHAKE
            and not self.is_client
            and self.counters.packets_received > received_before
        ):
            self._complete_handshake()

    def _receive_long(self, packet: memoryview, header: object, now: float) -> None:
        h = header
        ptype = h.packet_type  # type: ignore[attr-defined]
        if ptype == PacketType.RETRY:
            self._on_retry(packet, h)
            return
        expected = PacketType.INITIAL if not self.is_client else PacketType.HANDSHAKE
        if ptype != expected or not self._check_crc(packet, len(packet)):
            self.counters.datagrams_dropped += 1
            return
        if h.first_byte & RESERVED_LONG_MASK:  # type: ignore[attr-defined]
            raise RemoteProtocolError(ErrorCode.PROTOCOL_VIOLATION, "reserved header bits set")
        dcid = h.dcid  # type: ignore[attr-defined]
        if dcid != self.local_cid and dcid != self.original_dcid and dcid != self.initial_dcid:
            self.counters.datagrams_dropped += 1
            return
        if not self.peer_cid or self.state is State.HANDSHAKE:
            self.peer_cid = bytes(h.scid)  # type: ignore[attr-defined]
        if self.state is State.IDLE and not self.is_client:
            self.state = State.HANDSHAKE
            self._idle_since_s = now
            self.initial_dcid = bytes(dcid)
        self._in_long_packet = True
        try:
            self._process_packet(
                packet,
                h.pn_offset,  # type: ignore[attr-defined]
                h.pn_length,  # type: ignore[attr-defined]
                len(packet) - CRC_LENGTH,
                now,
            )
        finally:
            self._in_long_packet = False

    def _process_packet(
        self, packet: memoryview, pn_offset: int, pn_length: int, payload_end: int, now: float
    ) -> None:
        payload_start = pn_offset + pn_length
        if payload_start > payload_end:
            raise WireError("packet shorter than its header")
        truncated = int.from_bytes(packet[pn_offset:payload_start], "big")
        pn = decode_packet_number(truncated, pn_length, self._acks.largest_received)
        if self._acks.is_duplicate(pn):
            self.counters.duplicate_packets += 1
            return
        try:
            count = self._decoder.decode(packet, payload_start, payload_end)
        except WireError as exc:  # the packet passed its integrity check: a real error
            raise RemoteProtocolError(ErrorCode.FRAME_ENCODING_ERROR, str(exc)) from exc
        if count == 0:
            raise RemoteProtocolError(ErrorCode.PROTOCOL_VIOLATION, "packet without frames")
        ack_eliciting = self._handle_frames(packet, count, now)
        if self._acks.on_packet_received(pn, ack_eliciting, now) and self._rx_ecn:
            self._acks.on_ecn(self._rx_ecn, ack_eliciting, now)
        self.counters.packets_received += 1
        self._idle_since_s = now

    def _handle_frames(self, packet: bytes | memoryview, count: int, now: float) -> bool:
        frames = self._decoder.frames
        ack_eliciting = False
        for index in range(count):
            frame = frames[index]
            ftype = frame.type
            if 0x08 <= ftype <= 0x0F or (ftype >= 0x38 and self._compact_rx):
                if self._in_long_packet:
                    raise RemoteProtocolError(
                        ErrorCode.PROTOCOL_VIOLATION, "STREAM in a long-header packet", ftype
                    )
                ack_eliciting = True
                start = frame.data_off
                if type(packet) is not memoryview:
                    packet = memoryview(packet)
                # a view, not a copy: on_data copies what it keeps
                data = packet[start : start + frame.data_len]
                stream_id = frame.a
                stream = self._recv_streams.get(stream_id)
                offset = frame.b
                if ftype >= 0x38:  # compact STREAM (0x38..0x3f, accepted): rebuild the offset
                    if stream is None:
                        stream = self._stream_for_peer_data(stream_id)
                        if stream is None:
                            continue  # an old, finished stream: a late retransmission
                    # a late packet: it and the packets numbered above it may have
                    # sent the stream's highest offset up by a datagram each
                    behind = self._rx_pn_behind
                    if behind > 0 and stream.is_reset:
                        continue  # (a reset's final size is no datagram: data is discarded)
                    offset = compact_stream_offset(
                        offset, frame.data_len, stream.highest_offset,
                        (behind + 1) * self.config.max_datagram_size if behind > 0 else 0)
                elif stream is None:
                    self._on_stream_frame(stream_id, offset, data, ftype & 1)
                    continue
                # _on_stream_frame for an open stream, inlined (once per data packet)
                before = stream.highest_offset
                readable = stream.on_data(offset, data, ftype & 1 == 1)
                grown = stream.highest_offset - before
                if grown > 0:
                    self._recv_window.add_received(grown)
                if readable and stream_id not in self._readable_reported:
                    self._readable_reported[stream_id] = None
                    self._push_event(events.StreamReadable(stream_id=stream_id))
            elif ftype == FrameType.ACK or ftype == FrameType.ACK_ECN:
                first = frame.c
                end = first + 2 * frame.d
                all_ints = self._decoder.ranges
                self._on_ack_frame(
                    all_ints[first:end], frame.b, now,
                    all_ints[end : end + 3] if ftype == FrameType.ACK_ECN else None,
                )
            elif ftype == FrameType.PADDING:
                continue
            else:
                ack_eliciting = True
                if self._in_long_packet and ftype not in LONG_HEADER_FRAMES:
                    raise RemoteProtocolError(
                        ErrorCode.PROTOCOL_VIOLATION,
                        f"frame 0x{ftype:x} not allowed in a long-header packet",
                        ftype,
                    )
                self._on_control_frame(ftype, frame, packet, now)
                if self.state is State.DRAINING:
                    return False
        return ack_eliciting

    def _on_control_frame(
        self, ftype: int, frame: object, packet: bytes | memoryview, now: float
    ) -> None:
        f = frame
        a = f.a  # type: ignore[attr-defined]
        b = f.b  # type: ignore[attr-defined]
        body = bytes(packet[f.data_off : f.data_off + f.data_len])  # type: ignore[attr-defined]
        if ftype == FrameType.PING:
            return
        if ftype == FrameType.CRYPTO:
            if not self._in_long_packet:
                raise RemoteProtocolError(
                    ErrorCode.PROTOCOL_VIOLATION, "CRYPTO in a 1-RTT packet", ftype
                )
            self._on_crypto_frame(a, body)
        elif ftype == FrameType.MAX_DATA:
            if self._send_credit.raise_limit(a):
                self._packetizer.wake_all_streams()
        elif ftype == FrameType.MAX_STREAM_DATA:
            self._check_peer_may_receive(a)
            credit = self._stream_send_credit.get(a)
            if credit is not None and credit.raise_limit(b):
                self._packetizer.stream_ready(a)
        elif ftype in (FrameType.MAX_STREAMS_BIDI, FrameType.MAX_STREAMS_UNI):
            bidi = ftype == FrameType.MAX_STREAMS_BIDI
            counts = self._stream_counts
            if a > counts[_PEER_MAX + bidi]:
                blocked = counts[_LOCAL_OPENED + bidi] >= counts[_PEER_MAX + bidi]
                counts[_PEER_MAX + bidi] = a
                if blocked:  # only worth telling when the application hit the limit
                    self._push_event(events.StreamsAvailable(bidirectional=bidi))
        elif ftype == FrameType.RESET_STREAM:
            self._on_reset_stream(a, b, f.c)  # type: ignore[attr-defined]
        elif ftype == FrameType.STOP_SENDING:
            self._on_stop_sending(a, b)
        elif ftype in (FrameType.CONNECTION_CLOSE, FrameType.APPLICATION_CLOSE):
            self._on_close_frame(ftype, a, body)
        elif ftype in (FrameType.DATAGRAM, FrameType.DATAGRAM_LEN):
            self._on_datagram_frame(body)
        elif ftype == FrameType.FEC_SOURCE:
            self._on_fec_source(f, packet)
        elif ftype == FrameType.REPAIR:
            self._on_repair(a, b, f.c, f.d, body, now)  # type: ignore[attr-defined]
        elif ftype == FrameType.FEC_RECOVERED:
            first = f.c  # type: ignore[attr-defined]
            ranges = self._decoder.ranges[first : first + 2 * f.d]  # type: ignore[attr-defined]
            self._on_fec_recovered(ranges, now)
        elif ftype == FrameType.HANDSHAKE_DONE:
            if not self.is_client:
                raise RemoteProtocolError(
                    ErrorCode.PROTOCOL_VIOLATION, "HANDSHAKE_DONE from client"
                )
        elif ftype == FrameType.PATH_RESPONSE:
            if self._path_challenge is not None and body == self._path_challenge:
                self._path_challenge = None  # the new path is validated
                self.address_validated = True
        elif ftype == FrameType.PATH_CHALLENGE:
            self._packetizer.path_responses.append(body)
            if len(self._packetizer.path_responses) > 4:
                self._packetizer.path_responses.pop(0)
        elif ftype == FrameType.DATA_BLOCKED:
            # our limit blocks the peer: a larger window (transport/flow.py)
            if self._recv_window.on_peer_blocked(a) is not None:
                self._packetizer.max_data_due = True
        elif ftype == FrameType.STREAM_DATA_BLOCKED:
            rstream = self._recv_streams.get(a)
            if rstream is not None and rstream.on_peer_blocked(b) is not None:
                self._packetizer.due_max_stream_data(a)
        elif ftype in (
            FrameType.STREAMS_BLOCKED_BIDI,
            FrameType.STREAMS_BLOCKED_UNI,
            FrameType.NEW_CONNECTION_ID,
            FrameType.RETIRE_CONNECTION_ID,
            FrameType.NEW_TOKEN,
            FrameType.ACK_FREQUENCY,
        ):
            return  # informational, or for features this version does not use yet
        else:
            raise RemoteProtocolError(
                ErrorCode.FRAME_ENCODING_ERROR, f"unexpected frame 0x{ftype:x}", ftype
            )

    # -- handshake ---------------------------------------------------------
    def _local_params(self) -> TransportParameters:
        cfg = self.config
        return TransportParameters(
            original_destination_cid=None if self.is_client else self.original_dcid,
            retry_source_cid=None if self.is_client else self._retry_source_cid,
            stateless_reset_token=None if self.is_client else self._stateless_reset_token,
            initial_source_cid=self.local_cid,
            max_idle_timeout_ms=int(cfg.idle_timeout_s * 1000),
            max_udp_payload_size=cfg.max_datagram_size,
            initial_max_data=cfg.initial_max_data,
            initial_max_stream_data_bidi_local=cfg.initial_max_stream_data,
            initial_max_stream_data_bidi_remote=cfg.initial_max_stream_data,
            initial_max_stream_data_uni=cfg.initial_max_stream_data,
            initial_max_streams_bidi=cfg.max_streams_bidi,
            initial_max_streams_uni=cfg.max_streams_uni,
            ack_delay_exponent=cfg.ack_delay_exponent,
            max_ack_delay_ms=max(1, round(cfg.max_ack_delay_s * 1000)),
            max_datagram_frame_size=cfg.max_datagram_frame_size,
            aead_algorithm=self._session.aead_id,
            fec_capability=FEC_CAPABILITY_RS,
            compact_stream=self._compact_rx,
        )

    def _queue_handshake_message(self) -> None:
        block = self._local_params().encode()
        if self.is_client:
            prologue = handshake_prologue(VERSION_1, self.initial_dcid, self.local_cid)
            message = self._session.client_hello(block, prologue)
        else:
            message = self._session.server_reply(block)
        self._crypto_pending.append((0, message))
        self._notify()

    def _on_crypto_frame(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        if end > MAX_CRYPTO_BYTES:
            raise RemoteProtocolError(ErrorCode.CRYPTO_BUFFER_EXCEEDED, "handshake too large")
        if self.peer_params is not None:
            return  # a retransmission of what we already have
        buf = self._crypto_recv
        received = self._crypto_received
        if buf is None or received is None:
            buf = self._crypto_recv = bytearray()
            received = self._crypto_received = RangeSet(max_ranges=64)
        if len(buf) < end:
            buf.extend(bytes(end - len(buf)))
        buf[offset:end] = data
        received.add(offset, end)
        if not received or received.first_start() != 0:
            return
        contiguous = received.first()[1]
        start = 2 if self.is_client else 3  # the client's stream starts with its mode byte
        if contiguous < start:
            return
        length = int.from_bytes(buf[start - 2 : start], "big")
        if start + length > contiguous:
            return
        message = bytes(buf[start : start + length])
        session = self._session
        if self.is_client:
            block = session.client_read(message)
        else:
            prologue = handshake_prologue(VERSION_1, self.initial_dcid, self.peer_cid)
            block = session.server_read(buf[0], message, prologue)
        params = TransportParameters.decode(block)
        self._apply_peer_params(params)
        self._crypto_recv = self._crypto_received = None  # read: later CRYPTO is a resend
        if not self.is_client:
            self._queue_handshake_message()
        session.install_keys(params.aead_algorithm or 0)
        if self.is_client:
            self._complete_handshake()

    def _apply_peer_params(self, params: TransportParameters) -> None:
        if self.is_client and params.original_destination_cid != self.original_dcid:
            raise RemoteProtocolError(
                ErrorCode.TRANSPORT_PARAMETER_ERROR, "original_destination_cid mismatch"
            )
        if self.is_client and params.retry_source_cid != self._retry_source_cid:
            raise RemoteProtocolError(
                ErrorCode.TRANSPORT_PARAMETER_ERROR, "retry_source_cid mismatch"
            )
        if params.initial_source_cid is not None and params.initial_source_cid != self.peer_cid:
            raise RemoteProtocolError(
                ErrorCode.TRANSPORT_PARAMETER_ERROR, "initial_source_cid mismatch"
            )
        self.peer_params = params
        if self._fec_policy.mode != "off" and (params.fec_capability or 0) & FEC_CAPABILITY_RS:
            # symbols sized for the smallest packet the path is guaranteed to carry
            room = self._packetizer.room_for(PMTU_BASE_SIZE)
            self._fec_sender = FecSender(
                self._fec_policy, room - REPAIR_FRAME_OVERHEAD, self.config.fec_latency_budget_s
            )
        self._send_credit.raise_limit(params.initial_max_data or 0)
        self._stream_counts[_PEER_MAX + 1] = params.initial_max_streams_bidi or 0
        self._stream_counts[_PEER_MAX + 0] = params.initial_max_streams_uni or 0
        self._peer_max_datagram_frame_size = params.max_datagram_frame_size or 0
        self._compact_tx = params.compact_stream
        if params.ack_delay_exponent is not None:
            self._peer_ack_delay_exponent = params.ack_delay_exponent
        if params.max_ack_delay_ms is not None:
            self._recovery.max_ack_delay_s = params.max_ack_delay_ms / 1000.0
        if params.max_idle_timeout_ms:
            self._idle_timeout_s = min(self._idle_timeout_s, params.max_idle_timeout_ms / 1000.0)
        if params.max_udp_payload_size:
            self._packetizer.set_max_datagram_size(
                min(self.config.max_datagram_size, params.max_udp_payload_size)
            )

    def _complete_handshake(self) -> None:
        if self.state is not State.HANDSHAKE:
            return
        self.state = State.ESTABLISHED
        self.handshake_completed = True
        if self.config.pmtu_discovery:
            largest = self._packetizer.max_datagram_size  # config, capped by the peer
            if largest > PMTU_BASE_SIZE:
                self._pmtu = PathMtu(largest)
                self._packetizer.set_max_datagram_size(PMTU_BASE_SIZE)
        self._crypto_pending.clear()  # CRYPTO travels in long-header packets only
        self._idle_since_s = self._now
        self._update_idle_limit()
        self._push_event(events.HandshakeCompleted())

    def _update_idle_limit(self) -> None:
        """The idle timeout in force: the negotiated one, but never under 3 PTO."""
        if self.handshake_completed:
            self._idle_limit_s = max(self._idle_timeout_s, 3 * self._pto_s())

    def _pto_s(self) -> float:
        rtt = self._rtt
        return float(rtt.smoothed_rtt_s + max(4 * rtt.rttvar_s, 0.001)) + float(
            self._recovery.max_ack_delay_s
        )

    # -- acknowledgements ----------------------------------------------------
    def _on_ack_frame(
        self,
        ranges: list[int],
        ack_delay_encoded: int,
        now: float,
        ecn_counts: list[int] | None = None,
    ) -> None:
        ack_delay_s = (ack_delay_encoded << self._peer_ack_delay_exponent) / 1_000_000
        recovery = self._recovery
        largest_before = recovery.largest_acked
        acked, lost = recovery.on_ack_received(ranges, ack_delay_s, now)
        ecn = self._ecn
        if ecn.state != "failed" and acked:
            # RFC 9000 §13.4.2.1 validation; new CE marks are congestion (RFC 9002 §7.1)
            ce = ecn.on_ack(acked, ecn_counts, recovery.largest_acked > largest_before,
                            self._packetizer.next_packet_number)
            for _ in range(min(ce, MAX_CE_SIGNALS_PER_ACK)):
                self._cc.on_ecn_ce(now)
        self._update_idle_limit()
        if acked or lost:
            self._update_loss_rate(acked, lost)
        if acked:
            self._on_packets_acked(acked)
        if lost:
            self._on_packets_lost(lost)

    def _on_packets_acked(self, packets: list[SentPacket]) -> None:
        # Consecutive STREAM items that continue each other (the bulk case:
        # packets acknowledged in order, each carrying the next bytes of one
        # stream) are acknowledged as one range: one on_acked call per run.
        # The packets of a send run share one items tuple (ITEM_STREAM_RUN):
        # the run's packets acknowledged here with consecutive numbers are
        # consecutive in ``packets`` (ascending, one record per number), so a
        # segment of them is found from its ends and taken as one range.
        run_id = -1
        run_start = run_end = 0
        run_fin = False
        count = len(packets)
        k = 0
        while k < count:
            packet = packets[k]
            items = packet.items
            if items and items[0][0] == ITEM_STREAM_RUN:
                _, stream_id, run_pn, offsets, run_last_fin = items[0]
                pn = packet.packet_number
                # j: the segment's last index; at most the run's last packet
                j = k + len(offsets) - 2 - (pn - run_pn)
                if j >= count:
                    j = count - 1
                if packets[j].packet_number - pn != j - k:  # a gap: the last j
                    low = k  # with no gap up to it (number - index never falls)
                    while low < j:
                        mid = (low + j + 1) >> 1
                        if packets[mid].packet_number - pn == mid - k:
                            low = mid
                        else:
                            j = mid - 1
                offset = offsets[pn - run_pn]
                end_index = pn - run_pn + j - k + 1
                end = offsets[end_index]
                fin = run_last_fin and end_index + 1 == len(offsets)
                k = j + 1
                if offset == run_end and stream_id == run_id and not run_fin:
                    run_end = end
                    run_fin = fin
                    continue
                if run_id >= 0:
                    self._on_stream_acked(run_id, run_start, run_end - run_start, run_fin)
                run_id, run_start, run_end, run_fin = stream_id, offset, end, fin
                continue
            k += 1
            for item in items:
                kind = item[0]
                if kind == ITEM_STREAM:
                    _, stream_id, offset, length, fin = item
                    if offset == run_end and stream_id == run_id and not run_fin:
                        run_end = offset + length
                        run_fin = fin
                        continue
                    if run_id >= 0:
                        self._on_stream_acked(run_id, run_start, run_end - run_start, run_fin)
                    run_id, run_start, run_fin = stream_id, offset, fin
                    run_end = offset + length
                elif kind == ITEM_ACK:
                    self._acks.on_ack_frame_acked(item[1])
                elif kind == ITEM_PMTU_PROBE:
                    pmtu = self._pmtu
                    if pmtu is not None and pmtu.on_probe_acked(item[1]):
                        self._packetizer.set_max_datagram_size(pmtu.current)
                elif kind == ITEM_RESET:
                    stream = self._send_streams.get(item[1])
                    if stream is not None:
                        stream.on_reset_acked()
                        if stream.is_all_acked:
                            self._retire_send_stream(item[1])
        if run_id >= 0:
            self._on_stream_acked(run_id, run_start, run_end - run_start, run_fin)

    def _on_stream_acked(self, stream_id: int, offset: int, length: int, fin: bool) -> None:
        stream = self._send_streams.get(stream_id)
        if stream is not None:
            if stream.on_acked(offset, length, fin):
                self._report_writable(stream_id)
            if stream.is_all_acked:
                self._retire_send_stream(stream_id)

    def _requeue_oldest_for_probe(self) -> None:
        """RFC 9002 §6.2.4: a probe should carry data the peer may be missing.
        The oldest ack-eliciting packet's stream and handshake bytes are queued
        again -- without declaring it lost or telling congestion control -- so
        the probes repair a lost tail even when every ACK is being lost."""
        for packet in self._recovery.outstanding():
            if packet.ack_eliciting and packet.in_flight:  # not a path-MTU probe
                self._requeue_items(expand_items(packet.items, packet.packet_number))
                return

    def _requeue_items(self, items: list) -> None:
        p = self._packetizer
        for item in items:
            kind = item[0]
            if kind == ITEM_STREAM:
                stream = self._send_streams.get(item[1])
                if stream is not None:
                    stream.on_lost(item[2], item[3], item[4])
                    p.stream_ready(item[1])
            elif kind == ITEM_CRYPTO and self.state is State.HANDSHAKE:
                self._crypto_pending.append((item[1], item[2]))

    def _on_packets_lost(self, packets: list[SentPacket]) -> None:
        self.counters.packets_lost += len(packets)
        p = self._packetizer
        for packet in packets:
            for item in expand_items(packet.items, packet.packet_number):
                kind = item[0]
                if kind == ITEM_STREAM:
                    stream = self._send_streams.get(item[1])
                    if stream is not None:
                        stream.on_lost(item[2], item[3], item[4])
                        p.stream_ready(item[1])
                elif kind == ITEM_CRYPTO:
                    if self.state is State.HANDSHAKE:
                        self._crypto_pending.append((item[1], item[2]))
                elif kind == ITEM_PMTU_PROBE:
                    if self._pmtu is not None:
                        self._pmtu.on_probe_lost(item[1], self._now)
                elif kind == ITEM_PATH_CHALLENGE:
                    if item[1] == self._path_challenge:  # still unanswered: ask again
                        p.path_challenges.append(item[1])
                elif kind == ITEM_MAX_DATA:
                    p.max_data_due = True
                elif kind == ITEM_MAX_STREAM_DATA:
                    if item[1] in self._recv_streams:
                        p.due_max_stream_data(item[1])
                elif kind == ITEM_MAX_STREAMS:
                    p.max_streams_due[item[1]] = True
                elif kind == ITEM_RESET:
                    stream = self._send_streams.get(item[1])
                    if stream is not None:
                        stream.on_reset_lost()
                        p.due_reset(item[1])
                elif kind == ITEM_STOP_SENDING and item[1] in self._recv_streams:
                    p.stop_sending_due[item[1]] = item[2]
                elif kind == ITEM_STREAM_OPEN:
                    p.streams_to_announce[item[1]] = None  # sent again unless data went

    # -- streams -------------------------------------------------------------
    def _on_stream_frame(
        self, stream_id: int, offset: int, data: bytes | memoryview, fin: int
    ) -> None:
        stream = self._recv_streams.get(stream_id)
        if stream is None:
            stream = self._stream_for_peer_data(stream_id)
            if stream is None:
                return  # an old, finished stream: a late retransmission
        before = stream.highest_offset
        readable = stream.on_data(offset, data, bool(fin))
        grown = stream.highest_offset - before
        if grown > 0:
            self._recv_window.add_received(grown)
        if readable and stream_id not in self._readable_reported:
            self._readable_reported[stream_id] = None
            self._push_event(events.StreamReadable(stream_id=stream_id))

    def _stream_for_peer_data(self, stream_id: int) -> ReceiveStream | None:
        """The receive stream for data the peer sent on ``stream_id``, opening
        peer streams implicitly; None for streams already finished."""
        if is_client_initiated(stream_id) == self.is_client:
            # a stream we initiate: must be bidirectional and already opened
            if not is_bidirectional(stream_id):
                raise RemoteProtocolError(
                    ErrorCode.STREAM_STATE_ERROR, "data on our unidirectional stream"
                )
            if stream_id >= self._stream_counts[_NEXT_ID + 1]:
                raise RemoteProtocolError(ErrorCode.STREAM_STATE_ERROR, "stream not opened")
            return None
        bidi = is_bidirectional(stream_id)
        index = stream_id >> 2
        if index >= self._stream_counts[_LOCAL_MAX + bidi]:
            raise RemoteProtocolError(ErrorCode.STREAM_LIMIT_ERROR, "stream limit exceeded")
        if index < self._stream_counts[_PEER_OPENED + bidi]:
            return None  # opened before and already retired
        # open every lower-numbered stream of this kind too (RFC 9000 §3.2)
        # and report each one at once, data or not (an empty STREAM frame
        # announces a stream), so an application that speaks first sees it
        kind = stream_id & 3
        for n in range(self._stream_counts[_PEER_OPENED + bidi], index + 1):
            opened = (n << 2) | kind
            self._create_stream(opened)
            self._readable_reported[opened] = None
            self._push_event(events.StreamReadable(stream_id=opened))
        self._stream_counts[_PEER_OPENED + bidi] = index + 1
        return self._recv_streams[stream_id]

    def _create_stream(self, stream_id: int) -> None:
        cfg = self.config
        local = is_client_initiated(stream_id) == self.is_client
        bidi = is_bidirectional(stream_id)
        if local or bidi:
            self._send_streams[stream_id] = SendStream(
                stream_id, buffer_limit_bytes=cfg.stream_send_buffer_bytes
            )
            peer = self.peer_params
            if peer is None:
                limit = 0
            elif not bidi:
                limit = peer.initial_max_stream_data_uni or 0
            elif local:
                limit = peer.initial_max_stream_data_bidi_remote or 0
            else:
                limit = peer.initial_max_stream_data_bidi_local or 0
            self._stream_send_credit[stream_id] = SendCredit(limit)
        if not local or bidi:
            self._recv_streams[stream_id] = ReceiveStream(
                stream_id,
                window_bytes=cfg.initial_max_stream_data,
                max_window_bytes=cfg.max_stream_window,
            )

    def _stream_for_local_send(self, stream_id: int) -> SendStream:
        stream = self._send_streams.get(stream_id)
        if stream is None:
            raise StreamError(f"stream {stream_id} has no open sending side")
        return stream

    def _check_peer_may_receive(self, stream_id: int) -> None:
        if is_client_initiated(stream_id) != self.is_client and not is_bidirectional(stream_id):
            raise RemoteProtocolError(
                ErrorCode.STREAM_STATE_ERROR, "flow control for a receive-only stream"
            )

    def _on_reset_stream(self, stream_id: int, error_code: int, final_size: int) -> None:
        stream = self._recv_streams.get(stream_id) or self._stream_for_peer_data(stream_id)
        if stream is None:
            return
        before = stream.highest_offset
        unread_before = stream.bytes_read
        if not stream.on_reset(error_code, final_size):
            return
        grown = stream.highest_offset - before
        if grown > 0:
            self._recv_window.add_received(grown)
        # bytes that will never be read still count as consumed for the connection
        abandoned = final_size - unread_before
        if abandoned > 0 and self._recv_window.on_consumed(
            abandoned, self._now, self._rtt.smoothed_rtt_s
        ) is not None:
            self._packetizer.max_data_due = True
        self._push_event(events.StreamReset(stream_id=stream_id, error_code=error_code))
        self._retire_receive_stream(stream_id)

    def _on_stop_sending(self, stream_id: int, error_code: int) -> None:
        self._check_peer_may_receive(stream_id)
        stream = self._send_streams.get(stream_id)
        if stream is None:
            if is_client_initiated(stream_id) != self.is_client:
                self._stream_for_peer_data(stream_id)
                stream = self._send_streams.get(stream_id)
            if stream is None:
                return
        if stream.on_stop_sending(error_code):
            self._packetizer.due_reset(stream_id)
        self._push_event(events.StopSendingReceived(stream_id=stream_id, error_code=error_code))

    def _retire_receive_stream(self, stream_id: int) -> None:
        if self._recv_streams.pop(stream_id, None) is None:
            return
        self._readable_reported.pop(stream_id, None)
        due = self._packetizer.max_stream_data_due
        if due is not None:
            due.discard(stream_id)
        self._packetizer.stop_sending_due.pop(stream_id, None)
        self._maybe_credit_peer_stream(stream_id)

    def _retire_send_stream(self, stream_id: int) -> None:
        if self._send_streams.pop(stream_id, None) is None:
            return
        self._stream_send_credit.pop(stream_id, None)
        self._writable_wanted.pop(stream_id, None)
        self._maybe_credit_peer_stream(stream_id)

    def _maybe_credit_peer_stream(self, stream_id: int) -> None:
        """When a peer-initiated stream is fully done, let the peer open another."""
        if is_client_initiated(stream_id) == self.is_client:
            return
        if stream_id in self._send_streams or stream_id in self._recv_streams:
            return
        bidi = is_bidirectional(stream_id)
        counts = self._stream_counts
        counts[_PEER_CLOSED + bidi] += 1
        base = self.config.max_streams_bidi if bidi else self.config.max_streams_uni
        counts[_LOCAL_MAX + bidi] = base + counts[_PEER_CLOSED + bidi]
        self._packetizer.max_streams_due[bidi] = True

    def _report_writable(self, stream_id: int) -> None:
        if stream_id in self._writable_wanted:
            self._writable_wanted.pop(stream_id, None)
            self._push_event(events.StreamWritable(stream_id=stream_id))

    def _all_streams_done(self) -> bool:
        """Every byte written on every stream has been acknowledged (a FIN is
        not required: a stream left open is simply closed with the connection)."""
        return all(
            s.is_all_acked or s.is_reset or (not s.fin_written and s.bytes_acked == s.write_offset)
            for s in self._send_streams.values()
        )

    # -- datagrams and close -----------------------------------------------
    def _on_datagram_frame(self, body: bytes) -> None:
        if len(body) > self.config.max_datagram_frame_size:
            raise RemoteProtocolError(ErrorCode.PROTOCOL_VIOLATION, "datagram frame too large")
        if self._datagrams_queued >= self.config.max_received_datagrams:
            self.counters.datagrams_received_dropped += 1
            return
        self._datagrams_queued += 1
        self._push_event(events.DatagramReceived(data=body))

    def _on_close_frame(self, ftype: int, error_code: int, reason: bytes) -> None:
        if self.state is State.CLOSING:
            # both sides closed at once: ours was already reported; just drain
            self.state = State.DRAINING
            return
        self._push_event(
            events.ConnectionTerminated(
                error_code=error_code,
                reason=reason.decode("utf-8", "replace"),
                by_peer=True,
                application=ftype == FrameType.APPLICATION_CLOSE,
            )
        )
        self.state = State.DRAINING
        self._close_deadline = self._now + 3 * self._pto_s()
        self._recovery.discard_all()

    def _close_on_error(self, error_code: int, reason: str, frame_type: int) -> None:
        if self.state in (State.CLOSING, State.DRAINING, State.CLOSED):
            return
        self._start_closing(error_code, frame_type, reason.encode(), False)

    def _pending_close_args(self) -> tuple[int, int, bytes, bool]:
        code, reason = self._close_request
        return code, 0, reason.encode(), True

    def _start_closing(self, code: int, frame_type: int, reason: bytes, app: bool) -> None:
        self._close_graceful_pending = False
        self._close_frame = (code, frame_type, reason[:512], app)
        self.state = State.CLOSING
        self._close_deadline = self._now + 3 * self._pto_s()
        self._close_sends_left = MAX_CLOSE_REPEATS
        self._packetizer.close_frame_due = True
        self._recovery.discard_all()
        self._push_event(
            events.ConnectionTerminated(
                error_code=code,
                reason=reason.decode("utf-8", "replace"),
                by_peer=False,
                application=app,
            )
        )

    # -- helpers -------------------------------------------------------------
    def _check_usable(self) -> None:
        state = self.state
        if state is _CLOSING or state is _DRAINING or state is _CLOSED:
            raise ConnectionClosedError("the connection is closed")
        if state is _IDLE and self.is_client:
            raise InvalidStateError("call connect() first")

    def _push_event(self, event: events.Event) -> None:
        # Bounded by construction: stream events are coalesced per stream (so at
        # most a few per stream, and streams are limited), received datagrams are
        # capped in _on_datagram_frame, the rest happen once per connection.
        queue = self._events
        if queue is None:
            self._events = [event]
        else:
            queue.append(event)

    def _notify(self) -> None:
        callback = self.on_activity
        if callback is not None:
            callback(self)  # type: ignore[operator]
