"""The allocation steps a task needs before it may be scheduled ("voters", as swarmkit's ballot).

A task leaves NEW only when every voter has allocated what it owns for it (swarmkit
``manager/allocator/allocator.go``: one voter per resource kind, today only "network": the
``NetworkAllocator``, which the ``Allocator`` always runs first).
"""

from __future__ import annotations

from typing import Protocol

from shoal.model.objects import Task
from shoal.store.tables import Tables

__all__ = ["Voter"]


class Voter(Protocol):
    """One allocation step."""

    @property
    def name(self) -> str:
        """Shown in logs and in the task's status when it cannot allocate."""
        ...

    def allocate(self, task: Task, view: Tables) -> Task | None:
        """``task`` with this voter's resources filled in (a new object), or None if it cannot
        be allocated yet (it stays NEW and is retried on the next pass)."""
        ...
