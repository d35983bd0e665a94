"""The swarm's counts for Prometheus, read from a manager's store when scraped (Docker's names
and labels), the scheduling delay, and the store's latency histograms moving with its use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shoal import metrics
from shoal.manager import metrics as manager_metrics
from shoal.model.objects import Node, NodeStatus, Service, Task, TaskStatus
from shoal.model.specs import NodeSpec, Replicated, ServiceMode, ServiceSpec, TaskSpec
from shoal.model.states import NodeState, TaskState
from shoal.store.store import Store, Tx


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.REGISTRY).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_counts_by_state_from_the_store(store: Store) -> None:
    def fill(tx: Tx) -> None:
        tx.create(Node(id="n1", spec=NodeSpec(), status=NodeStatus(state=NodeState.READY)))
        tx.create(Node(id="n2", spec=NodeSpec(), status=NodeStatus(state=NodeState.DOWN)))
        tx.create(Service(id="s1", spec=ServiceSpec(
            name="web", task_template=TaskSpec(container_spec={"Image": "busybox"}),
            mode=ServiceMode(replicated=Replicated(replicas=2)))))
        for i, state in enumerate((TaskState.RUNNING, TaskState.RUNNING, TaskState.FAILED)):
            tx.create(Task(id=f"t{i}", service_id="s1", status=TaskStatus(state=state)))

    writes_before = _samples().get(("swarm_store_write_tx_latency_seconds_count", ()), 0.0)
    await store.update(fill)
    source = manager_metrics.ManagerSource(store=lambda: store, is_leader=lambda: True,
                                           etcd=lambda: (True, 4096))
    manager_metrics.attach(source)
    try:
        got = _samples()
    finally:
        manager_metrics.detach(source)
    assert got[("swarm_manager_nodes", (("state", "ready"),))] == 1
    assert got[("swarm_manager_nodes", (("state", "down"),))] == 1
    assert got[("swarm_manager_nodes", (("state", "unknown"),))] == 0
    assert got[("swarm_manager_tasks_total", (("state", "running"),))] == 2
    assert got[("swarm_manager_tasks_total", (("state", "failed"),))] == 1
    assert got[("swarm_manager_tasks_total", (("state", "orphaned"),))] == 0
    assert got[("swarm_manager_services_total", ())] == 1
    assert got[("swarm_manager_secrets_total", ())] == 0
    assert got[("swarm_manager_leader", ())] == 1
    assert got[("shoal_etcd_up", ())] == 1
    assert got[("shoal_etcd_db_size_bytes", ())] == 4096
    assert got[("swarm_store_write_tx_latency_seconds_count", ())] == writes_before + 1
    # detached: the swarm's counts are gone from the next scrape
    assert ("swarm_manager_leader", ()) not in _samples()


async def test_a_manager_whose_store_is_not_ready_reports_no_counts(store: Store) -> None:
    source = manager_metrics.ManagerSource(store=lambda: None, is_leader=lambda: False,
                                           etcd=lambda: (False, 0))
    manager_metrics.attach(source)
    try:
        assert ("swarm_manager_leader", ()) not in _samples()
    finally:
        manager_metrics.detach(source)


def test_scheduling_delay_from_creation() -> None:
    created = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    task = Task(id="t", created_at=created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    assert manager_metrics.scheduling_delay(task, created + timedelta(seconds=2.5)) == 2.5
    assert manager_metrics.scheduling_delay(Task(id="t0")) is None  # no creation time
    assert manager_metrics.scheduling_delay(Task(id="tx", created_at="garbage")) is None
