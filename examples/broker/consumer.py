"""Receive messages of a topic from the broker (retained ones first).

python examples/broker/consumer.py --topic sensors --count 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from common import DEFAULT_PORT, client_config, env_key_dir, read_frame

from transport import aio


async def consume(
    host: str, port: int, key_dir: Path, topic: str, count: int, quiet: bool = False
) -> list[dict[str, object]]:
    reader, writer = await aio.open_connection(host, port, config=client_config(key_dir))
    writer.write(f"SUB {topic}\n".encode())
    received = []
    while len(received) < count:
        frame = await read_frame(reader)
        if frame is None:
            break
        message = json.loads(frame)
        received.append(message)
        if not quiet:
            print(message, flush=True)
    writer.write_eof()  # tells the broker we are done
    writer.close()
    await writer.wait_closed()
    return received


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="subscribe to the broker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--key-dir", type=Path, default=env_key_dir())
    parser.add_argument("--topic", default="sensors")
    parser.add_argument("--count", type=int, default=1000, help="stop after this many")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    got = asyncio.run(
        consume(args.host, args.port, args.key_dir, args.topic, args.count, args.quiet)
    )
    seqs = [m["seq"] for m in got]
    print(f"received {len(got)} messages from {args.topic!r} (seq {seqs[:1]}..{seqs[-1:]})")
