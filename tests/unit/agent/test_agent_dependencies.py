"""The agent's secrets and configs: held in memory for the tasks that reference them, given to
each task's controller restricted to its own references, forgotten with the last such task,
never written to disk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from shoal.agent.dependencies import Dependencies
from shoal.agent.reporter import Reporter
from shoal.agent.worker import Worker
from shoal.dev.wait import wait_for_async
from shoal.exec.executor import TaskFiles
from shoal.exec.sim import SimExecutor
from shoal.exec.sim.controller import SimController
from shoal.model.dispatch import SecretData
from shoal.model.objects import Task, TaskStatus
from shoal.model.specs import TaskSpec
from shoal.model.states import TaskState

S1, S2 = SecretData(id="s1", name="one", data=b"pw-one-xyzzy"), SecretData(id="s2", name="two", data=b"pw-two-xyzzy")
C1 = SecretData(id="c1", name="conf", data=b"conf-xyzzy")


def make_task(task_id: str, secrets: Sequence[str] = (), configs: Sequence[str] = ()) -> Task:
    spec: dict[str, Any] = {
        "Image": "busybox",
        "Secrets": [{"File": {"Name": s}, "SecretID": s, "SecretName": s} for s in secrets],
        "Configs": [{"File": {"Name": c}, "ConfigID": c, "ConfigName": c} for c in configs],
    }
    return Task(id=task_id, spec=TaskSpec(container_spec=spec), desired_state=TaskState.RUNNING,
                status=TaskStatus(state=TaskState.ASSIGNED))


class Recording(SimExecutor):
    """The sim executor, keeping the TaskFiles each controller was given."""

    files: dict[str, TaskFiles | None]

    def controller(self, task: Task, files: TaskFiles | None = None) -> SimController:
        self.files[task.id] = files
        return super().controller(task, files)


@pytest.fixture
def executor(tmp_path: Path) -> Recording:
    e = Recording(hostname="n", state_dir=tmp_path)
    e.files = {}
    return e


@pytest.fixture
async def worker(executor: Recording, tmp_path: Path) -> AsyncIterator[Worker]:
    w = Worker(executor, tmp_path, Reporter())
    try:
        yield w
    finally:
        await w.close()


def on_disk(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_held_while_referenced_and_restricted(worker: Worker, executor: Recording,
                                                    tmp_path: Path) -> None:
    deps = worker.dependencies
    await worker.assign([make_task("t1", ["s1"]), make_task("t2", ["s1", "s2"], ["c1"])],
                        [S1, S2], [C1])
    assert deps.ids() == ({"s1", "s2"}, {"c1"})
    # each controller sees only its task's references
    t1, t2 = executor.files["t1"], executor.files["t2"]
    assert t1 is not None and t2 is not None
    assert t1.secret("s1") == S1.data and t1.secret("s2") is None and t1.config("c1") is None
    assert t2.secret("s2") == S2.data and t2.config("c1") == C1.data
    await wait_for_async("t2 running", lambda: worker.tasks["t2"].status.state == TaskState.RUNNING)
    worker.persist()
    for d in (S1, S2, C1):
        assert on_disk(tmp_path, d.data) == []

    # t2 goes: what only it referenced goes with it, once it is removed
    await worker.update([], ["t2"])
    await wait_for_async("s2 and c1 forgotten", lambda: deps.ids() == ({"s1"}, set()))
    assert t2.secret("s2") is None

    # an increment brings data for a new task; the last task's removal empties the store
    await worker.update([make_task("t3", ["s2"])], [], [S2])
    assert deps.ids() == ({"s1", "s2"}, set())
    await worker.update([], ["t1", "t3"])
    await wait_for_async("everything forgotten", lambda: len(deps) == 0)


async def test_full_assignments_replace_the_data(worker: Worker) -> None:
    await worker.assign([make_task("t1", ["s1"])], [S1])
    await worker.assign([make_task("t2", ["s2"])], [S2])
    await wait_for_async("t1 gone", lambda: worker.dependencies.held_tasks() == {"t2"})
    assert worker.dependencies.ids() == ({"s2"}, set())


def test_prune_and_release() -> None:
    deps = Dependencies()
    deps.hold(make_task("t1", ["s1"]))
    deps.add([S1, S2], [])
    deps.prune()  # s2: no task references it
    assert deps.ids() == ({"s1"}, set())
    deps.release("t1")
    assert len(deps) == 0 and deps.held_tasks() == set()


def test_task_files_give_the_template_driver_of_their_own_references() -> None:
    deps = Dependencies()
    tmpl = SecretData(id="c2", name="tmpl", data=b"{{.Task.Slot}}", templating="golang")
    deps.add([S1], [C1, tmpl])
    task = make_task("t1", ["s1"], ["c2"])
    deps.hold(task)
    files = deps.files(task)
    assert files.config("c2") == b"{{.Task.Slot}}" and files.templating("config", "c2") == "golang"
    assert files.templating("secret", "s1") == ""
    assert files.templating("config", "c1") == "" and files.config("c1") is None  # not its own
