"""The scheduler's node filters, in swarmkit's order, each with swarmkit's explanation.

A filter is prepared once per task group (``set_task``: returns False when it does not apply,
so the pipeline skips it) and then checks nodes (swarmkit ``manager/scheduler/filter.go``).
Plugin and volume filters are not implemented: Shoal has neither plugins nor CSI volumes.
"""

from __future__ import annotations

import abc

from shoal.errors import InvalidArgument
from shoal.manager.constraint import Constraint, node_matches, parse
from shoal.manager.scheduler.nodeinfo import NodeInfo, host_ports
from shoal.model.objects import Task
from shoal.model.specs import Platform
from shoal.model.states import Availability, NodeState

__all__ = [
    "ConstraintFilter",
    "Filter",
    "HostPortFilter",
    "MaxReplicasFilter",
    "PlatformFilter",
    "ReadyFilter",
    "ResourceFilter",
]


def _nodes(n: int) -> str:
    return "1 node" if n == 1 else f"{n} nodes"


class Filter(abc.ABC):
    @abc.abstractmethod
    def set_task(self, task: Task) -> bool:
        """Prepare for ``task``; False if this filter does not apply to it."""

    @abc.abstractmethod
    def check(self, info: NodeInfo) -> bool:
        """Whether the node passes."""

    @abc.abstractmethod
    def explain(self, nodes: int) -> str:
        """Why ``nodes`` nodes failed this filter."""


class ReadyFilter(Filter):
    """The node is READY and ACTIVE (an empty availability is the zero value, active)."""

    def set_task(self, task: Task) -> bool:
        return True

    def check(self, info: NodeInfo) -> bool:
        node = info.node
        return (
            node is not None
            and node.status.state == NodeState.READY
            and node.spec.availability in (Availability.ACTIVE, "")
        )

    def explain(self, nodes: int) -> str:
        return f"{_nodes(nodes)} not available for new tasks"


class ResourceFilter(Filter):
    """Reserved CPUs and memory fit in what the node has left."""

    def __init__(self) -> None:
        self._cpus = 0
        self._memory = 0

    def set_task(self, task: Task) -> bool:
        res = task.spec.resources
        reservations = res.reservations if res is not None else None
        if reservations is None:
            return False
        self._cpus, self._memory = reservations.nano_cpus, reservations.memory_bytes
        return self._cpus > 0 or self._memory > 0

    def check(self, info: NodeInfo) -> bool:
        return info.available_cpus >= self._cpus and info.available_memory >= self._memory

    def explain(self, nodes: int) -> str:
        return f"insufficient resources on {_nodes(nodes)}"


class ConstraintFilter(Filter):
    """Placement.Constraints, AND-ed; an expression that does not parse matches no node."""

    def __init__(self) -> None:
        self._constraints: list[Constraint] | None = []

    def set_task(self, task: Task) -> bool:
        placement = task.spec.placement
        exprs = placement.constraints if placement is not None else None
        if not exprs:
            return False
        try:
            self._constraints = parse(exprs)
        except InvalidArgument:
            self._constraints = None
        return True

    def check(self, info: NodeInfo) -> bool:
        if self._constraints is None or info.node is None:
            return False
        return node_matches(self._constraints, info.node)

    def explain(self, nodes: int) -> str:
        return f"scheduling constraints not satisfied on {_nodes(nodes)}"


_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


def _arch(name: str) -> str:
    return _ARCH_ALIASES.get(name.lower(), name.lower())


class PlatformFilter(Filter):
    """One of Placement.Platforms matches the node's os/arch (empty fields match anything)."""

    def __init__(self) -> None:
        self._platforms: list[tuple[str, str]] = []

    def set_task(self, task: Task) -> bool:
        placement = task.spec.placement
        platforms: list[Platform] = (placement.platforms if placement is not None else None) or []
        self._platforms = [(p.os.lower(), _arch(p.architecture)) for p in platforms]
        return bool(self._platforms)

    def check(self, info: NodeInfo) -> bool:
        if info.node is None:
            return False
        platform = info.node.description.platform
        os, arch = platform.os.lower(), _arch(platform.architecture)
        return any(
            (not want_os or want_os == os) and (not want_arch or want_arch == arch)
            for want_os, want_arch in self._platforms
        )

    def explain(self, nodes: int) -> str:
        return f"unsupported platform on {_nodes(nodes)}"


class HostPortFilter(Filter):
    """No other active task on the node publishes the same host-mode port."""

    def __init__(self) -> None:
        self._ports: frozenset[tuple[str, int]] = frozenset()

    def set_task(self, task: Task) -> bool:
        self._ports = host_ports(task)
        return bool(self._ports)

    def check(self, info: NodeInfo) -> bool:
        used = info.used_host_ports
        return not any(port in used for port in self._ports)

    def explain(self, nodes: int) -> str:
        return f"host-mode port already in use on {_nodes(nodes)}"


class MaxReplicasFilter(Filter):
    """Fewer than Placement.MaxReplicas active tasks of the service on the node."""

    def __init__(self) -> None:
        self._service = ""
        self._max = 0

    def set_task(self, task: Task) -> bool:
        placement = task.spec.placement
        self._max = placement.max_replicas if placement is not None else 0
        self._service = task.service_id
        return self._max > 0

    def check(self, info: NodeInfo) -> bool:
        return info.active_by_service.get(self._service, 0) < self._max

    def explain(self, nodes: int) -> str:
        return "max replicas per node limit exceed"
