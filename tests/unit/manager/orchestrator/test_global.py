"""The global orchestrator: one task per eligible node, following node changes."""

from __future__ import annotations

from orch_helpers import FAST, Cluster, spec
from parts import Parts

from shoal.dev.wait import wait_for_async
from shoal.manager.orchestrator import GlobalOrchestrator, ReplicatedOrchestrator
from shoal.model.objects import Task
from shoal.model.states import TaskState
from shoal.store.store import Store


def by_node(cluster: Cluster) -> dict[str, str]:
    return {t.node_id: t.id for t in cluster.live()}


async def test_one_task_per_ready_node_and_joins(store: Store, parts: Parts,
                                                cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    await cluster.node("n3", state="down")
    parts.start(GlobalOrchestrator(store, FAST))
    parts.start(ReplicatedOrchestrator(store, FAST))  # must leave global services alone
    await cluster.service(spec(replicas=None))
    await wait_for_async("tasks on n1, n2", lambda: sorted(by_node(cluster)) == ["n1", "n2"])
    assert all(t.slot == 0 and t.status.state == TaskState.NEW for t in cluster.live())
    await cluster.node("n4")
    await wait_for_async("n4 gets one", lambda: sorted(by_node(cluster)) == ["n1", "n2", "n4"])
    await cluster.set_node("n3", state="ready")
    await wait_for_async("n3 back gets one", lambda: len(by_node(cluster)) == 4)
    assert len(cluster.live()) == 4


async def test_drain_and_down_shut_tasks_down(store: Store, parts: Parts,
                                             cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    parts.start(GlobalOrchestrator(store, FAST))
    await cluster.service(spec(replicas=None))
    before = await wait_for_async("2 tasks", lambda: len(by_node(cluster)) == 2 and by_node(cluster))
    await cluster.set_node("n1", availability="drain")
    await wait_for_async("n1 task shut down", lambda: sorted(by_node(cluster)) == ["n2"])
    t1 = store.view().get(Task, before["n1"])
    assert t1 is not None and t1.desired_state == TaskState.SHUTDOWN
    await cluster.set_node("n2", state="down")
    await wait_for_async("n2 task shut down", lambda: not by_node(cluster))
    assert len(cluster.tasks()) == 2  # shut down, not replaced elsewhere


async def test_constraints_and_label_changes(store: Store, parts: Parts,
                                            cluster: Cluster) -> None:
    await cluster.node("n1", labels={"zone": "a"})
    await cluster.node("n2", labels={"zone": "b"})
    parts.start(GlobalOrchestrator(store, FAST))
    await cluster.service(spec(replicas=None, constraints=["node.labels.zone==a"]))
    await wait_for_async("only n1 matches", lambda: sorted(by_node(cluster)) == ["n1"])
    await cluster.set_node("n2", labels={"zone": "a"})
    await wait_for_async("n2 relabelled in", lambda: sorted(by_node(cluster)) == ["n1", "n2"])
    await cluster.set_node("n1", labels={})
    await wait_for_async("n1 relabelled out", lambda: sorted(by_node(cluster)) == ["n2"])


async def test_failed_global_task_restarted_on_same_node(store: Store, parts: Parts,
                                                        cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(GlobalOrchestrator(store, FAST))
    await cluster.service(spec(replicas=None, delay=0.02))
    (task,) = await wait_for_async("a task", cluster.live)
    await cluster.set_task(task.id, TaskState.FAILED)
    (new,) = await wait_for_async("restart", lambda: [t for t in cluster.live() if t.id != task.id])
    assert new.node_id == "n1"
    await wait_for_async("restart started",
                         lambda: store.view().get(Task, new.id).desired_state == TaskState.RUNNING)


async def test_removed_node_and_deleted_service(store: Store, parts: Parts,
                                               cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    parts.start(GlobalOrchestrator(store, FAST))
    await cluster.service(spec(replicas=None))
    await wait_for_async("2 tasks", lambda: len(by_node(cluster)) == 2)
    from shoal.model.objects import Node

    await store.update(lambda tx: tx.delete(tx.view.get(Node, "n2")))
    await wait_for_async("n2 task shut down", lambda: sorted(by_node(cluster)) == ["n1"])
    await cluster.delete_service("svc1")
    await wait_for_async("all tasks desired remove",
                         lambda: all(t.desired_state == TaskState.REMOVE for t in cluster.tasks()))
