"""The scheduler: PENDING tasks get a node (NodeID, ASSIGNED), or stay PENDING with the reason.

``Scheduler(store).run()`` is its one long-lived loop; ``place_group`` and ``Pipeline`` are the
pure decision parts (used by the benchmark). See docs/design/scheduler.md.
"""

from shoal.manager.scheduler.nodeinfo import NodeInfo
from shoal.manager.scheduler.pipeline import Pipeline
from shoal.manager.scheduler.scheduler import NO_SUITABLE_NODE, Scheduler, SchedulerSettings
from shoal.manager.scheduler.spread import Placement, place_group

__all__ = [
    "NO_SUITABLE_NODE",
    "NodeInfo",
    "Pipeline",
    "Placement",
    "Scheduler",
    "SchedulerSettings",
    "place_group",
]
