"""The swarm's counts for Prometheus, read from this manager's store at scrape time (swarmkit
manager/metrics/collector.go keeps counters it moves on store events; reading the in-memory
tables' indexes when scraped gives the same figures with nothing to keep in step). Every manager
reports them, leader or not, as swarmkit's. One collector per process, fed by the manager that
attached last (a shoald runs one; in-process tests may run several)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shoal import metrics
from shoal.model.objects import Config, Network, Node, Secret, Service, Task
from shoal.model.states import NodeState, TaskState
from shoal.store.store import Store

__all__ = ["ManagerSource", "attach", "detach", "scheduling_delay"]

_NODE_STATES = (NodeState.UNKNOWN, NodeState.DOWN, NodeState.READY, NodeState.DISCONNECTED)


@dataclass(frozen=True, eq=False)
class ManagerSource:
    store: Callable[[], Store | None]  # None until the store serves
    is_leader: Callable[[], bool]
    etcd: Callable[[], tuple[bool, int]]  # this manager's member: healthy, database bytes


class _SwarmCollector(Collector):
    def __init__(self) -> None:
        self.sources: list[ManagerSource] = []

    def collect(self) -> Iterator[Metric]:
        source = self.sources[-1] if self.sources else None
        store = source.store() if source is not None else None
        if source is None or store is None:
            return
        healthy, db_size = source.etcd()
        up = GaugeMetricFamily("shoal_etcd_up", "1 while this manager's etcd member answers its health check")
        up.add_metric([], 1.0 if healthy else 0.0)
        yield up
        size = GaugeMetricFamily("shoal_etcd_db_size_bytes", "Size of this manager's etcd database")
        size.add_metric([], db_size)
        yield size
        view = store.view()
        leader = GaugeMetricFamily("swarm_manager_leader", "Indicates if this manager node is a leader")
        leader.add_metric([], 1.0 if source.is_leader() else 0.0)
        yield leader
        nodes = GaugeMetricFamily("swarm_manager_nodes", "The number of nodes", labels=["state"])
        by_state = dict.fromkeys(_NODE_STATES, 0)
        for node in view.all(Node):
            by_state[node.status.state] = by_state.get(node.status.state, 0) + 1
        for state, count in by_state.items():
            nodes.add_metric([state], count)
        yield nodes
        tasks = GaugeMetricFamily("swarm_manager_tasks_total", "The number of tasks in the cluster object store",
                                  labels=["state"])
        task_states = {s.value: 0 for s in TaskState}
        for task in view.all(Task):
            task_states[task.status.state.value] += 1
        for name, count in task_states.items():
            tasks.add_metric([name], count)
        yield tasks
        for name, cls in (("services", Service), ("networks", Network), ("secrets", Secret),
                          ("configs", Config)):
            family = GaugeMetricFamily(f"swarm_manager_{name}_total", f"The number of {name} in the cluster object store")
            family.add_metric([], view.count(cls))
            yield family


_COLLECTOR = _SwarmCollector()


def attach(source: ManagerSource) -> None:
    if not _COLLECTOR.sources:
        metrics.register(_COLLECTOR)
    _COLLECTOR.sources.append(source)


def detach(source: ManagerSource) -> None:
    if source in _COLLECTOR.sources:
        _COLLECTOR.sources.remove(source)
        if not _COLLECTOR.sources:
            metrics.unregister(_COLLECTOR)


def scheduling_delay(task: Task, now: datetime | None = None) -> float | None:
    """Seconds from the task's creation (NEW) to now (RUNNING), or None without a creation time."""
    try:
        created = datetime.fromisoformat(task.created_at)
    except ValueError:
        return None
    if created.year < 2000:  # ZERO_TIME
        return None
    return max(0.0, ((now or datetime.now(UTC)) - created).total_seconds())
