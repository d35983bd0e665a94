"""The job orchestrator: replicated-job and global-job services, run to completion once per run.

A job's run is its ``JobStatus.JobIteration``: the control API sets it to 0 at create and bumps
it at every service update (any change, ``--force`` too), which starts a new run. Per service, in
one transaction: the tasks of earlier runs that still run get DesiredState REMOVE (ended ones stay
as history for the task reaper); the current run's tasks go to ``replicated_job`` (TotalCompletions
tasks, MaxConcurrent at a time) or ``global_job`` (one per eligible node). Tasks are desired
COMPLETE; one that completed is never replaced, a failed one goes to the restart supervisor
(condition ``any`` acts as ``on-failure``). Jobs have no rolling update. A deleted job's tasks
all get DesiredState REMOVE. The replicated and global orchestrators ignore jobs.
As in swarmkit ``manager/orchestrator/jobs/orchestrator.go``.
"""

from __future__ import annotations

import logging

from shoal.manager.orchestrator._base import Orchestrator
from shoal.manager.orchestrator.common import is_job, job_iteration
from shoal.manager.orchestrator.global_job import plan_global_job
from shoal.manager.orchestrator.replicated_job import plan_replicated_job
from shoal.model.objects import Node, Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Tx, copy
from shoal.store.tables import Tables

__all__ = ["JobOrchestrator", "current_run"]

log = logging.getLogger(__name__)


def current_run(service: Service, task: Task) -> bool:
    """Whether ``task`` belongs to the job's current run."""
    return task.job_iteration is not None and task.job_iteration.index == job_iteration(service)


class JobOrchestrator(Orchestrator):
    """Runs every replicated-job and global-job service's current run to completion."""

    rolling_updates = False  # an update of a job starts a new run instead

    def _mine(self, service: Service) -> bool:
        return is_job(service)

    def _services_for_node(self, view: Tables, node: Node) -> set[str]:
        # Global jobs follow joins and node changes; a replicated job's task may lose its node.
        out = {s.id for s in view.all(Service) if s.spec.mode.global_job is not None}
        return out | {t.service_id for t in view.tasks_of_node(node.id) if t.service_id}

    def _plan(self, tx: Tx, service: Service) -> set[str]:
        if not self._mine(service):
            return set()
        run: list[Task] = []
        stopped = 0
        for task in tx.view.tasks_of_service(service.id):
            if current_run(service, task):
                run.append(task)
            elif task.state <= TaskState.RUNNING and task.desired_state != TaskState.REMOVE:
                task = copy(task)
                task.desired_state = TaskState.REMOVE
                tx.update(task)
                stopped += 1
        if stopped:
            log.info("service %s: job run %d, %d tasks of earlier runs desired remove",
                     service.id, job_iteration(service), stopped)
        if service.spec.mode.replicated_job is not None:
            plan_replicated_job(tx, service, run, self.restarts,
                                limit=self._settings.max_tasks_per_pass)
        else:
            plan_global_job(tx, service, run, self.restarts)
        return set()
