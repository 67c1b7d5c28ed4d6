"""Property tests: exact delivery under any impairment; hostile input never raises.

* For any seed and impairment in a broad range -- Bernoulli loss 0-30 %,
  Gilbert-Elliott bursts, jitter with reordering, duplication, corruption --
  every byte of every stream arrives exactly once and in order (SHA-256 per
  stream, via :func:`transport.sim.transfer.run_transfer`), and both sides end
  cleanly: no error code other than NO_ERROR, except that the server may end
  by IDLE_TIMEOUT when every copy of the client's CONNECTION_CLOSE was lost
  (RFC 9000 §10.2: a closing endpoint does not retransmit it on its own).
* Random bytes, and real packets mutated and re-sealed with a valid CRC32C (so
  the mutation reaches frame parsing), fed to ``receive_datagram`` of a
  connection or an endpoint never raise.

Examples are derandomized and bounded so the file runs in well under a minute.
"""

from __future__ import annotations

import random

from helpers import Pair, make_config, reseal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transport import Config, Endpoint
from transport.sim import Bernoulli, GilbertElliott, LossModel, Path, UniformJitter
from transport.sim.transfer import run_transfer
from transport.wire.constants import ErrorCode

SIM_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
FUZZ_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)


def _lossy_config(rng: random.Random) -> Config:
    # Generous limits. The Gilbert-Elliott chain moves once per *packet*, so
    # while a sender backs off (few packets) a bad state can last tens of
    # seconds of virtual time; an idle timeout then ends the connection,
    # correctly, and the property would not be about delivery any more.
    return Config(rng=rng, handshake_timeout_s=300.0, idle_timeout_s=300.0)


@st.composite
def impairments(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.sampled_from(["bernoulli", "gilbert", "none"]))
    loss: LossModel | None = None
    # Hypothesis leans towards the low end of a range; sampled anchors (scaled
    # by a factor in [0.8, 1]) spread the cases over the whole range instead.
    scale = draw(st.floats(0.8, 1.0))
    if kind == "bernoulli":
        loss = Bernoulli(draw(st.sampled_from([0.01, 0.03, 0.1, 0.2, 0.3])) * scale)
    elif kind == "gilbert":
        loss = GilbertElliott.from_mean(
            draw(st.sampled_from([0.01, 0.05, 0.1, 0.2])) * scale,
            # Mean bursts of at most 3 packets: the chain moves once per packet,
            # so a backed-off sender (a packet every few seconds) would otherwise
            # sit in a bad state for minutes of virtual time.
            draw(st.sampled_from([1.5, 3.0])),
        )
    jitter_s = draw(st.sampled_from([0.0, 0.0, 0.005, 0.020]))
    return {
        "loss": loss,
        "jitter": UniformJitter(jitter_s) if jitter_s else None,
        "reorder": draw(st.booleans()) if jitter_s else False,
        "duplicate_p": draw(st.sampled_from([0.0, 0.0, 0.05, 0.2])),
        "corrupt_p": draw(st.sampled_from([0.0, 0.0, 0.01, 0.05])),
    }


@SIM_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    impairment=impairments(),
    size_bytes=st.sampled_from([2_000, 30_000, 100_000, 250_000]),  # empty streams: see below
    streams=st.integers(1, 6),
)
def test_every_byte_arrives_exactly_once_in_order(
    seed: int, impairment: dict[str, object], size_bytes: int, streams: int
) -> None:
    path = Path.symmetric(10e6, 0.030, **impairment)  # type: ignore[arg-type]
    result = run_transfer(
        size_bytes, path, seed=seed, streams=streams, config=_lossy_config, time_limit_s=3600.0
    )
    assert result.completed, f"only {result.bytes_delivered} of {size_bytes} bytes read"
    assert result.intact, "stream bytes differ from what was sent"
    assert result.bytes_delivered == size_bytes
    assert result.server is not None
    assert result.server.stream_bytes_delivered == size_bytes
    sides = {}
    for side, code, reason, by_peer in result.terminations:
        assert side not in sides, f"{side} terminated twice"
        sides[side] = (code, by_peer)
        if side == "client":
            assert (code, by_peer) == (ErrorCode.NO_ERROR, False), reason
        else:
            assert (code, by_peer) in {
                (ErrorCode.NO_ERROR, True),
                (ErrorCode.IDLE_TIMEOUT, False),
            }, reason
    assert set(sides) == {"client", "server"}


def test_transfer_with_empty_streams() -> None:
    # Fewer bytes than streams: some streams carry only a FIN.
    for size_bytes, streams in ((0, 1), (0, 2), (1, 3)):
        result = run_transfer(size_bytes, Path.symmetric(10e6, 0.030), seed=1, streams=streams)
        assert result.completed and result.intact
        assert result.bytes_delivered == size_bytes


# ----------------------------------------------------------- hostile input
def _established_pair(seed: int) -> Pair:
    pair = Pair(make_config(seed), make_config(seed + 1))
    pair.handshake()
    return pair


def _recorded_datagrams() -> list[bytes]:
    """Real datagrams of both directions: handshake, data, ACKs, resets, close."""
    pair = Pair(make_config(100), make_config(101))
    pair.handshake()
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, random.Random(1).randbytes(30_000), end_stream=True)
    uni = pair.client.open_stream(bidirectional=False)
    pair.client.send_stream_data(uni, b"u" * 2000)
    pair.client.send_datagram(b"datagram")
    pair.run_for(0.3)
    pair.client.reset_stream(uni, 9)
    pair.server.stop_sending(sid, 3)
    pair.client.ping()
    pair.run_for(0.3)
    pair.client.close(4, "end")
    pair.run_for(1.0)
    return [data for _t, _direction, data in pair.sent]


RECORDED = _recorded_datagrams()


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    original = bytearray(draw(st.sampled_from(RECORDED)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "truncate", "insert", "delete"]))
        if not original:
            break
        at = draw(st.integers(0, len(original) - 1))
        if op == "flip":
            original[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            original[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del original[at:]
        elif op == "insert":
            original[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del original[at : at + draw(st.integers(1, 16))]
    data = bytes(original)
    return reseal(data) if draw(st.booleans()) else data


def _feed_everywhere(data: bytes, seed: int) -> None:
    pair = _established_pair(seed)
    pair.inject(data, to_server=True)
    pair.inject(data, to_server=False)
    pair.run_for(0.2)  # whatever the input did, timers and replies run too
    for conn in (pair.client, pair.server):
        conn.get_stats()
    endpoint = Endpoint(make_config(seed + 2), is_server=True)
    endpoint.receive_datagram(data, ("10.0.0.9", 9), 0.0)
    endpoint.datagrams_to_send(0.0)
    endpoint.handle_timer(1.0)
    endpoint.datagrams_to_send(1.0)
    while endpoint.next_event() is not None:
        pass


@FUZZ_SETTINGS
@given(data=st.binary(max_size=1500), short_header=st.booleans())
def test_random_bytes_never_raise(data: bytes, short_header: bool) -> None:
    pair = _established_pair(7)
    if short_header and data:
        # aim at the server's connection so the bytes reach the CRC / frame stage
        data = bytes([0x40 | data[0] & 0x3F]) + pair.server.local_cid + data[1:]
        data = reseal(data)
    pair.inject(data, to_server=True)
    pair.inject(data, to_server=False)
    pair.run_for(0.1)
    endpoint = Endpoint(make_config(8), is_server=True)
    endpoint.receive_datagram(data, ("10.0.0.9", 9), 0.0)
    endpoint.datagrams_to_send(0.0)


@FUZZ_SETTINGS
@given(data=mutated_packets())
def test_mutated_real_packets_never_raise(data: bytes) -> None:
    # same seeds as the recording: the CIDs match, so mutations reach frame parsing
    _feed_everywhere(data, 100)
