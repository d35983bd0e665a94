"""The task reaper: deletes tasks nobody needs any more, so the store (and the agents) forget them.

Two rules, applied per service to the services touched by a batch of changes (every 250 ms):
- a task with DesiredState REMOVE is deleted once it ended (state > running), never reached a
  node (state < assigned), or its node is gone;
- per slot (per node for global services) at most ``TaskHistoryRetentionLimit`` tasks are kept
  (Cluster spec, default 5, negative keeps all; at least MaxAttempts + 1): ended tasks that are
  no longer wanted are deleted oldest first (by Status.Timestamp). A job's tasks of earlier runs
  are history too once ended (its current run's completions are kept: they are the run's
  progress); swarmkit keeps every job task (moby#45443).
A delete that loses a compare-and-set race leaves its service dirty for the next batch.
As in swarmkit ``manager/orchestrator/taskreaper/task_reaper.go``.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from shoal.errors import SequenceConflict, ShoalError
from shoal.manager.orchestrator._loop import DirtyLoop
from shoal.manager.orchestrator.common import (
    history_limit,
    is_live,
    job_iteration,
    restart_policy,
)
from shoal.manager.orchestrator.update import slot_key
from shoal.model.objects import Cluster, Node, Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Tx
from shoal.store.tables import Tables
from shoal.store.watch import Change

__all__ = ["TaskReaper", "reapable"]

log = logging.getLogger(__name__)


def _ended(task: Task) -> bool:
    return task.state > TaskState.RUNNING


def _history(service: Service, task: Task) -> bool:
    """An ended task the service no longer wants: superseded, or of an earlier run of a job."""
    if not _ended(task):
        return False
    earlier_run = task.job_iteration is not None and task.job_iteration.index != job_iteration(service)
    return not is_live(task) or earlier_run


def reapable(view: Tables, service_id: str) -> list[Task]:
    """The tasks of ``service_id`` to delete now."""
    tasks = view.tasks_of_service(service_id)
    out: dict[str, Task] = {}
    for task in tasks:
        if task.desired_state == TaskState.REMOVE and (
            _ended(task) or task.state < TaskState.ASSIGNED or view.get(Node, task.node_id) is None
        ):
            out[task.id] = task
    service = view.get(Service, service_id)
    limit = history_limit(view)
    if service is None or limit < 0:
        return list(out.values())
    attempts = restart_policy(service.spec.task_template).max_attempts
    if attempts > 0:
        limit = max(limit, attempts + 1)
    slots: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        if task.id not in out:
            slots[slot_key(service, task)].append(task)
    for slot in slots.values():
        if len(slot) <= limit:
            continue
        history = sorted((t for t in slot if _history(service, t)), key=lambda t: t.status.timestamp)
        for task in history[: len(slot) - limit]:
            out[task.id] = task
    return list(out.values())


class TaskReaper(DirtyLoop):
    """Deletes the tasks ``reapable`` names, per service that changes touch, every reaper
    interval."""

    def _batching(self) -> tuple[float, float]:
        return self._settings.reaper_interval, self._settings.reaper_interval

    def _all_services(self, view: Tables) -> set[str]:
        return {t.service_id for t in view.all(Task) if t.service_id}

    def _affected(self, view: Tables, change: Change) -> set[str]:
        obj = change.obj
        if isinstance(obj, Task) and obj.service_id:
            return {obj.service_id}
        if isinstance(obj, Service):
            return {obj.id}
        if isinstance(obj, Node):
            return {t.service_id for t in view.tasks_of_node(obj.id)}
        if isinstance(obj, Cluster):  # the history limit
            return self._all_services(view)
        return set()

    async def _flush(self) -> None:
        todo, self._dirty = self._dirty, set()
        view = self._store.view()
        doomed = {sid: reapable(view, sid) for sid in sorted(todo)}
        doomed = {sid: tasks for sid, tasks in doomed.items() if tasks}
        if not doomed:
            return

        def delete(tx: Tx) -> None:
            for tasks in doomed.values():
                for task in tasks:
                    tx.delete(task)

        try:
            await self._store.update(delete, atomic=False)
        except SequenceConflict:
            self._dirty |= set(doomed)  # some went through; the rest are re-read next batch
            return
        except ShoalError as exc:
            log.warning("task reaper: delete failed: %s", exc)
            self._dirty |= set(doomed)
            return
        for sid, tasks in doomed.items():
            log.info("service %s: reaped %d tasks (%s)", sid, len(tasks),
                     ",".join(t.id for t in tasks[:5]) + ("..." if len(tasks) > 5 else ""))
