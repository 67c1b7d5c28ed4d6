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


@pytest.mark.parametrize("offload", [True, False], ids=["gso-gro", "plain"])
def test_recv_groups_cut_apart_are_the_datagrams(offload: bool) -> None:
    # recv_groups hands GRO buffers over uncut, with their segment size
    with UdpSocket(gso=offload, gro=offload, ecn=True) as a, \
            UdpSocket(gso=offload, gro=offload, ecn=True) as b:
        datagrams = _batch(b.local_address, 2 * MAX_GSO_SEGMENTS + 5)
        assert a.send_batch(datagrams) == len(datagrams)
        got: list[bytes] = []
        groups = 0
        deadline = time.monotonic() + 2.0
        while len(got) < len(datagrams) and time.monotonic() < deadline:
            batch = b.recv_groups()
            assert len(b.recv_ecn) == len(batch)  # (one codepoint per entry)
            for data, segment, addr in batch:
                assert addr == a.local_address
                if segment:
                    assert len(data) > segment
                    groups += 1
                    got += [data[i : i + segment] for i in range(0, len(data), segment)]
                else:
                    got.append(data)
            if not batch:
                time.sleep(0.001)
        assert got == [d for d, _ in datagrams]
        assert groups > 0 if b.gro_supported else groups == 0


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


class _RecordingSocket:
    """Stands in for the kernel socket: records each send as (segments, gso size)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], int | None]] = []

    def sendmsg(self, buffers: list[bytes], ancdata: list, flags: int, addr: tuple) -> int:
        self.calls.append(([len(b) for b in buffers], int.from_bytes(ancdata[0][2], "little")))
        return sum(len(b) for b in buffers)

    def sendto(self, data: bytes, addr: tuple) -> int:
        self.calls.append(([len(data)], None))
        return len(data)


@pytest.mark.parametrize("sizes", [
    [1400] * 100 + [100],
    [1400] * 46 + [100],
    [1400] * 47,
    [1400] * 46 + [1399],
    [900] * 64 + [900] * 3,
    [1200] * 63 + [5],
    [60000] * 3,
    [60000, 60000, 4000],
    [1400, 1400, 1400],
])
def test_uniform_batches_group_like_the_general_loop(sizes: list[int]) -> None:
    """The bulk fast path of send_batch cuts the same GSO groups as the loop
    that handles any batch."""
    with UdpSocket(("127.0.0.1", 0)) as sock:
        if not sock.gso_supported:  # pragma: no cover - depends on the kernel
            pytest.skip("no UDP GSO")
        dest = ("127.0.0.1", 9)
        datagrams = [(bytes(n), dest) for n in sizes]
        real = sock._sock
        try:
            fast, general = _RecordingSocket(), _RecordingSocket()
            sock._sock = fast  # type: ignore[assignment]
            assert sock.send_batch(datagrams) == len(sizes)
            sock._sock = general  # type: ignore[assignment]
            assert sock._send_general(datagrams) == len(sizes)
        finally:
            sock._sock = real
        assert fast.calls == general.calls
        assert sum(len(c[0]) for c in fast.calls) == len(sizes)


def test_mixed_batches_take_the_general_loop() -> None:
    with UdpSocket(("127.0.0.1", 0)) as sock:
        if not sock.gso_supported:  # pragma: no cover - depends on the kernel
            pytest.skip("no UDP GSO")
        a, b = ("127.0.0.1", 9), ("127.0.0.1", 10)
        real = sock._sock
        try:
            rec = _RecordingSocket()
            sock._sock = rec  # type: ignore[assignment]
            # an odd size in the middle, then a second address
            sock.send_batch([(bytes(1400), a), (bytes(100), a), (bytes(1400), a)])
            sock.send_batch([(bytes(1400), a), (bytes(1400), a), (bytes(1400), b)])
        finally:
            sock._sock = real
        assert rec.calls == [([1400, 100], 1400), ([1400], None),
                             ([1400, 1400], 1400), ([1400], None)]


@pytest.mark.parametrize("sizes", [
    [1376] * 30 + [1377] * 50,  # a packet-number length grows inside the batch
    [1377] * 20 + [1376] * 3 + [1200],
    [1400] * 70 + [1300] * 2,
])
def test_blocks_of_equal_sizes_go_out_block_by_block(sizes: list[int]) -> None:
    """Each block of equal sizes is cut into GSO groups like a uniform batch,
    in order, every datagram exactly once."""
    with UdpSocket(("127.0.0.1", 0)) as sock:
        if not sock.gso_supported:  # pragma: no cover - depends on the kernel
            pytest.skip("no UDP GSO")
        dest = ("127.0.0.1", 9)
        real = sock._sock
        try:
            rec = _RecordingSocket()
            sock._sock = rec  # type: ignore[assignment]
            assert sock.send_batch([(bytes(n), dest) for n in sizes]) == len(sizes)
        finally:
            sock._sock = real
        assert [n for call in rec.calls for n in call[0]] == sizes
        for segments, gso in rec.calls:
            assert len(set(segments)) == 1 and len(segments) <= MAX_GSO_SEGMENTS
            assert gso == (segments[0] if len(segments) > 1 else None)
        assert len(rec.calls) <= 2 + len(sizes) // MAX_GSO_SEGMENTS + 2


def test_real_round_trip_of_blocks() -> None:
    with UdpSocket(("127.0.0.1", 0)) as a, UdpSocket(("127.0.0.1", 0)) as b:
        datagrams = [(bytes([i % 251]) * (1376 + (i >= 40)), b.local_address)
                     for i in range(100)]
        assert a.send_batch(datagrams) == len(datagrams)
        got = _receive(b, len(datagrams))
        assert [d for d, _ in got] == [d for d, _ in datagrams]


class _RecordingTosSocket(_RecordingSocket):
    """Also records each TOS change as a call ``([], codepoint)``."""

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.calls.append(([], value))


@pytest.mark.parametrize("codepoints", [
    [2] * 80,  # one connection's datagrams: one run
    [2] * 30 + [0] * 20 + [2] * 30,
    [2, 0, 3, 3, 2],
    [],
])
def test_send_batch_ecn_sends_each_run_as_send_batch_does(codepoints: list[int]) -> None:
    """Each run of equal codepoints goes out with one TOS change and exactly
    the GSO groups send_batch cuts for the same datagrams."""
    with UdpSocket(("127.0.0.1", 0)) as sock:
        dest = ("127.0.0.1", 9)
        triples = [(bytes(1400 if i % 7 else 1399), dest, cp) for i, cp in enumerate(codepoints)]
        real = sock._sock
        try:
            ecn, plain = _RecordingTosSocket(), _RecordingTosSocket()
            sock._sock = ecn  # type: ignore[assignment]
            assert sock.send_batch_ecn(triples) == len(triples)
            sock._sock = plain  # type: ignore[assignment]
            sock._send_tos = 0
            start = 0
            while start < len(triples):  # the runs, one send_batch each
                end = start
                while end < len(triples) and triples[end][2] == triples[start][2]:
                    end += 1
                if triples[start][2] != sock._send_tos:
                    plain.setsockopt(0, 0, triples[start][2] & 3)
                    sock._send_tos = triples[start][2]
                assert sock.send_batch([(d, a) for d, a, _ in triples[start:end]]) == end - start
                start = end
        finally:
            sock._sock = real
        assert ecn.calls == plain.calls
        assert sum(len(c[0]) for c in ecn.calls) == len(codepoints)
