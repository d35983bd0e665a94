"""A global job's run: one task on every eligible node, run once to completion.

A node is eligible when it is ready, its availability is active (a paused node gets no new task,
swarmkit's rule) and it meets the placement constraints; nodes that join during or after the run
get their task too. Per node, for the current run: a COMPLETE task is done; a wanted task that
ended goes to the restart supervisor (a replacement on the same node); on a node that is down,
drained or gone, wanted tasks are shut down and not replaced (should the node come back, it gets
a new one); a node whose last task the policy declined to replace gets none.
As in swarmkit ``manager/orchestrator/jobs/global/reconciler.go``.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from shoal.errors import InvalidArgument
from shoal.manager import constraint
from shoal.manager.orchestrator.common import is_live, new_task, newest, node_invalid, shut_down
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.model.objects import Node, Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Tx, copy

__all__ = ["plan_global_job"]

log = logging.getLogger(__name__)


def plan_global_job(tx: Tx, service: Service, run: list[Task],
                    restarts: RestartSupervisor) -> None:
    """Write the restarts, shutdowns and new tasks of ``run`` (the current run) into ``tx``."""
    view = tx.view
    by_node: dict[str, list[Task]] = defaultdict(list)
    for task in run:
        by_node[task.node_id].append(task)

    covered: set[str] = set()  # nodes that need no new task
    for node_id, tasks in by_node.items():
        if any(t.state == TaskState.COMPLETE for t in tasks):
            covered.add(node_id)
            continue
        live = [t for t in tasks if is_live(t)]
        if node_invalid(view.get(Node, node_id)):
            for task in live:
                task = copy(task)
                task.desired_state = TaskState.SHUTDOWN
                tx.update(task)
            if live:
                log.info("service %s: node %s down, drained or gone, %d tasks desired shutdown",
                         service.id, node_id, len(live))
            continue
        for task in list(live):
            if task.state > TaskState.RUNNING:
                live.remove(task)
                replacement = restarts.restart(tx, service, task)
                if replacement is not None:
                    live.append(replacement)
                else:  # as restart() wrote it, for retired() below
                    tasks = [shut_down(t) if t.id == task.id else t for t in tasks]
        if live or restarts.retired(service, newest(tasks)):
            covered.add(node_id)

    rules = _constraints(service)
    if rules is None:
        return
    added: list[str] = []
    for node in view.all(Node):
        if node.id in covered or node.status.state != "ready" or node.spec.availability != "active":
            continue
        if constraint.node_matches(rules, node):
            tx.create(new_task(service, node_id=node.id))
            added.append(node.id)
    if added:
        log.info("service %s: job %d nodes done or running, new tasks on %s", service.id,
                 len(covered), ",".join(added[:5]) + ("..." if len(added) > 5 else ""))


def _constraints(service: Service) -> list[constraint.Constraint] | None:
    placement = service.spec.task_template.placement
    try:
        return constraint.parse(placement.constraints if placement else None)
    except InvalidArgument as exc:
        log.warning("service %s: %s; no node is eligible", service.id, exc.message)
        return None
