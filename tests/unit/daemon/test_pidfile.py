"""One shoald per data root (issue 16: a second one on a held data root hung on "address already
in use"): the PID file's lock, dockerd's words, and the bounded wait for a stopping daemon."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from shoal.daemon import main
from shoal.daemon.pidfile import PidFile, PidFileBusy


def _no_sleep(_: float) -> None:
    raise AssertionError("a running holder is refused at once, without waiting")


def test_a_held_file_is_refused_at_once_with_dockerds_words(tmp_path: Path) -> None:
    path = tmp_path / "shoald.pid"
    first = PidFile(path)
    first.acquire()
    try:
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(PidFileBusy) as caught:
            PidFile(path).acquire(sleep=_no_sleep)
        assert caught.value.message == (
            f"failed to start daemon, ensure shoald is not running or delete {path}: "
            f"process with PID {os.getpid()} is still running")
    finally:
        first.release()
    second = PidFile(path)
    second.acquire(sleep=_no_sleep)  # released: free at once, whatever the file says
    second.release()


def test_a_stopping_holder_is_waited_for_within_a_bound(tmp_path: Path) -> None:
    path = tmp_path / "shoald.pid"
    old = PidFile(path)
    old.acquire()
    old.stopping()
    waits: list[float] = []

    def old_exits(delay: float) -> None:
        waits.append(delay)
        if len(waits) == 3:
            old.release()

    new = PidFile(path)
    new.acquire(sleep=old_exits)
    try:
        assert len(waits) == 3 and path.read_text() == f"{os.getpid()}\n"
    finally:
        new.release()

    stuck = PidFile(path)
    stuck.acquire()
    stuck.stopping()
    now = [0.0]

    def tick(delay: float) -> None:
        now[0] += delay

    try:
        with pytest.raises(PidFileBusy, match=r"process with PID \d+ is still stopping after 5s"):
            PidFile(path).acquire(wait=5, sleep=tick, clock=lambda: now[0])
        assert 5 <= now[0] < 6
    finally:
        stuck.release()


def test_shoald_refuses_a_held_data_root_before_anything_starts(tmp_path: Path) -> None:
    data = tmp_path / "d"
    holder = PidFile(data / "shoald.pid")
    holder.acquire()
    try:
        result = CliRunner().invoke(main, ["--executor", "sim", "--data-root", str(data),
                                           "--exec-root", str(tmp_path / "e")])
    finally:
        holder.release()
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"shoald: failed to start daemon, ensure shoald is not running or delete "
        f"{data / 'shoald.pid'}: process with PID {os.getpid()} is still running")
    assert not (tmp_path / "e").exists()


def test_the_pidfile_flag_is_held_too(tmp_path: Path) -> None:
    extra = tmp_path / "run" / "docker.pid"
    holder = PidFile(extra)
    holder.acquire()
    try:
        result = CliRunner().invoke(main, ["--executor", "sim", "--data-root", str(tmp_path / "d"),
                                           "--exec-root", str(tmp_path / "e"), "--pidfile",
                                           str(extra)])
    finally:
        holder.release()
    assert result.exit_code == 1 and f"delete {extra}: process with PID" in result.output
    # the data root's own file was let go again
    free = PidFile(tmp_path / "d" / "shoald.pid")
    free.acquire(sleep=_no_sleep)
    free.release()
