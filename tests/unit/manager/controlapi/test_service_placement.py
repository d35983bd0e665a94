"""Placement preferences are stored as sent, whatever the descriptor, as swarmkit does."""

from __future__ import annotations

from shoal.manager.controlapi.service import create_service
from shoal.model.specs import Placement, PlacementPreference, ServiceSpec, SpreadOver, TaskSpec
from shoal.store.store import Store


async def test_any_spread_descriptor_is_accepted(store: Store) -> None:
    descriptors = ["com.example.label", "node.labels.zone", "Engine.Labels.rack", "node.hostname"]
    prefs = [PlacementPreference(spread=SpreadOver(spread_descriptor=d)) for d in descriptors]
    spec = ServiceSpec(name="web", task_template=TaskSpec(container_spec={"Image": "busybox"},
                                                          placement=Placement(preferences=prefs)))
    svc = await create_service(store, spec)
    placement = svc.spec.task_template.placement
    assert placement is not None
    assert [p.spread.spread_descriptor for p in placement.preferences or [] if p.spread] == descriptors
