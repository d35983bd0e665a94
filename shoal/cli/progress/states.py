"""What every progress counter shares: task states in swarmkit's order, reading a task's
state and error, and the `Updater` protocol the watch loop drives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from shoal.cli.progress.render import Progress

__all__ = [
    "LONGEST_STATE",
    "MAX_BARS",
    "MAX_JOB_PROGRESS",
    "STATE_ORDER",
    "Output",
    "Task",
    "Updater",
    "known_states",
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



class Updater(Protocol):
    def update(
        self, service: dict[str, Any], tasks: list[Task], active: set[str], rollback: bool
    ) -> bool:
        """Emit progress for this poll; return whether the service has converged."""
