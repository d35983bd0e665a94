"""The restart supervisor: replaces tasks that ended or lost their node, under the restart policy.

Each orchestrator owns one and calls ``restart(tx, ...)`` inside its reconcile transaction; the
old task gets DesiredState SHUTDOWN and, if the policy allows, a replacement is created in the
same slot (replicated, NodeID empty so the scheduler places it) or for the same node (global)
with DesiredState READY. After the commit (``commit()``) a timer moves the replacement to
RUNNING once the restart delay has passed (none when the old node is drained) and the old task
has stopped (not waited for when its node is down; capped by ``old_task_timeout``).
Attempt history is in memory, per (service, slot) or (service, node), and per run of a job,
reset when the task template changes (swarmkit ``manager/orchestrator/restart/restart.go``);
bounded (issue 16): a key keeps only the attempts its policy can still count, and a key with no
task left in the store (a slot scaled away, a node removed, an earlier run of a job: the reaper
deleted its tasks) is forgotten at the service's next reconcile (``prune``).
A job's task is started with DesiredState COMPLETE, and one that completed is never replaced
(condition ``any`` acts as ``on-failure``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from shoal.errors import ShoalError
from shoal.manager.orchestrator._loop import wait_for
from shoal.manager.orchestrator.common import (
    OrchestratorSettings,
    fingerprint,
    is_job,
    is_task_dirty,
    new_task,
    old_task_stopped,
    restart_policy,
)
from shoal.model.objects import Node, Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx, copy
from shoal.store.tables import Tables

__all__ = ["RestartSupervisor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Staged:
    key: tuple[str, str]
    spec: bytes
    new_id: str
    old_id: str
    delay: float
    wait_old: bool
    max_attempts: int  # the policy's, to keep no more attempts than it counts
    window: float


def _key(service: Service, task: Task) -> tuple[str, str]:
    where = task.node_id if service.spec.mode.is_global else str(task.slot)
    if task.job_iteration is not None:  # each run of a job starts with no attempts
        where += f"@{task.job_iteration.index}"
    return (service.id, where)


def _age(task: Task) -> float:
    try:
        made = datetime.strptime(task.created_at, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return 0.0
    return (datetime.now(UTC) - made.replace(tzinfo=UTC)).total_seconds()


def _counted(times: list[float], now: float, max_attempts: int, window: float) -> list[float]:
    """The attempts a policy can still count: none without a maximum, those within the window,
    at most the last ``max_attempts`` (more never change "fewer than the maximum")."""
    if max_attempts <= 0:
        return []
    if window > 0:
        times = [t for t in times if t >= now - window]
    return times[-max_attempts:]


class RestartSupervisor:
    def __init__(self, store: Store, settings: OrchestratorSettings | None = None) -> None:
        self._store = store
        self._settings = settings or OrchestratorSettings()
        # service ID -> slot or node (and job run) -> (task template fingerprint, attempt times)
        self._history: dict[str, dict[str, tuple[bytes, list[float]]]] = {}
        self._staged: list[_Staged] = []
        self._timers: dict[str, asyncio.Task[None]] = {}

    # -- policy ----------------------------------------------------------------------------
    def _attempts(self, service: Service, task: Task, window: float) -> int:
        service_id, where = _key(service, task)
        entry = self._history.get(service_id, {}).get(where)
        if entry is None or entry[0] != fingerprint(service):
            return 0
        if window <= 0:
            return len(entry[1])
        since = asyncio.get_running_loop().time() - window
        return sum(1 for t in entry[1] if t >= since)

    def should_restart(self, service: Service, task: Task) -> bool:
        """Whether the restart policy allows replacing ``task`` now."""
        policy = restart_policy(task.spec, job=is_job(service))
        if policy.condition == "none":
            return False
        if policy.condition == "on-failure" and task.state == TaskState.COMPLETE:
            return False
        if policy.max_attempts <= 0:
            return True
        return self._attempts(service, task, policy.window) < policy.max_attempts

    def retired(self, service: Service, task: Task) -> bool:
        """A task that ended and that the policy declined to replace: its slot stays empty."""
        return (
            task.desired_state == TaskState.SHUTDOWN
            and task.state in (TaskState.COMPLETE, TaskState.FAILED, TaskState.REJECTED)
            and not is_task_dirty(service, task)
            and not self.should_restart(service, task)
        )

    # -- restarts --------------------------------------------------------------------------
    def restart(self, tx: Tx, service: Service, task: Task) -> Task | None:
        """Shut ``task`` down and, if allowed, create its replacement; returns it (staged)."""
        old = copy(task)
        old.desired_state = TaskState.SHUTDOWN
        tx.update(old)
        if not self.should_restart(service, task):
            log.info(
                "service %s: task %s %s, restart policy declines a replacement",
                service.id, task.id, task.status.state,
            )
            return None
        if service.spec.mode.is_global:
            new = new_task(service, node_id=task.node_id)
        else:
            new = new_task(service, slot=task.slot)
        new.desired_state = TaskState.READY
        node = tx.view.get(Node, task.node_id)
        policy = restart_policy(task.spec)
        delay = 0.0 if node is not None and node.spec.availability == "drain" else policy.delay
        wait_old = node is not None and node.status.state != "down"
        tx.create(new)
        self._staged.append(_Staged(_key(service, task), fingerprint(service), new.id, task.id,
                                    delay, wait_old, policy.max_attempts, policy.window))
        log.info(
            "service %s: task %s %s (desired %s), replaced by %s, starting in %.2fs",
            service.id, task.id, task.status.state, task.desired_state, new.id, delay,
        )
        return new

    def commit(self) -> None:
        """The transaction holding the staged restarts committed: count them, start timers."""
        now = asyncio.get_running_loop().time()
        for staged in self._staged:
            service_id, where = staged.key
            keys = self._history.setdefault(service_id, {})
            spec, times = keys.get(where, (staged.spec, []))
            if spec != staged.spec:
                times = []
            keys[where] = (staged.spec, _counted([*times, now], now, staged.max_attempts,
                                                 staged.window))
            self._schedule(staged.new_id, staged.old_id, staged.delay, staged.wait_old)
        self._staged.clear()

    def discard(self, view: Tables) -> None:
        """The transaction failed: forget what it staged, except replacements that made it into
        the store anyway (a non-atomic write split in chunks)."""
        committed = [s for s in self._staged if view.get(Task, s.new_id) is not None]
        self._staged = committed
        self.commit()

    def advance(self, task: Task) -> None:
        """Start a task left in DesiredState READY (found at startup) after its remaining delay."""
        remaining = max(restart_policy(task.spec).delay - _age(task), 0.0)
        log.info("task %s: desired ready at startup, starting in %.2fs", task.id, remaining)
        self._schedule(task.id, "", remaining, False)

    def clear_service(self, service_id: str) -> None:
        self._history.pop(service_id, None)

    def prune(self, service_id: str, view: Tables) -> None:
        """Forget the attempts of the service's slots or nodes that have no task left."""
        keys = self._history.get(service_id)
        service = view.get(Service, service_id)
        if keys is None or service is None:
            self._history.pop(service_id, None)
            return
        kept = {_key(service, t)[1] for t in view.tasks_of_service(service_id)}
        for where in [w for w in keys if w not in kept]:
            del keys[where]
        if not keys:
            del self._history[service_id]

    def _schedule(self, new_id: str, old_id: str, delay: float, wait_old: bool) -> None:
        if new_id in self._timers:
            return
        coro = self._start_later(new_id, old_id, delay, wait_old)
        self._timers[new_id] = asyncio.create_task(coro, name=f"restart-delay-{new_id}")

    async def _start_later(self, new_id: str, old_id: str, delay: float, wait_old: bool) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            if wait_old and old_id:
                timeout = self._settings.old_task_timeout
                pred = lambda view: old_task_stopped(view, old_id)
                if not await wait_for(self._store, pred, timeout):
                    log.info("task %s: old task %s still running after %ss", new_id, old_id, timeout)

            def start(tx: Tx) -> bool:
                task = tx.view.get(Task, new_id)
                if task is None or task.desired_state != TaskState.READY:
                    return False
                task = copy(task)
                # A job's task runs to completion (swarmkit: it has a JobIteration).
                job = task.job_iteration is not None
                task.desired_state = TaskState.COMPLETE if job else TaskState.RUNNING
                tx.update(task)
                return True

            if await self._store.update(start, retries=3):
                log.info("task %s: desired ready->running (complete for a job)", new_id)
        except ShoalError as exc:
            log.warning("task %s: could not start after restart delay: %s", new_id, exc)
        finally:
            self._timers.pop(new_id, None)

    async def stop(self) -> None:
        timers = list(self._timers.values())
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._timers.clear()
