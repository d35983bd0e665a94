"""Processes of ``shoal dev``, found and stopped by pid alone (the command that started them has
exited by the time ``shoal dev down`` runs): a pid counts as ours only while its
``/proc/<pid>/cmdline`` still names what we started, so a recycled pid is never signalled."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

__all__ = ["alive", "cmdline", "matching", "terminate"]


def cmdline(pid: int) -> list[str]:
    """The argv of ``pid``, or [] when it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def alive(pid: int, marker: str) -> bool:
    """``pid`` runs and one of its arguments contains ``marker`` (a path of ours)."""
    return pid > 0 and any(marker in arg for arg in cmdline(pid))


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # our own child (a failed ``up``): no zombie left behind
    except ChildProcessError:
        pass


def _ancestors() -> set[int]:
    """This process and its parents (a shell running ``shoal dev down`` is not a leftover)."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
    return out


def matching(marker: str) -> list[int]:
    """Every process, but this one and its ancestors, with an argument containing ``marker``."""
    pids = (int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit())
    mine = _ancestors()
    return sorted(pid for pid in pids if pid not in mine and alive(pid, marker))


def terminate(pid: int, marker: str, timeout: float = 15.0) -> bool:
    """SIGTERM ``pid`` if it is still ours, SIGKILL it (its whole process group when it leads
    one: a daemon's etcd goes with it) after ``timeout``; True if it was running."""
    if not alive(pid, marker):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            if sig == signal.SIGKILL and os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not alive(pid, marker):
                return True
            time.sleep(0.1)
    return True
