"""Rolling updates and rollbacks: the update supervisor and one Updater per service.

The orchestrators call ``UpdateSupervisor.update(service, slots)`` with the slots they keep after
every reconcile. When a slot is dirty (its task no longer matches the task template or endpoint
spec, or it holds more than one task) an ``Updater`` replaces the dirty slots ``Parallelism`` at a
time, stop-first or start-first, waits for each new task to run, sleeps ``Delay``, and watches for
failures during ``Monitor``. It writes ``Service.UpdateStatus`` the way the docker CLI's progress
display expects (engine-api.md 6.1): updating -> completed only after the last new task ran for
Monitor; paused, or rollback_started (Spec <- PreviousSpec) -> rollback_completed. A new spec
cancels the running Updater; a paused update stays paused until the next service update.
As in swarmkit ``manager/orchestrator/update/updater.go``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from shoal.errors import Unavailable
from shoal.manager.orchestrator.common import (
    OrchestratorSettings,
    fingerprint,
    is_live,
    is_task_dirty,
    new_task,
    old_task_stopped,
    update_policy,
)
from shoal.model.objects import Node, Service, Task, UpdateStatus, now
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx, copy
from shoal.store.tables import Tables
from shoal.store.watch import Change, Subscription, SubscriptionOverflow

__all__ = ["UpdateSupervisor", "Updater", "slot_key"]

log = logging.getLogger(__name__)

_PAUSED = ("paused", "rollback_paused")
_IN_PROGRESS = ("updating", "rollback_started")
_FAILURES = (TaskState.COMPLETE, TaskState.FAILED, TaskState.REJECTED, TaskState.ORPHANED)


def slot_key(service: Service, task: Task) -> str:
    """Replicated tasks are grouped by slot number, global ones by node."""
    return task.node_id if service.spec.mode.is_global else str(task.slot)


def _slot_dirty(view: Tables, service: Service, tasks: list[Task]) -> bool:
    live = [t for t in tasks if is_live(t)]
    if len(live) > 1:
        return True
    return any(is_task_dirty(service, t, view.get(Node, t.node_id)) for t in live)


def _is_rollback(service: Service) -> bool:
    return service.update_status is not None and service.update_status.state == "rollback_started"


class _Failed(Exception):
    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id


class Updater:
    """Replaces the dirty slots of one service for one spec; ``run`` returns when done."""

    def __init__(self, store: Store, service: Service, keys: list[str], *,
                 settings: OrchestratorSettings | None = None) -> None:
        self._store = store
        self._settings = settings or OrchestratorSettings()
        self._service_id = service.id
        self._fp = fingerprint(service)
        self._keys = keys
        self._rollback = _is_rollback(service)
        spec = service.spec
        self._policy = update_policy(spec.rollback_config if self._rollback else spec.update_config)
        self._new: set[str] = set()
        self._started: dict[str, float] = {}
        self._failed: list[str] = []
        self._dirty = 0
        self._sub: Subscription | None = None

    async def run(self) -> None:
        with self._store.subscribe([Task, Node, Service]) as sub:
            self._sub = sub
            view = self._store.view()
            service = self._current(view)
            if service is None:
                return
            by_key = {k: [t for t in view.tasks_of_service(service.id)
                          if slot_key(service, t) == k] for k in self._keys}
            dirty = [k for k in self._keys if _slot_dirty(view, service, by_key[k])]
            if not dirty:
                return
            self._dirty = len(dirty)
            p = self._policy
            log.info("service %s: %s of %d slots (parallelism %d, %s)", service.id,
                     "rollback" if self._rollback else "update", len(dirty), p.parallelism, p.order)
            await self._set_status("start")
            step = p.parallelism or len(dirty)
            try:
                for i in range(0, len(dirty), step):
                    await self._replace(dirty[i : i + step])
                    if p.delay > 0:
                        await self._wait(None, p.delay)
                await self._wait(None, p.monitor)
                await self._set_status("done")
            except _Failed as failed:
                await self._set_status("failed", failed.task_id)

    # -- one batch of slots ----------------------------------------------------------------
    async def _replace(self, keys: list[str]) -> None:
        start_first = self._policy.order == "start-first"

        def plan(tx: Tx) -> tuple[list[str], list[str]]:
            service = self._current(tx.view)
            if service is None:
                return [], []
            created: list[str] = []
            old: list[str] = []
            for key in keys:
                live = [t for t in tx.view.tasks_of_service(service.id)
                        if is_live(t) and slot_key(service, t) == key]
                fresh = [t for t in live
                         if not is_task_dirty(service, t, tx.view.get(Node, t.node_id))]
                fresh.sort(key=lambda t: t.state, reverse=True)
                if fresh:
                    stale = [t for t in live if t.id != fresh[0].id]
                    self._shutdown(tx, stale)
                    continue
                if service.spec.mode.is_global:
                    task = new_task(service, node_id=key)
                else:
                    task = new_task(service, slot=int(key))
                task.desired_state = TaskState.RUNNING if start_first else TaskState.READY
                tx.create(task)
                created.append(task.id)
                old += [t.id for t in live]
                if not start_first:
                    self._shutdown(tx, live)
                log.info("service %s: slot %s: %s replaced by %s", service.id, key,
                         ",".join(t.id for t in live) or "nothing", task.id)
            return created, old

        created, old = await self._store.update(plan, retries=5)
        self._new.update(created)
        if not start_first:
            await self._wait(lambda v: all(old_task_stopped(v, i) for i in old),
                             self._settings.old_task_timeout)
            await self._store.update(lambda tx: self._start(tx, created), retries=5)
        await self._wait(lambda v: all(self._settled(v, i) for i in created), None)
        if start_first and old:
            def stop(tx: Tx) -> None:
                tasks = [tx.view.get(Task, i) for i in old]
                self._shutdown(tx, [t for t in tasks if t is not None and is_live(t)])

            await self._store.update(stop, retries=5)

    @staticmethod
    def _shutdown(tx: Tx, tasks: list[Task]) -> None:
        for task in tasks:
            task = copy(task)
            task.desired_state = TaskState.SHUTDOWN
            tx.update(task)

    @staticmethod
    def _start(tx: Tx, ids: list[str]) -> None:
        for i in ids:
            task = tx.view.get(Task, i)
            if task is not None and task.desired_state == TaskState.READY:
                task = copy(task)
                task.desired_state = TaskState.RUNNING
                tx.update(task)

    @staticmethod
    def _settled(view: Tables, task_id: str) -> bool:
        task = view.get(Task, task_id)
        return task is None or task.state >= TaskState.RUNNING or not is_live(task)

    # -- waiting and failure detection ---------------------------------------------------
    async def _wait(self, pred: Callable[[Tables], bool] | None, timeout: float | None) -> bool:
        """Wait for ``pred(view)`` (None: just the timeout), checking failures on every change."""
        assert self._sub is not None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            view = self._store.view()
            self._check(view)
            if pred is not None and pred(view):
                return True
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            try:
                batch = await self._sub.next_batch(gap=0.0, max_latency=0.0, idle=remaining)
            except SubscriptionOverflow:
                batch = []  # changes dropped: the view, read again above, has them
            self._note(batch)

    def _note(self, batch: list[Change]) -> None:
        t = asyncio.get_running_loop().time()
        for change in batch:
            task = change.new
            if isinstance(task, Task) and task.id in self._new and task.state == TaskState.RUNNING:
                self._started.setdefault(task.id, t)

    def _check(self, view: Tables) -> None:
        t = asyncio.get_running_loop().time()
        for task_id in self._new.difference(self._failed):
            task = view.get(Task, task_id)
            if task is None:
                continue
            if task.state == TaskState.RUNNING:
                self._started.setdefault(task_id, t)
            elif task.state in _FAILURES:
                began = self._started.get(task_id)
                if began is None or t - began < self._policy.monitor:
                    self._failed.append(task_id)
                    log.info("service %s: new task %s %s during update (%d failures)",
                             self._service_id, task_id, task.status.state, len(self._failed))
        p = self._policy
        ratio = len(self._failed) / max(self._dirty, 1)
        if self._failed and p.failure_action != "continue" and ratio > p.max_failure_ratio:
            raise _Failed(self._failed[-1])

    # -- status ----------------------------------------------------------------------------
    def _current(self, view: Tables) -> Service | None:
        service = view.get(Service, self._service_id)
        return service if service is not None and fingerprint(service) == self._fp else None

    async def _set_status(self, phase: str, task_id: str = "") -> None:
        def write(tx: Tx) -> None:
            current = self._current(tx.view)
            if current is None:
                return
            service = copy(current)
            old = service.update_status or UpdateStatus()
            if phase == "start":
                if self._rollback:
                    if old.started_at:
                        return
                    service.update_status = UpdateStatus(
                        state=old.state, message=old.message, started_at=now())
                else:
                    service.update_status = UpdateStatus(
                        state="updating", message="update in progress", started_at=now())
            elif phase == "done":
                state, msg = (("rollback_completed", "rollback completed") if self._rollback
                              else ("completed", "update completed"))
                service.update_status = UpdateStatus(
                    state=state, message=msg, started_at=old.started_at, completed_at=now())
            elif self._rollback:
                service.update_status = UpdateStatus(
                    state="rollback_paused", started_at=old.started_at,
                    message=f"rollback paused due to failure or early termination of task {task_id}")
            elif self._policy.failure_action == "rollback" and service.previous_spec is not None:
                service.spec, service.previous_spec = service.previous_spec, None
                service.update_status = UpdateStatus(
                    state="rollback_started", started_at=now(),
                    message=f"update rolled back due to failure or early termination of task {task_id}")
            else:
                service.update_status = UpdateStatus(
                    state="paused", started_at=old.started_at,
                    message=f"update paused due to failure or early termination of task {task_id}")
            tx.update(service)
            log.info("service %s: update status %s->%s", service.id, old.state or "none",
                     service.update_status.state)

        await self._store.update(write, retries=5)


class UpdateSupervisor:
    """One Updater per service; a different spec cancels the running one."""

    def __init__(self, store: Store, settings: OrchestratorSettings | None = None) -> None:
        self._store = store
        self._settings = settings or OrchestratorSettings()
        self._running: dict[str, tuple[bytes, bool, asyncio.Task[None]]] = {}

    async def update(self, service: Service, slots: list[list[Task]]) -> None:
        """Start an update of ``service`` if any of the kept ``slots`` is out of date."""
        if service.update_status is not None and service.update_status.state in _PAUSED:
            return
        fp, rollback = fingerprint(service), _is_rollback(service)
        current = self._running.get(service.id)
        if current is not None and not current[2].done():
            if current[0] == fp and current[1] == rollback:
                return
            current[2].cancel()
            log.info("service %s: spec changed, updater restarted", service.id)
        view = self._store.view()
        if not any(_slot_dirty(view, service, slot) for slot in slots):
            self._running.pop(service.id, None)
            if service.update_status and service.update_status.state in _IN_PROGRESS:
                await self._complete(service)  # nothing left to replace (swarmkit does the same)
            return
        keys = sorted({slot_key(service, t) for slot in slots for t in slot})
        updater = Updater(self._store, service, keys, settings=self._settings)
        task = asyncio.create_task(self._guard(updater), name=f"updater-{service.id}")
        self._running[service.id] = (fp, rollback, task)

    async def _complete(self, service: Service) -> None:
        fp = fingerprint(service)

        def write(tx: Tx) -> None:
            current = tx.view.get(Service, service.id)
            st = current.update_status if current is not None else None
            if current is None or st is None or fingerprint(current) != fp:
                return
            if st.state not in _IN_PROGRESS:
                return
            current = copy(current)
            rollback = st.state == "rollback_started"
            current.update_status = UpdateStatus(
                state="rollback_completed" if rollback else "completed",
                message="rollback completed" if rollback else "update completed",
                started_at=st.started_at, completed_at=now())
            tx.update(current)
            log.info("service %s: no slot left to update, update status %s->%s", service.id,
                     st.state, current.update_status.state)

        await self._store.update(write)

    async def _guard(self, updater: Updater) -> None:
        try:
            await updater.run()
        except asyncio.CancelledError:
            raise
        except Unavailable as exc:
            log.warning("service %s: updater stopped: %s", updater._service_id, exc.message)
        except Exception:
            log.exception("service %s: updater failed", updater._service_id)

    def cancel(self, service_id: str) -> None:
        current = self._running.pop(service_id, None)
        if current is not None:
            current[2].cancel()

    async def stop(self) -> None:
        tasks = [t for _, _, t in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
