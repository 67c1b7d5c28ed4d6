"""A small message broker over transport.aio.

Producers publish to topics, consumers subscribe; neither knows the other.
Each topic keeps its last ``--retain`` messages, so a consumer that starts
after the producer finished still gets them. Every subscriber has a bounded
queue; when one is full the broker stops reading from the producer, and the
transport's flow control slows the producer down (backpressure end to end,
nothing dropped, memory bounded).

    python examples/broker/broker.py [--host 127.0.0.1] [--port 7400]

The broker's key pair lives in ``--key-dir`` (created on first run); clients
pin its public key ``broker.pub`` from there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections import deque
from pathlib import Path

from common import (
    DEFAULT_PORT,
    StreamReader,
    StreamWriter,
    broker_keypair,
    env_key_dir,
    read_frame,
    write_frame,
)

from transport import Config, aio

QUEUE_MESSAGES = 256


class Topic:
    def __init__(self, retain: int) -> None:
        self.retained: deque[bytes] = deque(maxlen=retain)
        self.subscribers: set[asyncio.Queue[bytes]] = set()
        self.published = 0

    async def publish(self, message: bytes) -> None:
        self.retained.append(message)
        self.published += 1
        for queue in list(self.subscribers):
            await queue.put(message)  # waits while a subscriber is behind


class Broker:
    def __init__(self, retain: int) -> None:
        self.retain = retain
        self.topics: dict[str, Topic] = {}

    def topic(self, name: str) -> Topic:
        if name not in self.topics:
            self.topics[name] = Topic(self.retain)
        return self.topics[name]

    async def handle(self, reader: StreamReader, writer: StreamWriter) -> None:
        try:
            role, _, name = (await reader.readline()).decode().strip().partition(" ")
            if role == "PUB" and name:
                await self.producer(name, reader, writer)
            elif role == "SUB" and name:
                await self.consumer(name, reader, writer)
            else:
                writer.write(b"ERR expected 'PUB topic' or 'SUB topic'\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            writer.close()

    async def producer(self, name: str, reader: StreamReader, writer: StreamWriter) -> None:
        topic = self.topic(name)
        count = 0
        while (message := await read_frame(reader)) is not None:
            await topic.publish(message)
            count += 1
        writer.write(f"OK {count}\n".encode())  # everything is stored
        await writer.drain()

    async def consumer(self, name: str, reader: StreamReader, writer: StreamWriter) -> None:
        topic = self.topic(name)
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_MESSAGES)
        backlog = list(topic.retained)  # snapshot and subscribe in one step:
        topic.subscribers.add(queue)  # no gap, no duplicate
        gone = asyncio.ensure_future(reader.read())  # the consumer's EOF ends it
        try:
            for message in backlog:
                write_frame(writer, message)
                await writer.drain()
            while not gone.done():
                get = asyncio.ensure_future(queue.get())
                await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    break
                write_frame(writer, get.result())
                await writer.drain()
        finally:
            topic.subscribers.discard(queue)
            gone.cancel()


async def main(host: str, port: int, key_dir: Path, retain: int) -> None:
    broker = Broker(retain)
    config = Config(static_key=broker_keypair(key_dir))
    server = await aio.serve(host, port, broker.handle, config=config)
    address = server.local_address
    print(f"broker listening on {address[0]}:{address[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.shutdown(timeout=5)  # let links finish what they were sending
    print("broker stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="message broker over transport.aio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--key-dir", type=Path, default=env_key_dir())
    parser.add_argument("--retain", type=int, default=10_000, help="messages kept per topic")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.key_dir, args.retain))
