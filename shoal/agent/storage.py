"""The agent's state on disk: one JSON file per assigned task.

    <state_dir>/worker/<task_id>.json   the Task as last known, with the agent's latest status

Every write goes to a temporary file that replaces the old one (shoal.fsutil.write_atomic), so a
crash leaves either the old or the new content. Unreadable task files are skipped with a warning.
The managers the sessions name are kept by the agent's owner (the daemon's state.json), which
hands them back to a new Agent.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import msgspec

from shoal.fsutil import write_atomic
from shoal.model.objects import Task

__all__ = ["TaskStorage"]

log = logging.getLogger(__name__)


def _log_failure(done: Future[None]) -> None:
    exc = done.exception()
    if exc is not None:
        log.error("writing task states failed: %s", exc)


class TaskStorage:
    """Tasks of this node, one file each under ``<state_dir>/worker/``.

    Writes are behind by at most ``delay`` seconds: a task passes through five states in a few
    milliseconds, and one file write per state was most of an agent's CPU in the scale run. A
    crash inside the window loses only statuses the agent re-derives on restart (its controller
    re-attaches and reports again; the manager re-sends assignments on the new session).

    The timer's writes and the deletions run on one writer thread, in order (a deletion never
    races a write of the same task), so the event loop never waits for the disk; ``flush()``
    waits for them all.
    """

    def __init__(self, state_dir: Path, *, delay: float = 0.2) -> None:
        self._dir = Path(state_dir) / "worker"
        self._delay = delay
        self._pending: dict[str, Task] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="task-storage")

    def _path(self, task_id: str) -> Path:
        if not task_id or "/" in task_id or task_id.startswith("."):
            raise ValueError(f"invalid task id {task_id!r}")
        return self._dir / f"{task_id}.json"

    def save(self, task: Task) -> None:
        self._path(task.id)  # validate now, not at flush time
        self._pending[task.id] = task
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self._delay, self._write_behind)

    def _take(self) -> dict[str, bytes]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, {}
        return {task_id: msgspec.json.encode(task) for task_id, task in pending.items()}

    def _write(self, encoded: dict[str, bytes]) -> None:
        if encoded:
            self._dir.mkdir(parents=True, exist_ok=True)
        for task_id, data in encoded.items():
            write_atomic(self._path(task_id), data)

    def _write_behind(self) -> None:
        self._timer = None
        self._writer.submit(self._write, self._take()).add_done_callback(_log_failure)

    def flush(self) -> None:
        """Write every pending task now, and wait until all earlier writes are done too."""
        self._writer.submit(self._write, self._take()).result()

    async def settle(self) -> None:
        """Like ``flush()``, without blocking the event loop."""
        await asyncio.wrap_future(self._writer.submit(self._write, self._take()))

    def delete(self, task_id: str) -> None:
        self._pending.pop(task_id, None)
        self._writer.submit(self._path(task_id).unlink, missing_ok=True)

    def load_all(self) -> list[Task]:
        self.flush()
        if not self._dir.is_dir():
            return []
        tasks = []
        for path in sorted(self._dir.glob("*.json")):
            try:
                tasks.append(msgspec.json.decode(path.read_bytes(), type=Task))
            except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.warning("skipping unreadable task file %s: %s", path, exc)
        return tasks
