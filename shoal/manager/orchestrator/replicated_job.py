"""A replicated job's run: TotalCompletions tasks, at most MaxConcurrent of them at a time.

Slots are numbered 0..TotalCompletions-1 (swarmkit's numbering; the docker CLI's progress bars
walk slots from 0). Per slot of the current run: a COMPLETE task completes it; a wanted task
that ended (failed, rejected, shut down) or whose node is down, drained or gone goes to the
restart supervisor (a replacement in the same slot, after the restart delay); a slot whose last
task the policy declined to replace is spent: it never completes, so neither does the run, and
it takes no new task (swarmkit would start a fresh one at its next event, bypassing the
policy). New tasks fill the lowest free slots, as many as
``min(MaxConcurrent - active, TotalCompletions - completed - active - spent)``.
As in swarmkit ``manager/orchestrator/jobs/replicated/reconciler.go``.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from shoal.manager.orchestrator.common import is_live, new_task, newest, node_invalid, shut_down
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.model.objects import Node, Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Tx

__all__ = ["plan_replicated_job"]

log = logging.getLogger(__name__)


def plan_replicated_job(tx: Tx, service: Service, run: list[Task],
                        restarts: RestartSupervisor, *, limit: int) -> None:
    """Write the restarts and new tasks of ``run`` (the current run's tasks) into ``tx``, at
    most ``limit`` new tasks (the rest at the next pass, which the new tasks trigger)."""
    job = service.spec.mode.replicated_job
    assert job is not None
    total = job.total_completions or 0  # both set by the control API's defaults
    concurrent = job.max_concurrent or 0
    by_slot: dict[int, list[Task]] = defaultdict(list)
    for task in run:
        by_slot[task.slot].append(task)

    done: set[int] = set()
    active: set[int] = set()
    spent: set[int] = set()
    for slot, tasks in by_slot.items():
        if any(t.state == TaskState.COMPLETE for t in tasks):
            done.add(slot)
            continue
        live = [t for t in tasks if is_live(t)]
        for task in list(live):
            stranded = bool(task.node_id) and node_invalid(tx.view.get(Node, task.node_id))
            if task.state > TaskState.RUNNING or stranded:
                live.remove(task)
                replacement = restarts.restart(tx, service, task)
                if replacement is not None:
                    live.append(replacement)
                else:  # as restart() wrote it, for retired() below
                    tasks = [shut_down(t) if t.id == task.id else t for t in tasks]
        if live:
            active.add(slot)
        elif restarts.retired(service, newest(tasks)):
            spent.add(slot)

    want = min(concurrent - len(active), total - len(done) - len(active) - len(spent), limit)
    taken = done | active | spent
    added: list[int] = []
    for slot in range(total):
        if len(added) >= want:
            break
        if slot not in taken:
            tx.create(new_task(service, slot=slot))
            added.append(slot)
    if added:
        log.info("service %s: job %d/%d complete, %d active, %d spent, new tasks in slots %s",
                 service.id, len(done), total, len(active), len(spent), added)
