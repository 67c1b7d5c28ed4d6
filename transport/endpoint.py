"""The sans-IO endpoint: one per socket, many connections behind it.

How this works
--------------
An :class:`Endpoint` has the same driver shape as a connection --
``receive_datagram``, ``datagrams_to_send``, ``get_timer``, ``handle_timer``,
``next_event`` -- so a driver serves thousands of peers with one socket.
Drivers hand a whole socket read to ``receive_datagrams``: runs of datagrams
for one connection go to it in one call (a one-connection batch is recognised
at C speed), which is the same as routing them one by one. With GRO a driver
hands ``UdpSocket.recv_groups`` buffers to ``receive_groups``: a buffer of bulk
packets for one connection goes to it uncut (``Connection.receive_gro``).

* **Demultiplexing.** Datagrams are routed by destination connection ID: the
  short-header DCID is the first bytes after byte 0 (our IDs have a fixed
  length); long headers carry their DCID explicitly. A server creates a
  connection for an INITIAL to an unknown DCID (if the datagram has the
  mandatory 1200-byte padding and the connection limit allows).
* **Zero-length CIDs** (``Config.connection_id_length=0``, RFC 9000 §5.2):
  short headers, and long headers to the empty DCID, are routed by the
  sender's address; a client's first INITIALs by their original DCID, from
  the address that sent them. One connection per peer address (a second
  INITIAL from it is refused, ``connect`` raises). A packet from an unknown
  address is dropped and counted (``counters.unknown_address_drops``), with
  no stateless reset (no CID, no token): a peer that migrates or is rebound
  by a NAT loses the connection.
* **Stateless replies.** A long header of an unknown version gets a version
  negotiation packet (servers only, full-size datagrams only, so it cannot
  amplify). With ``Config.require_retry`` an INITIAL without a valid token
  gets a RETRY carrying an HMAC token bound to the client's address; no state
  is kept until the token comes back. The same happens without
  ``require_retry`` once ``Config.retry_when_pending_handshakes`` server
  handshakes are pending, so a spoofed INITIAL flood holds a bounded number of
  half-open connections and real clients still get in (one RTT later). A
  1-RTT packet for no connection gets a stateless reset (smaller than the
  trigger) whose token is derived from the endpoint secret and the CID.
  INITIALs that fail their CRC create no state.
* **Idle connections cost nothing.** Only connections touched by an input
  ("dirty") are polled for output. Deadlines live in a heap with lazy
  deletion: a connection's entry is valid only while it matches the deadline
  recorded for it, so re-arming never searches the heap.

Events come out as ``(connection, event)`` pairs. A connection that reaches
the closed state is forgotten.
"""

from __future__ import annotations

import heapq
import struct
from collections import deque
from itertools import repeat
from operator import itemgetter

from transport.config import Config
from transport.connection import Connection, State
from transport.crypto.tokens import (
    RetryTokenIssuer,
    build_stateless_reset,
    retry_integrity_tag,
    stateless_reset_token,
)
from transport.errors import ConfigurationError, InvalidStateError, WireError
from transport.events import Event
from transport.wire import crc32c, decode_header, encode_long_header
from transport.wire.constants import (
    HEADER_FORM_LONG,
    MIN_INITIAL_DATAGRAM_SIZE,
    SUPPORTED_VERSIONS,
    VERSION_1,
    PacketType,
)

Address = tuple[str, int]
MAX_STATELESS_QUEUE = 256
_first = itemgetter(0)
_second = itemgetter(1)
#: every short-header datagram sorts below this (its first byte is < 0x80)
_LONG_HEADER_START = bytes([HEADER_FORM_LONG])

_IDLE = State.IDLE  # (Enum class attribute reads are slow in Python 3.11)


class EndpointCounters:
    __slots__ = (
        "connections_refused",
        "datagrams_dropped",
        "invalid_tokens",
        "retries_sent",
        "stateless_resets_sent",
        "unknown_address_drops",
        "version_negotiations_sent",
    )

    def __init__(self) -> None:
        self.connections_refused = 0
        self.datagrams_dropped = 0
        self.invalid_tokens = 0
        self.retries_sent = 0
        self.stateless_resets_sent = 0
        #: zero-length CIDs: packets routed by address from no known peer
        #: (also counted in datagrams_dropped)
        self.unknown_address_drops = 0
        self.version_negotiations_sent = 0


class Endpoint:
    """Routes datagrams between one socket and its connections (sans-IO)."""

    def __init__(
        self, config: Config, *, is_server: bool = False, max_connections: int = 100_000
    ) -> None:
        if is_server and config.security == "noise" and config.static_key is None:
            raise ConfigurationError("a noise server endpoint needs Config.static_key")
        self.config = config
        self.is_server = is_server
        self.max_connections = max_connections
        self.counters = EndpointCounters()
        self._by_cid: dict[bytes, Connection] = {}
        self._cid_length = config.connection_id_length
        #: zero-length CIDs: the connection of each peer address
        self._by_addr: dict[Address, Connection] = {}
        #: the peers' stateless reset tokens, to recognise a reset (random DCID)
        self._by_reset_token: dict[bytes, Connection] = {}
        self._connections: dict[Connection, None] = {}
        #: server connections whose handshake has not completed yet
        self._pending_handshakes: dict[Connection, None] = {}
        self._dirty: dict[Connection, None] = {}  # may have datagrams to send
        self._stale: dict[Connection, None] = {}  # events and deadline not collected
        self._deadline: dict[Connection, float | None] = {}
        # timer heap entries are (deadline, key); a key maps to a live connection
        # only while it is attached, so a forgotten connection is not kept alive
        # by stale entries
        self._heap: list[tuple[float, int]] = []
        self._heap_seq = 0
        self._key_of: dict[Connection, int] = {}
        self._conn_of: dict[int, Connection] = {}
        self._stateless: deque[tuple[bytes, Address]] = deque()
        self._events: deque[tuple[Connection, Event]] = deque()
        self._now = 0.0
        self._secret = config.endpoint_secret or config.crypto_randbytes(32)
        # one bound method shared by every connection (not one object each)
        self._on_activity = self._touch
        self._tokens = RetryTokenIssuer(self._secret)

    @property
    def connections(self) -> list[Connection]:
        return list(self._connections)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def pending_handshake_count(self) -> int:
        """Server connections created by an INITIAL whose handshake is not done."""
        return len(self._pending_handshakes)

    def stop_accepting(self) -> None:
        """Refuse new connections from now on (a server shutting down);
        existing ones carry on until they close."""
        self.max_connections = 0

    # ------------------------------------------------------------------ inputs
    def connect(self, addr: Address, now: float) -> Connection:
        """Open a client connection to ``addr``. With zero-length connection IDs
        the peer address routes the replies: at most one connection per
        address (``InvalidStateError`` otherwise)."""
        self._now = max(self._now, now)
        if not self._cid_length and addr in self._by_addr:
            raise InvalidStateError(
                f"zero-length connection IDs: a connection to {addr} exists already")
        conn = Connection(self.config, is_client=True)
        self._adopt(conn, addr)
        conn.connect(addr, now)
        self._touch(conn)
        return conn

    def receive_datagram(self, data: bytes, addr: Address, now: float, ecn: int = 0) -> None:
        """Route one UDP payload (``ecn``: its ECN codepoint, if the driver reads
        it). Never raises for anything a peer sent."""
        if now > self._now:
            self._now = now
        conn = None
        if type(data) is bytes and data and not data[0] & HEADER_FORM_LONG:
            # the common case, a short header to a known CID (_route, inlined)
            cid_length = self._cid_length
            if cid_length:
                conn = self._by_cid.get(data[1 : 1 + cid_length])
            else:
                conn = self._by_addr.get(addr)
        routed = conn is None
        if conn is None:
            conn = self._route(data, addr, now)
            if conn is None:
                return
        cid = conn.local_cid
        conn.receive_datagram(data, addr, now, ecn)
        if routed and conn.local_cid is not cid and self._cid_length:
            # a RETRY made a client connection pick a new CID: route that one
            # to it, not the old one (answers to the abandoned attempt are
            # dropped as unknown)
            if self._by_cid.get(cid) is conn:
                del self._by_cid[cid]
            self._by_cid[conn.local_cid] = conn
        if not conn.is_client and conn.state is _IDLE:
            # a new server connection that did not accept its first datagram
            self._forget(conn)
            return
        # events and the deadline are collected lazily, once per batch of input
        self._dirty[conn] = None
        self._stale[conn] = None

    def receive_datagrams(self, datagrams: list[tuple[bytes, Address]], now: float,
                          ecn: int | list[int] = 0) -> None:
        """Route a batch of UDP payloads, in order: the same as
        :meth:`receive_datagram` for each, but a run of short-header datagrams
        for one connection from one address goes to it in one call
        (:meth:`Connection.receive_datagrams`), so the per-call work is paid
        once per run instead of once per datagram. ``ecn`` is the ECN
        codepoint of every datagram, or a list with one codepoint per datagram
        (an empty list: none read). Never raises for anything a peer sent."""
        if type(ecn) is list:
            if not ecn or len(ecn) != len(datagrams):
                ecn = 0
            elif ecn.count(ecn[0]) != len(ecn):
                # mixed codepoints: each run of equal ones is a batch of its own
                start = 0
                for index in range(1, len(ecn) + 1):
                    if index == len(ecn) or ecn[index] != ecn[start]:
                        self.receive_datagrams(datagrams[start:index], now, ecn[start])
                        start = index
                return
            else:
                ecn = ecn[0]
        assert type(ecn) is int
        if now > self._now:
            self._now = now
        by_cid = self._by_cid
        by_addr = self._by_addr
        cid_end = 1 + self._cid_length
        if len(datagrams) > 2:
            # the bulk case -- every datagram a short header to one connection
            # from one address -- is recognised at C speed (map, count, max)
            # and handed over as one run
            datas = list(map(_first, datagrams))
            addr = datagrams[0][1]
            conn = None
            try:
                cid = datas[0][1:cid_end]
                conn = by_cid.get(cid) if cid_end > 1 else by_addr.get(addr)
                single = (
                    conn is not None
                    and list(map(_second, datagrams)).count(addr) == len(datas)
                    and min(map(len, datas)) > 0
                    and max(datas) < _LONG_HEADER_START
                    # (bytes.startswith raises TypeError for anything but bytes)
                    and list(map(bytes.startswith, datas, repeat(cid), repeat(1))).count(True)
                    == len(datas)
                )
            except TypeError:
                single = False
            if single:
                self._deliver_run(conn, datas, addr, now, ecn)  # type: ignore[arg-type]
                return
        run: list[bytes] = []
        run_conn: Connection | None = None
        run_addr: Address | None = None
        for data, addr in datagrams:
            conn = None
            if type(data) is bytes and data and not data[0] & HEADER_FORM_LONG:
                conn = by_cid.get(data[1:cid_end]) if cid_end > 1 else by_addr.get(addr)
            if conn is not None and conn is run_conn and addr == run_addr:
                run.append(data)
                continue
            if run_conn is not None:
                self._deliver_run(run_conn, run, run_addr, now, ecn)  # type: ignore[arg-type]
                run_conn = None
            if conn is None:
                self.receive_datagram(data, addr, now, ecn)
            else:
                run_conn, run_addr, run = conn, addr, [data]
        if run_conn is not None:
            self._deliver_run(run_conn, run, run_addr, now, ecn)  # type: ignore[arg-type]

    def receive_groups(self, groups: list[tuple[bytes, int, Address]], now: float,
                       ecn: int | list[int] = 0) -> None:
        """Route what :meth:`UdpSocket.recv_groups <transport.udp.UdpSocket.recv_groups>`
        read: each entry ``(data, segment, addr)`` is one datagram
        (``segment`` 0) or a GRO buffer of ``segment``-byte datagrams back to
        back (the last maybe shorter); ``ecn`` is one codepoint per entry, or
        one for all. The same as :meth:`receive_datagrams` of the datagrams cut
        apart, but a GRO buffer of bulk packets to one connection is opened
        uncut (:meth:`Connection.receive_gro`); only what it leaves is cut."""
        if not any(map(_second, groups)):  # no GRO buffer: one datagram each
            self.receive_datagrams([(data, addr) for data, _, addr in groups], now, ecn)
            return
        codes = ecn if type(ecn) is list and len(ecn) == len(groups) else None
        code = ecn if type(ecn) is int else 0
        by_cid, by_addr = self._by_cid, self._by_addr
        cid_end = 1 + self._cid_length
        pending: list[tuple[bytes, Address]] = []
        pending_ecn: list[int] = []
        for index, (data, segment, addr) in enumerate(groups):
            if codes is not None:
                code = codes[index]
            start = 0
            if segment > 0 and len(data) > segment:
                conn = None
                if type(data) is bytes and not data[0] & HEADER_FORM_LONG:
                    conn = by_cid.get(data[1:cid_end]) if cid_end > 1 else by_addr.get(addr)
                if conn is not None:
                    if pending:  # (in order: what came before goes first)
                        self.receive_datagrams(pending, now, pending_ecn if codes else code)
                        pending, pending_ecn = [], []
                    if now > self._now:
                        self._now = now
                    start = conn.receive_gro(data, segment, addr, now, code) * segment
                    self._dirty[conn] = None
                    self._stale[conn] = None
                rest = [(data[i : i + segment], addr) for i in range(start, len(data), segment)]
            else:
                rest = [(data, addr)]
            pending += rest
            if codes is not None:
                pending_ecn += [code] * len(rest)
        if pending:
            self.receive_datagrams(pending, now, pending_ecn if codes else code)

    def _deliver_run(self, conn: Connection, run: list[bytes], addr: Address,
                     now: float, ecn: int) -> None:
        conn.receive_datagrams(run, addr, now, ecn)
        if not conn.is_client and conn.state is _IDLE:
            self._forget(conn)  # (as in receive_datagram)
            return
        self._dirty[conn] = None
        self._stale[conn] = None

    def handle_timer(self, now: float) -> None:
        """Fire every connection deadline that has passed."""
        self._now = max(self._now, now)
        heap = self._heap
        due: list[Connection] = []
        while heap and heap[0][0] <= now:
            deadline, key = heapq.heappop(heap)
            conn = self._conn_of.get(key)
            if conn is None or self._deadline.get(conn) != deadline:
                continue  # stale entry
            self._deadline[conn] = None
            due.append(conn)
        # Each connection runs its timer once; deadlines it re-arms (an ACK that
        # is due, say) are met by the datagrams_to_send the caller makes next.
        for conn in due:
            conn.handle_timer(now)
            self._dirty[conn] = None
            self._stale[conn] = None

    # ----------------------------------------------------------------- outputs
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        self._now = max(self._now, now)
        out: list[tuple[bytes, Address]] = []
        while self._stateless:
            out.append(self._stateless.popleft())
        dirty = self._dirty
        self._dirty = {}
        stale = self._stale
        for conn in dirty:
            out.extend(conn.datagrams_to_send(now))
            stale[conn] = None
        self._collect_stale()
        return out

    def datagrams_to_send_ecn(self, now: float) -> list[tuple[bytes, Address, int]]:
        """As :meth:`datagrams_to_send`, with each datagram's ECN codepoint
        (``Connection.ecn_codepoint``; 0 for stateless replies)."""
        self._now = max(self._now, now)
        out: list[tuple[bytes, Address, int]] = []
        while self._stateless:
            data, addr = self._stateless.popleft()
            out.append((data, addr, 0))
        dirty = self._dirty
        self._dirty = {}
        stale = self._stale
        for conn in dirty:
            batch = conn.datagrams_to_send(now)
            if batch:
                datas, addrs = zip(*batch, strict=True)  # (triples made at C speed)
                out += zip(datas, addrs, repeat(conn.ecn_codepoint))
            stale[conn] = None
        self._collect_stale()
        return out

    def get_timer(self) -> float | None:
        if self._stale:
            self._collect_stale()
        heap = self._heap
        while heap:
            deadline, key = heap[0]
            conn = self._conn_of.get(key)
            if conn is not None and self._deadline.get(conn) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def next_event(self) -> tuple[Connection, Event] | None:
        if self._stale:
            self._collect_stale()
        if self._events:
            return self._events.popleft()
        return None

    # ---------------------------------------------------------------- internals
    def _adopt(self, conn: Connection, addr: Address) -> None:
        self._connections[conn] = None
        if self._cid_length:
            self._by_cid[conn.local_cid] = conn
        else:
            self._by_addr[addr] = conn
        if not conn.is_client:
            self._by_cid[conn.original_dcid] = conn
            self._by_cid[conn.initial_dcid] = conn
        conn.on_activity = self._on_activity
        self._deadline[conn] = None
        self._heap_seq += 1
        self._key_of[conn] = self._heap_seq
        self._conn_of[self._heap_seq] = conn

    def _drop_stale_heap_entries(self) -> None:
        """Rebuild the timer heap from the live deadlines only. Each connection
        pushes an entry whenever its deadline moves (an idle timer moves with
        every packet) and superseded entries would otherwise wait for their
        time to come round; rebuilding once the heap holds twice as many
        entries as connections keeps it proportional at O(log n) per push."""
        conn_of = self._conn_of
        deadline_of = self._deadline
        live = []
        for entry in self._heap:
            conn = conn_of.get(entry[1])
            if conn is not None and deadline_of.get(conn) == entry[0]:
                live.append(entry)
        heapq.heapify(live)
        self._heap = live

    def _forget(self, conn: Connection) -> None:
        self._connections.pop(conn, None)
        self._pending_handshakes.pop(conn, None)
        self._deadline.pop(conn, None)
        self._dirty.pop(conn, None)
        self._stale.pop(conn, None)
        key = self._key_of.pop(conn, None)
        if key is not None:
            del self._conn_of[key]
        conn.on_activity = None
        conn.release_keys()
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._connections):
            self._drop_stale_heap_entries()
        token = conn.peer_reset_token
        if token is not None and self._by_reset_token.get(token) is conn:
            del self._by_reset_token[token]
        for cid in (conn.local_cid, conn.original_dcid, conn.initial_dcid):
            if self._by_cid.get(cid) is conn:
                del self._by_cid[cid]
        # (zero-length CIDs: the address it was adopted for is its peer address,
        # which such a connection never changes)
        addr = conn.peer_addr
        if addr is not None and self._by_addr.get(addr) is conn:
            del self._by_addr[addr]

    def _touch(self, conn: Connection) -> None:
        self._dirty[conn] = None
        self._stale[conn] = None

    def _collect_stale(self) -> None:
        stale = self._stale
        self._stale = {}
        for conn in stale:
            self._collect(conn)

    def _collect(self, conn: Connection) -> None:
        """Move the connection's events out, re-arm its deadline, forget it if closed."""
        while True:
            event = conn.next_event()
            if event is None:
                break
            self._events.append((conn, event))
        if conn.is_closed:
            self._forget(conn)
            return
        if conn in self._pending_handshakes and conn.is_established:
            del self._pending_handshakes[conn]
        token = conn.peer_reset_token
        if token is not None and token not in self._by_reset_token:
            self._by_reset_token[token] = conn
        deadline = conn.get_timer()
        if deadline != self._deadline.get(conn):
            self._deadline[conn] = deadline
            if deadline is not None:
                heap = self._heap
                heapq.heappush(heap, (deadline, self._key_of[conn]))
                if len(heap) > 64 and len(heap) > 2 * len(self._connections):
                    self._drop_stale_heap_entries()

    def _route(self, data: bytes, addr: Address, now: float) -> Connection | None:
        if not data:
            self.counters.datagrams_dropped += 1
            return None
        cid_len = self.config.connection_id_length
        if not data[0] & HEADER_FORM_LONG:
            if not cid_len:
                # zero-length CIDs: the address is the only route (no stateless
                # reset either: there is no CID to derive its token from)
                conn = self._by_addr.get(addr)
                if conn is None:
                    self._unknown_address()
                return conn
            dcid = bytes(data[1 : 1 + cid_len])
            conn = self._by_cid.get(dcid)
            if conn is None:
                self.counters.datagrams_dropped += 1
                reset_for = self._by_reset_token.get(bytes(data[-16:])) if len(data) >= 21 else None
                if reset_for is not None:
                    reset_for.handle_stateless_reset(data)
                    self._touch(reset_for)
                elif self.is_server:
                    self._queue_stateless_reset(dcid, len(data), addr)
            return conn
        try:
            header = decode_header(data, cid_len)
        except WireError:
            self.counters.datagrams_dropped += 1
            return None
        if cid_len:
            conn = self._by_cid.get(bytes(header.dcid))
        else:
            # zero-length CIDs: our own (empty) CID routes by address; the
            # client's original DCID only from the address that chose it
            conn = self._by_cid.get(bytes(header.dcid)) if header.dcid else self._by_addr.get(addr)
            if (conn is None and not header.dcid) or (conn is not None and conn.peer_addr != addr):
                self._unknown_address()
                return None
            if conn is None and self.is_server and addr in self._by_addr:
                # one connection per address: a second INITIAL from it is refused
                self.counters.connections_refused += 1
                return None
        if conn is not None:
            return conn
        if header.version not in SUPPORTED_VERSIONS:
            if self.is_server and header.version != 0 and len(data) >= MIN_INITIAL_DATAGRAM_SIZE:
                self._queue_version_negotiation(header.dcid, header.scid, addr)
            else:
                self.counters.datagrams_dropped += 1
            return None
        if (
            not self.is_server
            or header.packet_type != PacketType.INITIAL
            or len(data) < MIN_INITIAL_DATAGRAM_SIZE
            or len(header.dcid) < 8
        ):
            self.counters.datagrams_dropped += 1
            return None
        if len(self._connections) >= self.max_connections:
            self.counters.connections_refused += 1
            return None
        original_dcid = bytes(header.dcid)
        retry_scid = None
        end = header.packet_end
        if end < 4 or crc32c(memoryview(data)[: end - 4]) != int.from_bytes(
            data[end - 4 : end], "big"
        ):
            self.counters.datagrams_dropped += 1  # never create state for a damaged INITIAL
            return None
        if header.token:
            # a token answers a RETRY of ours: honour it whether or not RETRY is
            # required now (the pending-handshake count may have dropped since)
            checked = self._tokens.validate_retry(bytes(header.token), addr, now)
            if checked is None or checked.retry_scid != bytes(header.dcid):
                self.counters.invalid_tokens += 1
                return None
            original_dcid, retry_scid = checked.original_dcid, checked.retry_scid
        elif self._retry_required():
            self._queue_retry(bytes(header.dcid), bytes(header.scid), addr, now)
            return None
        local_cid = self.config.rng.randbytes(cid_len)
        conn = Connection(
            self.config,
            is_client=False,
            local_cid=local_cid,
            original_dcid=original_dcid,
            initial_dcid=bytes(header.dcid),
            retry_source_cid=retry_scid,
            # zero-length CIDs: no token (one per CID; there is none to reset)
            stateless_reset_token=stateless_reset_token(self._secret, local_cid)
            if cid_len else None,
        )
        self._adopt(conn, addr)
        self._pending_handshakes[conn] = None
        return conn

    def _unknown_address(self) -> None:
        """Zero-length CIDs: a packet from no known peer address is dropped."""
        self.counters.datagrams_dropped += 1
        self.counters.unknown_address_drops += 1

    def _retry_required(self) -> bool:
        if self.config.require_retry:
            return True
        limit = self.config.retry_when_pending_handshakes
        return limit is not None and len(self._pending_handshakes) >= limit

    def _queue_retry(self, dcid: bytes, scid: bytes, addr: Address, now: float) -> None:
        """Answer an INITIAL without a token with RETRY (wire format §13): no
        state is kept; the token carries what the server needs to resume."""
        if len(self._stateless) >= MAX_STATELESS_QUEUE:
            self.counters.datagrams_dropped += 1
            return
        # (zero-length CIDs: 8 bytes all the same, so the client's next INITIALs
        # have a DCID the new connection is found by, as with the first ones)
        retry_scid = self.config.rng.randbytes(self.config.connection_id_length or 8)
        token = self._tokens.issue(addr, dcid, now, retry_scid=retry_scid)
        out = bytearray(64 + len(token) + len(scid) + len(retry_scid))
        end = encode_long_header(
            out, 0, PacketType.RETRY, VERSION_1, scid, retry_scid, token, 0, 1, 0
        )
        packet = bytes(out[:end])
        self._stateless.append((packet + retry_integrity_tag(dcid, packet), addr))
        self.counters.retries_sent += 1

    def _queue_stateless_reset(self, dcid: bytes, trigger_length: int, addr: Address) -> None:
        """A 1-RTT packet for a connection we do not have: tell the sender with a
        stateless reset (smaller than the trigger, so it cannot amplify)."""
        if len(self._stateless) >= MAX_STATELESS_QUEUE:
            return
        token = stateless_reset_token(self._secret, dcid)
        reset = build_stateless_reset(token, trigger_length, self.config.crypto_randbytes)
        if reset is not None:
            self._stateless.append((reset, addr))
            self.counters.stateless_resets_sent += 1

    def _queue_version_negotiation(self, dcid: bytes, scid: bytes, addr: Address) -> None:
        if len(self._stateless) >= MAX_STATELESS_QUEUE:
            self.counters.datagrams_dropped += 1
            return
        first = HEADER_FORM_LONG | self.config.rng.getrandbits(7)
        packet = (
            bytes([first])
            + b"\x00\x00\x00\x00"
            + bytes([len(scid)])
            + bytes(scid)
            + bytes([len(dcid)])
            + bytes(dcid)
            + b"".join(struct.pack("!I", v) for v in SUPPORTED_VERSIONS)
        )
        self._stateless.append((packet, addr))
        self.counters.version_negotiations_sent += 1
