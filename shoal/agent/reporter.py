"""Reporter: batches task statuses for the dispatcher (swarmkit agent/reporter.go).

``report(task_id, status)`` never blocks: the latest status per task wins. While a session is
up, ``run(send)`` sends the pending statuses as one StatusUpdate at most every ``interval``
(100 ms). A batch whose send fails goes back to pending unless a newer status came meanwhile,
and every new session starts by re-sending the last status of every known task (the protocol
has no ack, so a status written into a dying socket may be lost): statuses survive a reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from shoal.model.dispatch import StatusUpdate, TaskStatusUpdate
from shoal.model.objects import TaskStatus

__all__ = ["Reporter", "Send"]

BATCH_INTERVAL = 0.1  # seconds between two StatusUpdates: the dispatcher's batching pace
MAX_BATCH = 10_000  # statuses per StatusUpdate, as the dispatcher's write batch

Send = Callable[[StatusUpdate], Awaitable[None]]


class Reporter:
    def __init__(self, *, interval: float = BATCH_INTERVAL) -> None:
        self._interval = interval
        self._pending: dict[str, TaskStatus] = {}
        self._last: dict[str, TaskStatus] = {}  # last status of each task, for a new session
        self._wake = asyncio.Event()

    def report(self, task_id: str, status: TaskStatus) -> None:
        self._pending[task_id] = status
        self._last[task_id] = status
        self._wake.set()

    def forget(self, task_id: str) -> None:
        """The task is gone from this node: stop re-sending its status."""
        self._last.pop(task_id, None)

    @property
    def pending(self) -> dict[str, TaskStatus]:
        return dict(self._pending)

    async def run(self, send: Send) -> None:
        """Send statuses through ``send`` until cancelled or a send fails (which raises)."""
        for task_id, status in self._last.items():
            self._pending.setdefault(task_id, status)
        if self._pending:
            self._wake.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = dict(list(self._pending.items())[:MAX_BATCH])
            for task_id in batch:
                del self._pending[task_id]
            msg = StatusUpdate(updates=[TaskStatusUpdate(task_id=k, status=v)
                                        for k, v in batch.items()])
            try:
                await send(msg)
            except BaseException:
                for task_id, status in batch.items():
                    self._pending.setdefault(task_id, status)
                raise
            if self._pending:
                self._wake.set()
            await asyncio.sleep(self._interval)
