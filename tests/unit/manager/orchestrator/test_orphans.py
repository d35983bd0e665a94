"""Tasks of a node that stays down become ORPHANED after the down period (swarmkit's 24 h), then
the task reaper can delete them; a node that comes back before keeps its tasks."""

from __future__ import annotations

from orch_helpers import Cluster, spec

from shoal.manager.dispatcher.orphans import Orphaner
from shoal.manager.orchestrator.taskreaper import reapable
from shoal.model.objects import Task, TaskStatus
from shoal.model.states import TaskState
from shoal.store.store import Store


async def _task(store: Store, task_id: str, node_id: str, state: TaskState,
                desired: TaskState = TaskState.SHUTDOWN) -> None:
    task = Task(id=task_id, service_id="svc1", node_id=node_id, slot=1, desired_state=desired,
                status=TaskStatus(state=state))
    await store.update(lambda tx: tx.create(task))


def _state(store: Store, task_id: str) -> TaskState:
    task = store.view().get(Task, task_id)
    assert task is not None
    return task.status.state


async def test_a_node_down_for_the_period_has_its_tasks_orphaned_then_reaped(
        store: Store, cluster: Cluster) -> None:
    await cluster.service(spec(replicas=1))
    await cluster.node("n1", state="down")
    await cluster.node("n2")
    # its service removed: the task waits for its node to say it ended, which will not happen
    await _task(store, "running", "n1", TaskState.RUNNING, desired=TaskState.REMOVE)
    await _task(store, "ended", "n1", TaskState.FAILED)
    await _task(store, "elsewhere", "n2", TaskState.RUNNING, desired=TaskState.RUNNING)
    orphaner = Orphaner(store, after=10.0)

    assert await orphaner.tick(100.0) == []  # its clock starts now
    assert await orphaner.tick(109.0) == []
    assert _state(store, "running") == TaskState.RUNNING
    assert "running" not in {t.id for t in reapable(store.view(), "svc1")}
    assert await orphaner.tick(110.0) == ["running"]
    assert _state(store, "running") == TaskState.ORPHANED
    assert _state(store, "ended") == TaskState.FAILED  # it had ended: left as it was
    assert _state(store, "elsewhere") == TaskState.RUNNING
    assert await orphaner.tick(200.0) == []  # once per down spell
    # ended now, as the reaper counts: it can be deleted
    assert "running" in {t.id for t in reapable(store.view(), "svc1")}


async def test_a_node_back_before_the_period_keeps_its_tasks(store: Store, cluster: Cluster) -> None:
    await cluster.service(spec(replicas=1))
    await cluster.node("n1", state="down")
    await _task(store, "t", "n1", TaskState.RUNNING)
    orphaner = Orphaner(store, after=10.0)
    assert await orphaner.tick(0.0) == []
    await cluster.set_node("n1", state="ready")
    assert await orphaner.tick(9.0) == []
    await cluster.set_node("n1", state="down")
    assert await orphaner.tick(15.0) == []  # a new spell: its clock started again at 15
    assert _state(store, "t") == TaskState.RUNNING
    assert await orphaner.tick(25.0) == ["t"]
