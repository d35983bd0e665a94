"""SimController: one task's fake container, kept on disk so it outlives the daemon.

The "container" is a record ``<state_dir>/sim/<task_id>/container.json`` (ID, PID, state
created|running|exited, start time, exit code), written atomically. A new controller for the
same task (after an agent restart) reads it back: a running container is re-attached, and
``SIM_EXIT_AFTER`` keeps counting from the original start time. ``remove()`` deletes the
directory, so removed tasks leave nothing behind. Knobs and the control file: _knobs.py.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from pathlib import Path

import msgspec

from shoal.exec.errors import ExecError, ExitError, TaskRejected, Unhealthy
from shoal.exec.sim._knobs import CONTROL_POLL, Knobs, Verdict, read_control
from shoal.fsutil import write_atomic
from shoal.model.objects import ContainerStatus, Task

__all__ = ["ContainerRecord", "SimController"]


class ContainerRecord(msgspec.Struct, kw_only=True):
    id: str
    pid: int
    state: str = "created"  # created | running | exited
    started_at: float = 0.0  # wall clock, so the timers survive a restart
    exit_code: int = 0
    unhealthy: bool = False


class SimController:
    """Implements shoal.exec.Controller (and ContainerStatuser) without running anything."""

    def __init__(self, task: Task, directory: Path) -> None:
        self._task = task
        self._dir = directory
        self._knobs = Knobs.from_spec(task.spec.container_spec)
        self._record: ContainerRecord | None = self._load()

    @property
    def control_path(self) -> Path:
        return self._dir / "control"

    def _load(self) -> ContainerRecord | None:
        try:
            return msgspec.json.decode((self._dir / "container.json").read_bytes(),
                                       type=ContainerRecord)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, msgspec.DecodeError):
            return None  # a torn or foreign file: as if never created

    def _save(self, record: ContainerRecord) -> None:
        self._record = record
        self._dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._dir / "container.json", msgspec.json.encode(record))

    def _require(self) -> ContainerRecord:
        if self._record is None:
            raise ExecError(f"sim: no container for task {self._task.id}")
        return self._record

    def update(self, task: Task) -> None:
        self._task = task

    def status(self) -> ContainerStatus:
        rec = self._record
        if rec is None:
            return ContainerStatus()
        pid = rec.pid if rec.state == "running" else 0
        return ContainerStatus(container_id=rec.id, pid=pid, exit_code=rec.exit_code)

    async def prepare(self) -> None:
        if self._knobs.reject is not None:
            raise TaskRejected(self._knobs.reject)
        if self._record is not None:
            return  # already prepared (swarmkit's ErrTaskPrepared)
        await asyncio.sleep(0.005)
        self._save(ContainerRecord(id=secrets.token_hex(32),
                                   pid=1000 + secrets.randbelow(4_000_000)))

    async def start(self) -> None:
        rec = self._require()
        if rec.state != "created":
            return  # already started: re-attached; wait() tells the rest
        await asyncio.sleep(self._knobs.start_seconds)
        rec = msgspec.structs.replace(rec, state="running", started_at=time.time())
        self._save(rec)
        if self._knobs.healthcheck:
            await asyncio.sleep(self._knobs.first_check)
            verdict = read_control(self.control_path)
            if verdict is None or not verdict.unhealthy:
                verdict = self._knobs.verdict_after(self._knobs.first_check)
            if verdict is not None and verdict.unhealthy:
                self._finish(verdict)  # raises Unhealthy

    async def wait(self) -> int:
        while True:
            rec = self._require()
            if rec.state == "exited":
                return self._result(rec)
            if rec.state != "running":
                raise ExecError(f"sim: container for task {self._task.id} is not running")
            elapsed = time.time() - rec.started_at
            verdict = read_control(self.control_path) or self._knobs.verdict_after(elapsed)
            if verdict is not None:
                return self._finish(verdict)
            delay = CONTROL_POLL
            upcoming = self._knobs.next_event(elapsed)
            if upcoming is not None:
                delay = min(delay, max(upcoming, 0.001))
            await asyncio.sleep(delay)

    def _finish(self, verdict: Verdict) -> int:
        rec = msgspec.structs.replace(self._require(), state="exited", exit_code=verdict.code,
                                      unhealthy=verdict.unhealthy)
        self._save(rec)
        return self._result(rec)

    @staticmethod
    def _result(rec: ContainerRecord) -> int:
        if rec.unhealthy:
            raise Unhealthy(rec.exit_code)
        if rec.exit_code != 0:
            raise ExitError(rec.exit_code)
        return 0

    async def shutdown(self) -> None:
        self._stop(0)

    async def terminate(self) -> None:
        self._stop(137)

    def _stop(self, code: int) -> None:
        rec = self._record
        if rec is not None and rec.state != "exited":
            self._save(msgspec.structs.replace(rec, state="exited", exit_code=code))

    async def remove(self) -> None:
        self._record = None
        await asyncio.to_thread(shutil.rmtree, self._dir, True)
