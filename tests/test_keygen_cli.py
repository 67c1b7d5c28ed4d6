"""`transport keygen`: files, modes, formats, and clear errors (exit 2)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from transport.cli import main
from transport.crypto.keys import (
    load_private_key_file,
    load_public_key_file,
    public_key_from_private,
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["keygen", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("fmt", ["pem", "raw"])
def test_keygen_writes_a_matching_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    out = tmp_path / "server.key"
    code, stdout, stderr = _run(capsys, "--out", str(out), "--format", fmt)
    assert code == 0, stderr
    pub_path = tmp_path / "server.key.pub"
    assert out.is_file() and pub_path.is_file()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    private = load_private_key_file(out)
    public = load_public_key_file(pub_path)
    assert public_key_from_private(private) == public
    printed = stdout.strip()
    assert base64.b64decode(printed, validate=True) == public
    text = out.read_bytes()
    if fmt == "pem":
        assert text.startswith(b"-----BEGIN PRIVATE KEY-----")
        assert pub_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    else:
        assert len(text.strip()) == 44
        assert pub_path.read_text().strip() == printed


def test_default_format_is_pem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "k"
    code, _, _ = _run(capsys, "--out", str(out))
    assert code == 0
    assert b"PRIVATE KEY" in out.read_bytes()


def test_two_runs_give_different_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = _run(capsys, "--out", str(tmp_path / "a"))
    _, second, _ = _run(capsys, "--out", str(tmp_path / "b"))
    assert first.strip() != second.strip()


@pytest.mark.parametrize("existing", ["k", "k.pub"])
def test_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], existing: str
) -> None:
    (tmp_path / existing).write_bytes(b"keep me")
    code, stdout, stderr = _run(capsys, "--out", str(tmp_path / "k"))
    assert code == 2
    assert stdout == ""
    assert "--force" in stderr and existing in stderr
    assert (tmp_path / existing).read_bytes() == b"keep me"
    other = "k.pub" if existing == "k" else "k"
    assert not (tmp_path / other).exists()


def test_force_replaces_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "k"
    _, first, _ = _run(capsys, "--out", str(out), "--format", "raw")
    os.chmod(out, 0o644)  # a replaced key must come back private
    code, second, stderr = _run(capsys, "--out", str(out), "--format", "raw", "--force")
    assert code == 0, stderr
    assert first != second
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert load_public_key_file(tmp_path / "k.pub") == base64.b64decode(second.strip())


def test_missing_directory_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no" / "such" / "dir" / "k"
    code, stdout, stderr = _run(capsys, "--out", str(out))
    assert code == 2
    assert stdout == ""
    assert "transport keygen:" in stderr and str(out) in stderr
    assert "Traceback" not in stderr


def test_unwritable_location_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A regular file where a directory should be: unwritable even for root
    # (which ignores permission bits), so this runs the same everywhere.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    code, stdout, stderr = _run(capsys, "--out", str(blocker / "k"))
    assert code == 2
    assert stdout == ""
    assert "transport keygen:" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-directory"]


def test_unwritable_public_path_leaves_no_half_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # PATH.pub is a directory: the private key must not be left alone on disk
    out = tmp_path / "k"
    (tmp_path / "k.pub").mkdir()
    code, _, stderr = _run(capsys, "--out", str(out), "--force")
    assert code == 2
    assert "transport keygen:" in stderr
    assert not out.exists()


def test_out_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["keygen"])
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_unknown_format_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["keygen", "--out", str(tmp_path / "k"), "--format", "der"])
    assert info.value.code == 2
    assert not (tmp_path / "k").exists()
