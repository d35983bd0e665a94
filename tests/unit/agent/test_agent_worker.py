"""The worker with the sim executor: reconcile, desired-state changes, restore from disk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from shoal.agent.reporter import Reporter
from shoal.agent.storage import TaskStorage
from shoal.agent.worker import Worker
from shoal.dev.wait import wait_for_async
from shoal.exec.sim import SimExecutor
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
