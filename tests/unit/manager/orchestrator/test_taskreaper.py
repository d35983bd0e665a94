"""The task reaper's rules, on hand-made tasks, and the exported surface of the package."""

from __future__ import annotations

from orch_helpers import FAST, Cluster, spec
from parts import Parts

from shoal.dev.wait import wait_for_async
from shoal.manager import orchestrator
from shoal.manager.orchestrator import TaskReaper, new_task
from shoal.manager.orchestrator.taskreaper import reapable
from shoal.model.objects import Cluster as ClusterObj
from shoal.model.objects import Node, Service, Task
from shoal.model.specs import ClusterSpec, OrchestrationConfig, ServiceSpec
from shoal.model.states import TaskState
from shoal.store.store import Store


def task(svc: Service, slot: int, state: TaskState, desired: TaskState, stamp: str, node: str = "n1") -> Task:
    t = new_task(svc, slot=slot, node_id=node)
    t.status.state, t.desired_state, t.status.timestamp = state, desired, stamp
    return t


async def test_reapable_rules(store: Store) -> None:
    svc = Service(id="s1", spec=spec(replicas=1))
    tasks = [task(svc, 1, TaskState.RUNNING, TaskState.RUNNING, "2024-01-01T00:00:09.000000Z")]
    tasks += [task(svc, 1, TaskState.FAILED, TaskState.SHUTDOWN, f"2024-01-01T00:00:0{i}.000000Z")
              for i in range(7)]
    tasks += [
        task(svc, 2, TaskState.RUNNING, TaskState.REMOVE, "2024-01-01T00:00:00.000000Z"),  # still stopping
        task(svc, 3, TaskState.SHUTDOWN, TaskState.REMOVE, "2024-01-01T00:00:00.000000Z"),  # stopped
        task(svc, 4, TaskState.PENDING, TaskState.REMOVE, "2024-01-01T00:00:00.000000Z", node=""),  # never placed
        task(svc, 5, TaskState.RUNNING, TaskState.REMOVE, "2024-01-01T00:00:00.000000Z", node="gone"),
    ]

    def fill(tx):  # type: ignore[no-untyped-def]
        tx.create(svc)
        tx.create(Node(id="n1"))
        for t in tasks:
            tx.create(t)

    await store.update(fill)
    out = {t.id for t in reapable(store.view(), "s1")}
    history = tasks[1:8]  # oldest first
    assert out == {t.id for t in history[:3]} | {tasks[9].id, tasks[10].id, tasks[11].id}

    # The cluster's retention limit applies; a negative one keeps all history.
    cluster = ClusterObj(id="c1", spec=ClusterSpec(
        orchestration=OrchestrationConfig(task_history_retention_limit=2)))
    await store.update(lambda tx: tx.create(cluster))
    assert len([t for t in reapable(store.view(), "s1") if t.slot == 1]) == 6


async def test_reaper_runs_and_respects_cluster_limit(store: Store, parts: Parts,
                                                      cluster: Cluster) -> None:
    await store.update(lambda tx: tx.create(ClusterObj(id="c1", spec=ClusterSpec(
        orchestration=OrchestrationConfig(task_history_retention_limit=-1)))))
    svc = Service(id="s1", spec=ServiceSpec(name="x"))
    old = [task(svc, 1, TaskState.FAILED, TaskState.SHUTDOWN, f"2024-01-01T00:00:0{i}.000000Z") for i in range(7)]
    await store.update(lambda tx: [tx.create(svc), tx.create(Node(id="n1"))] + [
        tx.create(t) for t in old])
    parts.start(TaskReaper(store, FAST))
    await cluster.update_service("s1", lambda s: None)
    assert len(store.view().tasks_of_service("s1")) == 7  # negative limit keeps everything

    def limit(tx):  # type: ignore[no-untyped-def]
        from shoal.store.store import copy

        c = copy(tx.view.get(ClusterObj, "c1"))
        c.spec.orchestration.task_history_retention_limit = 3
        tx.update(c)

    await store.update(limit)
    await wait_for_async("trimmed to 3", lambda: len(store.view().tasks_of_service("s1")) == 3)
    kept = sorted(t.status.timestamp for t in store.view().tasks_of_service("s1"))
    assert kept == sorted(t.status.timestamp for t in old)[-3:]


def test_exported_members() -> None:
    for name in orchestrator.__all__:
        assert hasattr(orchestrator, name), name
    assert {"ReplicatedOrchestrator", "GlobalOrchestrator", "TaskReaper", "orchestrators",
            "RestartSupervisor", "UpdateSupervisor"} <= set(orchestrator.__all__)


async def test_orchestrators_convenience(store: Store) -> None:
    parts = orchestrator.orchestrators(store)
    assert [type(p).__name__ for p in parts] == [
        "ReplicatedOrchestrator", "GlobalOrchestrator", "JobOrchestrator", "TaskReaper"]
