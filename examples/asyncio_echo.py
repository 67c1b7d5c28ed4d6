"""Echo server and client over transport.aio (asyncio streams API).

Run a server, then a client against it:

    python examples/asyncio_echo.py server --port 7300 --key /tmp/echo.key
    python examples/asyncio_echo.py client 127.0.0.1 7300 --server-key /tmp/echo.pub "hello"

or both in one process: ``python examples/asyncio_echo.py --self-test``.
The code is what you would write for asyncio.open_connection/start_server;
only the import and the ``config=`` (keys) differ.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from transport import Config
from transport.aio import StreamReader, StreamWriter, open_connection, start_server
from transport.crypto.keys import (
    KeyPair,
    generate_keypair,
    load_private_key_file,
    load_public_key_file,
    public_key_from_private,
    save_keypair,
)


async def handle(reader: StreamReader, writer: StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    async for line in reader:  # one line at a time, until the client's EOF
        writer.write(line)
        await writer.drain()
    stats = writer.get_extra_info("connection").get_stats()
    print(f"{peer}: done, rtt {stats.smoothed_rtt_s * 1000:.2f} ms", flush=True)
    writer.close()


async def echo_client(host: str, port: int, config: Config, lines: list[str]) -> list[str]:
    reader, writer = await open_connection(host, port, config=config)
    answers = []
    for line in lines:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        answers.append((await reader.readline()).decode().rstrip("\n"))
    writer.write_eof()
    writer.close()
    await writer.wait_closed()
    return answers


def load_or_create_keypair(path: str) -> KeyPair:
    if not os.path.exists(path):
        save_keypair(generate_keypair(), path, path.removesuffix(".key") + ".pub")
    private = load_private_key_file(path)
    return KeyPair(private, public_key_from_private(private))


async def self_test() -> None:
    keys = generate_keypair()
    server = await start_server(handle, "127.0.0.1", 0, config=Config(static_key=keys))
    port = server.sockets[0].getsockname()[1]
    async with server:
        answers = await echo_client(
            "127.0.0.1", port, Config(server_public_key=keys.public), ["hello", "world"]
        )
    assert answers == ["hello", "world"], answers
    print("ok")


async def run_server(host: str, port: int, key_path: str) -> None:
    keys = load_or_create_keypair(key_path)
    server = await start_server(handle, host, port, config=Config(static_key=keys))
    print(f"echo server on {server.sockets[0].getsockname()}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--self-test", action="store_true")
    sub = parser.add_subparsers(dest="mode")
    srv = sub.add_parser("server")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=7300)
    srv.add_argument("--key", default="echo.key", help="private key (created if missing)")
    cli = sub.add_parser("client")
    cli.add_argument("host")
    cli.add_argument("port", type=int)
    cli.add_argument("lines", nargs="+")
    cli.add_argument("--server-key", default="echo.pub", help="the server's public key")
    args = parser.parse_args()
    if args.self_test or args.mode is None:
        asyncio.run(asyncio.wait_for(self_test(), 20))
    elif args.mode == "server":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_server(args.host, args.port, args.key))
    else:
        config = Config(server_public_key=load_public_key_file(args.server_key))
        for answer in asyncio.run(echo_client(args.host, args.port, config, args.lines)):
            print(answer)


if __name__ == "__main__":
    sys.exit(main())
