"""Pull progress: a controller that reports progress while preparing gets each message sent
as a status in the PREPARING state; the runner then goes on to READY as usual."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shoal.agent.runner import TaskRunner
from shoal.exec.executor import ProgressReporting
from shoal.model.objects import Task, TaskStatus
from shoal.model.states import TaskState
from tests.unit.agent.test_agent_task import FakeController


class PullingController(FakeController):
    def __init__(self) -> None:
        super().__init__()
        self._progress: Callable[[str], None] | None = None

    def on_progress(self, callback: Callable[[str], None]) -> None:
        self._progress = callback

    async def prepare(self) -> None:
        assert self._progress is not None
        for n in (1, 2):
            self._progress(f"pulling image img:1: {n}/2 layers")
            await asyncio.sleep(0)
        await super().prepare()


async def test_progress_messages_are_reported_while_preparing() -> None:
    controller = PullingController()
    assert isinstance(controller, ProgressReporting)
    seen: list[tuple[str, str]] = []
    done = asyncio.Event()

    async def on_status(task: Task, status: TaskStatus) -> None:
        seen.append((status.state, status.message))
        if status.state == TaskState.RUNNING:
            done.set()

    controller.block_wait = True
    runner = TaskRunner(Task(id="t1", status=TaskStatus(state=TaskState.ASSIGNED), desired_state=TaskState.RUNNING),
                        controller, on_status)
    runner.start()
    await asyncio.wait_for(done.wait(), 5)
    await runner.stop()
    assert seen[:5] == [("accepted", "accepted"), ("preparing", "preparing"),
                        ("preparing", "pulling image img:1: 1/2 layers"),
                        ("preparing", "pulling image img:1: 2/2 layers"), ("ready", "prepared")]
