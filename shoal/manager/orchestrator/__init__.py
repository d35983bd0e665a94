"""Orchestrators: turn services into tasks, and keep them running, updated and tidy.

Parts (each ``X(store, settings=None)`` with ``async def run()`` until cancelled; they meet the
allocator, scheduler and dispatcher only in the store):
- ``ReplicatedOrchestrator``: Replicas slots per replicated service;
- ``GlobalOrchestrator``: one task per eligible node per global service;
- ``JobOrchestrator``: replicated-job and global-job services, run to completion once per run
  (``JobStatus.JobIteration``);
- ``TaskReaper``: deletes removed tasks and trims task history.
Each orchestrator owns a ``RestartSupervisor``; the replicated and global ones an
``UpdateSupervisor`` (rolling updates) too.
"""

from __future__ import annotations

from typing import Protocol

from shoal.manager.orchestrator.common import OrchestratorSettings, is_task_dirty, new_task
from shoal.manager.orchestrator.global_ import GlobalOrchestrator
from shoal.manager.orchestrator.jobs import JobOrchestrator
from shoal.manager.orchestrator.replicated import ReplicatedOrchestrator
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.taskreaper import TaskReaper
from shoal.manager.orchestrator.update import Updater, UpdateSupervisor
from shoal.store.store import Store

__all__ = [
    "GlobalOrchestrator",
    "JobOrchestrator",
    "OrchestratorSettings",
    "Part",
    "ReplicatedOrchestrator",
    "RestartSupervisor",
    "TaskReaper",
    "UpdateSupervisor",
    "Updater",
    "is_task_dirty",
    "new_task",
    "orchestrators",
]


class Part(Protocol):
    async def run(self) -> None: ...


def orchestrators(store: Store, settings: OrchestratorSettings | None = None) -> list[Part]:
    """The long-lived parts of this package, for the leader's TaskGroup."""
    return [
        ReplicatedOrchestrator(store, settings),
        GlobalOrchestrator(store, settings),
        JobOrchestrator(store, settings),
        TaskReaper(store, settings),
    ]
