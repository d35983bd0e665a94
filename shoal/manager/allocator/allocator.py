"""The allocator's loop: NEW tasks that are still wanted move to PENDING, in batches.

Subscribe to tasks, services, networks, nodes and the cluster, rebuild the network allocation
state from the snapshot (``NetworkAllocator.restore``; every NEW task is dirty at start), then per
debounced batch of events (50 ms quiet, 1 s at most): give back what changed holders no longer
hold, allocate networks and then services' VIPs (a write each, only when a network, service or
node changed), then in one non-atomic batch nodes' ingress addresses and the dirty tasks: each
one that is still NEW with DesiredState <= COMPLETE (RUNNING, or COMPLETE for a job) goes
through the voters (the network one first) and, when every voter has allocated, is written
PENDING ("pending task scheduling") compare-and-set. A conflict, or a voter that cannot
allocate yet, leaves the task dirty for the next batch; idle for ``resync_interval`` means a
full pass (swarmkit ``manager/allocator/network.go`` ``allocateTasks``, ``procTasksNetwork``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from shoal import metrics
from shoal.errors import SequenceConflict
from shoal.manager.allocator.network import NetworkAllocator, Owner
from shoal.manager.allocator.voters import Voter
from shoal.model.objects import Cluster, Network, Node, Service, Task, TaskStatus, now
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx
from shoal.store.tables import Tables

__all__ = ["PENDING_MESSAGE", "Allocator", "AllocatorSettings"]

log = logging.getLogger(__name__)

PENDING_MESSAGE = "pending task scheduling"


@dataclass(frozen=True, slots=True)
class AllocatorSettings:
    commit_debounce_gap: float = 0.05  # as the scheduler: let a burst of new tasks gather
    max_latency: float = 1.0  # a steady stream of tasks still moves every second
    resync_interval: float = 300.0  # swarmkit retryInterval: unallocatable tasks retried 5 min


def waiting(task: Task) -> bool:
    """NEW and still wanted (desired RUNNING, or COMPLETE for a job's task): the allocator's
    input."""
    return task.status.state == TaskState.NEW and task.desired_state <= TaskState.COMPLETE


class Allocator:
    def __init__(
        self,
        store: Store,
        settings: AllocatorSettings | None = None,
        *,
        voters: Sequence[Voter] = (),
        network: NetworkAllocator | None = None,
    ) -> None:
        self._store = store
        self._settings = settings or AllocatorSettings()
        self._network = network or NetworkAllocator()
        self._voters: tuple[Voter, ...] = (self._network, *voters)
        self._dirty: set[str] = set()  # tasks that may be allocatable
        self._touched: set[Owner] = set()  # holders whose addresses may have changed
        self._infra = True  # networks, services or nodes may need allocating

    @property
    def network(self) -> NetworkAllocator:
        """The network allocation state (for inspection: what is handed out)."""
        return self._network

    async def run(self) -> None:
        s = self._settings
        with self._store.subscribe([Task, Service, Network, Node, Cluster]) as changes:
            view = self._store.view()  # subscribe, then snapshot
            self._network.restore(view)
            self._dirty |= self._all_waiting(view)
            while True:
                with metrics.timed(metrics.RECONCILE.labels("allocator")):
                    await self._reconcile()
                batch = await changes.next_batch(
                    gap=s.commit_debounce_gap, max_latency=s.max_latency, idle=s.resync_interval
                )
                if not batch:
                    self._dirty |= self._all_waiting(self._store.view())
                    self._infra = True
                for change in batch:
                    self._note(change.kind, change.obj.id, change.new)

    def _note(self, kind: str, obj_id: str, new: object) -> None:
        if kind == Task.kind:
            self._touched.add(("task", obj_id))
            if isinstance(new, Task) and waiting(new):
                self._dirty.add(obj_id)
            return
        if kind == Service.kind:
            self._touched.add(("service", obj_id))
        elif kind == Node.kind:
            self._touched.add(("node", obj_id))
        self._infra = True

    @staticmethod
    def _all_waiting(view: Tables) -> set[str]:
        return {t.id for t in view.all(Task) if waiting(t)}

    def _allocate(self, task: Task, view: Tables, timestamp: str) -> Task | None:
        """``task`` with every voter's allocation and PENDING, or None if a voter cannot yet."""
        for voter in self._voters:
            allocated = voter.allocate(task, view)
            if allocated is None:
                log.debug("task %s: %s cannot allocate yet", task.id, voter.name)
                return None
            task = allocated
        status = TaskStatus(timestamp=timestamp, state=TaskState.PENDING, message=PENDING_MESSAGE)
        return msgspec.structs.replace(task, status=status)

    async def _write(self, step: Callable[[Tx], None]) -> bool:
        """One non-atomic store write; then what it took is checked against the view (given
        back where it did not land). False if something did not land."""
        try:
            await self._store.update(step, atomic=False)
        except SequenceConflict:
            log.debug("allocator commit: some chunks conflicted; they are retried")
        except BaseException:
            self._network.settle(self._store.view())
            raise
        return self._network.settle(self._store.view())

    async def _reconcile(self) -> None:
        net = self._network
        if not net.ready and self._store.view().cluster() is not None:
            net.restore(self._store.view())  # the cluster (its address pool) has appeared
        if self._touched:
            touched, self._touched = self._touched, set()
            net.sync_from_view(self._store.view(), touched)
        infra, self._infra = self._infra, False
        if infra:
            net.forget_removed_networks(self._store.view())
            # Networks, then VIPs on networks the store holds allocated, then (below) nodes and
            # tasks on what the store holds: no write relies on another that may not land.
            landed = await self._write(net.allocate_networks)
            landed = await self._write(net.allocate_services) and landed
            self._infra = not landed
        if not self._dirty and not infra:
            return
        started = time.perf_counter()
        dirty, self._dirty = self._dirty, set()
        timestamp = now()
        written: list[str] = []
        held: list[str] = []

        def write(tx: Tx) -> None:
            written.clear()
            held.clear()
            if infra:
                net.allocate_nodes(tx)
            for task_id in dirty:
                task = tx.view.get(Task, task_id)
                if task is None or not waiting(task):
                    continue
                new = self._allocate(task, tx.view, timestamp)
                if new is None:
                    held.append(task_id)
                    continue
                tx.update(new)
                written.append(task_id)

        if not await self._write(write):
            self._infra = self._infra or infra
        view = self._store.view()
        conflicts = [i for i in written if (t := view.get(Task, i)) is not None and waiting(t)]
        self._dirty.update(held, conflicts)
        if dirty:
            log.info(
                "allocator pass: %d pending, %d waiting on allocation, %d conflicts in %.1f ms",
                len(written) - len(conflicts),
                len(held),
                len(conflicts),
                (time.perf_counter() - started) * 1000,
                extra={"component": "allocator"},
            )
