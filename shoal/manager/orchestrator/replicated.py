"""The replicated orchestrator: ``Replicas`` slots per service, numbered from 1.

Per service, in one transaction: tasks that ended while still wanted, or whose node is down,
drained or gone, go to the restart supervisor (replacement in the same slot, unassigned);
missing slots are filled with the lowest free numbers; surplus slots get DesiredState REMOVE
(ended and non-running ones first, then from the nodes with the most tasks of the service).
A slot whose last task ended and that the restart policy declined to replace stays empty and
still counts. One pass creates or removes at most ``max_tasks_per_pass`` tasks; the tasks it
writes make the service dirty again, so a large scale goes on at the next batches. The kept slots go to the update supervisor. Replicated jobs are not handled here.
As in swarmkit ``manager/orchestrator/replicated/{services,tasks}.go``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict

from shoal.manager.orchestrator._base import Orchestrator
from shoal.manager.orchestrator.common import is_live, new_task, node_invalid
from shoal.model.objects import Node, Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Tx, copy
from shoal.store.tables import Tables

__all__ = ["ReplicatedOrchestrator"]

log = logging.getLogger(__name__)


class ReplicatedOrchestrator(Orchestrator):
    """Keeps ``Spec.Mode.Replicated.Replicas`` tasks per replicated service."""

    def _mine(self, service: Service) -> bool:
        return service.spec.mode.name == "replicated"

    def _services_for_node(self, view: Tables, node: Node) -> set[str]:
        return {t.service_id for t in view.tasks_of_node(node.id) if t.service_id}

    def _plan(self, tx: Tx, service: Service) -> set[str]:
        if not self._mine(service):
            return set()
        view = tx.view
        tasks = {t.id: t for t in view.tasks_of_service(service.id)}
        # Restarts: ended while still wanted, or stranded on a node that is down/drained/gone.
        for task in list(tasks.values()):
            if not is_live(task):
                continue
            stranded = bool(task.node_id) and node_invalid(view.get(Node, task.node_id))
            if task.state > TaskState.RUNNING or stranded:
                tasks[task.id] = copy(task)
                tasks[task.id].desired_state = TaskState.SHUTDOWN
                replacement = self.restarts.restart(tx, service, task)
                if replacement is not None:
                    tasks[replacement.id] = replacement

        by_slot: dict[int, list[Task]] = defaultdict(list)
        for task in tasks.values():
            by_slot[task.slot].append(task)
        live = {s: [t for t in ts if is_live(t)] for s, ts in by_slot.items()}
        live = {s: ts for s, ts in live.items() if ts}
        retired = {
            s for s, ts in by_slot.items()
            if s not in live and self.restarts.retired(service, max(ts, key=_age_key))
        }
        replicated = service.spec.mode.replicated
        want = 1 if replicated is None or replicated.replicas is None else replicated.replicas
        have = len(live) + len(retired)

        step = self._settings.max_tasks_per_pass  # the rest at the next pass
        if want > have:
            slot, added = 0, list[int]()
            while len(added) < min(want - have, step):
                slot += 1
                if slot not in live and slot not in retired:
                    task = new_task(service, slot=slot)
                    tx.create(task)
                    live[slot] = [task]
                    added.append(slot)
            log.info("service %s: scale up %d->%d, new slots %s", service.id, have, want,
                     _slots(added))
        elif want < have:
            doomed = _removal_order(retired | set(live), live)[: min(have - want, step)]
            for slot in doomed:
                for task in live.pop(slot, None) or [max(by_slot[slot], key=_age_key)]:
                    if task.desired_state != TaskState.REMOVE:
                        task = copy(task)
                        task.desired_state = TaskState.REMOVE
                        tx.update(task)
            log.info("service %s: scale down %d->%d, removing slots %s", service.id, have, want,
                     _slots(sorted(doomed)))
        return {str(s) for s in live}


def _slots(slots: list[int]) -> str:
    """Slots for a log line, the middle elided past ten."""
    if len(slots) <= 10:
        return str(slots)
    return f"[{slots[0]}..{slots[-1]}] ({len(slots)})"


def _age_key(task: Task) -> tuple[str, str]:
    return (task.created_at, task.status.timestamp)


def _removal_order(slots: set[int], live: dict[int, list[Task]]) -> list[int]:
    """Slots in the order they are removed: retired, unplaced, non-running, most-loaded node."""

    def running(slot: int) -> bool:
        return any(t.state == TaskState.RUNNING for t in live[slot])

    # Each placed slot is the n-th copy of the service on its node (running slots counted first).
    per_node: Counter[str] = Counter()
    index: dict[int, int] = {}
    for slot in sorted(live, key=lambda s: (not running(s), s)):
        tasks = live[slot]
        if len(tasks) == 1 and tasks[0].node_id:
            per_node[tasks[0].node_id] += 1
            index[slot] = per_node[tasks[0].node_id]

    def rank(slot: int) -> tuple[int, int, int, int]:
        if slot not in live:
            return (0, 0, 0, slot)
        if slot not in index:
            return (1, int(running(slot)), -(10**9), slot)
        return (1, int(running(slot)), -index[slot], slot)

    return sorted(slots, key=rank)
