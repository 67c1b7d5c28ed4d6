"""Differential tests: the native (C) codec against the pure-Python reference.

Every input is run through both backends; they must return equal results or
raise the same exception class. Inputs are valid frame lists (from
``wire_strategies``), random bytes, and valid encodings with random byte flips,
truncations and insertions. Also CRC32C known answers and alignment/length
sweeps, and the ``TRANSPORT_BACKEND`` switch (in subprocesses).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wire_strategies import encoded_size_bound, frame_lists

from transport.errors import ConfigurationError, FieldValueError
from transport.wire import codec_native as native
from transport.wire import codec_pure as pure
from transport.wire.constants import VERSION_1, FrameType, PacketType

ROOT = Path(__file__).resolve().parent.parent


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # compared by class between the backends
        return ("error", type(exc))


def _frames_outcome(codec: Any, buf: bytes, start: int = 0, end: int = -1) -> tuple[str, Any]:
    """decode_frames plus a FrameDecoder pass with small capacities."""
    listed = _outcome(codec.decode_frames, buf, start, end)
    decoder = codec.FrameDecoder(4, 8)
    try:
        count = decoder.decode(buf, start, end)
    except Exception as exc:
        return listed, ("error", type(exc))  # type: ignore[return-value]
    records = [
        (r.type, r.a, r.b, r.c, r.d, r.data_off, r.data_len) for r in decoder.frames[:count]
    ]
    used = max((r.c + 2 * r.d + (3 if r.type == FrameType.ACK_ECN else 0)
                for r in decoder.frames[:count]
                if r.type in (FrameType.ACK, FrameType.ACK_ECN, FrameType.FEC_RECOVERED)),
               default=0)
    return listed, ("ok", records, list(decoder.ranges[0:used]))  # type: ignore[return-value]


def _encode(codec: Any, specs: list[Any], size: int) -> tuple[str, Any]:
    out = bytearray(size)
    result = _outcome(codec.encode_frames, specs, out, 0, -1)
    return result if result[0] == "error" else ("ok", result[1], bytes(out[: result[1]]))


# ------------------------------------------------------------------ frames ---
@given(frame_lists())
def test_encode_gives_identical_bytes(specs: list[Any]) -> None:
    size = encoded_size_bound(specs)
    expected = _encode(pure, specs, size)
    assert _encode(native, specs, size) == expected
    assert expected[0] == "ok"
    # and too-small buffers fail the same way
    for short in (0, 1, expected[1] // 2, expected[1] - 1):
        if short >= 0:
            assert _encode(native, specs, short) == _encode(pure, specs, short)


@given(frame_lists(), st.data())
def test_decode_of_mutated_packets_matches(specs: list[Any], data: st.DataObject) -> None:
    out = bytearray(encoded_size_bound(specs))
    wire = bytes(out[: pure.encode_frames(specs, out, 0, -1)])
    assert _frames_outcome(native, wire) == _frames_outcome(pure, wire)
    mutated = bytearray(wire)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and mutated:
            i = data.draw(st.integers(0, len(mutated) - 1))
            mutated[i] = data.draw(st.integers(0, 255))
        elif action == "cut" and mutated:
            del mutated[data.draw(st.integers(0, len(mutated) - 1)):]
        else:
            i = data.draw(st.integers(0, len(mutated)))
            mutated[i:i] = data.draw(st.binary(min_size=1, max_size=3))
    m = bytes(mutated)
    assert _frames_outcome(native, m) == _frames_outcome(pure, m)
    start = data.draw(st.integers(0, len(m)))
    end = data.draw(st.integers(start, len(m)))
    assert _frames_outcome(native, m, start, end) == _frames_outcome(pure, m, start, end)
    assert _frames_outcome(native, bytearray(m)) == _frames_outcome(pure, bytearray(m))


@given(st.binary(max_size=64))
def test_decode_of_random_bytes_matches(buf: bytes) -> None:
    assert _frames_outcome(native, buf) == _frames_outcome(pure, buf)
    assert _frames_outcome(native, memoryview(buf)) == _frames_outcome(pure, memoryview(buf))


_INT = st.one_of(st.integers(0, 70), st.integers(0, 1 << 62), st.integers(-3, (1 << 64) + 5))


@given(st.lists(st.tuples(
    st.one_of(st.integers(0, 0x40), st.sampled_from(list(FrameType))),
    _INT, _INT, _INT, _INT,
    st.one_of(st.none(), st.binary(max_size=30), st.lists(_INT, max_size=9).map(tuple)),
), max_size=4), st.integers(0, 80))
def test_encode_of_arbitrary_specs_matches(specs: list[Any], size: int) -> None:
    assert _encode(native, specs, size) == _encode(pure, specs, size)


def test_decoder_capacity_errors_match() -> None:
    pings = bytes([FrameType.PING]) * 5
    for codec in (native, pure):
        with pytest.raises(FieldValueError):
            codec.FrameDecoder(4, 8).decode(pings)
        with pytest.raises(ConfigurationError):
            codec.FrameDecoder(0, 8)


# ----------------------------------------------------------------- headers ---
def _header(codec: Any, buf: bytes, cid: int) -> tuple[str, Any]:
    result = _outcome(codec.decode_header, buf, cid)
    return result if result[0] == "error" else ("ok", result[1]._fields())


@st.composite
def long_headers(draw: st.DrawFn) -> bytes:
    out = bytearray(200)
    ptype = draw(st.sampled_from([PacketType.INITIAL, PacketType.HANDSHAKE, PacketType.RETRY]))
    pn_length = draw(st.integers(1, 4))
    end = pure.encode_long_header(
        out, 0, ptype, VERSION_1, draw(st.binary(max_size=20)), draw(st.binary(max_size=20)),
        draw(st.binary(max_size=10)) if ptype != PacketType.HANDSHAKE else b"",
        draw(st.integers(0, 1 << 32)), pn_length, pn_length + 4 + draw(st.integers(0, 20)))
    return bytes(out[:end]) + draw(st.binary(max_size=40))


@given(st.one_of(long_headers(), st.binary(max_size=48)), st.data())
def test_decode_header_matches(buf: bytes, data: st.DataObject) -> None:
    cid = data.draw(st.sampled_from([0, 8, 20, 21, -1]))
    assert _header(native, buf, cid) == _header(pure, buf, cid)
    if buf:
        i = data.draw(st.integers(0, len(buf) - 1))
        flipped = buf[:i] + bytes([data.draw(st.integers(0, 255))]) + buf[i + 1:]
        assert _header(native, flipped, cid) == _header(pure, flipped, cid)
        cut = buf[: data.draw(st.integers(0, len(buf)))]
        assert _header(native, cut, cid) == _header(pure, cut, cid)


@given(st.integers(-1, 5), st.integers(-1, 1 << 33), st.binary(max_size=22),
       st.binary(max_size=22), st.binary(max_size=6), st.integers(-1, 1 << 63),
       st.integers(0, 5), st.integers(-1, 1 << 63), st.integers(0, 90))
def test_encode_headers_match(ptype: int, version: int, dcid: bytes, scid: bytes,
                              token: bytes, pn: int, pn_length: int, length: int,
                              size: int) -> None:
    def run(codec: Any) -> tuple[Any, ...]:
        out_long = bytearray(size)
        out_short = bytearray(size)
        r1 = _outcome(codec.encode_long_header, out_long, 0, ptype, version, dcid, scid,
                      token, pn, pn_length, length)
        r2 = _outcome(codec.encode_short_header, out_short, 1, dcid, pn, pn_length,
                      version & 1, ptype & 1)
        return (r1, bytes(out_long) if r1[0] == "ok" else None,
                r2, bytes(out_short) if r2[0] == "ok" else None)

    assert run(native) == run(pure)


# -------------------------------------------------------------------- CRC ---
def test_crc32c_known_answers() -> None:
    vectors = {
        b"": 0,
        b"123456789": 0xE3069283,
        bytes(32): 0x8A9136AA,  # RFC 3720 B.4
        b"\xff" * 32: 0x62A8AB43,
        bytes(range(32)): 0x46DD794E,
        bytes(range(31, -1, -1)): 0x113FDB5C,
    }
    for data, expected in vectors.items():
        assert native.crc32c(data) == expected
        assert pure.crc32c(data) == expected
    assert native.crc32c(b"56789", native.crc32c(b"1234")) == 0xE3069283


@given(st.binary(max_size=5000), st.integers(0, 15), st.integers(0, 0xFFFFFFFF))
def test_crc32c_matches_on_random_data(data: bytes, shift: int, start: int) -> None:
    backing = bytearray(shift) + data
    view = memoryview(backing)[shift:]
    assert native.crc32c(view, start) == pure.crc32c(data, start)


def test_crc32c_long_buffers_and_both_paths() -> None:
    import random

    rng = random.Random(7)
    for size in (0, 1, 7, 8, 767, 768, 769, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 777, 65536):
        data = rng.randbytes(size)
        expected = pure.crc32c(data)
        assert native.crc32c(data) == expected, size
        assert native.lib.tp_crc32c_sw(0, data, len(data)) == expected, size
    assert native.crc32c_path() in ("sse4.2-3way", "slice-by-8")


# ---------------------------------------------------------- backend switch ---
def _backend(value: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TRANSPORT_BACKEND=value, PYTHONPATH=str(ROOT))
    code = "import transport.wire as w; print(w.backend, w.codec.__name__)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("value", ["pure", "native"])
def test_backend_follows_environment(value: str) -> None:
    result = _backend(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [value, f"transport.wire.codec_{value}"]


def test_bogus_backend_fails_clearly() -> None:
    result = _backend("bogus")
    assert result.returncode != 0
    assert "BackendUnavailableError" in result.stderr
    assert "TRANSPORT_BACKEND" in result.stderr
