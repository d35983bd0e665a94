"""``GET /services?status=true`` for jobs, as swarmkit's ListServiceStatuses counts them: only
the current run's tasks; DesiredTasks is MaxConcurrent (replicated job) or the run's tasks still
to complete (global job); the docker CLI's REPLICAS column is built from these."""

from __future__ import annotations

from shoal.api.render import service_json
from shoal.model.objects import JobStatus, Service, Task, TaskStatus, Version
from shoal.model.specs import ReplicatedJob, ServiceMode, ServiceSpec
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx


def _task(n: int, run: int, state: TaskState, desired: TaskState = TaskState.COMPLETE) -> Task:
    return Task(id=f"t{n}", service_id="s1", slot=n, node_id="n1", desired_state=desired,
                status=TaskStatus(state=state), job_iteration=Version(index=run))


async def _status(store: Store, mode: ServiceMode, tasks: list[Task]) -> dict[str, int]:
    svc = Service(id="s1", spec=ServiceSpec(name="j", mode=mode),
                  job_status=JobStatus(job_iteration=Version(index=1)))

    def seed(tx: Tx) -> None:
        tx.create(svc)
        for t in tasks:
            tx.create(t)

    await store.update(seed)
    stored = store.view().get(Service, "s1")
    assert stored is not None
    out: dict[str, int] = service_json(store.view(), stored, status=True)["ServiceStatus"]
    return out


async def test_replicated_job_counts_the_current_run(store: Store) -> None:
    mode = ServiceMode(replicated_job=ReplicatedJob(max_concurrent=2, total_completions=5))
    tasks = [_task(0, 0, TaskState.COMPLETE), _task(1, 0, TaskState.RUNNING, TaskState.REMOVE),
             _task(2, 1, TaskState.COMPLETE), _task(3, 1, TaskState.RUNNING),
             _task(4, 1, TaskState.FAILED, TaskState.SHUTDOWN)]
    assert await _status(store, mode, tasks) == {
        "RunningTasks": 1, "DesiredTasks": 2, "CompletedTasks": 1}


async def test_global_job_desired_is_what_is_left_to_complete(store: Store) -> None:
    tasks = [_task(0, 0, TaskState.RUNNING), _task(1, 1, TaskState.COMPLETE),
             _task(2, 1, TaskState.RUNNING), _task(3, 1, TaskState.PENDING)]
    assert await _status(store, ServiceMode(global_job={}), tasks) == {
        "RunningTasks": 1, "DesiredTasks": 2, "CompletedTasks": 1}
