"""The part the orchestrators share: deleted services, the plan transaction, the supervisors.

A subclass says which services are its own and writes a ``_plan(tx, service)`` that returns the
slot keys it keeps; this class runs the plan in one compare-and-set transaction, commits or
discards the restarts it staged, and hands the kept slots to the update supervisor. Jobs have no
rolling update (a service update starts a new run): their orchestrator sets
``rolling_updates = False`` and owns no update supervisor.
"""

from __future__ import annotations

import logging
from abc import abstractmethod

from shoal.manager.orchestrator._loop import ServiceLoop
from shoal.manager.orchestrator.common import OrchestratorSettings, is_live
from shoal.manager.orchestrator.restart import RestartSupervisor
from shoal.manager.orchestrator.update import UpdateSupervisor, slot_key
from shoal.model.objects import Service, Task
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx, copy
from shoal.store.tables import Tables

__all__ = ["Orchestrator"]

log = logging.getLogger(__name__)


class Orchestrator(ServiceLoop):
    rolling_updates = True

    def __init__(self, store: Store, settings: OrchestratorSettings | None = None) -> None:
        super().__init__(store, settings)
        self.restarts = RestartSupervisor(store, self._settings)
        self.updates = UpdateSupervisor(store, self._settings) if self.rolling_updates else None

    @abstractmethod
    def _mine(self, service: Service) -> bool:
        """Whether this orchestrator runs ``service``."""

    @abstractmethod
    def _plan(self, tx: Tx, service: Service) -> set[str]:
        """Write this service's task changes into ``tx``; return the slot keys kept."""

    def _startup(self, view: Tables) -> None:
        for task in view.tasks_by_desired_state(TaskState.READY):
            service = view.get(Service, task.service_id)
            if service is not None and self._mine(service):
                self.restarts.advance(task)

    async def _stop(self) -> None:
        await self.restarts.stop()
        if self.updates is not None:
            await self.updates.stop()

    async def _reconcile(self, service_id: str) -> None:
        view = self._store.view()
        service = view.get(Service, service_id)
        if service is None:
            await self._remove_all(service_id)
            return
        if not self._mine(service):
            return

        def plan(tx: Tx) -> set[str]:
            current = tx.view.get(Service, service_id)
            return set() if current is None else self._plan(tx, current)

        try:
            kept = await self._store.update(plan, atomic=False)
        except BaseException:
            self.restarts.discard(self._store.view())
            raise
        self.restarts.commit()
        view = self._store.view()
        self.restarts.prune(service_id, view)
        if self.updates is None:
            return
        service = view.get(Service, service_id)
        if service is None:
            return
        slots: dict[str, list[Task]] = {key: [] for key in kept}
        for task in view.tasks_of_service(service_id):
            key = slot_key(service, task)
            if key in slots and is_live(task):
                slots[key].append(task)
        await self.updates.update(service, list(slots.values()))

    async def _remove_all(self, service_id: str) -> None:
        """The service was deleted: every task goes to DesiredState REMOVE (the reaper deletes)."""
        view = self._store.view()
        if all(t.desired_state == TaskState.REMOVE for t in view.tasks_of_service(service_id)):
            return
        if self.updates is not None:
            self.updates.cancel(service_id)
        self.restarts.clear_service(service_id)

        def remove(tx: Tx) -> int:
            n = 0
            for task in tx.view.tasks_of_service(service_id):
                if task.desired_state != TaskState.REMOVE:
                    task = copy(task)
                    task.desired_state = TaskState.REMOVE
                    tx.update(task)
                    n += 1
            return n

        n = await self._store.update(remove, atomic=False)
        log.info("service %s: deleted, %d tasks desired remove", service_id, n)
