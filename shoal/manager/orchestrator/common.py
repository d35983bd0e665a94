"""What the orchestrators share: task creation, "is this task out of date", policy defaults.

Used by the replicated and global orchestrators, the restart and update supervisors and the task
reaper (swarmkit ``manager/orchestrator/task.go``, ``api/defaults/service.go``). Durations in
specs are integer nanoseconds; everything here returns seconds as floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import msgspec

from shoal.errors import InvalidArgument
from shoal.manager import constraint
from shoal.model.ids import new_id
from shoal.model.objects import Node, Service, Task, TaskStatus, Version, now
from shoal.model.specs import SECOND, EndpointSpec, Struct, TaskSpec, UpdateConfig
from shoal.model.states import TaskState
from shoal.store.tables import Tables

__all__ = [
    "OrchestratorSettings",
    "RestartPolicy",
    "UpdatePolicy",
    "clone",
    "fingerprint",
    "history_limit",
    "is_job",
    "is_live",
    "is_task_dirty",
    "job_iteration",
    "new_task",
    "newest",
    "node_invalid",
    "old_task_stopped",
    "restart_policy",
    "shut_down",
    "update_policy",
]

S = TypeVar("S", bound=Struct)

DEFAULT_HISTORY_LIMIT = 5  # swarmkit manager.go defaultTaskHistoryRetentionLimit


@dataclass(frozen=True, slots=True)
class OrchestratorSettings:
    """Timing of the reconcile loops; defaults follow swarmkit and STYLE rule 5."""

    gap: float = 0.05  # quiet time that closes a batch of store changes (scheduler's debounce)
    max_latency: float = 1.0  # a busy store still gets reconciled at least once a second
    resync: float = 30.0  # idle this long -> full pass, catches anything an event missed
    old_task_timeout: float = 60.0  # swarmkit restart.go defaultOldTaskTimeout
    reaper_interval: float = 0.25  # swarmkit task_reaper.go reaperBatchingInterval
    # Tasks one pass of a service creates or removes at most (issue 16): a scale to thousands
    # goes in several transactions, the event loop (heartbeats, DNS, gossip) served between
    # them; the tasks written make the service dirty again, so the next batch goes on.
    max_tasks_per_pass: int = 200


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    condition: str  # none | on-failure | any
    delay: float
    max_attempts: int  # 0: unlimited
    window: float  # 0: unbounded


@dataclass(frozen=True, slots=True)
class UpdatePolicy:
    parallelism: int  # 0: every dirty slot at once
    delay: float
    failure_action: str  # pause | continue | rollback
    monitor: float
    max_failure_ratio: float
    order: str  # stop-first | start-first


def clone(obj: S) -> S:
    """A deep copy of a model struct (cached objects are shared and never mutated)."""
    return msgspec.json.decode(msgspec.json.encode(obj), type=type(obj))


def fingerprint(service: Service) -> bytes:
    """What makes tasks out of date: the task template and the endpoint spec."""
    return msgspec.json.encode((service.spec.task_template, service.spec.endpoint_spec))


def is_job(service: Service) -> bool:
    """A replicated-job or global-job service: its tasks run to completion, once."""
    mode = service.spec.mode
    return mode.replicated_job is not None or mode.global_job is not None


def job_iteration(service: Service) -> int:
    """The job's current run (JobStatus.JobIteration.Index, bumped by every service update)."""
    return service.job_status.job_iteration.index if service.job_status else 0


def new_task(service: Service, *, slot: int = 0, node_id: str = "") -> Task:
    """A task for ``service`` in ``slot`` (replicated) or on ``node_id`` (global), state NEW.

    A job's task carries the job's iteration and is desired COMPLETE, not RUNNING: it runs
    until its process exits (swarmkit ``jobs/replicated/reconciler.go``).
    """
    job = job_iteration(service) if is_job(service) else None
    return Task(
        id=new_id(),
        spec=clone(service.spec.task_template),
        endpoint_spec=clone(service.spec.endpoint_spec) if service.spec.endpoint_spec else None,
        service_id=service.id,
        service_name=service.spec.name,
        service_labels=dict(service.spec.labels) if service.spec.labels else None,
        slot=slot,
        node_id=node_id,
        status=TaskStatus(timestamp=now(), state=TaskState.NEW, message="created"),
        desired_state=TaskState.RUNNING if job is None else TaskState.COMPLETE,
        job_iteration=Version(index=job) if job is not None else None,
    )


def is_task_dirty(service: Service, task: Task, node: Node | None = None) -> bool:
    """True if the task no longer matches the service's task template or endpoint spec.

    A change of placement alone is not dirty while the task's node still satisfies it
    (swarmkit ``orchestrator.IsTaskDirty``).
    """
    if (task.endpoint_spec or EndpointSpec()) != (service.spec.endpoint_spec or EndpointSpec()):
        return True
    want = service.spec.task_template
    if task.spec == want:
        return False
    no_placement = msgspec.structs.replace
    if no_placement(task.spec, placement=None) != no_placement(want, placement=None):
        return True
    if node is None:
        return True
    exprs = want.placement.constraints if want.placement else None
    try:
        return not constraint.node_matches(constraint.parse(exprs), node)
    except InvalidArgument:
        return True


def is_live(task: Task) -> bool:
    """The orchestrator still wants this task: desired state at most RUNNING (COMPLETE for a
    job's task, as swarmkit's ``DesiredState <= COMPLETED``)."""
    return task.desired_state <= TaskState.COMPLETE


def node_invalid(node: Node | None) -> bool:
    """A node whose tasks must be moved: gone, down or drained."""
    return node is None or node.status.state == "down" or node.spec.availability == "drain"


def old_task_stopped(view: Tables, task_id: str) -> bool:
    """The task being replaced no longer runs: ended, never reached its node, or the node is down."""
    old = view.get(Task, task_id)
    if old is None or old.state > TaskState.RUNNING or old.state < TaskState.ASSIGNED:
        return True
    node = view.get(Node, old.node_id)
    return node is None or node.status.state == "down"


def restart_policy(spec: TaskSpec, *, job: bool = False) -> RestartPolicy:
    """The task's restart policy with swarmkit's defaults: any, 5 s, unlimited, unbounded."""
    rp = spec.restart_policy
    condition = (rp.condition if rp and rp.condition else "any").lower()
    if job and condition == "any":
        condition = "on-failure"  # completed job tasks are never restarted
    return RestartPolicy(
        condition=condition,
        delay=(rp.delay if rp and rp.delay is not None else 5 * SECOND) / SECOND,
        max_attempts=rp.max_attempts if rp and rp.max_attempts else 0,
        window=(rp.window or 0) / SECOND if rp else 0.0,
    )


def update_policy(cfg: UpdateConfig | None) -> UpdatePolicy:
    """UpdateConfig/RollbackConfig with defaults: 1 at a time, pause, monitor 5 s, stop-first."""
    if cfg is None:
        return UpdatePolicy(1, 0.0, "pause", 5.0, 0.0, "stop-first")
    return UpdatePolicy(
        parallelism=max(cfg.parallelism, 0),
        delay=cfg.delay / SECOND,
        failure_action=cfg.failure_action or "pause",
        monitor=(cfg.monitor or 5 * SECOND) / SECOND,
        max_failure_ratio=cfg.max_failure_ratio,
        order=cfg.order or "stop-first",
    )


def history_limit(view: Tables) -> int:
    """Cluster.Spec.Orchestration.TaskHistoryRetentionLimit (default 5; negative keeps all)."""
    cluster = view.cluster()
    limit = cluster.spec.orchestration.task_history_retention_limit if cluster else None
    return DEFAULT_HISTORY_LIMIT if limit is None else limit


def shut_down(task: Task) -> Task:
    """The task, asked to stop (a copy)."""
    return msgspec.structs.replace(task, desired_state=TaskState.SHUTDOWN)


def newest(tasks: list[Task]) -> Task:
    """The latest made of a slot's or node's tasks (then the latest status)."""
    return max(tasks, key=lambda t: (t.created_at, t.status.timestamp))
