"""The scheduler: assigns PENDING tasks to nodes (PENDING -> ASSIGNED + NodeID).

Subscribes to Task and Node, loads the view (full pass at start), then per debounced batch of
events (50 ms quiet, 1 s at most) updates its Tracker and runs one pass: preset-node (global)
tasks are checked against the filters of their node; unassigned tasks are placed group by group
(``place_group``). All decisions of a pass, assignments and "no suitable node" errors, are
committed in one non-atomic batch, compare-and-set per task; afterwards every decided task is
resynced from the view, so a conflict puts it back in the queue. A task that cannot be placed
stays PENDING with ``Status.Err`` (written once) and is retried on the next pass: any Node or
Task change (swarmkit ``manager/scheduler/scheduler.go``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import msgspec

from shoal import metrics
from shoal.errors import SequenceConflict
from shoal.manager.scheduler.pipeline import Pipeline
from shoal.manager.scheduler.spread import assigned_copy, place_group
from shoal.manager.scheduler.tracker import Tracker, group_key
from shoal.model.objects import Node, Task, now
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx

__all__ = ["NO_SUITABLE_NODE", "Scheduler", "SchedulerSettings"]

log = logging.getLogger(__name__)

NO_SUITABLE_NODE = "no suitable node"


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    commit_debounce_gap: float = 0.05  # swarmkit commitDebounceGap: let a burst of tasks gather
    max_latency: float = 1.0  # swarmkit maxLatency: a steady stream still gets a pass every 1 s
    resync_interval: float = 60.0  # idle this long: another pass (failure windows expire)


@dataclass(slots=True)
class _Pass:
    """The decisions of one pass, keyed by task ID (assigned copies or copies with Err)."""

    decisions: dict[str, Task]
    assigned: int = 0
    unschedulable: int = 0


def _with_err(task: Task, err: str, timestamp: str) -> Task:
    status = msgspec.structs.replace(task.status, err=err, timestamp=timestamp)
    return msgspec.structs.replace(task, status=status)


class Scheduler:
    def __init__(self, store: Store, settings: SchedulerSettings | None = None) -> None:
        self._store = store
        self._settings = settings or SchedulerSettings()
        self._tracker = Tracker()
        self._pipeline = Pipeline()

    async def run(self) -> None:
        s = self._settings
        loop = asyncio.get_running_loop()
        with self._store.subscribe([Task, Node]) as changes:  # subscribe, then snapshot
            self._tracker.load(self._store.view())
            while True:
                with metrics.timed(metrics.RECONCILE.labels("scheduler")):
                    await self._tick()
                batch = await changes.next_batch(
                    gap=s.commit_debounce_gap, max_latency=s.max_latency, idle=s.resync_interval
                )
                self._tracker.apply(batch, loop.time())

    async def _tick(self) -> None:
        tracker = self._tracker
        if not tracker.unassigned and not tracker.preassigned:
            return
        started = time.perf_counter()
        decided = self.decide(asyncio.get_running_loop().time())
        written, conflicts = await self._commit(decided.decisions)
        log.info(
            "scheduler pass: %d assigned, %d unschedulable, %d written, %d conflicts in %.1f ms",
            decided.assigned,
            decided.unschedulable,
            written,
            conflicts,
            (time.perf_counter() - started) * 1000,
            extra={"component": "scheduler"},
        )

    # -- deciding ------------------------------------------------------------------------------
    def decide(self, loop_now: float) -> _Pass:
        """One pass over the queues; NodeInfos already count the assignments made."""
        timestamp = now()
        result = _Pass({})
        self._decide_preassigned(result, timestamp)
        nodes = self._tracker.candidates()
        for tasks in self._tracker.groups().values():
            placement = place_group(tasks, nodes, self._pipeline, now=loop_now, timestamp=timestamp)
            for task in placement.assigned:
                self._tracker.assign(task)
                result.decisions[task.id] = task
            result.assigned += len(placement.assigned)
            err = NO_SUITABLE_NODE
            if placement.explanation:
                err = f"{NO_SUITABLE_NODE} ({placement.explanation})"
            self._unschedulable(result, placement.unplaced, err, timestamp)
        return result

    def _decide_preassigned(self, result: _Pass, timestamp: str) -> None:
        tracker, pipeline = self._tracker, self._pipeline
        groups: dict[object, list[Task]] = {}
        for task in tracker.preassigned.values():
            groups.setdefault(group_key(task), []).append(task)
        for tasks in groups.values():
            pipeline.set_task(tasks[0])
            for task in tasks:
                info = tracker.nodes.get(task.node_id)
                if info is None or info.node is None:
                    continue  # the node is gone; the global orchestrator will clean up
                if pipeline.process(info):
                    new = assigned_copy(task, info.id, timestamp)
                    tracker.assign(new)
                    result.decisions[task.id] = new
                    result.assigned += 1
                else:  # swarmkit writes the bare explanation for preset-node tasks
                    self._unschedulable(result, [task], pipeline.explain(), timestamp)
                    pipeline.set_task(task)  # reset the counts for the next task

    @staticmethod
    def _unschedulable(result: _Pass, tasks: list[Task], err: str, timestamp: str) -> None:
        result.unschedulable += len(tasks)
        for task in tasks:
            if task.status.err != err:
                result.decisions[task.id] = _with_err(task, err, timestamp)

    # -- committing ----------------------------------------------------------------------------
    async def _commit(self, decisions: dict[str, Task]) -> tuple[int, int]:
        """Write the decisions (CAS per task); resync each decided task from the view."""
        if not decisions:
            return 0, 0
        written = 0

        def write(tx: Tx) -> None:
            nonlocal written
            written = 0
            for new in decisions.values():
                current = tx.view.get(Task, new.id)
                if current is None or current.version.index != new.version.index:
                    continue  # changed since we saw it: the resync requeues it
                if current.desired_state > TaskState.COMPLETE:
                    continue  # no longer wanted: left alone
                if new.node_id and tx.view.get(Node, new.node_id) is None:
                    continue
                tx.update(new)
                written += 1

        try:
            await self._store.update(write, atomic=False)
        except SequenceConflict:
            log.debug("scheduler commit: some chunks conflicted; resyncing")
        view = self._store.view()
        conflicts = 0
        for task_id, new in decisions.items():
            current = view.get(Task, task_id)
            if current is None or current.status.state != new.status.state:
                conflicts += 1
            self._tracker.apply_task(task_id, current)
        return written, conflicts
