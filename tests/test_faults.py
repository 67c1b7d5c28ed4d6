"""Faults in virtual time: NAT rebinding mid-transfer, a long partition, and a
peer that vanishes. The transfer must stay byte-exact or end in bounded time."""

from __future__ import annotations

import hashlib
import random

from transport import Config, Connection, Endpoint
from transport.events import ConnectionTerminated, Event, HandshakeCompleted, StreamReadable
from transport.sim import Link, Path, Simulator
from transport.sim.transfer import AppNode, provision_keys, run_transfer
from transport.wire.constants import ErrorCode

CLIENT = ("10.0.0.1", 50000)
CLIENT_REBOUND = ("10.0.0.1", 61000)  # same host, new port: a NAT rebinding
CLIENT_MOVED = ("10.9.9.9", 40000)  # a different host: a migration
SERVER = ("10.0.0.2", 4433)
SIZE = 3_000_000


def _run_with_address_change(new_addr: tuple[str, int], at_s: float) -> tuple[bool, Connection]:
    sim = Simulator(seed=3)
    ccfg, scfg = provision_keys(
        Config(rng=sim.rng("c")), Config(rng=sim.rng("s")), sim.rng("keys")
    )
    client_ep, server_ep = Endpoint(ccfg), Endpoint(scfg, is_server=True)
    payload = random.Random(5).randbytes(SIZE)
    got = bytearray()
    state: dict[str, object] = {"sent": 0, "done": False}
    server_conns: list[Connection] = []

    def client_event(conn: Connection, event: Event, now: float) -> None:
        if isinstance(event, HandshakeCompleted):
            state["sid"] = conn.open_stream()
        sid = state.get("sid")
        if sid is None:
            return
        sent = int(state["sent"])  # type: ignore[call-overload]
        while sent < SIZE:
            n = conn.send_stream_data(sid, payload[sent : sent + 65536], sent + 65536 >= SIZE)  # type: ignore[arg-type]
            sent += n
            if n == 0:
                break
        state["sent"] = sent

    def server_event(conn: Connection, event: Event, now: float) -> None:
        if conn not in server_conns:
            server_conns.append(conn)
        if isinstance(event, StreamReadable):
            data, fin = conn.recv_stream_data(event.stream_id)
            got.extend(data)
            state["done"] = fin

    node = AppNode(client_ep, client_event)
    sim.attach(CLIENT, node)
    sim.attach(SERVER, AppNode(server_ep, server_event))
    forward, backward = Link(rate_bps=20e6, delay_s=0.02), Link(rate_bps=20e6, delay_s=0.02)
    sim.connect(CLIENT, SERVER, Path(forward, backward))
    client_ep.connect(SERVER, 0.0)

    def rebind(now: float) -> None:
        # the NAT maps the client to a new address: same links, new source
        sim.detach(CLIENT)
        sim.attach(new_addr, node)
        sim.add_route(new_addr, SERVER, forward)
        sim.add_route(SERVER, new_addr, backward)

    sim.schedule(at_s, rebind, touches=())
    sim.run(until_s=60.0, stop_when=lambda: bool(state["done"]))
    intact = hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    return bool(state["done"]) and intact, server_conns[0]


def test_nat_rebinding_mid_transfer_migrates_without_losing_data() -> None:
    ok, server = _run_with_address_change(CLIENT_REBOUND, at_s=0.4)
    assert ok, "the transfer did not complete byte-exact after the rebinding"
    assert server.peer_addr == CLIENT_REBOUND
    assert server.get_stats().migrations == 1


def test_migration_to_a_new_host_restarts_congestion_state_and_completes() -> None:
    ok, server = _run_with_address_change(CLIENT_MOVED, at_s=0.4)
    assert ok
    assert server.peer_addr == CLIENT_MOVED and server.get_stats().migrations == 1


def test_thirty_second_partition_then_heal_resumes_within_the_idle_timeout() -> None:
    path = Path.symmetric(20e6, 0.040)
    partition = lambda data, now: 1.0 <= now < 31.0  # noqa: E731
    path.forward.set_drop_filter(partition)
    path.backward.set_drop_filter(partition)

    def config(rng: random.Random) -> Config:
        return Config(rng=rng, idle_timeout_s=60.0)

    result = run_transfer(8_000_000, path, seed=7, config=config, time_limit_s=120.0)
    assert result.completed and result.intact
    assert result.duration_s > 30.0  # it really waited out the partition
    codes = {code for _side, code, _reason, _peer in result.terminations}
    assert codes == {ErrorCode.NO_ERROR}


def test_a_vanished_peer_is_detected_within_the_idle_timeout() -> None:
    path = Path.symmetric(20e6, 0.040)
    gone = lambda data, now: now >= 0.5  # noqa: E731  (the server's host died)
    path.backward.set_drop_filter(gone)
    path.forward.set_drop_filter(gone)

    def config(rng: random.Random) -> Config:
        return Config(rng=rng, idle_timeout_s=5.0)

    result = run_transfer(50_000_000, path, seed=8, config=config, time_limit_s=30.0)
    assert not result.completed
    client_end = [t for t in result.terminations if t[0] == "client"]
    assert client_end and client_end[0][1] == ErrorCode.IDLE_TIMEOUT


def test_terminated_event_class_is_public() -> None:
    assert issubclass(ConnectionTerminated, Event)
