"""The filter pipeline: the filters that apply to a task, run in order, with failure counts.

``set_task`` enables the filters that apply; ``process`` drops a node at its first failing
filter and counts that failure; ``explain`` reports every failing filter, most failures first,
joined by "; " (swarmkit ``manager/scheduler/pipeline.go``).
"""

from __future__ import annotations

from shoal.manager.scheduler.filters import (
    ConstraintFilter,
    Filter,
    HostPortFilter,
    MaxReplicasFilter,
    PlatformFilter,
    ReadyFilter,
    ResourceFilter,
)
from shoal.manager.scheduler.nodeinfo import NodeInfo
from shoal.model.objects import Task

__all__ = ["Pipeline"]


def _default_filters() -> list[Filter]:
    return [
        ReadyFilter(),
        ResourceFilter(),
        ConstraintFilter(),
        PlatformFilter(),
        HostPortFilter(),
        MaxReplicasFilter(),
    ]


class Pipeline:
    def __init__(self, filters: list[Filter] | None = None) -> None:
        self._filters = filters if filters is not None else _default_filters()
        self._active: list[int] = []
        self._failures = [0] * len(self._filters)

    def set_task(self, task: Task) -> None:
        """Prepare every filter for ``task`` (one of a group of identical tasks); reset counts."""
        self._active = [i for i, f in enumerate(self._filters) if f.set_task(task)]
        self._failures = [0] * len(self._filters)

    def first_failure(self, info: NodeInfo) -> int:
        """Index of the first filter the node fails, or -1 if it passes all."""
        filters = self._filters
        for i in self._active:
            if not filters[i].check(info):
                return i
        return -1

    def check(self, info: NodeInfo) -> bool:
        """Whether the node passes, without counting."""
        return self.first_failure(info) < 0

    def process(self, info: NodeInfo) -> bool:
        """Whether the node passes; a failure is counted against its first failing filter."""
        i = self.first_failure(info)
        if i < 0:
            return True
        self._failures[i] += 1
        return False

    def explain(self) -> str:
        counted = [(n, i) for i, n in enumerate(self._failures) if n > 0]
        counted.sort(key=lambda item: -item[0])  # stable: ties keep pipeline order
        return "; ".join(self._filters[i].explain(n) for n, i in counted)
