"""A peer killed with SIGKILL: the survivor notices in bounded time and no
blocking call hangs (loopback, real processes, threaded driver)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from transport import Config
from transport.crypto.keys import generate_keypair
from transport.threaded import ConnectionLostError, connect

SERVER = textwrap.dedent(
    """
    import sys
    from transport import Config
    from transport.crypto.keys import KeyPair
    from transport.threaded import listen

    key = KeyPair(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]))
    listener = listen(("127.0.0.1", 0), config=Config(static_key=key, idle_timeout_s=2.0))
    print(listener.local_address[1], flush=True)
    stream, _peer = listener.accept(timeout=20)
    while True:                       # echo until killed
        data = stream.recv(65536)
        if not data:
            break
        stream.sendall(data)
    """
)


def test_client_detects_a_sigkilled_server_within_its_idle_timeout() -> None:
    key = generate_keypair()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, key.private.hex(), key.public.hex()],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        config = Config(server_public_key=key.public, idle_timeout_s=2.0)
        stream = connect(("127.0.0.1", port), config=config, timeout=10)
        stream.sendall(b"ping")
        assert stream.recv(4) == b"ping"
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        started = time.monotonic()
        with pytest.raises((ConnectionLostError, OSError)):
            # keep using the stream: a send may still be buffered, a read must end
            stream.settimeout(30)
            stream.sendall(b"are you there")
            stream.recv(1)
        elapsed = time.monotonic() - started
        assert elapsed < 10.0, f"took {elapsed:.1f} s to notice (idle timeout 2 s)"
        stream.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
