"""The job orchestrator (replicated-job, global-job) with its restart supervisor, through a real
store; the fake cluster plays scheduler and agents where a test lets it run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from orch_helpers import FAST, Cluster, spec
from parts import Parts

from shoal.dev.wait import wait_for_async
from shoal.manager.controlapi import service as controlapi
from shoal.manager.orchestrator import (
    GlobalOrchestrator,
    JobOrchestrator,
    ReplicatedOrchestrator,
    TaskReaper,
    new_task,
)
from shoal.model.objects import JobStatus, Service, Task, Version, now
from shoal.model.specs import ReplicatedJob, ServiceMode, ServiceSpec
from shoal.model.states import TaskState
from shoal.store.store import Store, copy

BATCH = "batch:1"


def job_spec(*, total: int | None = 3, concurrent: int = 2, global_: bool = False,
             condition: str | None = None, max_attempts: int | None = None,
             constraints: list[str] | None = None, image: str = BATCH) -> ServiceSpec:
    s = spec("job", image=image, condition=condition, max_attempts=max_attempts,
             constraints=constraints)
    s.mode = (ServiceMode(global_job={}) if global_ else
              ServiceMode(replicated_job=ReplicatedJob(max_concurrent=concurrent,
                                                       total_completions=total)))
    return s


async def create_job(store: Store, s: ServiceSpec, service_id: str = "svc1") -> str:
    s.name = service_id  # names are unique
    svc = Service(id=service_id, spec=s, job_status=JobStatus(last_execution=now()))
    await store.update(lambda tx: tx.create(svc))
    return service_id


async def rerun(cluster: Cluster, service_id: str = "svc1") -> None:
    """What the control API does at every update of a job: a new run."""

    def fn(svc: Service) -> None:
        assert svc.job_status is not None
        index = svc.job_status.job_iteration.index + 1
        svc.job_status = JobStatus(job_iteration=Version(index=index), last_execution=now())

    await cluster.update_service(service_id, fn)


def run_of(cluster: Cluster, index: int, service_id: str = "svc1") -> list[Task]:
    return [t for t in cluster.tasks(service_id)
            if t.job_iteration is not None and t.job_iteration.index == index]


def completed(cluster: Cluster, index: int = 0) -> list[Task]:
    return [t for t in run_of(cluster, index) if t.state == TaskState.COMPLETE]


async def test_replicated_job_runs_total_completions_max_concurrent_at_a_time(
        store: Store, parts: Parts, cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(total=3, concurrent=2))
    first = await wait_for_async("2 tasks", lambda: len(cluster.live()) == 2 and cluster.live())
    assert [t.slot for t in first] == [0, 1]  # swarmkit's slots: 0..TotalCompletions-1
    assert all(t.desired_state == TaskState.COMPLETE for t in first)
    assert all(t.job_iteration == Version(index=0) for t in first)

    await cluster.set_task(first[0].id, TaskState.RUNNING, "n1")
    await cluster.set_task(first[1].id, TaskState.RUNNING, "n1")
    await asyncio.sleep(0.1)
    assert len(cluster.tasks()) == 2  # MaxConcurrent running: nothing more
    await cluster.set_task(first[0].id, TaskState.COMPLETE)
    third = await wait_for_async("slot 2", lambda: [t for t in cluster.tasks() if t.slot == 2])
    assert third[0].desired_state == TaskState.COMPLETE
    for task in (first[1], third[0]):
        await cluster.set_task(task.id, TaskState.COMPLETE, "n1")
    await asyncio.sleep(0.1)
    # Done: three completions, no more tasks, and no completed task restarted.
    assert sorted(t.slot for t in cluster.tasks()) == [0, 1, 2]
    assert all(t.state == TaskState.COMPLETE for t in cluster.tasks())


async def test_replicated_job_converges_with_agents(store: Store, parts: Parts,
                                                    cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    cluster.completing.add(BATCH)
    parts.start(cluster)
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(total=7, concurrent=3))
    await wait_for_async("7 completions", lambda: len(completed(cluster)) == 7)
    await asyncio.sleep(0.1)
    assert sorted(t.slot for t in cluster.tasks()) == list(range(7))


async def test_failed_job_task_restarted_in_its_slot_completed_never(
        store: Store, parts: Parts, cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(JobOrchestrator(store, FAST))
    # Condition "any" (the default too) acts as on-failure for a job.
    await create_job(store, job_spec(total=2, concurrent=2, condition="any"))
    a, b = await wait_for_async("2 tasks", lambda: len(cluster.live()) == 2 and cluster.live())
    await cluster.set_task(a.id, TaskState.FAILED, "n1")
    await cluster.set_task(b.id, TaskState.COMPLETE, "n1")
    again = await wait_for_async(
        "slot 0 replaced", lambda: [t for t in cluster.live() if t.slot == 0 and t.id != a.id])
    # Started after the delay (0 here) as a job's task: desired COMPLETE, same run.
    await wait_for_async("desired complete",
                         lambda: store.view().get(Task, again[0].id).desired_state  # type: ignore[union-attr]
                         == TaskState.COMPLETE)
    assert again[0].job_iteration == Version(index=0)
    failed = store.view().get(Task, a.id)
    assert failed is not None and failed.desired_state == TaskState.SHUTDOWN
    await asyncio.sleep(0.1)
    assert [t.id for t in cluster.tasks() if t.slot == 1] == [b.id]  # completed: never restarted


async def test_restart_policy_none_spends_the_slot(store: Store, parts: Parts,
                                                   cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(total=3, concurrent=1, condition="none"))
    (a,) = await wait_for_async("slot 0", lambda: cluster.live())
    await cluster.set_task(a.id, TaskState.FAILED, "n1")
    (b,) = await wait_for_async("slot 1", lambda: [t for t in cluster.live() if t.slot == 1])
    await cluster.set_task(b.id, TaskState.COMPLETE, "n1")
    (c,) = await wait_for_async("slot 2", lambda: [t for t in cluster.live() if t.slot == 2])
    await cluster.set_task(c.id, TaskState.COMPLETE, "n1")
    await asyncio.sleep(0.15)
    # The failed slot is never retried: the run stays 2/3 complete.
    assert [t.slot for t in cluster.tasks()] == [0, 1, 2]
    assert len(completed(cluster)) == 2


async def test_max_attempts_bounds_a_slots_restarts(store: Store, parts: Parts,
                                                    cluster: Cluster) -> None:
    await cluster.node("n1")
    cluster.failing.add(BATCH)
    parts.start(cluster)
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(total=1, concurrent=1, max_attempts=2))
    await wait_for_async("3 failed", lambda: [t.state for t in cluster.tasks()]
                         == [TaskState.FAILED] * 3)
    await asyncio.sleep(0.15)
    assert len(cluster.tasks()) == 3  # the first task and 2 restarts


async def test_new_run_stops_the_old_one_and_starts_again(store: Store, parts: Parts,
                                                          cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(total=2, concurrent=2))
    a, b = await wait_for_async("2 tasks", lambda: len(cluster.live()) == 2 and cluster.live())
    await cluster.set_task(a.id, TaskState.COMPLETE, "n1")
    await cluster.set_task(b.id, TaskState.RUNNING, "n1")
    await rerun(cluster)
    new = await wait_for_async("run 1", lambda: len(run_of(cluster, 1)) == 2 and run_of(cluster, 1))
    assert [t.slot for t in new] == [0, 1]
    old_a, old_b = store.view().get(Task, a.id), store.view().get(Task, b.id)
    assert old_a is not None and old_a.desired_state == TaskState.COMPLETE  # history, kept
    assert old_b is not None and old_b.desired_state == TaskState.REMOVE  # still running: stopped


async def test_global_job_one_task_per_eligible_node_once(store: Store, parts: Parts,
                                                          cluster: Cluster) -> None:
    await cluster.node("n1", labels={"batch": "yes"})
    await cluster.node("n2", labels={"batch": "yes"})
    await cluster.node("n3", labels={"batch": "no"})
    await cluster.node("n4", availability="pause", labels={"batch": "yes"})
    await cluster.node("n5", state="down", labels={"batch": "yes"})
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(global_=True, constraints=["node.labels.batch==yes"]))
    tasks = await wait_for_async("2 tasks", lambda: len(cluster.live()) == 2 and cluster.live())
    assert sorted(t.node_id for t in tasks) == ["n1", "n2"]
    assert all(t.desired_state == TaskState.COMPLETE and t.slot == 0 for t in tasks)
    for t in tasks:
        await cluster.set_task(t.id, TaskState.COMPLETE)
    await cluster.node("n6", labels={"batch": "yes"})  # joins later: gets one too
    (late,) = await wait_for_async("n6's task", lambda: [t for t in cluster.tasks() if t.node_id == "n6"])
    await cluster.set_task(late.id, TaskState.COMPLETE)
    await cluster.set_node("n4", availability="active")
    await wait_for_async("n4's task", lambda: [t for t in cluster.tasks() if t.node_id == "n4"])
    await asyncio.sleep(0.1)
    assert sorted(t.node_id for t in cluster.tasks()) == ["n1", "n2", "n4", "n6"]  # none re-run


async def test_global_job_drained_node_shut_down_then_run_again(store: Store, parts: Parts,
                                                                cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(global_=True))
    (a,) = await wait_for_async("n1's task", cluster.live)
    await cluster.set_task(a.id, TaskState.RUNNING, "n1")
    await cluster.set_node("n1", availability="drain")
    await wait_for_async("shut down", lambda: not cluster.live())
    await cluster.set_task(a.id, TaskState.SHUTDOWN)
    await cluster.set_node("n1", availability="active")
    (b,) = await wait_for_async("a new task", lambda: cluster.live())
    assert b.id != a.id and b.node_id == "n1"


async def test_global_job_failure_restarted_on_its_node(store: Store, parts: Parts,
                                                        cluster: Cluster) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(global_=True))
    tasks = await wait_for_async("2 tasks", lambda: len(cluster.live()) == 2 and cluster.live())
    await cluster.set_task(tasks[0].id, TaskState.FAILED)
    again = await wait_for_async(
        "replaced", lambda: [t for t in cluster.live() if t.id not in {x.id for x in tasks}])
    assert again[0].node_id == tasks[0].node_id


async def test_other_orchestrators_leave_jobs_alone(store: Store, parts: Parts,
                                                    cluster: Cluster) -> None:
    await cluster.node("n1")
    parts.start(ReplicatedOrchestrator(store, FAST))
    parts.start(GlobalOrchestrator(store, FAST))
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(total=2, concurrent=1), "rj")
    await create_job(store, job_spec(global_=True), "gj")
    (r,) = await wait_for_async("rj's task", lambda: cluster.live("rj"))
    (g,) = await wait_for_async("gj's task", lambda: cluster.live("gj"))
    for task in (r, g):
        await cluster.set_task(task.id, TaskState.COMPLETE, "n1")
    await wait_for_async("rj's second", lambda: len(cluster.tasks("rj")) == 2)
    await asyncio.sleep(0.15)
    assert len(cluster.tasks("gj")) == 1  # completed: neither restarted nor updated
    assert cluster.get("rj").update_status is None and cluster.get("gj").update_status is None


async def test_deleted_job_tasks_removed(store: Store, parts: Parts, cluster: Cluster) -> None:
    parts.start(JobOrchestrator(store, FAST))
    await create_job(store, job_spec(total=2, concurrent=2))
    await wait_for_async("2 tasks", lambda: len(cluster.live()) == 2)
    await cluster.delete_service("svc1")
    await wait_for_async("desired remove", lambda: all(
        t.desired_state == TaskState.REMOVE for t in store.view().tasks_of_service("svc1")))


async def test_startup_moves_a_waiting_restart_to_complete(store: Store, parts: Parts,
                                                           cluster: Cluster) -> None:
    await create_job(store, job_spec(total=1, concurrent=1))
    svc = cluster.get()
    waiting = new_task(svc, slot=0)
    waiting.desired_state = TaskState.READY  # a restart a former leader left waiting

    await store.update(lambda tx: tx.create(waiting))
    parts.start(JobOrchestrator(store, FAST))
    await wait_for_async("desired complete", lambda: cluster.live()[0].desired_state
                         == TaskState.COMPLETE)
    assert len(cluster.tasks()) == 1


async def test_reaper_trims_earlier_runs_keeps_the_current(store: Store, parts: Parts,
                                                           cluster: Cluster) -> None:
    await create_job(store, job_spec(total=1, concurrent=1))

    async def complete_run(index: int) -> None:
        svc = cluster.get()
        task = new_task(svc, slot=0)
        task.status.state = TaskState.COMPLETE
        task.status.timestamp = f"2026-01-01T00:00:{index:02d}.000000000Z"
        await store.update(lambda tx: tx.create(task))

    for index in range(7):
        if index:
            await rerun(cluster)
        await complete_run(index)
    parts.start(TaskReaper(store, FAST))
    await wait_for_async("5 kept", lambda: len(cluster.tasks()) == 5)
    kept = sorted(t.job_iteration.index for t in cluster.tasks() if t.job_iteration)
    assert kept == [2, 3, 4, 5, 6]  # the current run's completion is kept


@pytest.fixture
def allocated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    async def done(store: Store, service_id: str, timeout: float = 0) -> None:
        return None

    monkeypatch.setattr(controlapi, "_await_allocation", done)  # no allocator here
    yield


async def test_control_api_update_starts_a_new_run(store: Store, parts: Parts, cluster: Cluster,
                                                   allocated: None) -> None:
    await cluster.node("n1")
    cluster.completing.add(BATCH)
    parts.start(cluster)
    parts.start(JobOrchestrator(store, FAST))
    svc = await controlapi.create_service(store, job_spec(total=3, concurrent=2))
    assert svc.job_status is not None and svc.job_status.job_iteration.index == 0

    def done(sid: str, index: int) -> bool:
        return len([t for t in store.view().tasks_of_service(sid) if t.state == TaskState.COMPLETE
                    and t.job_iteration == Version(index=index)]) == 3

    await wait_for_async("run 0 complete", lambda: done(svc.id, 0))
    current = cluster.get(svc.id)
    forced = copy(current).spec
    forced.task_template.force_update += 1  # docker service update --force
    updated = await controlapi.update_service(store, svc.id, current.version.index, forced)
    assert updated.job_status is not None and updated.job_status.job_iteration.index == 1
    await wait_for_async("run 1 complete", lambda: done(svc.id, 1))
