"""transport.aio over loopback: streams, asyncio compatibility, protocols,
backpressure, cancellation, datagrams, many clients, IPv6, shutdown, errors."""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from transport import Config, aio
from transport.crypto.keys import generate_keypair
from transport.errors import PortUnreachableError

ROOT = Path(__file__).resolve().parent.parent
KEYS = generate_keypair()


def server_config(**kw: Any) -> Config:
    return Config(static_key=KEYS, rng=random.Random(1), **kw)


def client_config(**kw: Any) -> Config:
    return Config(server_public_key=KEYS.public, rng=random.Random(2), **kw)


def run(coro_fn: Callable[[], Awaitable[None]], timeout_s: float = 10.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro_fn(), timeout_s)

    asyncio.run(bounded())


async def upper_echo(reader: aio.StreamReader, writer: aio.StreamWriter) -> None:
    data = await reader.read()
    writer.write(data.upper())
    writer.write_eof()
    await writer.drain()


def test_echo_100_concurrent_streams() -> None:
    async def main() -> None:
        server = await aio.serve("127.0.0.1", 0, upper_echo, config=server_config())
        port = server.local_address[1]
        async with aio.connect("127.0.0.1", port, config=client_config()) as conn:

            async def one(i: int) -> None:
                reader, writer = await conn.open_stream()
                payload = (f"stream {i} ".encode()) * (50 + i * 10)
                writer.write(payload)
                writer.write_eof()
                await writer.drain()
                assert await reader.read() == payload.upper()
                assert reader.at_eof()

            await asyncio.gather(*(one(i) for i in range(100)))
            stats = conn.get_stats()
            assert stats.stream_bytes_delivered > 0
        await server.shutdown()

    run(main)


# An asyncio program written for asyncio.open_connection / start_server. The
# test runs it with asyncio itself, then with the first line swapped.
LINE_PROGRAM = textwrap.dedent(
    """
    from asyncio import open_connection, start_server
    import asyncio

    async def handle(reader, writer):
        peer = writer.get_extra_info("peername")
        assert peer is not None
        while True:
            line = await reader.readline()
            if not line:
                break
            command, _, arg = line.decode().rstrip("\\n").partition(" ")
            if command == "ADD":
                a, b = arg.split()
                writer.write(f"{int(a) + int(b)}\\n".encode())
            elif command == "REV":
                writer.write(arg[::-1].encode() + b"\\n")
            else:
                writer.write(b"ERR\\n")
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def client(port, n):
        reader, writer = await open_connection("127.0.0.1", port)
        answers = []
        for i in range(n):
            writer.write(f"ADD {i} {i * 2}\\n".encode())
            writer.writelines([b"REV ", f"abc{i}".encode(), b"\\n"])
            await writer.drain()
            answers.append((await reader.readline()).decode().strip())
            answers.append((await reader.readuntil(b"\\n")).decode().strip())
        writer.write(b"BOGUS\\n")
        answers.append((await reader.readexactly(4)).decode())
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        return answers

    async def main():
        server = await start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            results = await asyncio.gather(*(client(port, 20) for _ in range(5)))
        return results
    """
)


def test_unchanged_asyncio_line_program() -> None:
    def load(first_line: str) -> types.ModuleType:
        module = types.ModuleType("line_program")
        source = LINE_PROGRAM.replace(
            "from asyncio import open_connection, start_server", first_line, 1
        )
        exec(compile(source, "line_program", "exec"), module.__dict__)
        return module

    expected = [answer for i in range(20) for answer in (str(3 * i), f"abc{i}"[::-1])] + ["ERR\n"]

    reference = load("from asyncio import open_connection, start_server")
    assert asyncio.run(asyncio.wait_for(reference.main(), 10)) == [expected] * 5

    # an application binds its keys once, in the module it imports from
    net = aio.with_config(client=client_config(), server=server_config())
    sys.modules["net_under_test"] = types.SimpleNamespace(  # type: ignore[assignment]
        open_connection=net.open_connection, start_server=net.start_server
    )
    try:
        ours = load("from net_under_test import open_connection, start_server")
        assert asyncio.run(asyncio.wait_for(ours.main(), 10)) == [expected] * 5
    finally:
        del sys.modules["net_under_test"]


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        assert transport.get_extra_info("connection") is not None

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


class CollectProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.paused = 0
        self.eof = False

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def eof_received(self) -> bool | None:
        self.eof = True
        return None

    def pause_writing(self) -> None:
        self.paused += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def test_protocol_api_echo() -> None:
    async def main() -> None:
        server = await aio.create_server(EchoProtocol, "127.0.0.1", 0, config=server_config())
        port = server.sockets[0].getsockname()[1]
        transport, protocol = await aio.create_connection(
            CollectProtocol, "127.0.0.1", port, config=client_config()
        )
        assert isinstance(transport, asyncio.Transport)
        assert isinstance(protocol, CollectProtocol)
        payload = bytes(random.Random(3).randbytes(300_000))
        transport.set_write_buffer_limits(high=16_384)
        transport.writelines([payload[:1000], payload[1000:]])
        assert transport.can_write_eof()
        transport.write_eof()
        await protocol.done
        assert protocol.eof
        assert b"".join(protocol.chunks) == payload
        assert transport.is_closing()
        await server.shutdown()

    run(main)


def test_protocol_pause_reading_holds_data_in_core() -> None:
    async def main() -> None:
        received: list[bytes] = []
        transports: list[asyncio.Transport] = []

        class Slow(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                assert isinstance(transport, asyncio.Transport)
                transports.append(transport)
                transport.pause_reading()

            def data_received(self, data: bytes) -> None:
                received.append(data)

        server = await aio.create_server(
            Slow,
            "127.0.0.1",
            0,
            config=server_config(initial_max_stream_data=32_768, max_stream_window=32_768),
        )
        port = server.local_address[1]
        config = client_config(stream_send_buffer_bytes=16_384)
        async with aio.connect("127.0.0.1", port, config=config) as conn:
            _reader, writer = await conn.open_stream()
            writer.write(b"x" * 200_000)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(writer.drain(), 0.3)
            # flow control stopped the sender: the server holds at most its window
            assert sum(map(len, received)) <= 32_768
            transports[0].resume_reading()
            await asyncio.wait_for(writer.drain(), 5)
            writer.write_eof()
            while sum(map(len, received)) < 200_000:
                await asyncio.sleep(0.01)
        await server.shutdown()

    run(main)


def test_drain_backpressure_with_slow_reader() -> None:
    total = 2_000_000
    chunk = 50_000

    async def main() -> None:
        got = bytearray()

        async def slow(reader: aio.StreamReader, writer: aio.StreamWriter) -> None:
            while True:
                data = await reader.read(8192)
                if not data:
                    break
                got.extend(data)
                await asyncio.sleep(0.0005)
            writer.write(hashlib.sha256(got).digest())
            writer.close()

        server = await aio.serve(
            "127.0.0.1",
            0,
            slow,
            config=server_config(initial_max_stream_data=65_536, max_stream_window=65_536),
            limit=4096,
        )
        port = server.local_address[1]
        config = client_config(stream_send_buffer_bytes=32_768)
        payload = random.Random(4).randbytes(total)
        async with aio.connect("127.0.0.1", port, config=config) as conn:
            reader, writer = await conn.open_stream()
            waits = 0
            for start in range(0, total, chunk):
                writer.write(payload[start : start + chunk])
                before = time.monotonic()
                pending = writer.get_write_buffer_size()
                await writer.drain()
                assert writer.get_write_buffer_size() == 0
                if pending and time.monotonic() - before > 0.001:
                    waits += 1
            writer.write_eof()
            assert await reader.readexactly(32) == hashlib.sha256(payload).digest()
            assert waits >= total // chunk // 2  # drain really waited, most times
        assert bytes(got) == payload
        await server.shutdown()

    run(main, 20)


def test_cancelled_read_and_drain_lose_nothing() -> None:
    async def main() -> None:
        release = asyncio.Event()
        received = bytearray()

        async def gated(reader: aio.StreamReader, writer: aio.StreamWriter) -> None:
            writer.write(b"first")
            await writer.drain()
            await release.wait()
            async for line in reader:
                received.extend(line)
            writer.write(b"second\n")
            writer.close()

        server = await aio.serve(
            "127.0.0.1",
            0,
            gated,
            config=server_config(initial_max_stream_data=16_384, max_stream_window=16_384),
            limit=1024,
        )
        port = server.local_address[1]
        config = client_config(stream_send_buffer_bytes=16_384)
        async with aio.connect("127.0.0.1", port, config=config) as conn:
            reader, writer = await conn.open_stream()
            writer.write(b"hello\n")
            await writer.drain()
            assert await reader.readexactly(5) == b"first"
            # a read that is cancelled while waiting
            task = asyncio.ensure_future(reader.readline())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # a drain that is cancelled while the peer does not read
            lines = b"".join(b"line %06d\n" % i for i in range(20_000))
            writer.write(lines)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(writer.drain(), 0.2)
            assert not writer.is_closing()
            release.set()
            writer.write(b"tail\n")  # the writer is still usable
            await writer.drain()
            writer.write_eof()
            # the cancelled readline lost nothing
            assert await reader.readline() == b"second\n"
            assert await reader.read() == b""
        assert bytes(received) == b"hello\n" + lines + b"tail\n"
        await server.shutdown()

    run(main)


def test_unreliable_datagrams() -> None:
    async def main() -> None:
        async def echo_datagrams(conn: aio.AsyncConnection) -> None:
            while True:
                try:
                    data = await conn.receive_datagram()
                except ConnectionError:
                    return
                conn.send_datagram(b"re:" + data)

        server = await aio.serve(
            "127.0.0.1", 0, connection_handler=echo_datagrams, config=server_config()
        )
        async with aio.connect("127.0.0.1", server.local_address[1], config=client_config()) as c:
            assert c.max_datagram_size >= 1000
            sent = {b"dgram %d" % i for i in range(20)}
            for data in sorted(sent):
                c.send_datagram(data)
                await asyncio.sleep(0.001)
            got = set()
            while len(got) < len(sent):
                got.add(await asyncio.wait_for(c.receive_datagram(), 2))
            assert got == {b"re:" + d for d in sent}
        await server.shutdown()

    run(main)


def test_thousand_concurrent_clients() -> None:
    clients = 1000

    async def main() -> None:
        server = await aio.serve("127.0.0.1", 0, upper_echo, config=server_config())
        port = server.local_address[1]
        config = client_config()
        handshakes = asyncio.Semaphore(250)  # bound the burst of INITIALs
        all_answered = asyncio.Event()
        answered = 0
        peak = 0

        async def one(i: int) -> bytes:
            nonlocal answered, peak
            async with handshakes:
                conn = await aio.connect("127.0.0.1", port, config=config)
            async with conn:
                reader, writer = await conn.open_stream()
                writer.write(b"client %d" % i)
                writer.write_eof()
                answer = await reader.read()
                answered += 1
                peak = max(peak, len(server.connections))
                if answered == clients:
                    all_answered.set()
                await all_answered.wait()  # every connection is open at once
                return answer

        answers = await asyncio.gather(*(one(i) for i in range(clients)))
        assert answers == [b"CLIENT %d" % i for i in range(clients)]
        assert peak == clients  # they really were concurrent
        await server.shutdown()

    # A hang guard, not a speed check: 1,000 Noise handshakes take ~2 s on a quiet
    # machine but once took over 30 s on a 2-core machine shared with other jobs.
    run(main, 90)


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
def test_ipv6_loopback() -> None:
    async def main() -> None:
        server = await aio.serve("::1", 0, upper_echo, config=server_config())
        host, port = server.local_address[:2]
        assert host == "::1"
        reader, writer = await aio.open_connection("::1", port, config=client_config())
        assert writer.get_extra_info("peername")[0] == "::1"
        writer.write(b"over six")
        writer.write_eof()
        assert await reader.read() == b"OVER SIX"
        writer.close()
        await writer.wait_closed()
        await server.shutdown()

    run(main)


def test_graceful_shutdown_drains_streams() -> None:
    size = 3_000_000

    async def main() -> None:
        started = asyncio.Event()
        payload = random.Random(5).randbytes(size)

        async def producer(reader: aio.StreamReader, writer: aio.StreamWriter) -> None:
            await reader.readline()
            started.set()
            for start in range(0, size, 100_000):
                writer.write(payload[start : start + 100_000])
                await writer.drain()
            writer.close()

        server = await aio.serve("127.0.0.1", 0, producer, config=server_config())
        port = server.local_address[1]
        conn = await aio.connect("127.0.0.1", port, config=client_config())
        reader, writer = await conn.open_stream()
        writer.write(b"go\n")
        await started.wait()
        shutdown = asyncio.ensure_future(server.shutdown(timeout=10))
        await asyncio.sleep(0)
        assert not server.is_serving()
        # no new connections while shutting down
        late = client_config(handshake_timeout_s=0.3)
        with pytest.raises((aio.HandshakeFailedError, ConnectionRefusedError)):
            await aio.connect("127.0.0.1", port, config=late)
        data = await reader.read()
        assert len(data) == size and data == payload
        await shutdown
        await conn.wait_closed()
        assert conn.is_closed

    run(main, 20)


def test_connection_refused_is_clear() -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(ConnectionRefusedError) as info:
            await aio.connect("127.0.0.1", port, config=client_config())
        assert isinstance(info.value, PortUnreachableError)
        assert time.monotonic() - start < 2
        with pytest.raises(ConnectionRefusedError):
            await aio.open_connection("127.0.0.1", port, config=client_config())

    run(main)


def test_wrong_server_key_fails_handshake() -> None:
    async def main() -> None:
        server = await aio.serve("127.0.0.1", 0, upper_echo, config=server_config())
        wrong = Config(server_public_key=generate_keypair().public, handshake_timeout_s=2.0)
        start = time.monotonic()
        with pytest.raises(aio.HandshakeFailedError) as info:
            await aio.connect("127.0.0.1", server.local_address[1], config=wrong)
        assert isinstance(info.value, ConnectionError)
        assert "handshake" in str(info.value)
        assert time.monotonic() - start < 3
        await server.shutdown()

    run(main)


def test_security_none() -> None:
    async def main() -> None:
        config = Config(security="none")
        server = await aio.start_server(upper_echo, "127.0.0.1", 0, config=config)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("127.0.0.1", port, config=config)
        writer.write(b"plain" * 10_000)
        writer.write_eof()
        assert await reader.read() == b"PLAIN" * 10_000
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main)


def test_ecn_validates_over_loopback() -> None:
    """The drivers mark ECT(0) and pass received codepoints in: loopback keeps
    the bits, so validation succeeds (and fails when the server does not echo)."""

    async def main(server_ecn: bool) -> str:
        server = await aio.start_server(
            upper_echo, "127.0.0.1", 0, config=Config(security="none", ecn=server_ecn)
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("127.0.0.1", port,
                                                   config=Config(security="none"))
        writer.write(b"ecn" * 50_000)
        writer.write_eof()
        assert await reader.read() == b"ECN" * 50_000
        state = str(writer._s.conn.core.ecn_state)  # type: ignore[attr-defined]
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return state

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    except OSError:  # pragma: no cover - depends on the kernel
        pytest.skip("IP_RECVTOS not available")
    finally:
        probe.close()
    states: list[str] = []

    async def both() -> None:
        states.append(await main(True))
        states.append(await main(False))

    run(both)
    assert states == ["capable", "failed"]


def test_reader_limits_and_errors() -> None:
    async def main() -> None:
        async def talker(reader: aio.StreamReader, writer: aio.StreamWriter) -> None:
            writer.write(b"a" * 300 + b"\nb" * 100 + b"\nshort")
            writer.write_eof()
            await reader.read()

        server = await aio.serve("127.0.0.1", 0, talker, config=server_config())
        port = server.local_address[1]
        async with aio.connect("127.0.0.1", port, config=client_config(), limit=64) as c:
            reader, writer = await c.open_stream()
            writer.write(b"?")
            writer.write_eof()
            with pytest.raises(asyncio.LimitOverrunError):  # nothing is consumed
                await reader.readuntil(b"#")
            with pytest.raises(ValueError):  # a 300-byte line over a 64-byte limit
                await reader.readline()
            rest = await reader.read()
            assert rest.endswith(b"b\nb\nshort") and len(rest) < 600
            with pytest.raises(asyncio.IncompleteReadError) as info:
                await reader.readuntil(b"#")
            assert info.value.partial == b""
            assert reader.at_eof()
            with pytest.raises(RuntimeError):
                writer.write(b"after eof")
        await server.shutdown()

    run(main)


def test_examples_run() -> None:
    for args in (
        [sys.executable, str(ROOT / "examples" / "asyncio_echo.py"), "--self-test"],
        [sys.executable, str(ROOT / "examples" / "broker" / "demo.py")],
    ):
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ok" in done.stdout


def test_server_speaks_first_over_open_connection() -> None:
    """A banner protocol (SMTP/FTP style): the client connects and waits; the
    server's handler runs for the announced stream and greets first."""

    async def greet(reader: aio.StreamReader, writer: aio.StreamWriter) -> None:
        writer.write(b"220 ready\n")
        await writer.drain()
        name = await reader.readline()
        writer.write(b"250 hello " + name)
        writer.write_eof()
        await writer.drain()

    async def main() -> None:
        server = await aio.start_server(greet, "127.0.0.1", 0, config=server_config())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("127.0.0.1", port, config=client_config())
        assert await reader.readline() == b"220 ready\n"
        writer.write(b"bob\n")
        await writer.drain()
        assert await reader.read() == b"250 hello bob\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main, 10)


def test_forgotten_peer_streams_are_tracked_in_any_finishing_order() -> None:
    """The floor-and-set record of finished peer streams against a plain set,
    with streams finishing in random order (late events for them are dropped)."""
    from transport.aio._conn import AsyncConnection

    rng = random.Random(9)
    driver: Any = types.SimpleNamespace(loop=None)
    core: Any = types.SimpleNamespace(is_client=False)  # peer streams: client-initiated
    conn = AsyncConnection(driver, core)
    ids = [4 * n for n in range(60)] + [4 * n + 2 for n in range(60)]  # bidi, uni
    for sid in ids:
        conn.streams[sid] = types.SimpleNamespace(stream_id=sid)
    finished: set[int] = set()
    order = ids[:]
    rng.shuffle(order)
    order.sort(key=lambda sid: sid // 4 + rng.randrange(8))  # mostly in order, some not
    for sid in order:
        conn.forget_stream(conn.streams[sid])
        finished.add(sid)
        assert all(conn.peer_stream_forgotten(s) == (s in finished) for s in ids)
    assert conn._peer_done is None  # every gap closed: only the floors remain
