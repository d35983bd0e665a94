"""The spread strategy: place a group of identical tasks over the nodes that pass the filters.

The nodes passing the pipeline are arranged as a tree: one level per placement preference
(``spread=node.labels.X`` / ``engine.labels.X``, the prefix in any case; a node without the label
counts as the value ""; any other descriptor is accepted and its level skipped, all nodes alike),
each level a min-heap of branches by how many tasks of the service they hold, the leaves a
min-heap of nodes ordered by (sorted last if >= MAX_FAILURES recent failures of the service,
tasks of the service, tasks in total, node ID). Each task takes the best leaf of the best branch,
is counted on its node at once, and the node goes back in its heap with its new key: placing
``n`` tasks over ``m`` nodes costs O(m + n log m) (swarmkit ``manager/scheduler/scheduler.go``
``scheduleTaskGroup``, ``nodeset.go`` ``tree``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from shoal.manager.scheduler.nodeinfo import MAX_FAILURES, NodeInfo
from shoal.manager.scheduler.pipeline import Pipeline
from shoal.model.objects import Task, TaskStatus
from shoal.model.states import TaskState

__all__ = ["ASSIGNED_MESSAGE", "Placement", "assigned_copy", "place_group"]

ASSIGNED_MESSAGE = "scheduler assigned task to node"

_Fits = Callable[[NodeInfo], bool]
_Assign = Callable[[NodeInfo], None]


@dataclass(slots=True)
class Placement:
    """What became of one group: assigned copies (already counted on their nodes), the rest."""

    assigned: list[Task] = field(default_factory=list)
    unplaced: list[Task] = field(default_factory=list)
    explanation: str = ""


def assigned_copy(task: Task, node_id: str, timestamp: str) -> Task:
    """``task`` assigned to ``node_id``: a new object, the cached one is left untouched."""
    status = TaskStatus(timestamp=timestamp, state=TaskState.ASSIGNED, message=ASSIGNED_MESSAGE)
    return msgspec.structs.replace(task, node_id=node_id, status=status)


class _Leaf:
    def __init__(self, nodes: list[NodeInfo], service_id: str, now: float) -> None:
        self._service = service_id
        self._now = now
        self._heap = [self._entry(n) for n in nodes]
        heapq.heapify(self._heap)

    def _entry(self, info: NodeInfo) -> tuple[int, int, int, str, NodeInfo]:
        failures = info.recent_failures(self._service, self._now)
        return (
            failures if failures >= MAX_FAILURES else 0,
            info.active_by_service.get(self._service, 0),
            info.active_total,
            info.id,
            info,
        )

    def place(self, fits: _Fits, assign: _Assign) -> NodeInfo | None:
        heap = self._heap
        while heap:
            info = heapq.heappop(heap)[4]
            if not fits(info):  # full after this group's earlier tasks: drop it
                continue
            assign(info)
            heapq.heappush(heap, self._entry(info))
            return info
        return None


class _Branch:
    def __init__(self, children: list[tuple[int, int, _Leaf | _Branch]]) -> None:
        self._heap = children
        heapq.heapify(self._heap)

    def place(self, fits: _Fits, assign: _Assign) -> NodeInfo | None:
        heap = self._heap
        while heap:
            count, order, child = heapq.heappop(heap)
            info = child.place(fits, assign)
            if info is None:  # no node left under this label value
                continue
            heapq.heappush(heap, (count + 1, order, child))
            return info
        return None


_PREFIXES = ("node.labels.", "engine.labels.")


def _label_key(descriptor: str) -> tuple[str, str] | None:
    """(prefix, label key) of a descriptor the tree splits on; None for the others, which
    swarmkit accepts and skips (``nodeset.go`` ``tree``: "Support other items ...? default: continue")."""
    for prefix in _PREFIXES:
        if len(descriptor) > len(prefix) and descriptor[: len(prefix)].lower() == prefix:
            return prefix, descriptor[len(prefix):]
    return None


def _label(info: NodeInfo, prefix: str, key: str) -> str:
    node = info.node
    if node is None:
        return ""
    if prefix == "node.labels.":
        return (node.spec.labels or {}).get(key, "")
    return (node.description.engine.labels or {}).get(key, "")


def _tree(
    nodes: list[NodeInfo], levels: Sequence[tuple[str, str]], service_id: str, now: float
) -> _Leaf | _Branch:
    if not levels:
        return _Leaf(nodes, service_id, now)
    groups: dict[str, list[NodeInfo]] = {}
    for info in nodes:
        groups.setdefault(_label(info, *levels[0]), []).append(info)
    # A missing label is "" (swarmkit: the tree's shape does not depend on which nodes have it);
    # it sorts last only to keep ties stable.
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] == "", kv[0]))
    children: list[tuple[int, int, _Leaf | _Branch]] = []
    for order, (_, members) in enumerate(ordered):
        count = sum(m.active_by_service.get(service_id, 0) for m in members)
        children.append((count, order, _tree(members, levels[1:], service_id, now)))
    return _Branch(children)


def _levels(task: Task) -> list[tuple[str, str]]:
    placement = task.spec.placement
    prefs = (placement.preferences if placement is not None else None) or []
    keys = (_label_key(p.spread.spread_descriptor) for p in prefs if p.spread)
    return [k for k in keys if k is not None]


class _Assigner:
    """The ``assign`` callback: counts the current task on the chosen node."""

    def __init__(self, timestamp: str) -> None:
        self.timestamp = timestamp
        self.task: Task | None = None
        self.assigned: list[Task] = []

    def __call__(self, info: NodeInfo) -> None:
        assert self.task is not None
        new = assigned_copy(self.task, info.id, self.timestamp)
        info.add_task(new)
        self.assigned.append(new)


def place_group(
    tasks: Sequence[Task],
    nodes: Iterable[NodeInfo],
    pipeline: Pipeline,
    *,
    now: float,
    timestamp: str,
) -> Placement:
    """Place ``tasks`` (same service and spec) on ``nodes``, updating the NodeInfos as it goes."""
    if not tasks:
        return Placement()
    nodes = list(nodes)
    first = tasks[0]
    pipeline.set_task(first)
    feasible = [info for info in nodes if pipeline.process(info)]
    tree = _tree(feasible, _levels(first), first.service_id, now)
    assigner = _Assigner(timestamp)
    fits = pipeline.check
    for i, task in enumerate(tasks):
        assigner.task = task
        if tree.place(fits, assigner) is None:
            # Explain against the nodes as they are now (some filled up during this group).
            pipeline.set_task(first)
            for info in nodes:
                pipeline.process(info)
            return Placement(assigner.assigned, list(tasks[i:]), pipeline.explain())
    return Placement(assigner.assigned)
