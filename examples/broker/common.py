"""Shared bits of the broker example: framing, keys, defaults.

A link is one stream. The client's first line names its role and topic
(``PUB topic`` or ``SUB topic``); after it, messages travel as frames: a 4-byte
big-endian length, then the payload.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
from pathlib import Path

# let the example run from a source checkout without installing the package
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from transport import Config
from transport.aio import StreamReader, StreamWriter
from transport.crypto.keys import (
    KeyPair,
    generate_keypair,
    load_private_key_file,
    load_public_key_file,
    public_key_from_private,
    save_keypair,
)

DEFAULT_PORT = 7400
DEFAULT_KEY_DIR = Path(__file__).resolve().parent / ".keys"
MAX_MESSAGE_BYTES = 1 << 20
_LENGTH = struct.Struct("!I")


def write_frame(writer: StreamWriter, payload: bytes) -> None:
    writer.write(_LENGTH.pack(len(payload)) + payload)


async def read_frame(reader: StreamReader) -> bytes | None:
    """The next message, or None at the end of the stream."""
    try:
        header = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if exc.partial == b"":
            return None  # a clean end between messages
        raise
    (length,) = _LENGTH.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {length} bytes is over the limit")
    return await reader.readexactly(length)


def broker_keypair(key_dir: Path) -> KeyPair:
    """The broker's static key pair, created on first use."""
    private_path = key_dir / "broker.key"
    if not private_path.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        save_keypair(generate_keypair(), private_path, key_dir / "broker.pub")
    private = load_private_key_file(private_path)
    return KeyPair(private, public_key_from_private(private))


def client_config(key_dir: Path) -> Config:
    return Config(server_public_key=load_public_key_file(key_dir / "broker.pub"))


def env_key_dir() -> Path:
    return Path(os.environ.get("BROKER_KEY_DIR", DEFAULT_KEY_DIR))
