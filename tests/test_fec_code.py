"""Tests of the Reed-Solomon code (transport.fec) on every backend and C kernel path.

The coefficient rule is checked against an independent bit-by-bit GF(2^8)
implementation written here; the backends are checked against each other and
against exhaustive erasure patterns for small blocks.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transport.errors import ConfigurationError, FecDecodeError, FecError, LocalError
from transport.fec import ReedSolomon, gf256, xor_parity, xor_recover

try:
    from transport.fec import native
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.fail(f"transport._fec is not built: {exc}", pytrace=False)

C_PATHS = native.PATHS[: native.PATHS.index(native.best_path()) + 1]


# ------------------------------------------------------------ independent GF(2^8)
def slow_mul(a: int, b: int) -> int:
    """Shift-and-add multiplication modulo x^8+x^4+x^3+x^2+1."""
    result = 0
    while b:
        if b & 1:
            result ^= a
        b >>= 1
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
    return result


def slow_inv(a: int) -> int:
    return next(x for x in range(1, 256) if slow_mul(a, x) == 1)


def doc_coefficient(j: int, i: int) -> int:
    """C[j][i] = y_i / (j XOR y_i), y_i = 128 + i (docs/wire-format.md 11.2)."""
    y = 128 + i
    return slow_mul(y, slow_inv(j ^ y))


# ------------------------------------------------------------------ fixtures
@pytest.fixture(params=C_PATHS)
def c_path(request: pytest.FixtureRequest) -> Iterator[str]:
    previous = native.set_path(request.param)
    try:
        yield request.param
    finally:
        native.set_path(previous)


@pytest.fixture(params=["native", "numpy"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_block(k: int, s: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(k * s)


def all_symbols(rs: ReedSolomon, source: bytes) -> dict[int, bytes]:
    s = len(source) // rs.k
    repair = rs.encode(source)
    symbols = {i: source[i * s : (i + 1) * s] for i in range(rs.k)}
    symbols.update({rs.k + j: repair[j * s : (j + 1) * s] for j in range(rs.m)})
    return symbols


# ------------------------------------------------------------ the arithmetic
def test_field_tables_match_shift_and_add() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        a, b = rng.randrange(256), rng.randrange(256)
        assert gf256.mul(a, b) == slow_mul(a, b) == native.lib.fec_mul(a, b)
    for a in range(1, 256):
        assert gf256.mul(a, int(gf256.INV[a])) == 1


def test_coefficients_follow_the_documented_rule() -> None:
    for j in range(0, 128, 7):
        for i in range(0, 128, 5):
            expected = doc_coefficient(j, i)
            assert gf256.coefficient(j, i) == expected
            assert native.lib.fec_coefficient(j, i) == expected
    assert doc_coefficient(1, 0) == gf256.coefficient_matrix(1, 2)[1, 0]


def test_row_zero_is_all_ones() -> None:
    matrix = gf256.coefficient_matrix(128, 128)
    assert (matrix[0] == 1).all()
    assert (matrix[1:] != 1).any()


@pytest.mark.parametrize("k,m", [(1, 1), (5, 3), (10, 4), (64, 64)])
def test_encoding_unit_vectors_yields_the_matrix(backend: str, k: int, m: int) -> None:
    rs = ReedSolomon(k, m, backend=backend)
    for i in range(k):
        unit = bytearray(k)
        unit[i] = 1  # symbol size 1: source i = 1, all others 0
        column = rs.encode(bytes(unit))
        assert list(column) == [doc_coefficient(j, i) for j in range(m)]


def test_native_inversion_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 2, 5, 17, 64, 128):
        rows = rng.choice(128, size=n, replace=False)
        cols = rng.choice(128, size=n, replace=False)
        matrix = gf256.coefficient_matrix(128, 128)[np.ix_(rows, cols)].copy()
        expected = gf256.invert(matrix)
        assert (gf256.matmul(matrix, expected) == np.eye(n, dtype=np.uint8)).all()
        out = bytearray(n * n)
        status = native.lib.fec_invert(
            native.ffi.from_buffer(matrix), native.ffi.from_buffer(out), n
        )
        assert status == 0
        assert bytes(out) == expected.tobytes()
    singular = np.zeros((3, 3), dtype=np.uint8)
    with pytest.raises(FecError):
        gf256.invert(singular)
    out = bytearray(9)
    status = native.lib.fec_invert(native.ffi.from_buffer(singular), native.ffi.from_buffer(out), 3)
    assert status == native.lib.FEC_ERR_SINGULAR


@pytest.mark.parametrize("n", [0, 1, 15, 16, 31, 32, 33, 100, 1400])
def test_region_multiply_accumulate(c_path: str, n: int) -> None:
    rng = np.random.default_rng(n)
    for c in (0, 1, 2, 0x53, 0xFF):
        src = rng.integers(0, 256, n, dtype=np.uint8)
        dst = rng.integers(0, 256, n, dtype=np.uint8)
        expected = dst.copy()
        gf256.region_mul_acc(expected, c, src)
        out = bytearray(dst.tobytes())
        assert native.lib.fec_mul_acc(native.ffi.from_buffer(out), src.tobytes(), n, c) == 0
        assert bytes(out) == expected.tobytes()
        assert native.lib.fec_mul_region(native.ffi.from_buffer(out), src.tobytes(), n, c) == 0
        assert bytes(out) == gf256.region_mul(c, src).tobytes()


# ------------------------------------------------------------------ encoding
@pytest.mark.parametrize("k,m", [(1, 1), (3, 2), (10, 1), (10, 4), (32, 8), (64, 64), (128, 128)])
@pytest.mark.parametrize("s", [1, 15, 16, 17, 31, 32, 33, 64, 95, 1400])
def test_c_paths_and_numpy_give_identical_repair(c_path: str, k: int, m: int, s: int) -> None:
    source = make_block(k, s, seed=k * 1000 + m * 10 + s)
    expected = ReedSolomon(k, m, backend="numpy").encode(source)
    assert ReedSolomon(k, m, backend="native").encode(source) == expected
    reference = gf256.matmul(
        gf256.coefficient_matrix(k, m), np.frombuffer(source, np.uint8).reshape(k, s)
    )
    assert expected == reference.tobytes()


@pytest.mark.parametrize("k", [1, 2, 10, 64])
def test_single_repair_is_xor_parity(backend: str, k: int) -> None:
    s = 1400
    source = make_block(k, s, seed=k)
    parity = 0
    for i in range(k):
        parity ^= int.from_bytes(source[i * s : (i + 1) * s], "big")
    expected = parity.to_bytes(s, "big")
    assert ReedSolomon(k, 1, backend=backend).encode(source) == expected
    assert ReedSolomon(k, 4, backend=backend).encode(source)[:s] == expected
    assert xor_parity(source, k) == expected
    assert ReedSolomon(k, 1, backend="xor").encode(source) == expected


def test_encode_accepts_any_contiguous_buffer(backend: str) -> None:
    source = make_block(10, 100, seed=3)
    rs = ReedSolomon(10, 4, backend=backend)
    expected = rs.encode(source)
    assert rs.encode(bytearray(source)) == expected
    assert rs.encode(memoryview(source)) == expected
    assert rs.encode(np.frombuffer(source, np.uint8).reshape(10, 100)) == expected
    out = bytearray(400)
    rs.encode_into(source, out)
    assert bytes(out) == expected


# ------------------------------------------------------------------ decoding
def _check_every_pattern(rs: ReedSolomon, s: int, seed: int) -> int:
    source = make_block(rs.k, s, seed)
    symbols = all_symbols(rs, source)
    n = rs.k + rs.m
    checked = 0
    for lost in range(rs.m + 1):
        for erased in itertools.combinations(range(n), lost):
            kept = [i for i in range(n) if i not in erased]
            assert rs.decode({i: symbols[i] for i in kept}) == source, erased
            order = list(kept)
            random.Random(checked).shuffle(order)
            buffer = b"".join(symbols[i] for i in order)
            assert rs.decode(buffer, s, present=order) == source, erased
            checked += 1
    return checked


@pytest.mark.parametrize("k", range(1, 7))
@pytest.mark.parametrize("m", range(1, 4))
def test_every_erasure_pattern_decodes_numpy(k: int, m: int) -> None:
    assert _check_every_pattern(ReedSolomon(k, m, backend="numpy"), 5, seed=k * 10 + m) > 0


@pytest.mark.parametrize("k", range(1, 7))
@pytest.mark.parametrize("m", range(1, 4))
@pytest.mark.parametrize("s", [5, 37])
def test_every_erasure_pattern_decodes_native(c_path: str, k: int, m: int, s: int) -> None:
    assert _check_every_pattern(ReedSolomon(k, m, backend="native"), s, seed=k * 10 + m) > 0


def test_xor_backend_recovers_any_single_loss() -> None:
    rs = ReedSolomon(6, 1, backend="xor")
    assert _check_every_pattern(rs, 9, seed=5) == 1 + 7
    source = make_block(6, 9, seed=5)
    symbols = all_symbols(rs, source)
    assert xor_recover({i: v for i, v in symbols.items() if i != 2}, 6) == source


def test_more_losses_than_repairs_is_undecodable(backend: str) -> None:
    rs = ReedSolomon(6, 2, backend=backend)
    symbols = all_symbols(rs, make_block(6, 10, seed=1))
    for erased in itertools.combinations(range(8), 3):
        kept = {i: v for i, v in symbols.items() if i not in erased}
        with pytest.raises(FecDecodeError):
            rs.decode(kept)


def test_extra_symbols_are_ignored(backend: str) -> None:
    rs = ReedSolomon(10, 4, backend=backend)
    source = make_block(10, 64, seed=2)
    symbols = all_symbols(rs, source)
    del symbols[3]
    assert rs.decode(symbols) == source  # 13 symbols for k = 10


@given(data=st.data())
def test_random_blocks_and_patterns(data: st.DataObject) -> None:
    k = data.draw(st.integers(1, 64), label="k")
    m = data.draw(st.integers(1, k), label="m")
    s = data.draw(st.integers(1, 300), label="s")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = random.Random(seed)
    source = rng.randbytes(k * s)
    c_rs = ReedSolomon(k, m, backend="native")
    np_rs = ReedSolomon(k, m, backend="numpy")
    symbols = all_symbols(c_rs, source)
    assert np_rs.encode(source) == c_rs.encode(source)
    lost = rng.sample(range(k + m), rng.randint(0, m))
    kept = [i for i in range(k + m) if i not in lost]
    rng.shuffle(kept)
    buffer = b"".join(symbols[i] for i in kept)
    for rs in (c_rs, np_rs):
        assert rs.decode({i: symbols[i] for i in kept}) == source
        assert rs.decode(buffer, present=kept) == source


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "k,m", [(0, 1), (1, 0), (129, 1), (1, 129), (-1, 2), (True, 1), (2.0, 1), ("3", 1)]
)
def test_bad_parameters_raise_configuration_error(k: object, m: object) -> None:
    with pytest.raises(ConfigurationError):
        ReedSolomon(k, m)  # type: ignore[arg-type]


def test_bad_backend_names_raise() -> None:
    with pytest.raises(ConfigurationError):
        ReedSolomon(4, 2, backend="fortran")
    with pytest.raises(ConfigurationError):
        ReedSolomon(4, 2, backend="xor")
    with pytest.raises(FecError):
        native.set_path("avx512")


def test_wrong_inputs_raise_fec_errors(backend: str) -> None:
    rs = ReedSolomon(4, 2, backend=backend)
    source = make_block(4, 8, seed=9)
    symbols = all_symbols(rs, source)
    with pytest.raises(FecError):
        rs.encode(source[:-1])  # not k equal symbols
    with pytest.raises(FecError):
        rs.encode(b"")
    with pytest.raises(FecError):
        rs.encode_into(source, bytearray(15))
    with pytest.raises(FecError):
        rs.encode(np.zeros((4, 8), np.uint8)[:, ::2])  # not contiguous
    with pytest.raises(FecError):
        rs.decode({0: symbols[0], 1: symbols[1], 2: symbols[2], 6: symbols[5]})  # index 6
    with pytest.raises(FecError):
        rs.decode({0: symbols[0], 1: symbols[1], 2: symbols[2], 4: symbols[4][:-1]})
    with pytest.raises(FecError):
        rs.decode({i: symbols[i] for i in range(4)}, symbol_size=9)
    with pytest.raises(FecError):
        rs.decode(b"".join(symbols[i] for i in (0, 1, 2, 4)))  # no present list
    with pytest.raises(FecError):
        rs.decode(b"".join(symbols[i] for i in (0, 1, 1, 4)), present=[0, 1, 1, 4])
    with pytest.raises(FecError):
        rs.decode(b"".join(symbols[i] for i in (0, 1, 2, 4))[:-1], present=[0, 1, 2, 4])
    with pytest.raises(FecDecodeError):
        rs.decode(b"".join(symbols[i] for i in (0, 1, 4)), present=[0, 1, 4])
    with pytest.raises(FecDecodeError):
        rs.decode({})
    assert issubclass(FecError, LocalError) and issubclass(FecError, ValueError)


def test_c_kernels_check_their_arguments() -> None:
    lib, ffi = native.lib, native.ffi
    out = bytearray(40)
    dst = ffi.from_buffer(out)
    assert lib.fec_encode(10, 4, 10, bytes(99), 99, dst, 40) == lib.FEC_ERR_LENGTH
    assert lib.fec_encode(10, 4, 10, bytes(100), 100, dst, 39) == lib.FEC_ERR_LENGTH
    assert lib.fec_encode(0, 4, 10, bytes(100), 100, dst, 40) == lib.FEC_ERR_PARAM
    assert lib.fec_encode(129, 4, 10, bytes(1290), 1290, dst, 40) == lib.FEC_ERR_PARAM
    assert lib.fec_encode(10, 4, 0, bytes(100), 100, dst, 40) == lib.FEC_ERR_PARAM
    assert lib.fec_encode(2, 2, 10, ffi.from_buffer(out), 20, dst, 20) == lib.FEC_ERR_OVERLAP
    missing = ffi.new("uint8_t[4]")
    dm = ffi.new("uint8_t[16]")
    assert lib.fec_decode_matrix(4, bytes([0, 2, 1, 4]), dm, 16, missing, 4) == lib.FEC_ERR_INDEX
    assert lib.fec_decode_matrix(4, bytes([0, 1, 1, 4]), dm, 16, missing, 4) == lib.FEC_ERR_INDEX
    assert lib.fec_decode_matrix(4, bytes([0, 1, 4, 200]), dm, 16, missing, 4) == lib.FEC_ERR_INDEX
    assert lib.fec_decode_matrix(4, bytes([0, 1, 4, 5]), dm, 7, missing, 4) == lib.FEC_ERR_LENGTH
    assert lib.fec_decode_matrix(4, bytes([0, 1, 4, 5]), dm, 16, missing, 4) == 2
    assert lib.fec_decode(4, 10, bytes([0, 1, 4, 5]), bytes(39), 39, dst, 40) == lib.FEC_ERR_LENGTH
    assert lib.fec_decode(4, 10, bytes([0, 1, 4, 5]), bytes(40), 40, dst, 39) == lib.FEC_ERR_LENGTH
    assert lib.fec_decode(4, 10, bytes([0, 1, 4, 5]), bytes(40), 40, dst, 40) == 0


# ------------------------------------------------------------ backend selection
def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_missing_native_module_falls_back_with_a_warning(tmp_path: object) -> None:
    code = "import transport.fec as f; print(f.backend)"
    result = _run(code, TRANSPORT_FEC_PATH=str(tmp_path), TRANSPORT_BACKEND="native")
    assert result.stdout.strip() == "numpy"
    assert "RuntimeWarning" in result.stderr and "numpy" in result.stderr
    result = _run(code, TRANSPORT_BACKEND="pure")
    assert result.stdout.strip() == "numpy"
    assert "Warning" not in result.stderr
