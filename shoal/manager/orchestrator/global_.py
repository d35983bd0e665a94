"""The global orchestrator: one task per eligible node for each global service.

A node is eligible when its status is ready, its availability is not drain and it satisfies
the service's placement constraints. Per service, in one transaction: tasks on nodes that are
gone, down, drained or no longer match get DesiredState SHUTDOWN; tasks that ended while still
wanted go to the restart supervisor (replacement on the same node); eligible nodes without a
task get one, with NodeID pre-set (the allocator and scheduler still pass it). A node whose last
task ended and that the restart policy declined to replace stays without one. Node changes
(join, down, drain, labels, removal) mark every global service dirty. Global jobs are not
handled. As in swarmkit ``manager/orchestrator/global/global.go``.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from shoal.errors import InvalidArgument
from shoal.manager import constraint
from shoal.manager.orchestrator._base import Orchestrator
from shoal.manager.orchestrator.common import is_live, new_task
from shoal.model.objects import Node, Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Tx, copy
from shoal.store.tables import Tables

__all__ = ["GlobalOrchestrator"]

log = logging.getLogger(__name__)


def _constraints(service: Service) -> list[constraint.Constraint] | None:
    placement = service.spec.task_template.placement
    try:
        return constraint.parse(placement.constraints if placement else None)
    except InvalidArgument as exc:
        log.warning("service %s: %s; no node is eligible", service.id, exc.message)
        return None


def _why_ineligible(node: Node | None, rules: list[constraint.Constraint] | None) -> str:
    """Empty if the node may run the service's task, else the reason."""
    if node is None:
        return "node removed"
    if node.status.state != "ready":
        return f"node {node.status.state}"
    if node.spec.availability == "drain":
        return "node drained"
    if rules is None or not constraint.node_matches(rules, node):
        return "constraints not met"
    return ""


class GlobalOrchestrator(Orchestrator):
    """Keeps one task of every global service on every eligible node."""

    def _mine(self, service: Service) -> bool:
        return service.spec.mode.global_ is not None

    def _services_for_node(self, view: Tables, node: Node) -> set[str]:
        return {s.id for s in view.all(Service) if self._mine(s)}

    def _plan(self, tx: Tx, service: Service) -> set[str]:
        if not self._mine(service):
            return set()
        view = tx.view
        rules = _constraints(service)
        by_node: dict[str, list[Task]] = defaultdict(list)
        for task in view.tasks_of_service(service.id):
            by_node[task.node_id].append(task)

        kept: set[str] = set()
        for node_id, tasks in by_node.items():
            live = [t for t in tasks if is_live(t)]
            if not live:
                continue
            node = view.get(Node, node_id)
            reason = _why_ineligible(node, rules)
            # A node that is only not-ready-yet (unknown, disconnected) keeps its task.
            if reason and not (node is not None and reason.startswith("node ")
                               and node.status.state in ("unknown", "disconnected")):
                for task in live:
                    task = copy(task)
                    task.desired_state = TaskState.SHUTDOWN
                    tx.update(task)
                log.info("service %s: %s on %s, %d tasks desired shutdown", service.id, reason,
                         node_id, len(live))
                continue
            kept.add(node_id)
            for task in live:
                if task.state > TaskState.RUNNING:
                    self.restarts.restart(tx, service, task)

        for node in view.all(Node):
            if node.id in kept or _why_ineligible(node, rules):
                continue
            history = [t for t in by_node.get(node.id, []) if not is_live(t)]
            newest = max(history, key=lambda t: (t.created_at, t.status.timestamp), default=None)
            if newest is not None and self.restarts.retired(service, newest):
                continue
            task = new_task(service, node_id=node.id)
            tx.create(task)
            kept.add(node.id)
            log.info("service %s: node %s eligible, new task %s", service.id, node.id, task.id)
        return kept
