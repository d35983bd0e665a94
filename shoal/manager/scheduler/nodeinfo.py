"""The scheduler's own view of one node: its active tasks, counts, reservations and host ports.

Kept up to date from store events (and from the scheduler's own decisions, before they are
committed) so a scheduling pass never rescans the store (swarmkit ``manager/scheduler/
nodeinfo.go``). A task *occupies* a node when it is assigned to it, has not gone past RUNNING
and is still wanted (DesiredState <= COMPLETE: a job's task is desired COMPLETE): only such
tasks count for spread, reserve resources and hold host-mode ports.
"""

from __future__ import annotations

from collections import deque

from shoal.model.objects import Node, Task
from shoal.model.states import TaskState

__all__ = ["MAX_FAILURES", "MONITOR_FAILURES", "NodeInfo", "host_ports", "occupies"]

MAX_FAILURES = 5  # swarmkit maxFailures: this many recent failures of a service sort a node last
MONITOR_FAILURES = 300.0  # swarmkit monitorFailures: 5 minutes, in loop-clock seconds

HostPort = tuple[str, int]


def occupies(task: Task) -> bool:
    """Whether ``task`` counts against its node (assigned, not past RUNNING, still wanted:
    desired RUNNING, or COMPLETE for a job's task)."""
    if not task.node_id:
        return False
    state = task.status.state
    return (
        TaskState.ASSIGNED <= state <= TaskState.RUNNING
        and task.desired_state <= TaskState.COMPLETE
    )


def host_ports(task: Task) -> frozenset[HostPort]:
    """The (protocol, published port) pairs the task publishes in host mode."""
    spec = task.endpoint_spec
    if spec is None or not spec.ports:
        return frozenset()
    return frozenset(
        (p.protocol or "tcp", p.published_port)
        for p in spec.ports
        if p.publish_mode == "host" and p.published_port > 0
    )


def _reservation(task: Task) -> tuple[int, int]:
    res = task.spec.resources
    if res is None or res.reservations is None:
        return 0, 0
    return res.reservations.nano_cpus, res.reservations.memory_bytes


class NodeInfo:
    """One node and what occupies it; ``node`` is None while only tasks mention the node."""

    __slots__ = (
        "_failures",
        "active_by_service",
        "active_total",
        "id",
        "node",
        "reserved_cpus",
        "reserved_memory",
        "tasks",
        "used_host_ports",
    )

    def __init__(self, node_id: str, node: Node | None = None) -> None:
        self.id = node_id
        self.node = node
        self.tasks: dict[str, Task] = {}
        self.active_total = 0
        self.active_by_service: dict[str, int] = {}
        self.reserved_cpus = 0
        self.reserved_memory = 0
        self.used_host_ports: dict[HostPort, int] = {}
        self._failures: dict[str, deque[float]] = {}

    @property
    def available_cpus(self) -> int:
        total = self.node.description.resources.nano_cpus if self.node is not None else 0
        return total - self.reserved_cpus

    @property
    def available_memory(self) -> int:
        total = self.node.description.resources.memory_bytes if self.node is not None else 0
        return total - self.reserved_memory

    def add_task(self, task: Task) -> None:
        """Count ``task`` (which must occupy this node), replacing an older copy of it."""
        self.remove_task(task.id)
        self.tasks[task.id] = task
        self.active_total += 1
        svc = task.service_id
        self.active_by_service[svc] = self.active_by_service.get(svc, 0) + 1
        cpus, memory = _reservation(task)
        self.reserved_cpus += cpus
        self.reserved_memory += memory
        for port in host_ports(task):
            self.used_host_ports[port] = self.used_host_ports.get(port, 0) + 1

    def remove_task(self, task_id: str) -> bool:
        task = self.tasks.pop(task_id, None)
        if task is None:
            return False
        self.active_total -= 1
        svc = task.service_id
        left = self.active_by_service[svc] - 1
        if left:
            self.active_by_service[svc] = left
        else:
            del self.active_by_service[svc]
        cpus, memory = _reservation(task)
        self.reserved_cpus -= cpus
        self.reserved_memory -= memory
        for port in host_ports(task):
            n = self.used_host_ports[port] - 1
            if n:
                self.used_host_ports[port] = n
            else:
                del self.used_host_ports[port]
        return True

    def record_failure(self, service_id: str, now: float) -> None:
        """A task of ``service_id`` failed or was rejected here."""
        times = self._failures.setdefault(service_id, deque(maxlen=MAX_FAILURES * 2))
        times.append(now)

    def recent_failures(self, service_id: str, now: float) -> int:
        times = self._failures.get(service_id)
        if not times:
            return 0
        while times and times[0] < now - MONITOR_FAILURES:
            times.popleft()
        return len(times)

    @property
    def idle(self) -> bool:
        """Nothing left to remember: no node object, no tasks, no failures."""
        return self.node is None and not self.tasks and not self._failures
