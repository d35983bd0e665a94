"""Count a service's convergence as docker's progress updaters do, and emit `Progress` records.

Replicated services count running tasks by slot, global services by node (ignoring nodes that
are down), jobs count completed tasks of the current job iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from shoal.cli.errors import CliError
from shoal.cli.progress.render import Progress

__all__ = [
    "LONGEST_STATE",
    "MAX_BARS",
    "MAX_JOB_PROGRESS",
    "STATE_ORDER",
    "Updater",
    "known_states",
    "new_updater",
    "task_error",
    "task_state",
    "terminal",
    "truncate_error",
]

Output = Callable[[Progress], None]
Task = dict[str, Any]

STATE_ORDER = {
    "new": 1,
    "allocated": 2,
    "pending": 3,
    "assigned": 4,
    "accepted": 5,
    "preparing": 6,
    "ready": 7,
    "starting": 8,
    "running": 9,
    "complete": 10,
    "shutdown": 11,
    "failed": 12,
    "rejected": 13,
}
LONGEST_STATE = max(len(s) for s, n in STATE_ORDER.items() if n <= 10)  # "preparing", "allocated"
_MAX_PROGRESS = 9
MAX_JOB_PROGRESS = 10
MAX_BARS = 20


def terminal(state: str) -> bool:
    return STATE_ORDER.get(state, 0) > STATE_ORDER["running"]


def truncate_error(message: str) -> str:
    """One line, at most 75 characters, as docker shows task errors in progress bars."""
    message = message.replace("\n", " ")
    return message[:74] + "…" if len(message) > 75 else message


def task_state(task: Task) -> str:
    return str((task.get("Status") or {}).get("State", ""))


def task_error(task: Task) -> str:
    return str((task.get("Status") or {}).get("Err", "") or "")


def known_states(task: Task) -> bool:
    return bool(
        STATE_ORDER.get(str(task.get("DesiredState", "")), 0)
        and STATE_ORDER.get(task_state(task), 0)
    )


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


class Updater(Protocol):
    def update(
        self, service: dict[str, Any], tasks: list[Task], active: set[str], rollback: bool
    ) -> bool:
        """Emit progress for this poll; return whether the service has converged."""


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


def new_updater(service: dict[str, Any], out: Output) -> Updater:
    """docker's ``initializeUpdater``: pick the counter for the service's mode."""
    mode = (service.get("Spec") or {}).get("Mode") or {}
    if mode.get("Replicated") is not None and mode["Replicated"].get("Replicas") is not None:
        return ReplicatedUpdater(out)
    if mode.get("Global") is not None:
        return GlobalUpdater(out)
    from shoal.cli.progress.jobs import GlobalJobUpdater, ReplicatedJobUpdater

    if mode.get("ReplicatedJob") is not None:
        return ReplicatedJobUpdater(service, out)
    if mode.get("GlobalJob") is not None:
        return GlobalJobUpdater(out)
    raise CliError("unrecognized service mode")
