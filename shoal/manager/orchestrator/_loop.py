"""The level-triggered loop the orchestrators and the task reaper run, and a bounded wait on the
store.

``DirtyLoop.run`` subscribes, marks every service dirty, then per batch of store changes
handles the services the changes touch (STYLE rule 5); an idle resync marks them all again.
``ServiceLoop`` (the orchestrators) reconciles the dirty services one by one. A reconcile
that loses a compare-and-set race keeps its service dirty for the next batch; any other failure
is logged and left to the next event or the idle resync. Subclasses say which services a change
touches and how to reconcile one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

from shoal import metrics
from shoal.errors import SequenceConflict, Unavailable
from shoal.manager.orchestrator.common import OrchestratorSettings
from shoal.model.objects import Cluster, Node, Service, StoredObject, Task
from shoal.store.store import Store
from shoal.store.tables import Tables
from shoal.store.watch import Change, SubscriptionOverflow

__all__ = ["DirtyLoop", "ServiceLoop", "wait_for"]

log = logging.getLogger(__name__)


class DirtyLoop(ABC):
    """Subscribe, full pass, then handle the dirty service IDs per batch, until cancelled."""

    def __init__(self, store: Store, settings: OrchestratorSettings | None = None) -> None:
        self._store = store
        self._settings = settings or OrchestratorSettings()
        self._dirty: set[str] = set()

    async def run(self) -> None:
        s = self._settings
        gap, max_latency = self._batching()
        sub = self._store.subscribe([Service, Task, Node, Cluster])
        try:
            view = self._store.view()  # no await since subscribing: nothing is missed
            self._dirty |= self._all_services(view)
            self._startup(view)
            await self._timed_flush()
            while True:
                try:
                    batch = await sub.next_batch(gap=gap, max_latency=max_latency, idle=s.resync)
                except SubscriptionOverflow:
                    batch = []  # changes dropped: a full pass, as when idle
                view = self._store.view()
                if not batch:
                    self._dirty |= self._all_services(view)
                for change in batch:
                    self._dirty |= self._affected(view, change)
                await self._timed_flush()
        finally:
            sub.close()
            await self._stop()

    async def _timed_flush(self) -> None:
        with metrics.timed(metrics.RECONCILE.labels(type(self).__name__)):
            await self._flush()

    def _batching(self) -> tuple[float, float]:
        """The batches' gap and max latency."""
        return self._settings.gap, self._settings.max_latency

    @abstractmethod
    def _all_services(self, view: Tables) -> set[str]:
        """The services a full pass (the first, and each idle resync) handles."""

    @abstractmethod
    def _affected(self, view: Tables, change: Change) -> set[str]:
        """The services ``change`` makes dirty."""

    @abstractmethod
    async def _flush(self) -> None:
        """Handle the dirty services (and clear them, keeping those to retry)."""

    def _startup(self, view: Tables) -> None:
        """Work done once before the first pass (advancing tasks stuck in restart delay)."""

    async def _stop(self) -> None:
        """Cancel timers and helpers when the loop ends."""


class ServiceLoop(DirtyLoop):
    """Reconcile the dirty services one at a time; a lost race keeps a service dirty."""

    def _all_services(self, view: Tables) -> set[str]:
        ids = {svc.id for svc in view.all(Service)}
        return ids | {t.service_id for t in view.all(Task) if t.service_id}

    def _affected(self, view: Tables, change: Change) -> set[str]:
        out: set[str] = set()
        for obj in (change.old, change.new):
            if isinstance(obj, Service):
                out.add(obj.id)
            elif isinstance(obj, Task) and obj.service_id:
                out.add(obj.service_id)
            elif isinstance(obj, Node):
                out |= self._services_for_node(view, obj)
        return out

    async def _flush(self) -> None:
        todo, self._dirty = self._dirty, set()
        for service_id in sorted(todo):
            try:
                await self._reconcile(service_id)
            except SequenceConflict:
                log.debug("service %s: write conflict, will retry", service_id)
                self._dirty.add(service_id)
            except Unavailable as exc:  # no quorum, or no longer the leader
                log.warning("service %s: %s", service_id, exc.message)
                self._dirty.add(service_id)
            except Exception:
                log.exception("service %s: reconcile failed", service_id)

    @abstractmethod
    def _services_for_node(self, view: Tables, node: Node) -> set[str]:
        """The services a change of ``node`` may affect."""

    @abstractmethod
    async def _reconcile(self, service_id: str) -> None:
        """Bring one service's tasks in line; raise SequenceConflict to stay dirty."""


async def wait_for(
    store: Store,
    pred: Callable[[Tables], bool],
    timeout: float | None,
    kinds: Iterable[type[StoredObject]] = (Task, Node),
) -> bool:
    """Wait until ``pred(view)`` holds (True) or ``timeout`` seconds pass (False)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    with store.subscribe(kinds) as sub:
        while True:
            if pred(store.view()):
                return True
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            with contextlib.suppress(SubscriptionOverflow):  # the view is read again above
                await sub.next_batch(gap=0.0, max_latency=0.0, idle=remaining)
