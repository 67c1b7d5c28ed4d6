"""Publish messages to a topic of the broker.

python examples/broker/producer.py --topic sensors --count 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from common import DEFAULT_PORT, client_config, env_key_dir, write_frame

from transport import aio


async def produce(host: str, port: int, key_dir: Path, topic: str, count: int) -> int:
    reader, writer = await aio.open_connection(host, port, config=client_config(key_dir))
    writer.write(f"PUB {topic}\n".encode())
    for seq in range(count):
        body = {"seq": seq, "topic": topic, "at": time.time(), "value": seq * seq % 97}
        write_frame(writer, json.dumps(body).encode())
        await writer.drain()  # real backpressure from the broker
    writer.write_eof()
    reply = (await reader.readline()).decode().strip()
    writer.close()
    await writer.wait_closed()
    if reply != f"OK {count}":
        raise RuntimeError(f"broker answered {reply!r}")
    return count


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="publish to the broker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--key-dir", type=Path, default=env_key_dir())
    parser.add_argument("--topic", default="sensors")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    sent = asyncio.run(produce(args.host, args.port, args.key_dir, args.topic, args.count))
    print(f"published {sent} messages to {args.topic!r}")
