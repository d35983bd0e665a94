"""shoald's PID file: one daemon per data root, as dockerd's ``--pidfile`` keeps one per machine.

``<data-root>/shoald.pid`` (and ``--pidfile`` if given) holds the daemon's PID under an
exclusive ``flock`` for the daemon's whole life; the kernel drops the lock when the process
exits, however it exits, so a stale file never blocks a start (dockerd instead checks whether
the PID in the file is alive). The file is opened close-on-exec: etcd and the shim server never
hold it. A second daemon on the same data root is refused at once with dockerd's words
("failed to start daemon, ensure ... is not running or delete PATH: process with PID N is still
running"), before it touches anything.

A stopping daemon turns its lock shared (``stopping()``), so a restart that overlaps the old
process's exit (SIGTERM, then a new shoald at once) waits for it, up to ``wait`` seconds, instead
of failing on its ports ("address already in use") or being refused. Converting a flock is not
atomic; in the instant between, a new daemon may take the lock a little early and meet the old
one's ports: it then fails on them, with their error, as before.

Called by ``shoal.daemon.main`` before the event loop starts.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from shoal.errors import ShoalError

__all__ = ["STOP_WAIT", "PidFile", "PidFileBusy"]

STOP_WAIT = 20.0  # seconds a new daemon waits for a stopping one (its stop takes a few)
_POLL = 0.1


class PidFileBusy(ShoalError):
    """Another daemon holds the PID file."""


class PidFile:
    """The exclusive hold of one PID file; ``acquire`` it, ``stopping()`` when stopping,
    ``release()`` at exit (the lock goes with the process anyway)."""

    def __init__(self, path: Path, *, daemon: str = "shoald") -> None:
        self.path = path
        self._daemon = daemon
        self._fd: int | None = None

    def acquire(self, *, wait: float = STOP_WAIT,
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> None:
        """Hold the file and write this PID in it; PidFileBusy if a running daemon holds it,
        or a stopping one still does after ``wait`` seconds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = clock() + wait
            while not _try(fd, fcntl.LOCK_EX):
                if not _try(fd, fcntl.LOCK_SH):  # its holder is running: refuse at once
                    raise self._busy("is still running")
                fcntl.flock(fd, fcntl.LOCK_UN)  # its holder is stopping: wait for it, bounded
                if clock() >= deadline:
                    raise self._busy(f"is still stopping after {wait:.0f}s")
                sleep(_POLL)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def stopping(self) -> None:
        """This daemon is stopping: a new one may wait for it rather than be refused."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        """Empty the file and drop the lock (the file stays: removing it would let a daemon
        that opened it before lock a file no longer at the path)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def _busy(self, what: str) -> PidFileBusy:
        pid = _read_pid(self.path)
        holder = f"process with PID {pid}" if pid else "another process"
        return PidFileBusy(f"failed to start daemon, ensure {self._daemon} is not running or "
                           f"delete {self.path}: {holder} {what}")


def _try(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0
