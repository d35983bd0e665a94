"""Progress counters for job services (docker's replicated-job and global-job updaters):
completed tasks of the current job iteration out of the total."""

from __future__ import annotations

from typing import Any

from shoal.cli.progress.render import Progress
from shoal.cli.progress.states import (
    LONGEST_STATE,
    MAX_BARS,
    MAX_JOB_PROGRESS,
    STATE_ORDER,
    Output,
    Task,
    known_states,
    task_error,
    task_state,
    truncate_error,
)

__all__ = ["GlobalJobUpdater", "ReplicatedJobUpdater"]


def _iteration(service: dict[str, Any]) -> int:
    return int((((service.get("JobStatus") or {}).get("JobIteration")) or {}).get("Index", 0))


def _task_iteration(task: Task) -> int | None:
    iteration = task.get("JobIteration")
    return None if iteration is None else int(iteration.get("Index", 0))


def _less_advanced(existing: Task | None, task: Task) -> bool:
    """Whether `task` replaces `existing` for its slot/node: the job shows its earliest state."""
    if existing is None:
        return True
    return STATE_ORDER.get(task_state(existing), 0) > STATE_ORDER.get(task_state(task), 0)


def _job_bar(ident: str, task: dict[str, Any]) -> Progress:
    """One job task's progress line: its error, or its state as a bar."""
    if task_error(task):
        return Progress(id=ident, action=truncate_error(task_error(task)))
    return Progress(
        id=ident,
        action=task_state(task).ljust(LONGEST_STATE),
        current=STATE_ORDER.get(task_state(task), 0),
        total=MAX_JOB_PROGRESS,
        hide_counts=True,
    )


def _completed(completed: int, total: int) -> Progress:
    """The ``job progress`` line both job counters print."""
    return Progress(
        id="job progress",
        action=f"{completed:>{len(str(total))}} out of {total} complete",
        current=completed,
        total=total,
        hide_counts=True,
    )


class ReplicatedJobUpdater:
    """docker's ``replicatedJobProgressUpdater``: completed out of TotalCompletions."""

    def __init__(self, service: dict[str, Any], out: Output) -> None:
        job = ((service.get("Spec") or {}).get("Mode") or {}).get("ReplicatedJob") or {}
        self.out = out
        self.total = int(job.get("TotalCompletions") or 0)
        self.concurrent = int(job.get("MaxConcurrent") or 0)
        self.iteration = _iteration(service)
        self.initialized = False

    def update(
        self, service: dict[str, Any], tasks: list[Task], active: set[str], rollback: bool
    ) -> bool:
        if not self.initialized:
            self._overall(0, 0)
            if self.total <= MAX_BARS:
                for i in range(1, self.total + 1):
                    self.out(Progress(id=f"{i}/{self.total}", action=" "))
            self.initialized = True
        by_slot: dict[int, Task] = {}
        for task in tasks:
            if _task_iteration(task) != self.iteration or not known_states(task):
                continue
            slot = int(task.get("Slot") or 0)
            if _less_advanced(by_slot.get(slot), task):
                by_slot[slot] = task
        active_count = complete = 0
        for slot in range(len(by_slot)):  # docker walks slots 0..n-1
            task = by_slot.get(slot, {})
            if task and self.total <= MAX_BARS:
                ident = f"{slot + 1}/{self.total}"
                self.out(_job_bar(ident, task))
            if STATE_ORDER.get(task_state(task), 0) < STATE_ORDER["complete"]:
                active_count += 1
            if task_state(task) == "complete":
                complete += 1
        self._overall(active_count, complete)
        return complete == self.total

    def _overall(self, active: int, completed: int) -> None:
        self.out(_completed(completed, self.total))
        desired = min(self.total - completed, self.concurrent)
        width = len(str(self.concurrent))
        self.out(
            Progress(id="active tasks", action=f"{active:>{width}} out of {desired:>{width}} tasks")
        )


class GlobalJobUpdater:
    """docker's ``globalJobProgressUpdater``: completed tasks on the initial set of nodes."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.initialized = False
        self.total = 0
        self.nodes: set[str] = set()

    def update(
        self, service: dict[str, Any], tasks: list[Task], active: set[str], rollback: bool
    ) -> bool:
        iteration = _iteration(service)
        if not self.initialized:
            if not tasks and active:
                self.out(Progress(id="job progress", action="waiting for tasks"))
                return False
            self.nodes = {
                str(t.get("NodeID", "")) for t in tasks if _task_iteration(t) == iteration
            }
            self.total = len(self.nodes)
            self._overall(0)
            self.initialized = True
        by_node: dict[str, Task] = {}
        for task in tasks:
            node_id = str(task.get("NodeID", ""))
            if _task_iteration(task) != iteration or node_id not in self.nodes:
                continue
            if _less_advanced(by_node.get(node_id), task):
                by_node[node_id] = task
        complete = 0
        for node_id in sorted(by_node):
            task = by_node[node_id]
            if self.total <= MAX_BARS:
                self.out(_job_bar(node_id, task))
            if task_state(task) == "complete":
                complete += 1
        self._overall(complete)
        return complete == self.total

    def _overall(self, complete: int) -> None:
        self.out(_completed(complete, self.total))
