"""The replicated orchestrator with its restart supervisor, through a real store."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from orch_helpers import FAST, Cluster, spec
from parts import Parts

from shoal.dev.wait import wait_for_async
from shoal.manager.orchestrator import ReplicatedOrchestrator, TaskReaper
from shoal.model.objects import Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Store


async def test_scale_up_and_down_by_slots(store: Store, parts: Parts, cluster: Cluster) -> None:
    parts.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=3))
    tasks = await wait_for_async("3 tasks", lambda: len(cluster.live()) == 3 and cluster.live())
    assert [t.slot for t in tasks] == [1, 2, 3]
    assert all(t.status.state == TaskState.NEW and t.desired_state == TaskState.RUNNING for t in tasks)
    assert all(t.spec.image == "nginx:1" and t.node_id == "" for t in tasks)

    async def scale(n: int) -> None:
        def fn(svc: Service) -> None:
            assert svc.spec.mode.replicated is not None
            svc.spec.mode.replicated.replicas = n

        await cluster.update_service("svc1", fn)

    await scale(5)
    await wait_for_async("slots 1..5", lambda: [t.slot for t in cluster.live()] == [1, 2, 3, 4, 5])
    await scale(2)
    await wait_for_async("2 live tasks", lambda: len(cluster.live()) == 2)
    removed = [t for t in cluster.tasks() if t.desired_state == TaskState.REMOVE]
    assert len(removed) == 3
    # Scaling never touches UpdateStatus (the updater is not involved).
    assert cluster.get().update_status is None


async def test_one_pass_writes_a_bounded_number_of_tasks(store: Store, parts: Parts,
                                                        cluster: Cluster) -> None:
    """Issue 16: a large scale goes in passes of ``max_tasks_per_pass`` tasks, each pass's
    writes making the service dirty for the next, so the event loop is served in between."""
    settings = dataclasses.replace(FAST, max_tasks_per_pass=4)
    orchestrator = ReplicatedOrchestrator(store, settings)
    await cluster.service(spec(replicas=10))
    await orchestrator._reconcile("svc1")
    assert [t.slot for t in cluster.live()] == [1, 2, 3, 4]
    parts.start(orchestrator)
    await wait_for_async("10 slots", lambda: [t.slot for t in cluster.live()] == list(range(1, 11)))

    def scale(svc: Service) -> None:
        assert svc.spec.mode.replicated is not None
        svc.spec.mode.replicated.replicas = 1

    await parts.close()
    await cluster.update_service("svc1", scale)
    await ReplicatedOrchestrator(store, settings)._reconcile("svc1")
    assert len(cluster.live()) == 6  # 4 of the 9 surplus slots removed in this pass


async def test_scale_up_fills_lowest_free_slots(store: Store, parts: Parts,
                                               cluster: Cluster) -> None:
    await cluster.service(spec(replicas=3))
    from shoal.manager.orchestrator import new_task

    svc = cluster.get()
    await store.update(lambda tx: [tx.create(new_task(svc, slot=s)) for s in (2, 5)])
    parts.start(ReplicatedOrchestrator(store, FAST))
    await wait_for_async("slot 1 added", lambda: [t.slot for t in cluster.live()] == [1, 2, 5])


async def test_scale_down_prefers_most_loaded_node(store: Store, parts: Parts,
                                                  cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    await cluster.service(spec(replicas=3))
    parts.start(ReplicatedOrchestrator(store, FAST))
    tasks = await wait_for_async("3 tasks", lambda: len(cluster.live()) == 3 and cluster.live())
    for task, node in zip(tasks, ["n1", "n1", "n2"]):
        await cluster.set_task(task.id, TaskState.RUNNING, node)

    def fn(svc: Service) -> None:
        assert svc.spec.mode.replicated is not None
        svc.spec.mode.replicated.replicas = 2

    await cluster.update_service("svc1", fn)
    live = await wait_for_async("2 live", lambda: len(cluster.live()) == 2 and cluster.live())
    assert sorted(t.node_id for t in live) == ["n1", "n2"]


async def test_failed_task_replaced_in_same_slot_after_delay(
    store: Store, parts: Parts, cluster: Cluster
) -> None:
    await cluster.node("n1")
    parts.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=1, delay=0.15))
    (task,) = await wait_for_async("one task", cluster.live)
    await cluster.set_task(task.id, TaskState.RUNNING, "n1")
    loop = asyncio.get_running_loop()
    failed_at = loop.time()
    await cluster.set_task(task.id, TaskState.FAILED)

    def replacement() -> Task | None:
        return next((t for t in cluster.live() if t.id != task.id), None)

    new = await wait_for_async("a replacement task", replacement)
    assert new.slot == 1 and new.desired_state == TaskState.READY and new.node_id == ""
    old = store.view().get(Task, task.id)
    assert old is not None and old.desired_state == TaskState.SHUTDOWN
    await wait_for_async("replacement desired running",
                         lambda: (r := replacement()) and r.desired_state == TaskState.RUNNING)
    assert loop.time() - failed_at >= 0.15


async def test_restart_condition_none_and_on_failure(store: Store, parts: Parts,
                                                    cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=1, condition="none"), "none")
    await cluster.service(spec(replicas=1, condition="on-failure"), "onfail")
    (a,) = await wait_for_async("task of none", lambda: cluster.live("none"))
    (b,) = await wait_for_async("task of onfail", lambda: cluster.live("onfail"))
    await cluster.set_task(a.id, TaskState.FAILED, "n1")
    await cluster.set_task(b.id, TaskState.COMPLETE, "n1")
    await wait_for_async("both tasks shut down",
                         lambda: not cluster.live("none") and not cluster.live("onfail"))
    await asyncio.sleep(0.15)  # several batches: the slots must stay empty
    assert [t.id for t in cluster.tasks("none")] == [a.id]
    assert [t.id for t in cluster.tasks("onfail")] == [b.id]
    # on-failure does restart a failed task.
    await cluster.service(spec(replicas=1, condition="on-failure"), "onfail2")
    (c,) = await wait_for_async("task of onfail2", lambda: cluster.live("onfail2"))
    await cluster.set_task(c.id, TaskState.FAILED, "n1")
    await wait_for_async("restart", lambda: any(t.id != c.id for t in cluster.live("onfail2")))


async def test_max_attempts(store: Store, parts: Parts, cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=1, max_attempts=2))
    seen: set[str] = set()
    for _ in range(3):
        (task,) = await wait_for_async(
            "next task", lambda: [t for t in cluster.live() if t.id not in seen] or None)
        seen.add(task.id)
        await cluster.set_task(task.id, TaskState.FAILED, "n1")
    await wait_for_async("no live task after 2 restarts", lambda: not cluster.live())
    await asyncio.sleep(0.1)
    assert len(cluster.tasks()) == 3


async def test_node_down_replaces_its_tasks_unassigned(store: Store, parts: Parts,
                                                      cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    parts.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=2, delay=0.05))
    a, b = await wait_for_async("2 tasks", lambda: len(cluster.live()) == 2 and cluster.live())
    await cluster.set_task(a.id, TaskState.RUNNING, "n1")
    await cluster.set_task(b.id, TaskState.RUNNING, "n2")
    await cluster.set_node("n1", state="down")
    new = await wait_for_async(
        "replacement", lambda: [t for t in cluster.live() if t.id not in (a.id, b.id)])
    assert new[0].slot == a.slot and new[0].node_id == ""
    assert store.view().get(Task, a.id).desired_state == TaskState.SHUTDOWN  # type: ignore[union-attr]
    assert store.view().get(Task, b.id).desired_state == TaskState.RUNNING  # type: ignore[union-attr]
    # The old node is down: no waiting for the old task to stop.
    await wait_for_async("replacement started after the delay",
                         lambda: store.view().get(Task, new[0].id).desired_state == TaskState.RUNNING)


async def test_drain_restarts_without_delay(store: Store, parts: Parts,
                                           cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=1, delay=60.0))
    (task,) = await wait_for_async("a task", cluster.live)
    await cluster.set_task(task.id, TaskState.RUNNING, "n1")
    await cluster.set_node("n1", availability="drain")
    (new,) = await wait_for_async("replaced", lambda: [t for t in cluster.live() if t.id != task.id])
    assert new.desired_state == TaskState.READY
    await cluster.set_task(task.id, TaskState.SHUTDOWN)  # the agent stops the old container
    await wait_for_async("replacement started with no restart delay",
                         lambda: store.view().get(Task, new.id).desired_state == TaskState.RUNNING)


async def test_startup_advances_tasks_left_ready(store: Store, parts: Parts,
                                                cluster: Cluster) -> None:
    await cluster.service(spec(replicas=1, delay=0.0))
    from shoal.manager.orchestrator import new_task

    task = new_task(cluster.get(), slot=1)
    task.desired_state = TaskState.READY
    await store.update(lambda tx: tx.create(task))
    parts.start(ReplicatedOrchestrator(store, FAST))
    await wait_for_async("task left ready advanced to running",
                         lambda: store.view().get(Task, task.id).desired_state == TaskState.RUNNING)
    assert len(cluster.tasks()) == 1


async def test_service_delete_removes_and_reaps(store: Store, parts: Parts,
                                               cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(ReplicatedOrchestrator(store, FAST))
    parts.start(TaskReaper(store, FAST))
    await cluster.service(spec(replicas=2))
    a, _ = await wait_for_async("2 tasks", lambda: len(cluster.live()) == 2 and cluster.live())
    await cluster.set_task(a.id, TaskState.RUNNING, "n1")  # the other stays unassigned
    await cluster.delete_service("svc1")
    await wait_for_async("unassigned task reaped", lambda: [t.id for t in cluster.tasks()] == [a.id])
    assert cluster.tasks()[0].desired_state == TaskState.REMOVE
    await cluster.set_task(a.id, TaskState.SHUTDOWN)
    await wait_for_async("stopped task reaped", lambda: not cluster.tasks())


async def test_history_limit_keeps_five_per_slot(store: Store, parts: Parts,
                                                cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(ReplicatedOrchestrator(store, FAST))
    parts.start(TaskReaper(store, FAST))
    await cluster.service(spec(replicas=1))
    seen: list[str] = []
    for _ in range(8):
        (task,) = await wait_for_async(
            "next task", lambda: [t for t in cluster.live() if t.id not in seen] or None)
        seen.append(task.id)
        await cluster.set_task(task.id, TaskState.FAILED, "n1")
    await wait_for_async(
        "5 tasks kept in slot 1, the newest one live",
        lambda: len(cluster.tasks()) == 5 and any(t.id not in seen for t in cluster.live()))
    kept = cluster.tasks()
    assert sum(t.desired_state <= TaskState.RUNNING for t in kept) == 1
    # The oldest were deleted: the kept history is the four most recent failures.
    assert {t.id for t in kept if t.desired_state == TaskState.SHUTDOWN} == set(seen[-4:])


async def test_restart_history_is_bounded(store: Store, parts: Parts, cluster: Cluster) -> None:
    """Issue 16: the attempts kept per slot are those the policy counts, and a slot scaled away
    whose tasks are gone is forgotten."""
    await cluster.node("n1")
    orchestrator = parts.start(ReplicatedOrchestrator(store, FAST))
    await cluster.service(spec(replicas=2, max_attempts=2))
    for _ in range(3):  # slot 2 fails three times (the third is not replaced)
        task = await wait_for_async("slot 2 live", lambda: next(
            (t for t in cluster.live() if t.slot == 2 and t.desired_state == TaskState.RUNNING),
            None))
        await cluster.set_task(task.id, TaskState.FAILED, "n1")
        await wait_for_async("slot 2 handled", lambda t=task: store.view().get(Task, t.id)
                             .desired_state == TaskState.SHUTDOWN)
    history = orchestrator.restarts._history["svc1"]
    assert len(history["2"][1]) == 2  # the policy counts 2: no more kept

    def scale(svc: Service) -> None:
        assert svc.spec.mode.replicated is not None
        svc.spec.mode.replicated.replicas = 1

    await cluster.update_service("svc1", scale)
    await wait_for_async("one live slot", lambda: [t.slot for t in cluster.live()] == [1])

    def reap(tx: Any) -> None:  # what the task reaper does with the slot's tasks
        for t in tx.view.tasks_of_service("svc1"):
            if t.slot == 2:
                tx.delete(t)

    await store.update(reap)
    await wait_for_async("slot 2 forgotten", lambda: "2" not in orchestrator.restarts._history.get(
        "svc1", {}))
