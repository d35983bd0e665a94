"""Filters: readiness, constraints, resources, platform, host ports, max replicas, Err."""

from __future__ import annotations

from conftest import assigned, create, make_node, make_task, per_node, settle, tasks

from shoal.dev.wait import wait_for_async
from shoal.manager.scheduler import Scheduler
from shoal.model.objects import Task
from shoal.model.specs import (
    EndpointSpec,
    Placement,
    Platform,
    PortConfig,
    Reservations,
    Resources,
    TaskSpec,
)
from shoal.model.states import TaskState
from shoal.store.store import Store


def _placed(constraints: list[str] | None = None, **placement: object) -> TaskSpec:
    return TaskSpec(placement=Placement(constraints=constraints, **placement))  # type: ignore[arg-type]


def _err(store: Store, task_id: str) -> str:
    task = store.view().get(Task, task_id)
    return task.status.err if task is not None else ""


async def test_skips_not_ready_paused_and_drained_nodes(store: Store, scheduler: Scheduler) -> None:
    await create(
        store,
        [
            make_node("down", state="down"),
            make_node("paused", availability="pause"),
            make_node("drained", availability="drain"),
            make_node("ok"),
        ],
    )
    await create(store, [make_task(f"t{i}") for i in range(3)])
    await wait_for_async("3 tasks assigned", lambda: len(assigned(store)) == 3)
    assert per_node(store) == {"ok": 3}


async def test_constraints_are_honoured(store: Store, scheduler: Scheduler) -> None:
    await create(
        store,
        [
            make_node("w1", labels={"disk": "ssd"}, engine_labels={"gpu": "yes"}),
            make_node("w2", labels={"disk": "ssd"}),
            make_node("m1", role="manager", labels={"disk": "ssd"}, engine_labels={"gpu": "yes"}),
        ],
    )
    cases = {
        "labels": ["node.labels.disk==SSD", "engine.labels.gpu==yes", "node.role==worker"],
        "host": ["node.hostname==host-w2"],
        "not": ["node.role!=worker"],
    }
    for name, exprs in cases.items():
        await create(store, [make_task(f"{name}{i}", service=name, spec=_placed(exprs)) for i in range(2)])
    for name in cases:
        await wait_for_async(f"{name} assigned", lambda n=name: len(assigned(store, n)) == 2)
    assert per_node(store, "labels") == {"w1": 2}
    assert per_node(store, "host") == {"w2": 2}
    assert per_node(store, "not") == {"m1": 2}


async def test_no_suitable_node_then_scheduled_when_a_node_appears(
    store: Store, scheduler: Scheduler
) -> None:
    await create(store, [make_node("n1"), make_node("n2"), make_node("n3", state="down")])
    await create(store, [make_task("t0", spec=_placed(["node.labels.zone==east"]))])
    expected = (
        "no suitable node (scheduling constraints not satisfied on 2 nodes; "
        "1 node not available for new tasks)"
    )
    await wait_for_async("Err written", lambda: tasks(store)[0].status.err == expected)
    version = tasks(store)[0].version.index
    await settle(store)
    t = tasks(store)[0]
    assert t.status.state == TaskState.PENDING and t.version.index == version  # written once
    await create(store, [make_node("n4", labels={"zone": "east"})])
    await wait_for_async("assigned to n4", lambda: per_node(store) == {"n4": 1})


async def test_resource_reservations_are_respected(store: Store, scheduler: Scheduler) -> None:
    await create(store, [make_node("small", cpus=1_000_000_000), make_node("big")])
    spec = TaskSpec(
        resources=Resources(reservations=Reservations(nano_cpus=1_000_000_000, memory_bytes=1 << 30))
    )
    # big has 4 CPUs and small 1: 5 tasks fit, the 6th does not.
    await create(store, [make_task(f"t{i}", spec=spec) for i in range(6)])
    await wait_for_async("5 assigned", lambda: len(assigned(store)) == 5)
    await wait_for_async(
        "Err on the sixth",
        lambda: any(
            t.status.err == "no suitable node (insufficient resources on 2 nodes)"
            for t in tasks(store)
        ),
    )
    assert per_node(store) == {"small": 1, "big": 4}


async def test_host_port_conflict(store: Store, scheduler: Scheduler) -> None:
    await create(store, [make_node("n1"), make_node("n2")])
    ports = EndpointSpec(ports=[PortConfig(target_port=80, published_port=8080, publish_mode="host")])
    await create(store, [make_task(f"t{i}", endpoint_spec=ports) for i in range(3)])
    await wait_for_async("2 assigned", lambda: len(assigned(store)) == 2)
    await wait_for_async(
        "Err on the third",
        lambda: any(
            t.status.err == "no suitable node (host-mode port already in use on 2 nodes)"
            for t in tasks(store)
        ),
    )
    assert per_node(store) == {"n1": 1, "n2": 1}


async def test_max_replicas_per_node(store: Store, scheduler: Scheduler) -> None:
    await create(store, [make_node("n1"), make_node("n2")])
    spec = _placed(max_replicas=2)
    await create(store, [make_task(f"t{i}", spec=spec) for i in range(5)])
    await wait_for_async("4 assigned", lambda: len(assigned(store)) == 4)
    await wait_for_async(
        "Err on the fifth",
        lambda: any(
            t.status.err == "no suitable node (max replicas per node limit exceed)"
            for t in tasks(store)
        ),
    )
    assert per_node(store) == {"n1": 2, "n2": 2}


async def test_platform_normalises_architectures(store: Store, scheduler: Scheduler) -> None:
    await create(store, [make_node("arm", arch="aarch64"), make_node("x86", arch="x86_64")])
    spec = _placed(platforms=[Platform(architecture="arm64", os="linux")])
    await create(store, [make_task(f"t{i}", spec=spec) for i in range(2)])
    await wait_for_async("2 assigned", lambda: len(assigned(store)) == 2)
    assert per_node(store) == {"arm": 2}


async def test_global_task_assigned_only_if_its_node_passes(
    store: Store, scheduler: Scheduler
) -> None:
    await create(store, [make_node("ok"), make_node("drained", availability="drain")])
    await create(
        store,
        [make_task("g-ok", node="ok"), make_task("g-drained", node="drained")],
    )
    await wait_for_async("g-ok assigned", lambda: per_node(store) == {"ok": 1})
    await wait_for_async(
        "g-drained explained",
        lambda: _err(store, "g-drained") == "1 node not available for new tasks",
    )
    await settle(store)
    drained = store.view().get(Task, "g-drained")
    assert drained is not None and drained.status.state == TaskState.PENDING
    assert drained.node_id == "drained"


async def test_tasks_no_longer_wanted_are_left_alone(store: Store, scheduler: Scheduler) -> None:
    await create(store, [make_task("t0", desired=TaskState.SHUTDOWN)])
    await create(store, [make_node("n1"), make_task("t1")])
    await wait_for_async("t1 assigned", lambda: len(assigned(store)) == 1)
    await settle(store)
    t0 = store.view().get(Task, "t0")
    assert t0 is not None and t0.status.state == TaskState.PENDING and t0.node_id == ""
