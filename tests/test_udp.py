"""UdpSocket: batched send/receive with and without GSO/GRO, IPv6, ICMP errors."""

from __future__ import annotations

import socket
import time

import pytest

from transport.errors import ConfigurationError, NetworkError, PortUnreachableError
from transport.udp import MAX_GSO_SEGMENTS, UdpSocket


def _receive(sock: UdpSocket, count: int, timeout_s: float = 2.0) -> list[tuple[bytes, tuple]]:
    got: list[tuple[bytes, tuple]] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        batch = sock.recv_batch()
        if not batch:
            time.sleep(0.001)
        got.extend(batch)
    return got


def _batch(dest: tuple[str, int], n: int) -> list[tuple[bytes, tuple[str, int]]]:
    # equal sizes with a shorter last one (one GSO group per 64), then odd sizes
    out = [(bytes([i % 251]) * 1400, dest) for i in range(n)]
    out.append((b"tail", dest))
    out += [(bytes([7]) * size, dest) for size in (300, 900, 1200)]
    return out


@pytest.mark.parametrize("offload", [True, False], ids=["gso-gro", "plain"])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_batch_round_trip_keeps_order_and_boundaries(offload: bool, host: str) -> None:
    try:
        a = UdpSocket((host, 0), gso=offload, gro=offload)
    except OSError as exc:  # pragma: no cover - depends on the kernel
        pytest.skip(f"no {host} on loopback: {exc}")
    b = UdpSocket((host, 0), gso=offload, gro=offload)
    with a, b:
        if not offload:
            assert not a.gso_supported and not b.gro_supported
        datagrams = _batch(b.local_address, 2 * MAX_GSO_SEGMENTS + 5)
        sent = a.send_batch(datagrams)
        assert sent == len(datagrams)
        got = _receive(b, sent)
        assert [d for d, _ in got] == [d for d, _ in datagrams]
        assert {addr for _, addr in got} == {a.local_address}
        assert a.family == (socket.AF_INET6 if ":" in host else socket.AF_INET)


def test_recv_batch_empty_when_nothing_waits() -> None:
    with UdpSocket() as sock:
        assert sock.recv_batch() == []


def test_send_to_closed_port_raises_port_unreachable_quickly() -> None:
    dead = UdpSocket()
    address = dead.local_address
    dead.close()
    with UdpSocket() as sock:
        sock.send_batch([(b"hello", address)])
        started = time.monotonic()
        with pytest.raises(PortUnreachableError) as info:
            while time.monotonic() - started < 2.0:
                sock.recv_batch()
                time.sleep(0.001)
        assert time.monotonic() - started < 1.0
        assert info.value.address == address
        assert isinstance(info.value, ConnectionRefusedError)
        assert isinstance(info.value, NetworkError)
        assert "port unreachable" in str(info.value)
        assert sock.recv_batch() == []  # the error is reported once


def test_ecn_codepoints_are_counted() -> None:
    with UdpSocket(ecn=True) as rx, UdpSocket() as tx:
        if not rx.ecn:  # pragma: no cover - depends on the kernel
            pytest.skip("IP_RECVTOS not available")
        tx.socket.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x02)  # ECT(0)
        tx.send_batch([(b"x", rx.local_address)] * 3)
        assert len(_receive(rx, 3)) == 3
        assert rx.ecn_counts == [0, 0, 3, 0]


def test_send_batch_ecn_marks_each_run_and_recv_reports_codepoints() -> None:
    with UdpSocket(ecn=True, gro=False) as rx, UdpSocket(gso=False) as tx:
        if not rx.ecn:  # pragma: no cover - depends on the kernel
            pytest.skip("IP_RECVTOS not available")
        dst = rx.local_address
        sent = tx.send_batch_ecn([(b"a", dst, 2), (b"b", dst, 2), (b"c", dst, 0), (b"d", dst, 3)])
        assert sent == 4
        got: list[tuple[bytes, int]] = []
        deadline = time.monotonic() + 2.0
        while len(got) < 4 and time.monotonic() < deadline:
            batch = rx.recv_batch()
            got.extend(zip([d for d, _ in batch], rx.recv_ecn, strict=True))
        assert got == [(b"a", 2), (b"b", 2), (b"c", 0), (b"d", 3)]
        assert rx.ecn_counts == [1, 0, 2, 1]


def test_bad_arguments_raise_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        UdpSocket(buffer_bytes=0)
