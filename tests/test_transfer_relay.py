"""Transfers through the loopback impairment relay (transport.relay.Relay).

The relay runs in a thread of the test process; the path has 5 % loss each way
and uniform jitter that reorders packets. Sizes stay small because every
datagram crosses Python three times in one process (relay, client, server):
5 MB takes about 2 s here. Everything is seeded and byte-exact (SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import subprocess
import sys
import threading
from pathlib import Path

from transport import threaded
from transport.config import Config
from transport.relay import Relay
from transport.sim.jitter import UniformJitter
from transport.sim.loss import Bernoulli
from transport.sim.scenarios import PathSpec

PY = [sys.executable, "-m", "transport"]


def _lossy_reordering_path(loss: float) -> PathSpec:
    return PathSpec(rate_bps=None, rtt_s=0.004, loss=Bernoulli(loss),
                    jitter=UniformJitter(0.001), reorder=True)


def test_threaded_transfer_with_5_percent_loss_and_reordering() -> None:
    data = random.Random(5).randbytes(5_000_000)
    config = Config(security="none")
    result: dict[str, object] = {}
    with threaded.listen(("127.0.0.1", 0), config=config) as listener:
        relay = Relay(_lossy_reordering_path(0.05), target_port=listener.local_address[1],
                      seed=1)
        with relay:
            def sink() -> None:
                stream, _ = listener.accept(timeout=10)
                digest = hashlib.sha256()
                count = 0
                with stream:
                    while chunk := stream.recv(1 << 20):
                        digest.update(chunk)
                        count += len(chunk)
                    result["total"], result["sha"] = count, digest.hexdigest()
                    stream.sendall(digest.hexdigest().encode())

            server = threading.Thread(target=sink, daemon=True)
            server.start()
            with threaded.connect(("127.0.0.1", relay.port), config=config,
                                  timeout=10) as stream:
                stream.settimeout(60)
                stream.sendall(data)
                stream.shutdown(socket.SHUT_WR)
                reply = stream.makefile("rb").read()
                stats = stream.connection.stats()
            server.join(30)
            forward, backward = relay.stats()
    assert result["total"] == len(data)
    assert reply.decode() == result["sha"] == hashlib.sha256(data).hexdigest()
    # the path really was lossy in both directions, and the sender repaired it
    assert forward.packets_dropped_loss > 0.03 * forward.packets_offered
    assert backward.packets_dropped_loss > 0
    assert stats.packets_retransmitted >= forward.packets_dropped_loss // 2


def test_send_and_recv_commands_through_the_relay(tmp_path: Path) -> None:
    source = tmp_path / "payload.bin"
    source.write_bytes(random.Random(9).randbytes(3_000_000))
    out_dir = tmp_path / "out"
    receiver = subprocess.Popen(
        [*PY, "recv", "--host", "127.0.0.1", "--port", "0", "--out", str(out_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline().strip().rsplit(":", 1)[1])
        key = receiver.stdout.readline().split(": ", 1)[1].strip()
        with Relay(_lossy_reordering_path(0.05), target_port=port, seed=2) as relay:
            sent = subprocess.run(
                [*PY, "send", str(source), f"127.0.0.1:{relay.port}", "--server-key", key],
                capture_output=True, text=True, timeout=60,
            )
            forward, _ = relay.stats()
        assert sent.returncode == 0, sent.stderr
        verdict = json.loads(sent.stdout)
        assert verdict["ok"]
        assert verdict["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert receiver.wait(timeout=20) == 0
        assert (out_dir / "payload.bin").read_bytes() == source.read_bytes()
        assert forward.packets_dropped_loss > 0
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
