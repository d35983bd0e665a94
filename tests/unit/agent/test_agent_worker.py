"""The worker with the sim executor: reconcile, desired-state changes, restore from disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import msgspec
import pytest

from shoal.agent.reporter import Reporter
from shoal.agent.storage import TaskStorage
from shoal.agent.worker import Worker
from shoal.dev.wait import wait_for_async
from shoal.exec.executor import TaskFiles, TaskPruning
from shoal.exec.sim import SimController, SimExecutor
from shoal.model.objects import Task, TaskStatus
from shoal.model.specs import TaskSpec
from shoal.model.states import TaskState


def make_task(task_id: str, *env: str, desired: TaskState = TaskState.RUNNING) -> Task:
    spec: dict[str, Any] = {"Image": "busybox", "Env": list(env)}
    return Task(id=task_id, spec=TaskSpec(container_spec=spec), desired_state=desired,
                status=TaskStatus(state=TaskState.ASSIGNED))


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Worker]:
    w = Worker(SimExecutor(hostname="n", state_dir=tmp_path), tmp_path, Reporter())
    try:
        yield w
    finally:
        await w.close()


def state(worker: Worker, task_id: str) -> str:
    task = worker.tasks.get(task_id)
    return task.status.state if task else "<none>"


async def test_full_assign_runs_and_removes(worker: Worker, tmp_path: Path) -> None:
    await worker.assign([make_task("a"), make_task("b", "SIM_EXIT_AFTER=0", "SIM_EXIT_CODE=1")])
    await wait_for_async("task a running", lambda: state(worker, "a") == TaskState.RUNNING)
    await wait_for_async("task b failed", lambda: state(worker, "b") == TaskState.FAILED)
    assert worker.tasks["b"].status.err == "task: non-zero exit (1)"
    worker.persist()
    assert sorted(p.stem for p in (tmp_path / "worker").glob("*.json")) == ["a", "b"]
    await worker.assign([make_task("b", "SIM_EXIT_AFTER=0", "SIM_EXIT_CODE=1")])
    await wait_for_async("container a removed", lambda: not (tmp_path / "sim" / "a").exists())
    await wait_for_async("a.json removed", lambda: not (tmp_path / "worker" / "a.json").exists())
    assert list(worker.tasks) == ["b"]


async def test_desired_shutdown_interrupts_wait(worker: Worker) -> None:
    await worker.assign([make_task("a")])
    await wait_for_async("task a running", lambda: state(worker, "a") == TaskState.RUNNING)
    await worker.update([make_task("a", desired=TaskState.SHUTDOWN)], [])
    await wait_for_async("task a shut down", lambda: state(worker, "a") == TaskState.SHUTDOWN)


async def test_desired_ready_stops_at_ready(worker: Worker) -> None:
    await worker.assign([make_task("a", desired=TaskState.READY)])
    await wait_for_async("task a ready", lambda: state(worker, "a") == TaskState.READY)
    await worker.update([make_task("a", desired=TaskState.RUNNING)], [])
    await wait_for_async("task a running", lambda: state(worker, "a") == TaskState.RUNNING)


async def test_manager_status_does_not_roll_back(worker: Worker) -> None:
    await worker.assign([make_task("a")])
    await wait_for_async("task a running", lambda: state(worker, "a") == TaskState.RUNNING)
    await worker.assign([make_task("a")])  # the manager still thinks "assigned"
    assert state(worker, "a") == TaskState.RUNNING


async def test_reject_and_incremental_remove(worker: Worker, tmp_path: Path) -> None:
    await worker.update([make_task("r", "SIM_REJECT=no such image")], [])
    await wait_for_async("task r rejected", lambda: state(worker, "r") == TaskState.REJECTED)
    assert worker.tasks["r"].status.err == "no such image"
    await worker.update([], ["r"])
    await wait_for_async("r.json removed", lambda: not (tmp_path / "worker" / "r.json").exists())


async def test_restore_reattaches_running_task(tmp_path: Path) -> None:
    reporter = Reporter()
    first = Worker(SimExecutor(hostname="n", state_dir=tmp_path), tmp_path, reporter)
    await first.assign([make_task("a")])
    await wait_for_async("task a running", lambda: state(first, "a") == TaskState.RUNNING)
    cid = first.tasks["a"].status.container_status
    await first.close()  # the daemon stops; the sim container keeps "running"
    stored = TaskStorage(tmp_path).load_all()
    assert [(t.id, t.status.state) for t in stored] == [("a", "running")]

    executor = SimExecutor(hostname="n", state_dir=tmp_path)
    second = Worker(executor, tmp_path, Reporter())
    try:
        await second.init()
        assert state(second, "a") == TaskState.RUNNING
        assert second.tasks["a"].status.container_status == cid  # not restarted
        executor.control_path("a").write_text("exit 0")
        await wait_for_async("restored task completes", lambda: state(second, "a") == TaskState.COMPLETE)
        second.persist()
        data = msgspec.json.decode((tmp_path / "worker" / "a.json").read_bytes(), type=Task)
        assert data.status.state == TaskState.COMPLETE
    finally:
        await second.close()


async def test_shutdown_all(worker: Worker, tmp_path: Path) -> None:
    await worker.assign([make_task("a"), make_task("b")])
    await wait_for_async("task b running", lambda: state(worker, "b") == TaskState.RUNNING)
    await worker.shutdown_all()
    assert worker.tasks == {}
    assert list((tmp_path / "worker").glob("*.json")) == []
    assert not any((tmp_path / "sim").iterdir())


class StuckController(SimController):
    """A container that never stops on its own."""

    async def shutdown(self) -> None:
        await asyncio.Event().wait()


class PruningExecutor(SimExecutor):
    """The sim executor with a TaskPruning record: which tasks each prune kept."""

    def __init__(self, state_dir: Path, *, stuck: bool = False) -> None:
        super().__init__(hostname="n", state_dir=state_dir)
        self.kept: list[set[str]] = []
        self._stuck = stuck

    def controller(self, task: Task, files: TaskFiles | None = None) -> SimController:
        if self._stuck:
            return StuckController(task, self.control_path(task.id).parent)
        return super().controller(task, files)

    async def remove_tasks_except(self, keep: Collection[str]) -> list[str]:
        self.kept.append(set(keep))
        return []


async def test_init_removes_the_containers_of_tasks_no_longer_on_disk(tmp_path: Path) -> None:
    storage = TaskStorage(tmp_path)
    storage.save(make_task("a"))
    storage.flush()
    executor = PruningExecutor(tmp_path)
    w = Worker(executor, tmp_path, Reporter())
    assert isinstance(executor, TaskPruning)
    try:
        await w.init()
        assert executor.kept == [{"a"}] and list(w.tasks) == ["a"]
    finally:
        await w.close()


async def test_shutdown_all_kills_what_does_not_stop_in_time(tmp_path: Path) -> None:
    executor = PruningExecutor(tmp_path, stuck=True)
    w = Worker(executor, tmp_path, Reporter())
    try:
        await w.assign([make_task("a"), make_task("b")])
        await wait_for_async("both running", lambda: all(
            state(w, t) == TaskState.RUNNING for t in "ab"))
        await asyncio.wait_for(w.shutdown_all(wait=0.2), 10)  # not the stuck shutdowns' forever
        assert executor.kept == [set()]  # every task's container removed by the prune
        assert w.tasks == {} and list((tmp_path / "worker").glob("*.json")) == []
    finally:
        await w.close()
