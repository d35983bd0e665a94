"""TaskRunner: one ordered runner per task (swarmkit agent/task.go's taskManager).

The runner calls ``step`` until it has nothing to do, reporting each new status through
``on_status`` (the worker persists it and hands it to the reporter), then sleeps until the
task changes. A newer version of the task with another desired state cancels the step in
flight (a ``wait()`` on a running task, a slow ``start()``) and steps again. The agent owns the
status: a task from the manager keeps the runner's status unless the manager's is further on.
``stop()`` leaves the container as it is (daemon restart); ``remove()`` shuts it down if still
live and removes it (the task is no longer assigned). A controller that reports progress while
preparing (an image pull) has each message sent as a status in the PREPARING state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec

from shoal import aio, metrics
from shoal.agent.task import step, transition
from shoal.exec.errors import RETRY_DELAY, Temporary
from shoal.exec.executor import ContainerStatuser, Controller, ProgressReporting
from shoal.model.objects import Task, TaskStatus, now
from shoal.model.states import TaskState

__all__ = ["StatusCallback", "TaskRunner"]

log = logging.getLogger(__name__)

StatusCallback = Callable[[Task, TaskStatus], Awaitable[None]]


def merge(current: Task, incoming: Task) -> Task:
    """``incoming`` with the agent's status (unless the manager's is further) and a desired
    state that never goes back."""
    status = current.status if current.state >= incoming.state else incoming.status
    desired = max(current.desired_state, incoming.desired_state)
    return msgspec.structs.replace(incoming, status=status, desired_state=desired)


class TaskRunner:
    def __init__(self, task: Task, controller: Controller, on_status: StatusCallback, *,
                 retry_delay: float = RETRY_DELAY) -> None:
        self._task = task
        self._controller = controller
        self._on_status = on_status
        self._retry = aio.Backoff(initial=retry_delay, cap=retry_delay)  # fixed, as swarmkit's
        self._changed = asyncio.Event()
        self._inflight: asyncio.Task[TaskStatus] | None = None
        self._job: asyncio.Task[None] | None = None
        self._reports: set[asyncio.Future[None]] = set()
        if isinstance(controller, ProgressReporting):
            controller.on_progress(self._progress)

    @property
    def task(self) -> Task:
        """The task as the runner knows it: the manager's spec, the agent's status."""
        return self._task

    @property
    def controller(self) -> Controller:
        return self._controller

    def start(self) -> None:
        if self._job is None:
            self._job = asyncio.create_task(self._run(), name=f"task-runner-{self._task.id}")

    def update(self, task: Task) -> bool:
        """Take a newer version of the task; returns whether anything changed."""
        old = self._task
        new = merge(old, task)
        if new == old:
            return False
        self._task = new
        if new.spec != old.spec:
            self._controller.update(new)
        if new.desired_state != old.desired_state and self._inflight is not None:
            log.info("task %s: desired %s->%s, interrupting the step in flight",
                     new.id, old.desired_state, new.desired_state)
            self._inflight.cancel()
        self._changed.set()
        return True

    def _progress(self, message: str) -> None:
        """A progress message while preparing (image pull) or starting (the container runs,
        not yet healthy): reported in the same state, with the container's status."""
        if self._task.state not in (TaskState.PREPARING, TaskState.STARTING):
            return
        old = self._task.status
        container = old.container_status
        # only once it may run: a pull reports progress often, and this reads the disk
        if self._task.state == TaskState.STARTING and isinstance(self._controller,
                                                                 ContainerStatuser):
            now_status = self._controller.status()
            container = now_status if now_status.container_id else container
        if message == old.message and container == old.container_status:
            return
        status = msgspec.structs.replace(old, message=message, timestamp=now(),
                                         container_status=container)
        self._task = msgspec.structs.replace(self._task, status=status)
        report: asyncio.Future[None] = asyncio.ensure_future(self._on_status(self._task, status))
        self._reports.add(report)
        report.add_done_callback(self._reports.discard)

    async def stop(self) -> None:
        """Stop stepping; the container is left as it is."""
        job, self._job = self._job, None
        if job is not None:
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)

    async def remove(self) -> TaskStatus | None:
        """Stop stepping, shut the container down if still live, and remove it; returns the
        SHUTDOWN status if it was live."""
        await self.stop()
        final = None
        try:
            if self._task.state < TaskState.COMPLETE:
                await self._controller.shutdown()
                final = transition(self._task.status, TaskState.SHUTDOWN, "shutdown")
            with metrics.timed(metrics.CONTAINER_ACTIONS.labels("delete")):
                await self._controller.remove()
        except Exception:
            log.exception("task %s: removing its container failed", self._task.id)
        return final

    async def _idle(self, timeout: float | None) -> None:
        try:
            async with aio.timeout(timeout):  # not wait_for: see session.py
                await self._changed.wait()
        except TimeoutError:
            pass

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            task = self._task
            inflight = asyncio.create_task(step(task, self._controller),
                                           name=f"task-step-{task.id}")
            self._inflight = inflight
            try:
                await asyncio.wait({inflight})
            finally:
                self._inflight = None
                if not inflight.done():  # we were cancelled: stop the step too
                    inflight.cancel()
                    await asyncio.wait({inflight})
            if inflight.cancelled():
                continue  # a newer version interrupted the step: step again
            exc = inflight.exception()
            if isinstance(exc, Temporary):
                delay = self._retry.next()
                log.warning("task %s: %s; retrying in %.1f s", task.id, exc, delay)
                await self._idle(delay)  # a change of the task cuts the wait short
                continue
            if exc is not None:
                log.error("task %s: step failed: %r", task.id, exc, exc_info=exc)
                await self._idle(None)
                continue
            status = inflight.result()
            if status is task.status:
                await self._idle(None)  # nothing to do until the task changes
                continue
            log.info("task %s: %s->%s %s", task.id, task.state, status.state,
                     status.err or status.message)
            self._task = msgspec.structs.replace(self._task, status=status)
            try:
                await self._on_status(self._task, status)
            except Exception:
                log.exception("task %s: reporting status failed", task.id)
