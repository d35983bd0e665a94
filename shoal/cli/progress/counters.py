"""Count a service's convergence as docker's progress updaters do, and emit `Progress` records.

Replicated services count running tasks by slot, global services by node (ignoring nodes that
are down); jobs are counted in `shoal.cli.progress.jobs`.
"""

from __future__ import annotations

from typing import Any

from shoal.cli.errors import CliError
from shoal.cli.progress.render import Progress
from shoal.cli.progress.states import (
    LONGEST_STATE,
    MAX_BARS,
    STATE_ORDER,
    Output,
    Task,
    known_states,
    task_error,
    task_state,
    terminal,
    truncate_error,
)

__all__ = ["GlobalUpdater", "ReplicatedUpdater"]

_MAX_PROGRESS = 9


def _prefer(existing: Task | None, task: Task) -> bool:
    """Whether `task` replaces `existing` for its slot/node: lowest desired, then observed state."""
    if existing is None:
        return True
    old_desired = STATE_ORDER[str(existing.get("DesiredState"))]
    new_desired = STATE_ORDER[str(task.get("DesiredState"))]
    if old_desired < new_desired:
        return False
    return not (
        old_desired == new_desired
        and STATE_ORDER[task_state(existing)] <= STATE_ORDER[task_state(task)]
    )


def _overall(out: Output, numerator: int, denominator: int, rollback: bool) -> None:
    text = f"{numerator} out of {denominator} tasks"
    out(
        Progress(id="overall progress", action=f"rolling back update: {text}" if rollback else text)
    )


def _task_bar(out: Output, ident: str, task: Task, maximum: int) -> None:
    if task_error(task):
        out(Progress(id=ident, action=truncate_error(task_error(task))))
    elif not terminal(str(task.get("DesiredState"))) and not terminal(task_state(task)):
        out(
            Progress(
                id=ident,
                action=task_state(task).ljust(LONGEST_STATE),
                current=STATE_ORDER[task_state(task)],
                total=maximum,
                hide_counts=True,
            )
        )


class ReplicatedUpdater:
    """docker's ``replicatedProgressUpdater``: one bar per slot, up to 20 slots."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.slots: dict[int, int] = {}
        self.initialized = False
        self.done = False

    def update(
        self, service: dict[str, Any], tasks: list[Task], active: set[str], rollback: bool
    ) -> bool:
        replicated = ((service.get("Spec") or {}).get("Mode") or {}).get("Replicated") or {}
        if replicated.get("Replicas") is None:
            raise CliError("no replica count")
        replicas = int(replicated["Replicas"])
        if not self.initialized:
            _overall(self.out, 0, replicas, rollback)
            if replicas <= MAX_BARS:
                for i in range(1, replicas + 1):
                    self.out(Progress(id=f"{i}/{replicas}", action=" "))
            self.initialized = True
        by_slot: dict[int, Task] = {}
        for task in tasks:
            if not known_states(task):
                continue
            slot = int(task.get("Slot") or 0)
            if not _prefer(by_slot.get(slot), task):
                continue
            if task.get("NodeID") and task["NodeID"] not in active:
                continue
            by_slot[slot] = task
        if self.done and any(task_state(t) != "running" for t in by_slot.values()):
            self.done = False
        running = 0
        for slot in sorted(by_slot):
            task = by_slot[slot]
            mapped = self.slots.setdefault(slot, len(self.slots) + 1)
            if not terminal(str(task.get("DesiredState"))) and task_state(task) == "running":
                running += 1
            if not self.done and replicas <= MAX_BARS and mapped <= replicas:
                _task_bar(self.out, f"{mapped}/{replicas}", task, _MAX_PROGRESS)
        if not self.done:
            _overall(self.out, running, replicas, rollback)
            self.done = running == replicas
        return running == replicas


class GlobalUpdater:
    """docker's ``globalProgressUpdater``: one bar per node with an up-to-date task."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.initialized = False
        self.done = False

    def update(
        self, service: dict[str, Any], tasks: list[Task], active: set[str], rollback: bool
    ) -> bool:
        by_node: dict[str, Task] = {}
        for task in tasks:
            if known_states(task) and _prefer(by_node.get(str(task.get("NodeID", ""))), task):
                by_node[str(task.get("NodeID", ""))] = task
        count = len(by_node)
        if not self.initialized:
            if count == 0:
                self.out(Progress(id="overall progress", action="waiting for new tasks"))
                return False
            _overall(self.out, 0, count, rollback)
            self.initialized = True
        if self.done and any(task_state(t) != "running" for t in by_node.values()):
            self.done = False
        running = 0
        for node_id in sorted(by_node):
            task = by_node[node_id]
            if node_id not in active:
                continue
            if not terminal(str(task.get("DesiredState"))) and task_state(task) == "running":
                running += 1
            if not self.done and count <= MAX_BARS:
                _task_bar(self.out, node_id[:12], task, _MAX_PROGRESS)
        if not self.done:
            _overall(self.out, running, count, rollback)
            self.done = running == count
        return running == count
