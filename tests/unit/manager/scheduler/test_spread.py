"""Spread: even over nodes, fewer tasks of the service first, placement preferences."""

from __future__ import annotations

from conftest import assigned, create, make_node, make_task, per_node

from shoal.dev.wait import wait_for_async
from shoal.manager.scheduler import Scheduler
from shoal.model.specs import Placement, PlacementPreference, SpreadOver, TaskSpec
from shoal.model.states import TaskState
from shoal.store.store import Store


async def test_spreads_evenly_over_three_nodes(store: Store, scheduler: Scheduler) -> None:
    await create(store, [make_node(f"n{i}") for i in range(3)])
    await create(store, [make_task(f"t{i}", slot=i) for i in range(9)])
    await wait_for_async("9 tasks assigned", lambda: len(assigned(store)) == 9)
    assert per_node(store) == {"n0": 3, "n1": 3, "n2": 3}
    t = assigned(store)[0]
    assert t.status.message == "scheduler assigned task to node"


async def test_prefers_nodes_with_fewer_tasks_of_the_service(
    store: Store, scheduler: Scheduler
) -> None:
    await create(store, [make_node("n0"), make_node("n1"), make_node("n2")])
    # n0 already runs 2 tasks of svc; n1 runs 3 tasks of another service.
    await create(
        store,
        [make_task(f"old{i}", node="n0", state=TaskState.RUNNING) for i in range(2)]
        + [make_task(f"other{i}", service="other", node="n1", state=TaskState.RUNNING) for i in range(3)],
    )
    await create(store, [make_task(f"t{i}") for i in range(4)])
    await wait_for_async("4 tasks assigned", lambda: len(assigned(store)) == 4)
    placed = per_node(store)
    # n2 (empty) first, then n1 (no svc task) and n2 to 2 each: svc ends 2/2/2.
    assert placed == {"n1": 2, "n2": 2}


async def test_total_tasks_break_ties(store: Store, scheduler: Scheduler) -> None:
    await create(store, [make_node("n0"), make_node("n1")])
    await create(store, [make_task("other", service="other", node="n0", state=TaskState.RUNNING)])
    await create(store, [make_task("t0")])
    await wait_for_async("task assigned", lambda: len(assigned(store)) == 1)
    assert per_node(store) == {"n1": 1}


async def test_placement_preference_spreads_over_label_values(
    store: Store, scheduler: Scheduler
) -> None:
    nodes = [make_node(f"a{i}", labels={"zone": "a"}) for i in range(4)]
    nodes += [make_node("b0", labels={"zone": "b"})]
    nodes += [make_node("x0")]  # no zone label: its own group
    await create(store, nodes)
    spec = TaskSpec(
        container_spec={"Image": "busybox"},
        placement=Placement(
            preferences=[PlacementPreference(spread=SpreadOver(spread_descriptor="node.labels.zone"))]
        ),
    )
    await create(store, [make_task(f"t{i}", spec=spec) for i in range(6)])
    await wait_for_async("6 tasks assigned", lambda: len(assigned(store)) == 6)
    placed = per_node(store)
    zone_a = sum(n for node, n in placed.items() if node.startswith("a"))
    assert (zone_a, placed.get("b0"), placed.get("x0")) == (2, 2, 2)
    assert max(n for node, n in placed.items() if node.startswith("a")) == 1


async def test_engine_label_preference(store: Store, scheduler: Scheduler) -> None:
    nodes = [make_node(f"r{i}", engine_labels={"rack": "1"}) for i in range(3)]
    nodes += [make_node("s0", engine_labels={"rack": "2"})]
    await create(store, nodes)
    spec = TaskSpec(
        placement=Placement(
            preferences=[
                PlacementPreference(spread=SpreadOver(spread_descriptor="engine.labels.rack"))
            ]
        )
    )
    await create(store, [make_task(f"t{i}", spec=spec) for i in range(4)])
    await wait_for_async("4 tasks assigned", lambda: len(assigned(store)) == 4)
    assert per_node(store)["s0"] == 2


async def test_prefix_in_any_case_and_missing_label_as_empty_value(
    store: Store, scheduler: Scheduler
) -> None:
    nodes = [make_node("a0", labels={"zone": "a"}), make_node("a1", labels={"zone": "a"})]
    nodes += [make_node("e0", labels={"zone": ""}), make_node("x0")]  # "" and missing: one group
    await create(store, nodes)
    pref = PlacementPreference(spread=SpreadOver(spread_descriptor="Node.Labels.zone"))
    spec = TaskSpec(placement=Placement(preferences=[pref]))
    await create(store, [make_task(f"t{i}", spec=spec) for i in range(4)])
    await wait_for_async("4 tasks assigned", lambda: len(assigned(store)) == 4)
    placed = per_node(store)
    assert placed.get("a0", 0) + placed.get("a1", 0) == 2
    assert placed.get("e0", 0) + placed.get("x0", 0) == 2


async def test_unknown_descriptor_treats_all_nodes_alike(store: Store, scheduler: Scheduler) -> None:
    """swarmkit accepts any descriptor and skips a level it cannot split on."""
    nodes = [make_node(f"a{i}", labels={"zone": "a"}) for i in range(3)] + [make_node("b0", labels={"zone": "b"})]
    await create(store, nodes)
    prefs = [PlacementPreference(spread=SpreadOver(spread_descriptor="com.example.label"))]
    spec = TaskSpec(placement=Placement(preferences=prefs))
    await create(store, [make_task(f"t{i}", spec=spec) for i in range(4)])
    await wait_for_async("4 tasks assigned", lambda: len(assigned(store)) == 4)
    assert per_node(store) == {"a0": 1, "a1": 1, "a2": 1, "b0": 1}
