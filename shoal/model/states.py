"""Task states in their only allowed order, and the other small enumerations of the model.

A task state is its wire string ("running"): the enum is a StrEnum, so msgspec encodes and
decodes it by value and the JSON is unchanged. Task state only moves forward (swarmkit's
invariant), so states compare by swarmkit's types.proto numbers, not alphabetically.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

__all__ = ["TERMINAL", "Availability", "NodeRole", "NodeState", "TaskState"]


class TaskState(StrEnum):
    rank: int  # swarmkit's number: the order of the states

    NEW = "new", 0
    PENDING = "pending", 64
    ASSIGNED = "assigned", 192
    ACCEPTED = "accepted", 256
    PREPARING = "preparing", 320
    READY = "ready", 384
    STARTING = "starting", 448
    RUNNING = "running", 512
    COMPLETE = "complete", 576
    SHUTDOWN = "shutdown", 640
    FAILED = "failed", 704
    REJECTED = "rejected", 768
    REMOVE = "remove", 800
    ORPHANED = "orphaned", 832

    def __new__(cls, value: str, rank: int) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.rank = rank
        return member

    # str's comparisons would order alphabetically; these order by rank, and a plain str on
    # either side is a TypeError (the reflected str comparison would be alphabetical again).
    def __lt__(self, other: object) -> bool:
        return self.rank < _rank(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= _rank(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > _rank(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= _rank(other)


def _rank(other: object) -> int:
    if isinstance(other, TaskState):
        return other.rank
    raise TypeError(f"a task state compares only with a task state, not {other!r}")


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
