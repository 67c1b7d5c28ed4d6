"""Fuzz targets shared by the atheris runner, the corpus tools and the smoke tests.

How this works
--------------
Each target takes one byte string and either returns or raises
:class:`FuzzFailure` (a broken invariant) -- any other exception escaping a
target is a bug too. The first byte of every input is a selector; the rest is
the payload, so one corpus format serves coverage-guided fuzzing (atheris)
and plain replay (``tests/test_fuzz_smoke.py``).

* :func:`wire_one` -- the native (C) codec through its Python wrapper,
  differentially against the pure-Python reference: ``decode_header``,
  ``decode_frames`` and ``open_short_packet`` must agree (same values, or the
  same :class:`~transport.errors.WireError` subclass). Anything but a
  ``WireError`` is a failure.
* :func:`receive_one` -- ``Connection.receive_datagram`` on a freshly
  handshaken connection (``security="none"`` or ``"noise"``) or on a server
  that has not seen an INITIAL yet. The payload is a list of datagrams
  (2-byte big-endian length, then the bytes); selector bits ask the harness to
  patch the destination connection ID and re-seal the CRC32C trailer, so
  mutated packets get past the integrity check and reach frame handling.
  After each datagram the harness drives the connection like a real caller
  (output, timers, events, reads) and checks: nothing raises, every event is
  a known type, buffers stay within the advertised windows.

Every input starts from fresh, deterministically seeded state, so a failing
input replays exactly.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from transport import Config, Connection  # noqa: E402
from transport import events as ev  # noqa: E402
from transport.crypto.keys import generate_keypair  # noqa: E402
from transport.errors import LocalError, WireError  # noqa: E402
from transport.wire import codec_pure, crc32c  # noqa: E402

try:
    from transport.wire import codec_native
except ImportError:  # pragma: no cover - depends on the build
    codec_native = None  # type: ignore[assignment]

__all__ = ["TARGETS", "FuzzFailure", "receive_one", "wire_one"]

CLIENT_ADDR = ("10.0.0.1", 50000)
SERVER_ADDR = ("10.0.0.2", 4433)
SERVER_KEYS = generate_keypair(randbytes=random.Random(101).randbytes)
MAX_DATAGRAMS = 6
#: memory figure that must never be exceeded by one connection's receive side:
#: the connection window (4 MiB by default) plus bookkeeping slack
WINDOW_BYTES = 4 * 1024 * 1024


class FuzzFailure(AssertionError):
    """A fuzz target found a broken invariant."""


# ------------------------------------------------------------------ wire ---
def _header_tuple(h: Any) -> tuple[Any, ...]:
    return (
        h.first_byte, h.packet_type, h.version, bytes(h.dcid), bytes(h.scid),
        bytes(h.token), h.pn_offset, h.pn_length, h.packet_end,
        tuple(h.versions or ()), bytes(h.integrity_tag or b""),
    )


def _both(fn_name: str, *args: Any, post: Any = None) -> None:
    """Run ``fn_name`` on both codecs; results (after ``post``) must agree."""
    outcomes: list[tuple[Any, ...]] = []
    for codec in (codec_native, codec_pure):
        try:
            result = getattr(codec, fn_name)(*args)
            outcomes.append(("ok", post(result) if post else result))
        except WireError as exc:
            outcomes.append(("err", type(exc).__name__))
    if outcomes[0] != outcomes[1]:
        raise FuzzFailure(f"{fn_name}: native {outcomes[0]!r} != pure {outcomes[1]!r}")


def wire_one(data: bytes) -> None:
    """Differential check of the native codec against the pure one."""
    if codec_native is None or not data:
        return
    sel, buf = data[0], bytes(data[1:])
    kind = sel & 3
    if kind == 0:
        _both("decode_frames", buf)
    elif kind == 1:
        _both("decode_header", buf, (sel >> 2) % 21, post=_header_tuple)
    elif kind == 2:
        cid_len = (sel >> 3) % 21
        dcid = buf[1 : 1 + cid_len] if sel & 4 and len(buf) > cid_len else bytes(cid_len)
        crc = not sel & 0x80
        outcomes: list[tuple[Any, ...]] = []
        for codec in (codec_native, codec_pure):
            decoder = codec.FrameDecoder()
            try:
                head = codec.open_short_packet(buf, dcid, decoder, crc)
                frames = [
                    (f.type, f.a, f.b, f.c, f.d, f.data_off, f.data_len)
                    for f in decoder.frames[: head[3]]
                ]
                outcomes.append(("ok", head, frames))
            except WireError as exc:
                outcomes.append(("err", type(exc).__name__, None))
        if outcomes[0] != outcomes[1]:
            raise FuzzFailure(f"open_short_packet: {outcomes[0]!r} != {outcomes[1]!r}")
    else:
        start = (sel >> 2) % (len(buf) + 1)
        _both("decode_frames", buf, start)


# --------------------------------------------------------------- receive ---
def _config(seed: int, security: str, server: bool) -> Config:
    kw: dict[str, Any] = {}
    if security == "noise":
        if server:
            kw["static_key"] = SERVER_KEYS
        else:
            kw["server_public_key"] = SERVER_KEYS.public
    return Config(
        security=security,
        rng=random.Random(seed),
        crypto_randbytes=random.Random(seed + 1000).randbytes,
        **kw,
    )


def _shuttle(client: Connection, server: Connection, now: float) -> None:
    for _ in range(6):
        moved = False
        for data, _addr in client.datagrams_to_send(now):
            server.receive_datagram(data, CLIENT_ADDR, now)
            moved = True
        for data, _addr in server.datagrams_to_send(now):
            client.receive_datagram(data, SERVER_ADDR, now)
            moved = True
        if not moved:
            return


def _established(security: str) -> tuple[Connection, Connection]:
    client = Connection(_config(1, security, False), is_client=True)
    server = Connection(
        _config(2, security, True), is_client=False, original_dcid=client.original_dcid
    )
    client.connect(SERVER_ADDR, 0.0)
    _shuttle(client, server, 0.01)
    if not (client.is_established and server.is_established):
        raise FuzzFailure("fixture handshake failed")
    # some stream state on both sides, so frames about streams find something
    sid = client.open_stream()
    client.send_stream_data(sid, b"fuzz" * 100)
    _shuttle(client, server, 0.02)
    return client, server


_KNOWN_EVENTS = (
    ev.HandshakeCompleted, ev.StreamReadable, ev.StreamWritable, ev.StreamsAvailable,
    ev.StreamReset, ev.StopSendingReceived, ev.DatagramReceived, ev.ConnectionTerminated,
)


def _drive(conn: Connection, now: float) -> None:
    """What a driver does after an input; checks the outputs on the way."""
    for payload, _addr in conn.datagrams_to_send(now):
        if not 0 < len(payload) <= 65527:
            raise FuzzFailure(f"datagram of {len(payload)} bytes")
    deadline = conn.get_timer()
    if deadline is not None and deadline <= now:
        conn.handle_timer(now)
        conn.datagrams_to_send(now)
    count = 0
    while (event := conn.next_event()) is not None:
        count += 1
        if count > 10_000:
            raise FuzzFailure("unbounded event queue")
        if not isinstance(event, _KNOWN_EVENTS):
            raise FuzzFailure(f"unknown event {event!r}")
        if isinstance(event, ev.StreamReadable):
            try:
                data, _fin = conn.recv_stream_data(event.stream_id)
            except LocalError:
                continue  # the stream may have been reset since
            if len(data) > WINDOW_BYTES:
                raise FuzzFailure(f"{len(data)} bytes readable beyond the window")


def _patch(packet: bytearray, dcid: bytes, fix_dcid: bool, reseal: bool) -> bytes:
    if not packet:
        return b""
    if fix_dcid and not packet[0] & 0x80 and len(packet) > len(dcid):
        packet[1 : 1 + len(dcid)] = dcid
    if reseal and len(packet) > 4:
        body = bytes(packet[:-4])
        packet[-4:] = crc32c(body).to_bytes(4, "big")
    return bytes(packet)


def split_datagrams(payload: bytes) -> list[bytearray]:
    out: list[bytearray] = []
    pos = 0
    while pos + 2 <= len(payload) and len(out) < MAX_DATAGRAMS:
        n = int.from_bytes(payload[pos : pos + 2], "big")
        pos += 2
        out.append(bytearray(payload[pos : pos + n]))
        pos += n
    if not out and payload:
        out.append(bytearray(payload))
    return out


def join_datagrams(datagrams: list[bytes]) -> bytes:
    return b"".join(len(d).to_bytes(2, "big") + d for d in datagrams)


def receive_one(data: bytes) -> None:
    """Feed datagrams to a connection; see the module docstring.

    Selector bits: 0 security (0 none, 1 noise); 1 target (0 the established
    server, 1 a fresh server before any INITIAL); 2 re-seal the CRC32C
    trailer; 3 patch the short-header DCID; 4 target the client instead of
    the server (established case only)."""
    if not data:
        return
    sel = data[0]
    security = "noise" if sel & 1 else "none"
    fresh_server = bool(sel & 2)
    if fresh_server:
        target = Connection(_config(3, security, True), is_client=False)
        sender_addr = CLIENT_ADDR
    else:
        client, server = _established(security)
        target, sender_addr = (client, SERVER_ADDR) if sel & 16 else (server, CLIENT_ADDR)
    now = 0.05
    for raw in split_datagrams(bytes(data[1:])):
        packet = _patch(raw, target.local_cid, bool(sel & 8), bool(sel & 4))
        try:
            target.receive_datagram(packet, sender_addr, now)
        except Exception as exc:
            raise FuzzFailure(f"receive_datagram raised {exc!r}") from exc
        _drive(target, now)
        now += 0.01
    stats = target.get_stats()
    if stats.bytes_in_flight < 0 or stats.congestion_window_bytes <= 0:
        raise FuzzFailure(f"bad figures after input: {stats}")


TARGETS = {"wire": wire_one, "receive": receive_one}
