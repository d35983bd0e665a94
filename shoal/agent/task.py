"""The task state machine as one step function (swarmkit's ``exec.Do``).

``step(task, controller)`` makes at most one transition and returns the new TaskStatus (the
very same ``task.status`` object when there is nothing to do); the TaskRunner (runner.py) calls
it again and reports each status. State only moves forward; going back raises. Rules, in order:

    desired >= SHUTDOWN   terminal (>= COMPLETE): noop; else shutdown() -> SHUTDOWN "shutdown"
    state > desired       noop (READY reached while desired is READY: wait for the manager)
    NEW|PENDING|ASSIGNED  -> ACCEPTED  "accepted"
    ACCEPTED              -> PREPARING "preparing"
    PREPARING             prepare() -> READY "prepared"
    READY                 -> STARTING "starting"  (only if desired > READY)
    STARTING              start() -> RUNNING "started"
    RUNNING               wait() -> COMPLETE "finished" (exit 0)

Errors: before STARTING -> REJECTED, at or after -> FAILED, with Err set; an ExitError's code
goes to ContainerStatus.ExitCode. ``Temporary`` and cancellation propagate: the runner retries.
"""

from __future__ import annotations

import msgspec

from shoal import metrics
from shoal.exec.errors import ExitError, Temporary
from shoal.exec.executor import ContainerStatuser, Controller
from shoal.model.objects import ContainerStatus, Task, TaskStatus, now
from shoal.model.states import TaskState

__all__ = ["StateRegression", "step", "transition"]


class StateRegression(ValueError):
    """A transition that would move a task's state backwards (a bug)."""


def transition(status: TaskStatus, state: TaskState, message: str, *, err: str = "",
               container: ContainerStatus | None = None) -> TaskStatus:
    """A new status in ``state``; raises StateRegression if that is not forward."""
    previous = status.state
    if state < previous:
        raise StateRegression(f"task state may not go back: {previous}->{state}")
    return TaskStatus(
        timestamp=now(),
        state=state,
        message=message,
        err=err,
        container_status=container if container is not None else status.container_status,
        port_status=status.port_status,
    )


def _container(controller: Controller, exit_code: int | None = None) -> ContainerStatus | None:
    if not isinstance(controller, ContainerStatuser):
        return None if exit_code is None else ContainerStatus(exit_code=exit_code)
    cs = controller.status()
    if exit_code is not None and cs.exit_code != exit_code:
        cs = msgspec.structs.replace(cs, exit_code=exit_code)
    return cs


def _fatal(task: Task, controller: Controller, exc: Exception) -> TaskStatus:
    """The status for an error: REJECTED before STARTING, FAILED at or after."""
    state = task.state
    code = exc.code if isinstance(exc, ExitError) else None
    err = str(exc) or type(exc).__name__
    if state < TaskState.STARTING:
        return transition(task.status, TaskState.REJECTED, "rejected", err=err,
                          container=_container(controller, code))
    return transition(task.status, TaskState.FAILED, "failed", err=err,
                      container=_container(controller, code))


async def step(task: Task, controller: Controller) -> TaskStatus:
    """Advance ``task`` by at most one state; see the module docstring for the rules."""
    state, desired, status = task.state, task.desired_state, task.status
    try:
        if desired >= TaskState.SHUTDOWN:
            if state >= TaskState.COMPLETE:
                return status
            await controller.shutdown()
            return transition(status, TaskState.SHUTDOWN, "shutdown",
                              container=_container(controller))
        if state > desired or state >= TaskState.COMPLETE:
            return status
        if state <= TaskState.ASSIGNED:
            return transition(status, TaskState.ACCEPTED, "accepted")
        if state == TaskState.ACCEPTED:
            return transition(status, TaskState.PREPARING, "preparing")
        if state == TaskState.PREPARING:
            with metrics.timed(metrics.CONTAINER_ACTIONS.labels("create")):
                await controller.prepare()
            return transition(status, TaskState.READY, "prepared",
                              container=_container(controller))
        if state == TaskState.READY:
            if desired <= TaskState.READY:
                return status
            return transition(status, TaskState.STARTING, "starting")
        if state == TaskState.STARTING:
            with metrics.timed(metrics.CONTAINER_ACTIONS.labels("start")):
                await controller.start()
            return transition(status, TaskState.RUNNING, "started",
                              container=_container(controller))
        # RUNNING (desired RUNNING or COMPLETE)
        code = await controller.wait()
        if code != 0:
            raise ExitError(code)
        return transition(status, TaskState.COMPLETE, "finished",
                          container=_container(controller, code))
    except (Temporary, StateRegression):
        raise
    except Exception as exc:  # noqa: BLE001 - every other controller error ends the task
        return _fatal(task, controller, exc)
