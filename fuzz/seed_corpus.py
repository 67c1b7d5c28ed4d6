"""Write seed inputs for the fuzzers from real traffic.

How this works
--------------
Two connections run a short exchange in virtual time (streams with data and
FIN, a reset, unreliable datagrams, a close) for ``security="none"`` and
``"noise"``; every datagram put on the wire is recorded. Each one becomes
seeds in the formats of :mod:`targets`: for the ``wire`` corpus (shared by the
libFuzzer C harness and the atheris differential target) the datagram behind
the selectors for header decoding, short-packet opening and frame decoding;
for the ``receive`` corpus, the datagram behind selectors that deliver it to
an established or a fresh connection. Seeds are named by content hash, so
re-running adds nothing twice.

Usage: ``python fuzz/seed_corpus.py [CORPUS_DIR]`` (default tests/corpus).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets import (
    CLIENT_ADDR,
    SERVER_ADDR,
    _config,
    join_datagrams,
)

from transport import Connection


def record(security: str) -> list[tuple[bool, bytes]]:
    """(to_server, datagram) for a short exchange."""
    client = Connection(_config(11, security, False), is_client=True)
    server = Connection(
        _config(12, security, True), is_client=False, original_dcid=client.original_dcid
    )
    wire: list[tuple[bool, bytes]] = []
    now = 0.0
    client.connect(SERVER_ADDR, now)

    def shuttle() -> None:
        nonlocal now
        for _ in range(20):
            now += 0.005
            moved = False
            for data, _a in client.datagrams_to_send(now):
                wire.append((True, data))
                server.receive_datagram(data, CLIENT_ADDR, now)
                moved = True
            for data, _a in server.datagrams_to_send(now):
                wire.append((False, data))
                client.receive_datagram(data, SERVER_ADDR, now)
                moved = True
            for conn in (client, server):
                while (event := conn.next_event()) is not None:
                    sid = getattr(event, "stream_id", None)
                    if sid is not None and type(event).__name__ == "StreamReadable":
                        conn.recv_stream_data(sid)
            if not moved:
                return

    shuttle()
    a = client.open_stream()
    client.send_stream_data(a, bytes(range(256)) * 8, end_stream=True)
    b = client.open_stream()
    client.send_stream_data(b, b"to be reset" * 50)
    u = client.open_stream(bidirectional=False)
    client.send_stream_data(u, b"uni", end_stream=True)
    client.send_datagram(b"unreliable")
    shuttle()
    client.reset_stream(b, 7)
    client.ping()
    shuttle()
    c = server.open_stream()
    server.send_stream_data(c, b"server data" * 30, end_stream=True)
    server.send_datagram(b"back")
    shuttle()
    client.close(3, "done")
    shuttle()
    return wire


def _save(directory: Path, data: bytes) -> bool:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / hashlib.sha1(data).hexdigest()
    if path.exists():
        return False
    path.write_bytes(data)
    return True


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parent.parent / "tests/corpus"
    root = Path(argv[1]) if len(argv) > 1 else default
    added = 0
    for security in ("none", "noise"):
        noise = 1 if security == "noise" else 0
        for to_server, data in record(security):
            short = not data[0] & 0x80
            # wire corpus: header decode (8-byte CIDs), open (DCID from the input), frames
            added += _save(root / "wire", bytes([0x21]) + data)
            if short:
                added += _save(root / "wire", bytes([0x46]) + data)
                added += _save(root / "wire", bytes([0x80 | 0x40 | 0x04 | 0x02]) + data)
                added += _save(root / "wire", bytes([0x80]) + data[10:-4])
            # receive corpus: to the established peer (patched DCID, resealed CRC)
            target = 0 if to_server else 16
            sel = bytes([noise | 0x0C | target])
            added += _save(root / "receive", sel + join_datagrams([data]))
            if to_server and not short:
                added += _save(root / "receive", bytes([noise | 0x02]) + join_datagrams([data]))
    print(f"added {added} seeds under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
