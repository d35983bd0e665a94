"""Worker: reconciles the manager's assignments with the task runners (swarmkit agent/worker.go).

``assign(tasks)`` takes the full set: runners start for new tasks, changed tasks go to their
runner, and tasks no longer assigned are shut down (if still live) and removed, in the
background so a slow stop never holds up the session. ``update(tasks, removed)`` does the same
for an increment. Each task, with its latest status, is kept in TaskStorage; ``init()`` reads
them back so a worker that lost its manager keeps running its tasks (a running sim or runc
container is re-attached: the runner resumes at RUNNING and waits). ``close()`` leaves
containers running; ``shutdown_all()`` (swarm leave) shuts down and removes every task
(killing what has not stopped in 30 s). At ``init()`` an executor that can (``TaskPruning``)
removes the containers of tasks no longer on disk, which a removal cut short leaves.
The data of the secrets and configs the tasks reference is kept in ``dependencies`` (memory
only) and forgotten once no task the worker holds references it. A standalone container's
network attachment task (``Task.is_attachment``) gets no runner (no executor runs one): it goes
to ``attachments`` (attachments.py), where the daemon waits for its address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from shoal.agent.attachments import Attachments
from shoal.agent.dependencies import Dependencies
from shoal.agent.reporter import Reporter
from shoal.agent.runner import TaskRunner
from shoal.agent.storage import TaskStorage
from shoal.agent.task import transition
from shoal.exec.executor import Controller, Executor, TaskPruning
from shoal.model.dispatch import SecretData
from shoal.model.objects import Task, TaskStatus
from shoal.model.states import TaskState

__all__ = ["Worker"]

log = logging.getLogger(__name__)

SHUTDOWN_WAIT = 30.0  # seconds ``shutdown_all`` lets tasks stop before it kills them


class Worker:
    def __init__(self, executor: Executor, state_dir: Path, reporter: Reporter) -> None:
        self._executor = executor
        self._storage = TaskStorage(state_dir)
        self._reporter = reporter
        self._runners: dict[str, TaskRunner] = {}
        self._removing: dict[str, asyncio.Task[None]] = {}
        self.dependencies = Dependencies()
        self.attachments = Attachments(reporter)

    @property
    def tasks(self) -> dict[str, Task]:
        """Assigned tasks as the agent knows them (the agent's status)."""
        return {task_id: r.task for task_id, r in self._runners.items()}

    def controller_of(self, task_id: str) -> Controller | None:
        """The controller of an assigned task (to read its logs)."""
        runner = self._runners.get(task_id)
        return runner.controller if runner is not None else None

    async def init(self) -> None:
        """Remove the containers of tasks no longer on disk (a removal cut short by a stop),
        then restart runners for the tasks on disk and report their last status."""
        tasks = self._storage.load_all()
        if isinstance(self._executor, TaskPruning):
            await self._executor.remove_tasks_except({t.id for t in tasks})
        for task in tasks:
            if task.id not in self._runners:
                log.info("task %s: restored in state %s", task.id, task.status.state)
                self._reporter.report(task.id, task.status)
                self._start(task)

    async def assign(self, tasks: list[Task], secrets: Sequence[SecretData] = (),
                     configs: Sequence[SecretData] = ()) -> None:
        """The full set of tasks assigned to this node, with the data of every secret and
        config they reference."""
        self.dependencies.add(secrets, configs, reset=True)
        wanted = {t.id for t in tasks}
        self.attachments.keep_only(wanted)
        for task_id in [i for i in self._runners if i not in wanted]:
            self._remove(task_id)
        for task_id in self.dependencies.held_tasks() - wanted - set(self._removing):
            self.dependencies.release(task_id)  # a task that got no runner (rejected)
        for task in tasks:
            await self._upsert(task)
        self.dependencies.prune()

    async def update(self, tasks: list[Task], removed: list[str],
                     secrets: Sequence[SecretData] = (),
                     configs: Sequence[SecretData] = ()) -> None:
        """An increment: new or changed tasks, IDs no longer assigned, and the data of the
        secrets and configs the new tasks reference that the node did not have."""
        self.dependencies.add(secrets, configs)
        for task_id in removed:
            if task_id in self.attachments.tasks:
                self.attachments.removed(task_id)
                continue
            self._remove(task_id)
        for task in tasks:
            await self._upsert(task)

    async def _upsert(self, task: Task) -> None:
        if task.is_attachment:
            self.attachments.assigned(task)
            return
        pending = self._removing.get(task.id)
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        self.dependencies.hold(task)
        runner = self._runners.get(task.id)
        if runner is None:
            self._start(task)
        elif runner.update(task):
            self._storage.save(runner.task)

    def _start(self, task: Task) -> None:
        self.dependencies.hold(task)
        try:
            controller = self._executor.controller(task, self.dependencies.files(task))
        except Exception as exc:  # noqa: BLE001 - swarmkit's Resolve: the task cannot run here
            log.warning("task %s: no controller: %s", task.id, exc)
            if task.state < TaskState.REJECTED:
                status = transition(task.status, TaskState.REJECTED, "rejected", err=str(exc))
                self._reporter.report(task.id, status)
            return
        self._storage.save(task)
        runner = TaskRunner(task, controller, self._on_status)
        self._runners[task.id] = runner
        runner.start()

    async def _on_status(self, task: Task, status: TaskStatus) -> None:
        if self._runners.get(task.id) is None:
            return  # removed meanwhile
        if status.state >= TaskState.RUNNING or status.state == TaskState.READY:
            # The steps in between are re-derived on restart (the runner steps again from the
            # last stored state and the controller re-attaches), so they are not written.
            self._storage.save(task)
        self._reporter.report(task.id, status)

    def _remove(self, task_id: str) -> None:
        runner = self._runners.pop(task_id, None)
        if runner is None:
            self.dependencies.release(task_id)
            return
        log.info("task %s: no longer assigned, removing", task_id)

        async def remove() -> None:
            try:
                final = await runner.remove()
                if final is not None:
                    self._reporter.report(task_id, final)
                self._storage.delete(task_id)
                self._reporter.forget(task_id)
            finally:
                self._removing.pop(task_id, None)
                if task_id not in self._runners:  # not assigned again meanwhile
                    self.dependencies.release(task_id)

        self._removing[task_id] = asyncio.create_task(remove(), name=f"task-remove-{task_id}")

    def persist(self) -> None:
        """Write every pending task state to disk now (writes are otherwise a moment behind)."""
        self._storage.flush()

    async def close(self) -> None:
        """Stop every runner, leaving the containers as they are; finish removals."""
        await asyncio.gather(*(r.stop() for r in self._runners.values()))
        self._runners.clear()
        await asyncio.gather(*list(self._removing.values()), return_exceptions=True)
        self._storage.flush()

    async def shutdown_all(self, *, wait: float = SHUTDOWN_WAIT) -> None:
        """Shut down and remove every task and forget them (swarm leave); works after
        ``close()`` too, from the tasks on disk. Tasks still stopping after ``wait`` seconds
        are killed: nothing of any task stays."""
        tasks = self._storage.load_all()
        for task in tasks:
            if task.id not in self._runners:
                try:
                    controller = self._executor.controller(task, self.dependencies.files(task))
                except Exception:  # noqa: BLE001 - nothing to stop then (the prune below)
                    self._storage.delete(task.id)
                    continue
                self._runners[task.id] = TaskRunner(task, controller, self._on_status)
        ids = set(self._runners) | {t.id for t in tasks}
        for task_id in list(self._runners):
            self._remove(task_id)
        removing = list(self._removing.values())
        if removing:
            _, late = await asyncio.wait(removing, timeout=wait)
            if late:
                log.warning("%d tasks still stopping after %.0f s: killing them", len(late), wait)
                for job in late:
                    job.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        if isinstance(self._executor, TaskPruning):
            await self._executor.remove_tasks_except(())
        for task_id in ids:  # also those whose removal was cut short
            self._storage.delete(task_id)
        await self._storage.settle()  # the task files are gone once this returns
