"""Byte layout of a bulk 1-RTT data packet: where our per-packet overhead goes.

How this works
--------------
A client sends ``--bytes`` of stream data to a server through the in-process
virtual-time pair (tests/helpers.Pair: no sockets, no clock), once with
``security="none"`` (plaintext, CRC32C trailer: the frames can be read) and
once with ``security="noise"`` (AEAD: what goes on the wire). The most common
client-to-server 1-RTT datagram size is the bulk packet. For the plaintext run
its header and STREAM frame are decoded field by field; the noise run gives
the sealed size. Overhead is every byte of the UDP payload that is not stream
data: first byte, DCID, packet number, frame type, stream ID, offset, length,
and the CRC32C trailer (4 B) or AEAD tag (16 B). TCP's figure for comparison:
1500-byte IP packets carry 1448 data bytes (20 IP + 20 TCP + 12 timestamps).

    .venv/bin/python benchmarks/bench_wire_layout.py [--connection-id-length 0]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import Pair

from transport import Config
from transport.crypto.keys import generate_keypair
from transport.errors import StreamError, WireError
from transport.wire import decode_frames
from transport.wire._varint_pure import decode_varint
from transport.wire.constants import COMPACT_OFFSET_BYTES, STREAM_COMPACT_MAX, STREAM_COMPACT_MIN

TCP_PAYLOAD_PER_1500 = 1448
UDP_IP_HEADERS = 28


def run(security: str, total_bytes: int, datagram_size: int, cid_length: int) -> dict[str, Any]:
    """One transfer; returns the bulk packet (bytes) and counters."""
    kw_c: dict[str, Any] = {}
    kw_s: dict[str, Any] = {}
    if security == "noise":
        server_keys = generate_keypair(random.Random(7).randbytes)
        kw_s["static_key"] = server_keys
        kw_c["server_public_key"] = server_keys.public
    common = {"security": security, "max_datagram_size": datagram_size,
              "connection_id_length": cid_length}
    client = Config(rng=random.Random(1), crypto_randbytes=random.Random(11).randbytes,
                    **common, **kw_c)
    server = Config(rng=random.Random(2), crypto_randbytes=random.Random(12).randbytes,
                    **common, **kw_s)
    pair = Pair(client, server)
    pair.handshake()
    start = len(pair.sent)
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, bytes(total_bytes), end_stream=True)
    got = 0

    def drained() -> bool:
        nonlocal got
        while True:
            try:
                data, fin = pair.server.recv_stream_data(sid)
            except StreamError:  # not opened yet on the server, or finished
                return got >= total_bytes
            got += len(data)
            if fin or not data:
                break
        return got >= total_bytes

    pair.run_until(drained, pair.now + 60.0)
    c2s = [d for _t, way, d in pair.sent[start:] if way == "c2s" and not d[0] & 0x80]
    size, _n = Counter(len(d) for d in c2s).most_common(1)[0]
    cid = len(pair.client.peer_cid)
    bulk = next((d for d in c2s if len(d) == size and _is_bulk(d, security, cid)), c2s[0])
    counters = pair.client.counters
    return {"packet": bulk, "size": size, "packets": counters.packets_sent,
            "bytes_sent": counters.bytes_sent, "stream_bytes": counters.stream_bytes_sent,
            "dcid_length": cid}


def _is_bulk(packet: bytes, security: str, dcid_length: int) -> bool:
    """A plaintext packet holding exactly one STREAM frame. Sealed packets
    cannot be read: every one of the most common size counts."""
    if security != "none":
        return True
    start = 1 + dcid_length + (packet[0] & 3) + 1
    try:
        frames = decode_frames(packet, start, len(packet) - 4)
    except WireError:
        return False
    return len(frames) == 1 and _is_stream_type(frames[0][0])


def _is_stream_type(frame_type: int) -> bool:
    """STREAM (0x08..0x0f) or compact STREAM (0x38..0x3f, wire format 10.25)."""
    return 0x08 <= frame_type <= 0x0F or STREAM_COMPACT_MIN <= frame_type <= STREAM_COMPACT_MAX


def layout(packet: bytes, dcid_length: int, trailer: int) -> dict[str, int]:
    """Field sizes of a plaintext short-header packet holding one STREAM frame."""
    first = packet[0]
    pn_length = (first & 3) + 1
    pos = 1 + dcid_length + pn_length
    frames = decode_frames(packet, pos, len(packet) - trailer)
    if len(frames) != 1 or not _is_stream_type(frames[0][0]):
        raise SystemExit(f"not a bulk packet: {frames!r}")
    frame_type = frames[0][0]
    fields = {"first_byte": 1, "dcid": dcid_length, "packet_number": pn_length,
              "frame_type": 1}
    p = pos + 1
    if frame_type >= STREAM_COMPACT_MIN:
        # compact: the type names the stream; 3-byte truncated offset; no Length
        fields.update(stream_id=0, offset=COMPACT_OFFSET_BYTES, length=0)
        fields["data"] = len(packet) - trailer - p - COMPACT_OFFSET_BYTES
        return fields
    _sid, q = decode_varint(packet, p)
    fields["stream_id"] = q - p
    p = q
    fields["offset"] = 0
    if frame_type & 0x04:
        _off, q = decode_varint(packet, p)
        fields["offset"] = q - p
        p = q
    fields["length"] = 0
    if frame_type & 0x02:
        _len, q = decode_varint(packet, p)
        fields["length"] = q - p
        p = q
    fields["data"] = len(packet) - trailer - p
    return fields


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bytes", type=int, default=3_000_000, help="transfer size (default 3 MB)")
    ap.add_argument("--datagram-size", type=int, default=1472)
    ap.add_argument("--connection-id-length", type=int, default=8)
    args = ap.parse_args(argv)
    plain = run("none", args.bytes, args.datagram_size, args.connection_id_length)
    sealed = run("noise", args.bytes, args.datagram_size, args.connection_id_length)
    fields = layout(plain["packet"], plain["dcid_length"], 4)
    fields.pop("data")
    # same header and frame layout under the AEAD; the tag replaces the CRC32C
    own = sum(fields.values()) + 16
    data = sealed["size"] - own
    result = {
        "benchmark": "wire_layout",
        "datagram_size": args.datagram_size,
        "connection_id_length": args.connection_id_length,
        "bulk_packet_fields_bytes": {**fields, "aead_tag": 16},
        "bulk_packet_bytes": sealed["size"],
        "data_bytes_per_bulk_packet": data,
        "overhead_bytes_per_bulk_packet": own,
        "unused_datagram_bytes": args.datagram_size - sealed["size"],
        "data_bytes_per_1500_byte_ip_packet": 1500 - UDP_IP_HEADERS - own,
        # the same layout with a 2-byte packet number (up to 32,767 packets
        # unacknowledged: a long transfer; this short one may use 1 byte)
        "data_bytes_per_1500_byte_ip_packet_pn2": (
            1500 - UDP_IP_HEADERS - (own - fields["packet_number"] + 2)),
        "tcp_data_bytes_per_1500_byte_packet": TCP_PAYLOAD_PER_1500,
        "ip_bytes_per_data_byte_bulk": round((sealed["size"] + UDP_IP_HEADERS) / data, 4),
        "tcp_ip_bytes_per_data_byte": round(1500 / TCP_PAYLOAD_PER_1500, 4),
        "run_udp_bytes_per_stream_byte": round(
            sealed["bytes_sent"] / max(sealed["stream_bytes"], 1), 4),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
