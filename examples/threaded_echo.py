"""Threaded echo server and client over the transport (blocking, socket-like API).

    python examples/threaded_echo.py --self-test          # both sides, one process
    python examples/threaded_echo.py server --port 4433   # prints the server key
    python examples/threaded_echo.py client 127.0.0.1:4433 --server-key KEY
"""

from __future__ import annotations

import argparse
import socket
import threading

from transport import threaded
from transport.config import Config
from transport.crypto.keys import generate_keypair, load_public_key, public_key_to_raw


def handle(stream: threaded.Stream) -> None:
    """Echo lines back until the client closes its side."""
    with stream:
        reader = stream.makefile("rb")
        for line in reader:
            stream.sendall(line)


def serve(listener: threaded.Listener, count: int | None = None) -> None:
    served = 0
    while count is None or served < count:
        stream, peer = listener.accept()
        print(f"connection from {peer[0]}:{peer[1]}")
        threading.Thread(target=handle, args=(stream,), daemon=True).start()
        served += 1


def client(address: tuple[str, int], server_key: bytes, lines: list[str]) -> list[str]:
    replies = []
    with threaded.connect(address, config=Config(server_public_key=server_key),
                          timeout=5) as stream:
        reader = stream.makefile("r", encoding="utf-8")
        for line in lines:
            stream.sendall(line.encode() + b"\n")
            replies.append(reader.readline().rstrip("\n"))
        stream.shutdown(socket.SHUT_WR)
    return replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", nargs="?", choices=("server", "client"))
    parser.add_argument("address", nargs="?", default="127.0.0.1:4433")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--server-key")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test or args.role is None:
        keys = generate_keypair()
        with threaded.listen(("127.0.0.1", 0), config=Config(static_key=keys)) as listener:
            threading.Thread(target=serve, args=(listener, 1), daemon=True).start()
            replies = client(listener.local_address, keys.public, ["hello", "threaded", "world"])
            print(replies)
            assert replies == ["hello", "threaded", "world"]
        return
    if args.role == "server":
        keys = generate_keypair()
        with threaded.listen(("0.0.0.0", args.port), config=Config(static_key=keys)) as listener:
            print(f"listening on port {listener.local_address[1]}; "
                  f"server key: {public_key_to_raw(keys.public)}")
            serve(listener)
    else:
        host, _, port = args.address.rpartition(":")
        for reply in client((host, int(port)), load_public_key(args.server_key),
                            ["hello", "world"]):
            print(reply)


if __name__ == "__main__":
    main()
