"""shoal.fsutil: a file replaced in one step, with the mode it asks for, and nothing left beside it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shoal.fsutil import temp_path, write_atomic, write_temp, write_together


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    write_atomic(path, "new")
    assert path.read_text() == "new"
    write_atomic(path, b"\x00bytes", durable=True)
    assert path.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_mode_is_set_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "key", "secret", mode=0o600)
        write_atomic(tmp_path / "ca.crt", "cert", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.crt").stat().st_mode) == 0o644


def test_a_failed_write_removes_its_temp(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_temp(tmp_path / "x", 3)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_write_together_replaces_all_in_order_and_leaves_no_temp(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("old a")
    write_together(tmp_path, [("a", "new a", 0o600), ("b", b"new b", None)], durable=True)
    assert (tmp_path / "a").read_text() == "new a" and (tmp_path / "b").read_text() == "new b"
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert temp_path(tmp_path / "a") == tmp_path / ".a.tmp"
