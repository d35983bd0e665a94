"""Job services in the control API: swarmkit's defaults and refusals, and JobStatus (a new run at
every update)."""

from __future__ import annotations

import pytest

from shoal.errors import InvalidArgument
from shoal.manager.controlapi.service import create_service, update_service
from shoal.model.objects import Service
from shoal.model.specs import ReplicatedJob, ServiceMode, ServiceSpec, TaskSpec, UpdateConfig
from shoal.store.store import Store


def _job(name: str = "j", **mode: object) -> ServiceSpec:
    return ServiceSpec(name=name, mode=ServiceMode(**mode),  # type: ignore[arg-type]
                       task_template=TaskSpec(container_spec={"Image": "busybox"}))


async def test_defaults_and_runs(store: Store) -> None:
    svc = await create_service(store, _job(replicated_job=ReplicatedJob(max_concurrent=2)))
    job = svc.spec.mode.replicated_job
    assert job is not None and (job.max_concurrent, job.total_completions) == (2, 2)
    assert svc.job_status is not None and svc.job_status.job_iteration.index == 0
    assert svc.job_status.last_execution
    stored = store.view().get(Service, svc.id)
    assert stored is not None
    again = await update_service(store, svc.id, stored.version.index, stored.spec)
    assert again.job_status is not None and again.job_status.job_iteration.index == 1
    empty = await create_service(store, _job("e", replicated_job=ReplicatedJob(max_concurrent=0,
                                                                             total_completions=0)))
    assert empty.spec.mode.replicated_job == ReplicatedJob(max_concurrent=0, total_completions=0)
    one = await create_service(store, _job("one", replicated_job=ReplicatedJob()))
    assert one.spec.mode.replicated_job == ReplicatedJob(max_concurrent=1, total_completions=1)
    plain = await create_service(store, _job("web"))
    assert plain.job_status is None


@pytest.mark.parametrize(("mode", "message"), [
    ({"replicated_job": ReplicatedJob(max_concurrent=-1)}, "Maximum concurrent jobs must not be negative"),
    ({"replicated_job": ReplicatedJob(total_completions=-1)}, "Total completed jobs must not be negative"),
])
async def test_negative_counts_refused(store: Store, mode: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await create_service(store, _job(**mode))


@pytest.mark.parametrize("mode", [{"replicated_job": ReplicatedJob()}, {"global_job": {}}])
async def test_update_config_refused(store: Store, mode: dict[str, object]) -> None:
    spec = _job(**mode)
    spec.update_config = UpdateConfig(parallelism=1)
    with pytest.raises(InvalidArgument, match="Jobs may not have an update config"):
        await create_service(store, spec)
