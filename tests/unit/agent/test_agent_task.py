"""The step function, one transition per call, against a fake Controller."""

from __future__ import annotations

import asyncio

import pytest

from shoal.agent.task import StateRegression, step, transition
from shoal.exec import Controller, ExitError, TaskRejected, Temporary, Unhealthy
from shoal.model.objects import ContainerStatus, Task, TaskStatus
from shoal.model.states import TaskState


class FakeController:
    """Implements Controller and ContainerStatuser; records calls, raises what it is told."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: dict[str, Exception] = {}
        self.exit_code = 0
        self.block_wait = False

    async def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    async def prepare(self) -> None:
        await self._call("prepare")

    async def start(self) -> None:
        await self._call("start")

    async def wait(self) -> int:
        await self._call("wait")
        if self.block_wait:
            await asyncio.Event().wait()
        return self.exit_code

    async def shutdown(self) -> None:
        await self._call("shutdown")

    async def terminate(self) -> None:
        await self._call("terminate")

    async def remove(self) -> None:
        await self._call("remove")

    def update(self, task: Task) -> None:
        self.calls.append("update")

    def status(self) -> ContainerStatus:
        return ContainerStatus(container_id="c" * 64, pid=42, exit_code=self.exit_code)


def task_in(state: TaskState, desired: TaskState = TaskState.RUNNING) -> Task:
    return Task(id="t1", status=TaskStatus(state=state), desired_state=desired)


def test_fake_is_a_controller() -> None:
    ctl: Controller = FakeController()
    assert ctl is not None


@pytest.mark.parametrize(("state", "expect", "message", "call"), [
    (TaskState.NEW, TaskState.ACCEPTED, "accepted", None),
    (TaskState.PENDING, TaskState.ACCEPTED, "accepted", None),
    (TaskState.ASSIGNED, TaskState.ACCEPTED, "accepted", None),
    (TaskState.ACCEPTED, TaskState.PREPARING, "preparing", None),
    (TaskState.PREPARING, TaskState.READY, "prepared", "prepare"),
    (TaskState.READY, TaskState.STARTING, "starting", None),
    (TaskState.STARTING, TaskState.RUNNING, "started", "start"),
    (TaskState.RUNNING, TaskState.COMPLETE, "finished", "wait"),
])
async def test_forward_transitions(state: TaskState, expect: TaskState, message: str,
                                   call: str | None) -> None:
    ctl = FakeController()
    status = await step(task_in(state), ctl)
    assert (status.state, status.message, status.err) == (expect, message, "")
    assert ctl.calls == ([call] if call else [])
    if call:
        assert status.container_status is not None
        assert status.container_status.container_id == "c" * 64


@pytest.mark.parametrize(("state", "expect"), [
    (TaskState.NEW, TaskState.ACCEPTED), (TaskState.READY, TaskState.STARTING),
    (TaskState.STARTING, TaskState.RUNNING), (TaskState.RUNNING, TaskState.COMPLETE),
])
async def test_job_task_desired_complete_runs_to_completion(state: TaskState,
                                                            expect: TaskState) -> None:
    status = await step(task_in(state, desired=TaskState.COMPLETE), FakeController())
    assert status.state == expect
    done = task_in(TaskState.COMPLETE, desired=TaskState.COMPLETE)
    assert await step(done, FakeController()) is done.status


async def test_ready_waits_while_desired_ready() -> None:
    task = task_in(TaskState.READY, desired=TaskState.READY)
    assert await step(task, FakeController()) is task.status


async def test_state_past_desired_is_noop() -> None:
    task = task_in(TaskState.RUNNING, desired=TaskState.READY)
    ctl = FakeController()
    assert await step(task, ctl) is task.status and ctl.calls == []


@pytest.mark.parametrize("state", [TaskState.ASSIGNED, TaskState.READY, TaskState.RUNNING])
async def test_desired_shutdown(state: TaskState) -> None:
    ctl = FakeController()
    status = await step(task_in(state, desired=TaskState.SHUTDOWN), ctl)
    assert (status.state, status.message) == (TaskState.SHUTDOWN, "shutdown")
    assert ctl.calls == ["shutdown"]


@pytest.mark.parametrize("state", [TaskState.COMPLETE, TaskState.FAILED, TaskState.REJECTED,
                                   TaskState.SHUTDOWN])
@pytest.mark.parametrize("desired", [TaskState.RUNNING, TaskState.SHUTDOWN, TaskState.REMOVE])
async def test_terminal_is_noop(state: TaskState, desired: TaskState) -> None:
    task = task_in(state, desired)
    ctl = FakeController()
    assert await step(task, ctl) is task.status and ctl.calls == []


async def test_prepare_error_rejects() -> None:
    ctl = FakeController()
    ctl.fail["prepare"] = TaskRejected("pull access denied")
    status = await step(task_in(TaskState.PREPARING), ctl)
    assert (status.state, status.err) == (TaskState.REJECTED, "pull access denied")


async def test_start_error_fails() -> None:
    ctl = FakeController()
    ctl.fail["start"] = RuntimeError("port already in use")
    status = await step(task_in(TaskState.STARTING), ctl)
    assert (status.state, status.err) == (TaskState.FAILED, "port already in use")


async def test_nonzero_exit_fails_with_code() -> None:
    ctl = FakeController()
    ctl.exit_code = 2
    status = await step(task_in(TaskState.RUNNING), ctl)
    assert (status.state, status.err) == (TaskState.FAILED, "task: non-zero exit (2)")
    assert status.container_status is not None and status.container_status.exit_code == 2


async def test_exit_error_and_unhealthy() -> None:
    ctl = FakeController()
    ctl.fail["wait"] = Unhealthy(137)
    status = await step(task_in(TaskState.RUNNING), ctl)
    assert status.state == TaskState.FAILED
    assert status.err == "task: non-zero exit (137): dockerexec: unhealthy container"
    assert status.container_status is not None and status.container_status.exit_code == 137
    ctl.fail["wait"] = ExitError(9)
    status = await step(task_in(TaskState.RUNNING), ctl)
    assert status.container_status is not None and status.container_status.exit_code == 9


async def test_temporary_propagates() -> None:
    ctl = FakeController()
    ctl.fail["prepare"] = Temporary("daemon busy")
    with pytest.raises(Temporary):
        await step(task_in(TaskState.PREPARING), ctl)


def test_going_back_raises() -> None:
    with pytest.raises(StateRegression):
        transition(TaskStatus(state=TaskState.RUNNING), TaskState.PREPARING, "preparing")
