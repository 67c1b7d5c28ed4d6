"""`transport send` / `transport recv`: one verified file transfer.

How this works
--------------
Both commands use the blocking API (:mod:`transport.threaded`). The sender
opens a connection and writes a JSON header line (``name``, ``size``), the
file's bytes, then the 32-byte SHA-256 digest of what it sent, and closes its
side. The receiver writes the data to ``--out DIR/<name>`` (the base name only,
never a path the sender chose) through a temporary file, hashes while writing,
checks size and digest, renames the file into place only when both match, and
answers with a JSON line (``ok``, ``sha256``, ``bytes``) that the sender
prints. Both sides show a progress bar on stderr (when it is a terminal or
with ``--progress``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from typing import Any

from transport.cli.bench import parse_hostport

CHUNK_BYTES = 256 * 1024
MAX_HEADER_BYTES = 4096


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.start = time.monotonic()
        self._next = 0.0

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (now < self._next and not final):
            return
        self._next = now + 0.2
        fraction = done / self.total if self.total else 1.0
        bar = "#" * int(fraction * 30)
        rate = done * 8 / max(now - self.start, 1e-9) / 1e6
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {fraction * 100:5.1f}% "
                         f"{done / 1e6:9.1f} MB {rate:8.1f} Mbit/s")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _show(args: argparse.Namespace) -> bool:
    return bool(args.progress or sys.stderr.isatty())


def _config(args: argparse.Namespace, *, server: bool) -> Any:
    from transport.config import Config
    from transport.crypto.keys import (
        KeyPair,
        generate_keypair,
        load_private_key_file,
        load_public_key,
        load_public_key_file,
        public_key_from_private,
    )

    if args.security == "none":
        return Config(security="none")
    if server:
        if args.key:
            private = load_private_key_file(args.key)
            return Config(static_key=KeyPair(private, public_key_from_private(private)))
        return Config(static_key=generate_keypair())
    key = args.server_key
    public = load_public_key_file(key) if os.path.exists(key) else load_public_key(key)
    return Config(server_public_key=public)


def send_file(path: str, address: tuple[str, int], config: Any, *,
              progress: bool = False, timeout: float = 30.0) -> dict[str, Any]:
    """Send one file; returns the receiver's verdict."""
    from transport import threaded

    size = os.path.getsize(path)
    header = json.dumps({"name": os.path.basename(path), "size": size}).encode() + b"\n"
    bar = Progress("send", size, progress)
    digest = hashlib.sha256()
    with threaded.connect(address, config=config, timeout=timeout) as stream:
        stream.sendall(header)
        done = 0
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                stream.sendall(chunk)
                digest.update(chunk)
                done += len(chunk)
                bar.update(done)
        stream.sendall(digest.digest())
        stream.shutdown(1)
        bar.update(done, final=True)
        stream.settimeout(timeout)
        reply = stream.makefile("rb").readline(MAX_HEADER_BYTES)
    if not reply:
        raise ConnectionError("the receiver closed without a verdict")
    verdict: dict[str, Any] = json.loads(reply)
    return verdict


def receive_one(stream: Any, out_dir: str, *, progress: bool = False) -> dict[str, Any]:
    """Receive one file from an accepted stream into ``out_dir``; send the verdict."""
    reader = stream.makefile("rb")
    header = json.loads(reader.readline(MAX_HEADER_BYTES))
    name = os.path.basename(str(header["name"])) or "received.bin"
    size = int(header["size"])
    final_path = os.path.join(out_dir, name)
    temp_path = final_path + ".part"
    digest = hashlib.sha256()
    bar = Progress(f"recv {name}", size, progress)
    done = 0
    with open(temp_path, "wb") as f:
        while done < size:
            chunk = reader.read1(min(CHUNK_BYTES, size - done))
            if not chunk:
                break
            f.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            bar.update(done)
    bar.update(done, final=True)
    trailer = reader.read(32)
    ok = done == size and trailer == digest.digest()
    if ok:
        os.replace(temp_path, final_path)
    else:
        os.unlink(temp_path)
    verdict = {"ok": ok, "name": name, "bytes": done, "sha256": digest.hexdigest(),
               "path": final_path if ok else None}
    stream.sendall(json.dumps(verdict).encode() + b"\n")
    return verdict


def _cmd_send(args: argparse.Namespace) -> int:
    if args.security == "noise" and not args.server_key:
        print("transport send: --server-key is required (or --security none)", file=sys.stderr)
        return 2
    verdict = send_file(args.file, args.address, _config(args, server=False),
                        progress=_show(args), timeout=args.timeout)
    print(json.dumps(verdict))
    return 0 if verdict.get("ok") else 1


def _cmd_recv(args: argparse.Namespace) -> int:
    from transport import threaded
    from transport.crypto.keys import public_key_to_raw

    os.makedirs(args.out, exist_ok=True)
    config = _config(args, server=True)
    failures = 0
    with threaded.listen((args.host, args.port), config=config) as listener:
        host, port = listener.local_address
        print(f"listening on {host}:{port}", flush=True)
        if config.static_key is not None:
            print(f"server key: {public_key_to_raw(config.static_key.public)}", flush=True)
        while True:
            stream, peer = listener.accept()
            with stream:
                verdict = receive_one(stream, args.out, progress=_show(args))
            print(json.dumps({"peer": f"{peer[0]}:{peer[1]}", **verdict}), flush=True)
            failures += not verdict["ok"]
            if not args.keep_going:
                break
    return 1 if failures else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    send = sub.add_parser("send", help="send a file (SHA-256 verified by the receiver)")
    send.add_argument("file")
    send.add_argument("address", type=parse_hostport, metavar="HOST:PORT")
    send.add_argument("--server-key", help="the receiver's public key (base64 or a .pub file)")
    send.add_argument("--security", choices=("noise", "none"), default="noise")
    send.add_argument("--timeout", type=float, default=30.0)
    send.add_argument("--progress", action="store_true", help="progress bar even without a tty")
    send.set_defaults(func=_cmd_send)
    recv = sub.add_parser("recv", help="receive a file into --out (prints the public key)")
    recv.add_argument("--host", default="0.0.0.0")
    recv.add_argument("--port", type=int, default=4433)
    recv.add_argument("--out", required=True, help="directory for received files")
    recv.add_argument("--key", help="private key file (default: a new key per run)")
    recv.add_argument("--security", choices=("noise", "none"), default="noise")
    recv.add_argument("--keep-going", action="store_true", help="serve more than one file")
    recv.add_argument("--progress", action="store_true", help="progress bar even without a tty")
    recv.set_defaults(func=_cmd_recv)
