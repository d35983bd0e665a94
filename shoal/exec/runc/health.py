"""Health checks run inside a container with ``runc exec``, with Docker's rules.

Each probe runs the check's argv as the container's process would (same user, env, cwd) and
fails when it exits non-zero or outlasts the timeout (then its process is killed). Failures
during the start period don't count, a success there makes the container healthy at once;
``retries`` consecutive failures make it unhealthy. The status is kept in ``health.json`` in
the container's directory so a re-attached controller knows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from shoal import metrics
from shoal.exec.containerspec import HealthCheck
from shoal.fsutil import write_atomic

__all__ = ["HealthState", "probe"]

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
EXEC_SETUP_WAIT = 2.0  # seconds runc exec gets to start a timed-out check's process, then to exit


@dataclass(slots=True)
class HealthState:
    path: Path
    status: str = STARTING
    failing_streak: int = 0

    @classmethod
    def load(cls, path: Path) -> HealthState:
        try:
            obj = json.loads(path.read_text())
            return cls(path, str(obj["status"]), int(obj["failing_streak"]))
        except (OSError, ValueError, KeyError, TypeError):
            return cls(path)

    def record(self, ok: bool, *, in_start_period: bool) -> str:
        """Counts one probe's result; returns the new status."""
        metrics.HEALTH_CHECKS.inc()
        if not ok:
            metrics.HEALTH_CHECKS_FAILED.inc()
        if ok:
            self.status, self.failing_streak = HEALTHY, 0
        elif not in_start_period:
            self.failing_streak += 1
        self._save()
        return self.status

    def failed(self, check: HealthCheck) -> bool:
        if self.failing_streak >= check.retries:
            self.status = UNHEALTHY
            self._save()
        return self.status == UNHEALTHY

    def _save(self) -> None:
        state = {"status": self.status, "failing_streak": self.failing_streak}
        write_atomic(self.path, json.dumps(state))


async def probe(runc: list[str], cid: str, check: HealthCheck, pid_file: Path) -> bool:
    """One check: True when it exited 0 within its timeout."""
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    proc = await asyncio.create_subprocess_exec(
        *runc, "exec", "--pid-file", str(pid_file), cid, *check.argv,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        return await asyncio.wait_for(proc.wait(), check.timeout) == 0
    except TimeoutError:
        return False
    finally:
        if proc.returncode is None:
            await _end_exec(proc, pid_file)


async def _end_exec(proc: asyncio.subprocess.Process, pid_file: Path) -> None:
    """Kill the check's process in the container, then reap ``runc exec``, which cannot forward
    SIGKILL itself. Killed before it wrote the pid file, runc exec can leave its ``runc init``
    half way into the container, where (runc 1.1.15, Debian 13) the container then cannot be
    stopped: so the pid file is waited for, a bounded while."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EXEC_SETUP_WAIT
    while proc.returncode is None:
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
            break
        except (OSError, ValueError):  # not written yet (or gone already)
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(proc.wait(), EXEC_SETUP_WAIT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
