"""Task states in their only allowed order, and the other small enumerations of the model.

Task state only moves forward (swarmkit's invariant); the numeric values follow swarmkit's
types.proto spacing so comparisons read the same as there.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["TERMINAL", "Availability", "NodeRole", "NodeState", "TaskState"]


class TaskState(IntEnum):
    NEW = 0
    PENDING = 64
    ASSIGNED = 192
    ACCEPTED = 256
    PREPARING = 320
    READY = 384
    STARTING = 448
    RUNNING = 512
    COMPLETE = 576
    SHUTDOWN = 640
    FAILED = 704
    REJECTED = 768
    REMOVE = 800
    ORPHANED = 832

    @property
    def api(self) -> str:
        """The lower-case name the Docker API uses ("running")."""
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> TaskState:
        state = _BY_NAME.get(name)  # hot: every task state read goes through here
        if state is None:
            raise ValueError(f"invalid task state {name!r}")
        return state


_BY_NAME: dict[str, TaskState] = {s.name.lower(): s for s in TaskState} | {s.name: s for s in TaskState}


TERMINAL = frozenset(s for s in TaskState if s > TaskState.RUNNING)


class NodeState:
    UNKNOWN = "unknown"
    DOWN = "down"
    READY = "ready"
    DISCONNECTED = "disconnected"


class NodeRole:
    MANAGER = "manager"
    WORKER = "worker"


class Availability:
    ACTIVE = "active"
    PAUSE = "pause"
    DRAIN = "drain"
    ALL = ("active", "pause", "drain")
