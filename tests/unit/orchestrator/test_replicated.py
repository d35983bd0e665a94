"""The replicated orchestrator with its restart supervisor, through a real store."""

from __future__ import annotations

import asyncio

from orch_helpers import FAST, Cluster, Runner, eventually, spec

from shoal.manager.orchestrator import ReplicatedOrchestrator, TaskReaper
from shoal.model.objects import Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Store


async def test_scale_up_and_down_by_slots(store: Store, runner: Runner, cluster: Cluster) -> None:
    runner.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=3))
    tasks = await eventually(lambda: len(cluster.live()) == 3 and cluster.live(), "3 tasks")
    assert [t.slot for t in tasks] == [1, 2, 3]
    assert all(t.status.state == TaskState.NEW and t.desired_state == TaskState.RUNNING for t in tasks)
    assert all(t.spec.image == "nginx:1" and t.node_id == "" for t in tasks)

    async def scale(n: int) -> None:
        def fn(svc: Service) -> None:
            assert svc.spec.mode.replicated is not None
            svc.spec.mode.replicated.replicas = n

        await cluster.update_service("svc1", fn)

    await scale(5)
    await eventually(lambda: [t.slot for t in cluster.live()] == [1, 2, 3, 4, 5], "slots 1..5")
    await scale(2)
    await eventually(lambda: len(cluster.live()) == 2, "2 live tasks")
    removed = [t for t in cluster.tasks() if t.desired_state == TaskState.REMOVE]
    assert len(removed) == 3
    # Scaling never touches UpdateStatus (the updater is not involved).
    assert cluster.get().update_status is None


async def test_scale_up_fills_lowest_free_slots(store: Store, runner: Runner,
                                               cluster: Cluster) -> None:
    await cluster.service(spec(replicas=3))
    from shoal.manager.orchestrator import new_task

    svc = cluster.get()
    await store.update(lambda tx: [tx.create(new_task(svc, slot=s)) for s in (2, 5)])
    runner.start(ReplicatedOrchestrator(store, FAST))
    await eventually(lambda: [t.slot for t in cluster.live()] == [1, 2, 5], "slot 1 added")


async def test_scale_down_prefers_most_loaded_node(store: Store, runner: Runner,
                                                  cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    await cluster.service(spec(replicas=3))
    runner.start(ReplicatedOrchestrator(store, FAST))
    tasks = await eventually(lambda: len(cluster.live()) == 3 and cluster.live(), "3 tasks")
    for task, node in zip(tasks, ["n1", "n1", "n2"]):
        await cluster.set_task(task.id, TaskState.RUNNING, node)

    def fn(svc: Service) -> None:
        assert svc.spec.mode.replicated is not None
        svc.spec.mode.replicated.replicas = 2

    await cluster.update_service("svc1", fn)
    live = await eventually(lambda: len(cluster.live()) == 2 and cluster.live(), "2 live")
    assert sorted(t.node_id for t in live) == ["n1", "n2"]


async def test_failed_task_replaced_in_same_slot_after_delay(
    store: Store, runner: Runner, cluster: Cluster
) -> None:
    await cluster.node("n1")
    runner.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=1, delay=0.15))
    (task,) = await eventually(cluster.live, "one task")
    await cluster.set_task(task.id, TaskState.RUNNING, "n1")
    loop = asyncio.get_running_loop()
    failed_at = loop.time()
    await cluster.set_task(task.id, TaskState.FAILED)

    def replacement() -> Task | None:
        return next((t for t in cluster.live() if t.id != task.id), None)

    new = await eventually(replacement, "a replacement task")
    assert new.slot == 1 and new.desired_state == TaskState.READY and new.node_id == ""
    old = store.view().get(Task, task.id)
    assert old is not None and old.desired_state == TaskState.SHUTDOWN
    await eventually(lambda: (r := replacement()) and r.desired_state == TaskState.RUNNING,
                     "replacement desired running")
    assert loop.time() - failed_at >= 0.15


async def test_restart_condition_none_and_on_failure(store: Store, runner: Runner,
                                                    cluster: Cluster) -> None:
    await cluster.node("n1")
    runner.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=1, condition="none"), "none")
    await cluster.service(spec(replicas=1, condition="on-failure"), "onfail")
    (a,) = await eventually(lambda: cluster.live("none"), "task of none")
    (b,) = await eventually(lambda: cluster.live("onfail"), "task of onfail")
    await cluster.set_task(a.id, TaskState.FAILED, "n1")
    await cluster.set_task(b.id, TaskState.COMPLETE, "n1")
    await eventually(lambda: not cluster.live("none") and not cluster.live("onfail"),
                     "both tasks shut down")
    await asyncio.sleep(0.15)  # several batches: the slots must stay empty
    assert [t.id for t in cluster.tasks("none")] == [a.id]
    assert [t.id for t in cluster.tasks("onfail")] == [b.id]
    # on-failure does restart a failed task.
    await cluster.service(spec(replicas=1, condition="on-failure"), "onfail2")
    (c,) = await eventually(lambda: cluster.live("onfail2"), "task of onfail2")
    await cluster.set_task(c.id, TaskState.FAILED, "n1")
    await eventually(lambda: any(t.id != c.id for t in cluster.live("onfail2")), "restart")


async def test_max_attempts(store: Store, runner: Runner, cluster: Cluster) -> None:
    await cluster.node("n1")
    runner.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=1, max_attempts=2))
    seen: set[str] = set()
    for _ in range(3):
        (task,) = await eventually(
            lambda: [t for t in cluster.live() if t.id not in seen] or None, "next task")
        seen.add(task.id)
        await cluster.set_task(task.id, TaskState.FAILED, "n1")
    await eventually(lambda: not cluster.live(), "no live task after 2 restarts")
    await asyncio.sleep(0.1)
    assert len(cluster.tasks()) == 3


async def test_node_down_replaces_its_tasks_unassigned(store: Store, runner: Runner,
                                                      cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    runner.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=2, delay=0.05))
    a, b = await eventually(lambda: len(cluster.live()) == 2 and cluster.live(), "2 tasks")
    await cluster.set_task(a.id, TaskState.RUNNING, "n1")
    await cluster.set_task(b.id, TaskState.RUNNING, "n2")
    await cluster.set_node("n1", state="down")
    new = await eventually(
        lambda: [t for t in cluster.live() if t.id not in (a.id, b.id)], "replacement")
    assert new[0].slot == a.slot and new[0].node_id == ""
    assert store.view().get(Task, a.id).desired_state == TaskState.SHUTDOWN  # type: ignore[union-attr]
    assert store.view().get(Task, b.id).desired_state == TaskState.RUNNING  # type: ignore[union-attr]
    # The old node is down: no waiting for the old task to stop.
    await eventually(lambda: store.view().get(Task, new[0].id).desired_state == TaskState.RUNNING,
                     "replacement started after the delay")


async def test_drain_restarts_without_delay(store: Store, runner: Runner,
                                           cluster: Cluster) -> None:
    await cluster.node("n1")
    runner.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=1, delay=60.0))
    (task,) = await eventually(cluster.live, "a task")
    await cluster.set_task(task.id, TaskState.RUNNING, "n1")
    await cluster.set_node("n1", availability="drain")
    (new,) = await eventually(lambda: [t for t in cluster.live() if t.id != task.id], "replaced")
    assert new.desired_state == TaskState.READY
    await cluster.set_task(task.id, TaskState.SHUTDOWN)  # the agent stops the old container
    await eventually(lambda: store.view().get(Task, new.id).desired_state == TaskState.RUNNING,
                     "replacement started with no restart delay")


async def test_startup_advances_tasks_left_ready(store: Store, runner: Runner,
                                                cluster: Cluster) -> None:
    await cluster.service(spec(replicas=1, delay=0.0))
    from shoal.manager.orchestrator import new_task

    task = new_task(cluster.get(), slot=1)
    task.desired_state = TaskState.READY
    await store.update(lambda tx: tx.create(task))
    runner.start(ReplicatedOrchestrator(store, FAST))
    await eventually(lambda: store.view().get(Task, task.id).desired_state == TaskState.RUNNING,
                     "task left ready advanced to running")
    assert len(cluster.tasks()) == 1


async def test_service_delete_removes_and_reaps(store: Store, runner: Runner,
                                               cluster: Cluster) -> None:
    await cluster.node("n1")
    runner.start(ReplicatedOrchestrator(store, FAST))
    runner.start(TaskReaper(store, FAST))
    await cluster.service(spec(replicas=2))
    a, _ = await eventually(lambda: len(cluster.live()) == 2 and cluster.live(), "2 tasks")
    await cluster.set_task(a.id, TaskState.RUNNING, "n1")  # the other stays unassigned
    await cluster.delete_service("svc1")
    await eventually(lambda: [t.id for t in cluster.tasks()] == [a.id], "unassigned task reaped")
    assert cluster.tasks()[0].desired_state == TaskState.REMOVE
    await cluster.set_task(a.id, TaskState.SHUTDOWN)
    await eventually(lambda: not cluster.tasks(), "stopped task reaped")


async def test_history_limit_keeps_five_per_slot(store: Store, runner: Runner,
                                                cluster: Cluster) -> None:
    await cluster.node("n1")
    runner.start(ReplicatedOrchestrator(store, FAST))
    runner.start(TaskReaper(store, FAST))
    await cluster.service(spec(replicas=1))
    seen: list[str] = []
    for _ in range(8):
        (task,) = await eventually(
            lambda: [t for t in cluster.live() if t.id not in seen] or None, "next task")
        seen.append(task.id)
        await cluster.set_task(task.id, TaskState.FAILED, "n1")
    await eventually(
        lambda: len(cluster.tasks()) == 5 and any(t.id not in seen for t in cluster.live()),
        "5 tasks kept in slot 1, the newest one live")
    kept = cluster.tasks()
    assert sum(t.desired_state <= TaskState.RUNNING for t in kept) == 1
    # The oldest were deleted: the kept history is the four most recent failures.
    assert {t.id for t in kept if t.desired_state == TaskState.SHUTDOWN} == set(seen[-4:])
