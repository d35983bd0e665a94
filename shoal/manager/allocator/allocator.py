"""The allocator's loop: NEW tasks that are still wanted move to PENDING, in batches.

Subscribe to Task, snapshot (every NEW task is dirty at start), then per debounced batch of
events (50 ms quiet, 1 s at most) take the dirty tasks in one non-atomic batch: each one that is
still NEW with DesiredState <= RUNNING goes through the voters and, when every voter has
allocated, is written PENDING ("pending task scheduling") compare-and-set. A conflict, or a
voter that cannot allocate yet, leaves the task dirty for the next batch; idle for
``resync_interval`` means a full pass (swarmkit ``manager/allocator/network.go``
``allocateTasks``, ``procTasksNetwork``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from shoal.errors import SequenceConflict
from shoal.manager.allocator.voters import Voter
from shoal.model.objects import Task, TaskStatus, now
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx
from shoal.store.tables import Tables

__all__ = ["PENDING_MESSAGE", "Allocator", "AllocatorSettings"]

log = logging.getLogger(__name__)

PENDING_MESSAGE = "pending task scheduling"


@dataclass(frozen=True, slots=True)
class AllocatorSettings:
    commit_debounce_gap: float = 0.05  # as the scheduler: let a burst of new tasks gather
    max_latency: float = 1.0  # a steady stream of tasks still moves every second
    resync_interval: float = 300.0  # swarmkit retryInterval: unallocatable tasks retried 5 min


def waiting(task: Task) -> bool:
    """NEW and still wanted: the allocator's input."""
    return task.status.state == "new" and TaskState.parse(task.desired_state) <= TaskState.RUNNING


class Allocator:
    def __init__(
        self,
        store: Store,
        settings: AllocatorSettings | None = None,
        *,
        voters: Sequence[Voter] = (),
    ) -> None:
        self._store = store
        self._settings = settings or AllocatorSettings()
        self._voters = tuple(voters)
        self._dirty: set[str] = set()

    async def run(self) -> None:
        s = self._settings
        with self._store.subscribe([Task]) as changes:  # subscribe, then snapshot
            self._dirty |= self._all_waiting(self._store.view())
            while True:
                await self._reconcile()
                batch = await changes.next_batch(
                    gap=s.commit_debounce_gap, max_latency=s.max_latency, idle=s.resync_interval
                )
                if not batch:
                    self._dirty |= self._all_waiting(self._store.view())
                for change in batch:
                    if isinstance(change.new, Task) and waiting(change.new):
                        self._dirty.add(change.new.id)

    @staticmethod
    def _all_waiting(view: Tables) -> set[str]:
        return {t.id for t in view.all(Task) if waiting(t)}

    def _allocate(self, task: Task, view: Tables, timestamp: str) -> Task | None:
        """``task`` with every voter's allocation and PENDING, or None if a voter cannot yet."""
        for voter in self._voters:
            allocated = voter.allocate(task, view)
            if allocated is None:
                log.debug("task %s: %s cannot allocate yet", task.id, voter.name)
                return None
            task = allocated
        status = TaskStatus(timestamp=timestamp, state="pending", message=PENDING_MESSAGE)
        return msgspec.structs.replace(task, status=status)

    async def _reconcile(self) -> None:
        if not self._dirty:
            return
        started = time.perf_counter()
        dirty, self._dirty = self._dirty, set()
        timestamp = now()
        written: list[str] = []
        held: list[str] = []

        def write(tx: Tx) -> None:
            written.clear()
            held.clear()
            for task_id in dirty:
                task = tx.view.get(Task, task_id)
                if task is None or not waiting(task):
                    continue
                new = self._allocate(task, tx.view, timestamp)
                if new is None:
                    held.append(task_id)
                    continue
                tx.update(new)
                written.append(task_id)

        try:
            await self._store.update(write, atomic=False)
        except SequenceConflict:
            log.debug("allocator commit: some chunks conflicted; they stay dirty")
        view = self._store.view()
        conflicts = [i for i in written if (t := view.get(Task, i)) is not None and waiting(t)]
        self._dirty.update(held, conflicts)
        log.info(
            "allocator pass: %d pending, %d waiting on allocation, %d conflicts in %.1f ms",
            len(written) - len(conflicts),
            len(held),
            len(conflicts),
            (time.perf_counter() - started) * 1000,
            extra={"component": "allocator"},
        )
