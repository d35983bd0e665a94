"""Tasks of a node that stays down: ORPHANED after a day, so the task reaper can forget them.

The orchestrators replace the tasks of a DOWN node at once, but the node's own tasks keep the
last state it reported (RUNNING, mostly): nothing on that node will ever say they ended, so the
reaper, which keeps only ended tasks in the history, would keep them for good and a swarm whose
nodes come and go would grow without bound. As swarmkit's dispatcher (``moveTasksToOrphaned``,
after ``defaultNodeDownPeriod``, 24 h), a node DOWN for ``after`` seconds has its tasks that
reached a node and did not end set to ORPHANED; a node that comes back before then keeps them
(it reports their real states).

The clock is this leader's: a node is timed from when this leader first saw it DOWN (a new
leader starts every down node's clock again, as swarmkit's in-memory timers do). Leader only.
"""

from __future__ import annotations

import asyncio
import logging
import time

from shoal.errors import ShoalError
from shoal.model.objects import Node, Task, TaskStatus, now
from shoal.model.states import NodeState, TaskState
from shoal.store.store import Store, Tx, copy

__all__ = ["ORPHANED_AFTER", "Orphaner"]

log = logging.getLogger(__name__)

ORPHANED_AFTER = 24 * 3600.0  # swarmkit's defaultNodeDownPeriod
_TICK = 30.0  # how often down nodes are looked at (at most: ``after`` / 4 when it is shorter)


def _orphanable(task: Task) -> bool:
    """Reached its node and did not end there: only the node could have said more."""
    return TaskState.ASSIGNED <= task.status.state <= TaskState.RUNNING


class Orphaner:
    def __init__(self, store: Store, *, after: float = ORPHANED_AFTER) -> None:
        self._store = store
        self._after = after
        self._down_since: dict[str, float] = {}  # node ID -> when this leader saw it DOWN
        self._done: set[str] = set()  # nodes whose tasks were orphaned while they stay down

    async def run(self) -> None:
        while True:
            await self.tick(time.monotonic())
            await asyncio.sleep(min(_TICK, self._after / 4))

    async def tick(self, clock: float) -> list[str]:
        """One look at the nodes at monotonic time ``clock``; the IDs of the tasks orphaned."""
        view = self._store.view()
        down = {n.id for n in view.all(Node) if n.status.state == NodeState.DOWN}
        for node_id in list(self._down_since):
            if node_id not in down:  # back, or gone: its clock stops
                del self._down_since[node_id]
                self._done.discard(node_id)
        due = [node_id for node_id in down
               if node_id not in self._done
               and clock - self._down_since.setdefault(node_id, clock) >= self._after]
        if not due:
            return []
        orphaned: list[str] = []

        def fn(tx: Tx) -> None:
            orphaned.clear()
            for node_id in due:
                node = tx.view.get(Node, node_id)
                if node is None or node.status.state != NodeState.DOWN:
                    continue
                for task in tx.view.tasks_of_node(node_id):
                    if not _orphanable(task):
                        continue
                    task = copy(task)
                    task.status = TaskStatus(
                        state=TaskState.ORPHANED, timestamp=now(),
                        message=f"node down for {self._after / 3600:g} h: task orphaned",
                        err=task.status.err)
                    tx.update(task)
                    orphaned.append(task.id)

        try:
            await self._store.update(fn, retries=3, atomic=False)
        except ShoalError as exc:
            log.warning("could not orphan the tasks of down nodes: %s", exc.message)
            return []
        self._done.update(due)
        if orphaned:
            log.info("%d task(s) of %d node(s) down for %g h orphaned", len(orphaned), len(due),
                     self._after / 3600)
        return orphaned
