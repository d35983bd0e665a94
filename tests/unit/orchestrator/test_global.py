"""The global orchestrator: one task per eligible node, following node changes."""

from __future__ import annotations

from orch_helpers import FAST, Cluster, Runner, eventually, spec

from shoal.manager.orchestrator import GlobalOrchestrator, ReplicatedOrchestrator
from shoal.model.objects import Task
from shoal.model.states import TaskState
from shoal.store.store import Store


def by_node(cluster: Cluster) -> dict[str, str]:
    return {t.node_id: t.id for t in cluster.live()}


async def test_one_task_per_ready_node_and_joins(store: Store, runner: Runner,
                                                cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    await cluster.node("n3", state="down")
    runner.start(GlobalOrchestrator(store, FAST))
    runner.start(ReplicatedOrchestrator(store, FAST))  # must leave global services alone
    await cluster.service(spec(replicas=None))
    await eventually(lambda: sorted(by_node(cluster)) == ["n1", "n2"], "tasks on n1, n2")
    assert all(t.slot == 0 and t.status.state == TaskState.NEW for t in cluster.live())
    await cluster.node("n4")
    await eventually(lambda: sorted(by_node(cluster)) == ["n1", "n2", "n4"], "n4 gets one")
    await cluster.set_node("n3", state="ready")
    await eventually(lambda: len(by_node(cluster)) == 4, "n3 back gets one")
    assert len(cluster.live()) == 4


async def test_drain_and_down_shut_tasks_down(store: Store, runner: Runner,
                                             cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    runner.start(GlobalOrchestrator(store, FAST))
    await cluster.service(spec(replicas=None))
    before = await eventually(lambda: len(by_node(cluster)) == 2 and by_node(cluster), "2 tasks")
    await cluster.set_node("n1", availability="drain")
    await eventually(lambda: sorted(by_node(cluster)) == ["n2"], "n1 task shut down")
    t1 = store.view().get(Task, before["n1"])
    assert t1 is not None and t1.desired_state == TaskState.SHUTDOWN
    await cluster.set_node("n2", state="down")
    await eventually(lambda: not by_node(cluster), "n2 task shut down")
    assert len(cluster.tasks()) == 2  # shut down, not replaced elsewhere


async def test_constraints_and_label_changes(store: Store, runner: Runner,
                                            cluster: Cluster) -> None:
    await cluster.node("n1", labels={"zone": "a"})
    await cluster.node("n2", labels={"zone": "b"})
    runner.start(GlobalOrchestrator(store, FAST))
    await cluster.service(spec(replicas=None, constraints=["node.labels.zone==a"]))
    await eventually(lambda: sorted(by_node(cluster)) == ["n1"], "only n1 matches")
    await cluster.set_node("n2", labels={"zone": "a"})
    await eventually(lambda: sorted(by_node(cluster)) == ["n1", "n2"], "n2 relabelled in")
    await cluster.set_node("n1", labels={})
    await eventually(lambda: sorted(by_node(cluster)) == ["n2"], "n1 relabelled out")


async def test_failed_global_task_restarted_on_same_node(store: Store, runner: Runner,
                                                        cluster: Cluster) -> None:
    await cluster.node("n1")
    runner.start(GlobalOrchestrator(store, FAST))
    await cluster.service(spec(replicas=None, delay=0.02))
    (task,) = await eventually(cluster.live, "a task")
    await cluster.set_task(task.id, TaskState.FAILED)
    (new,) = await eventually(lambda: [t for t in cluster.live() if t.id != task.id], "restart")
    assert new.node_id == "n1"
    await eventually(lambda: store.view().get(Task, new.id).desired_state == TaskState.RUNNING,
                     "restart started")


async def test_removed_node_and_deleted_service(store: Store, runner: Runner,
                                               cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    runner.start(GlobalOrchestrator(store, FAST))
    await cluster.service(spec(replicas=None))
    await eventually(lambda: len(by_node(cluster)) == 2, "2 tasks")
    from shoal.model.objects import Node

    await store.update(lambda tx: tx.delete(tx.view.get(Node, "n2")))
    await eventually(lambda: sorted(by_node(cluster)) == ["n1"], "n2 task shut down")
    await cluster.delete_service("svc1")
    await eventually(lambda: all(t.desired_state == TaskState.REMOVE for t in cluster.tasks()),
                     "all tasks desired remove")
