"""The UDP impairment relay on 127.0.0.1: delay, loss and rate match its configuration."""

from __future__ import annotations

import socket
import time

import pytest

from transport.relay import Relay
from transport.sim.loss import Bernoulli
from transport.sim.scenarios import PathSpec


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return sock


def test_relay_round_trip_delay_matches_configuration() -> None:
    server = _udp()
    with Relay(PathSpec(rate_bps=None, rtt_s=0.040), target_port=server.getsockname()[1]) as relay:
        client = _udp()
        client.settimeout(2.0)
        server.settimeout(2.0)
        rtts = []
        for i in range(20):
            sent = time.monotonic()
            client.sendto(b"probe%d" % i, ("127.0.0.1", relay.port))
            data, addr = server.recvfrom(2048)
            server.sendto(data, addr)
            echoed, _ = client.recvfrom(2048)
            assert echoed == data
            rtts.append(time.monotonic() - sent)
        client.close()
    server.close()
    rtts.sort()
    assert 0.040 <= rtts[len(rtts) // 2] < 0.048


def test_relay_loss_rate_matches_configuration() -> None:
    server = _udp()
    path = PathSpec(rate_bps=None, rtt_s=0.0, loss=Bernoulli(0.10))
    with Relay(path, target_port=server.getsockname()[1], seed=3) as relay:
        client = _udp()
        for i in range(3000):
            client.sendto(i.to_bytes(4, "big"), ("127.0.0.1", relay.port))
            if i % 200 == 0:
                time.sleep(0.002)
        time.sleep(0.2)
        fwd, _ = relay.stats()
        client.close()
    server.setblocking(False)
    got = 0
    while True:
        try:
            server.recvfrom(2048)
            got += 1
        except BlockingIOError:
            break
    server.close()
    assert fwd.packets_offered == 3000
    measured = 1 - got / 3000
    assert measured == pytest.approx(fwd.loss_rate, abs=0.002)
    assert 0.085 <= measured <= 0.115  # 3000 samples: ±5 sigma is ±0.027, keep ±0.015


def test_relay_rate_matches_configuration() -> None:
    server = _udp()
    rate = 10e6
    path = PathSpec(rate_bps=rate, rtt_s=0.010, queue_bytes=2_000_000)
    with Relay(path, target_port=server.getsockname()[1]) as relay:
        client = _udp()
        server.settimeout(2.0)
        payload = bytes(1172)  # 1200 wire bytes with IPv4 + UDP
        count = 1000
        for _ in range(count):
            client.sendto(payload, ("127.0.0.1", relay.port))
        times = []
        for _ in range(count):
            server.recvfrom(2048)
            times.append(time.monotonic())
        client.close()
    server.close()
    measured = (count - 1) * 1200 * 8 / (times[-1] - times[0])
    assert measured == pytest.approx(rate, rel=0.05)


def test_cli_relay_runs_for_a_duration(capsys: pytest.CaptureFixture[str]) -> None:
    from transport.cli import main

    code = main(["relay", "--listen", "0", "--target", "9", "--delay", "5ms", "--duration", "0.2s"])
    assert code == 0
    assert '"forward"' in capsys.readouterr().out
