"""What the scheduler knows between passes, fed by store events: NodeInfos and the task queues.

``apply_task`` / ``apply_node`` are level-triggered: they take an object's latest state (or None
when it is gone) and fix the NodeInfo counts and the queues, so replaying an event, or resyncing
a task from the view after a commit, is harmless. Queues: unassigned PENDING tasks (grouped by
service and spec for ``place_group``) and PENDING tasks with a preset NodeID (global services).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from shoal.manager.scheduler.nodeinfo import NodeInfo, occupies
from shoal.model.objects import Node, Task
from shoal.model.states import TaskState
from shoal.store.tables import Tables
from shoal.store.watch import Change

__all__ = ["GroupKey", "Tracker"]

GroupKey = tuple[str, bytes]
_encoder = msgspec.json.Encoder()
_FAILED = (TaskState.FAILED, TaskState.REJECTED)


def group_key(task: Task) -> GroupKey:
    """Tasks with equal keys are interchangeable for placement (swarmkit: service + spec version)."""
    return task.service_id, _encoder.encode((task.spec, task.endpoint_spec))


def schedulable(task: Task) -> bool:
    """PENDING and still wanted (a job's task is desired COMPLETE): the scheduler's input."""
    return (
        task.status.state == TaskState.PENDING
        and task.desired_state <= TaskState.COMPLETE
    )


class Tracker:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.unassigned: dict[str, tuple[Task, GroupKey]] = {}
        self.preassigned: dict[str, Task] = {}
        self._on_node: dict[str, str] = {}  # task ID -> node ID it is counted on
        self._versions: dict[str, int] = {}  # task ID -> latest Version.Index seen

    # -- feeding -----------------------------------------------------------------------------
    def load(self, view: Tables) -> None:
        for node in view.all(Node):
            self.apply_node(node.id, node)
        for task in view.all(Task):
            self.apply_task(task.id, task)

    def apply(self, changes: Iterable[Change], now: float) -> None:
        for change in changes:
            obj = change.obj
            if isinstance(obj, Node):
                self.apply_node(obj.id, change.new if isinstance(change.new, Node) else None)
            elif isinstance(obj, Task):
                new = change.new if isinstance(change.new, Task) else None
                old = change.old if isinstance(change.old, Task) else None
                if new is not None and self._versions.get(obj.id, 0) >= new.version.index:
                    continue  # already applied (a resync after our commit) or older
                if new is not None and old is not None and new.node_id:
                    self._note_failure(old, new, now)
                self.apply_task(obj.id, new)

    def apply_node(self, node_id: str, node: Node | None) -> None:
        info = self.nodes.get(node_id)
        if info is None:
            if node is None:
                return
            info = self.nodes[node_id] = NodeInfo(node_id)
        info.node = node
        if info.idle:
            del self.nodes[node_id]

    def apply_task(self, task_id: str, task: Task | None) -> None:
        counted_on = self._on_node.pop(task_id, None)
        if counted_on is not None:
            info = self.nodes.get(counted_on)
            if info is not None:
                info.remove_task(task_id)
                if info.idle:
                    del self.nodes[counted_on]
        self.unassigned.pop(task_id, None)
        self.preassigned.pop(task_id, None)
        if task is None:
            self._versions.pop(task_id, None)
            return
        self._versions[task_id] = task.version.index
        if occupies(task):
            self.assign(task)
        elif schedulable(task):
            if task.node_id:
                self.preassigned[task_id] = task
            else:
                self.unassigned[task_id] = (task, group_key(task))
        elif task.status.state > TaskState.RUNNING:
            self._versions.pop(task_id, None)  # done with it; a late stale event only retries

    def assign(self, task: Task) -> None:
        """Count an occupying task on its node (also the scheduler's own uncommitted decisions)."""
        info = self.nodes.get(task.node_id)
        if info is None:
            info = self.nodes[task.node_id] = NodeInfo(task.node_id)
        info.add_task(task)
        self._on_node[task.id] = task.node_id
        self.unassigned.pop(task.id, None)
        self.preassigned.pop(task.id, None)

    def _note_failure(self, old: Task, new: Task, now: float) -> None:
        state = new.status.state
        if state in _FAILED and old.status.state != new.status.state:
            info = self.nodes.get(new.node_id)
            if info is not None:
                info.record_failure(new.service_id, now)

    # -- reading -----------------------------------------------------------------------------
    def candidates(self) -> list[NodeInfo]:
        """Every node the store knows (filters decide which can take a task)."""
        return [info for info in self.nodes.values() if info.node is not None]

    def groups(self) -> dict[GroupKey, list[Task]]:
        out: dict[GroupKey, list[Task]] = {}
        for task, key in self.unassigned.values():
            out.setdefault(key, []).append(task)
        for tasks in out.values():
            tasks.sort(key=lambda t: (t.slot, t.id))
        return out
