"""Send a file over the transport and verify it with SHA-256 (blocking API).

    python examples/file_transfer.py --self-test          # 10 MB through loopback
    python examples/file_transfer.py recv --out DIR       # prints port and key
    python examples/file_transfer.py send FILE HOST:PORT --server-key KEY

The same protocol as ``transport send`` / ``transport recv``: a JSON header
line (name, size), the bytes, the SHA-256 digest; the receiver answers with a
JSON verdict.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading

from transport import threaded
from transport.cli.transfer import receive_one, send_file
from transport.config import Config
from transport.crypto.keys import generate_keypair, load_public_key, public_key_to_raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", nargs="?", choices=("send", "recv"))
    parser.add_argument("file", nargs="?")
    parser.add_argument("address", nargs="?")
    parser.add_argument("--out", default=".")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--server-key")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.role == "recv":
        keys = generate_keypair()
        with threaded.listen(("0.0.0.0", args.port), config=Config(static_key=keys)) as lst:
            print(f"port {lst.local_address[1]}; server key: {public_key_to_raw(keys.public)}")
            stream, _peer = lst.accept()
            with stream:
                print(receive_one(stream, args.out, progress=True))
        return
    if args.role == "send":
        host, _, port = args.address.rpartition(":")
        config = Config(server_public_key=load_public_key(args.server_key))
        print(send_file(args.file, (host, int(port)), config, progress=True))
        return
    keys = generate_keypair()
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "payload.bin")
        with open(source, "wb") as f:
            f.write(os.urandom(10_000_000))
        out_dir = os.path.join(tmp, "received")
        os.makedirs(out_dir)
        with threaded.listen(("127.0.0.1", 0), config=Config(static_key=keys)) as listener:
            def receiver() -> None:
                stream, _peer = listener.accept(timeout=10)
                with stream:
                    receive_one(stream, out_dir)

            thread = threading.Thread(target=receiver, daemon=True)
            thread.start()
            verdict = send_file(source, listener.local_address,
                                Config(server_public_key=keys.public), progress=True)
            thread.join(10)
        print(verdict)
        assert verdict["ok"]


if __name__ == "__main__":
    main()
