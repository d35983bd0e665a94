"""Swarm events from the store's changes (moby daemon/events.go generateClusterEvent), over the
in-memory backend: actions, Docker's attributes, the times Docker picks, and a re-list after a
compaction folded into what really changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shoal.dev.wait import wait_for_async
from shoal.events import Event, EventLog
from shoal.manager.swarmevents import SwarmEvents, _stamp, convert, fold
from shoal.model.objects import (
    Config,
    ManagerStatus,
    Network,
    Node,
    NodeDescription,
    NodeStatus,
    Secret,
    Service,
    Task,
    UpdateStatus,
)
from shoal.model.specs import (
    ConfigSpec,
    NetworkSpec,
    NodeSpec,
    Replicated,
    SecretSpec,
    ServiceMode,
    ServiceSpec,
    TaskSpec,
)
from shoal.store.store import Store, copy
from shoal.store.watch import Change


def service(replicas: int = 1, image: str = "busybox:1") -> Service:
    return Service(id="s1", spec=ServiceSpec(
        name="web", task_template=TaskSpec(container_spec={"Image": image}),
        mode=ServiceMode(replicated=Replicated(replicas=replicas))))


@pytest.fixture
async def swarm_events(store: Store) -> AsyncIterator[tuple[Store, EventLog]]:
    log = EventLog()
    part = SwarmEvents(store, log)
    task = asyncio.create_task(part.run(), name="swarm-events")
    try:
        yield store, log
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def events_of(log: EventLog, n: int) -> list[Event]:
    return await wait_for_async(f"{n} events", lambda: log.replay(0) if len(log.replay(0)) >= n else None)


async def test_service_create_scale_image_update_state_remove(swarm_events: tuple[Store, EventLog]) -> None:
    store, log = swarm_events
    await store.update(lambda tx: tx.create(service()))
    scaled = copy(store.view().get(Service, "s1"))
    scaled.spec.mode.replicated = Replicated(replicas=3)
    await store.update(lambda tx: tx.update(scaled))
    moved = copy(store.view().get(Service, "s1"))
    moved.spec.task_template.container_spec = {"Image": "busybox:2"}
    moved.update_status = UpdateStatus(state="updating")
    await store.update(lambda tx: tx.update(moved))
    done = copy(store.view().get(Service, "s1"))
    done.update_status = UpdateStatus(state="completed")
    await store.update(lambda tx: tx.update(done))
    await store.update(lambda tx: tx.create(Task(id="t1", service_id="s1")))  # no task events
    await store.update(lambda tx: tx.delete(store.view().get(Service, "s1")))
    got = await events_of(log, 5)
    assert [(e.type, e.action, e.actor_id, e.scope) for e in got] == [
        ("service", a, "s1", "swarm") for a in ("create", "update", "update", "update", "remove")]
    assert [dict(e.attributes) for e in got] == [
        {"name": "web"},
        {"name": "web", "replicas.old": "1", "replicas.new": "3"},
        {"name": "web", "image.old": "busybox:1", "image.new": "busybox:2", "updatestate.new": "updating"},
        {"name": "web", "updatestate.old": "updating", "updatestate.new": "completed"},
        {"name": "web"},
    ]
    # times: CreatedAt for a create, UpdatedAt for an update
    assert got[0].time_nano == _stamp(scaled.created_at)
    assert got[1].time_nano == _stamp(scaled.updated_at)


async def test_node_updates_say_what_changed(swarm_events: tuple[Store, EventLog]) -> None:
    store, log = swarm_events
    node = Node(id="n1", spec=NodeSpec(role="manager", availability="active"),
                description=NodeDescription(hostname="host-1"), status=NodeStatus(state="unknown"),
                manager_status=ManagerStatus(leader=False, reachability="unknown"), role="manager")
    await store.update(lambda tx: tx.create(node))
    ready = copy(store.view().get(Node, "n1"))
    ready.status.state = "ready"
    ready.spec.availability = "drain"
    assert ready.manager_status is not None
    ready.manager_status = ManagerStatus(leader=True, reachability="reachable")
    await store.update(lambda tx: tx.update(ready))
    named = copy(store.view().get(Node, "n1"))
    named.spec.name = "edge"
    named.role = "worker"
    named.manager_status = None
    await store.update(lambda tx: tx.update(named))
    same = copy(store.view().get(Node, "n1"))
    await store.update(lambda tx: tx.update(same))  # every write is an update event
    got = await events_of(log, 4)
    assert [(e.type, e.action) for e in got] == [("node", "create")] + [("node", "update")] * 3
    assert dict(got[0].attributes) == {"name": "host-1"}
    assert dict(got[1].attributes) == {
        "name": "host-1", "availability.old": "active", "availability.new": "drain",
        "state.old": "unknown", "state.new": "ready", "leader.old": "false", "leader.new": "true",
        "reachability.old": "unknown", "reachability.new": "reachable"}
    assert dict(got[2].attributes) == {"name": "edge", "role.old": "manager", "role.new": "worker"}
    assert dict(got[3].attributes) == {"name": "edge"}


async def test_networks_secrets_configs_carry_their_name(swarm_events: tuple[Store, EventLog]) -> None:
    store, log = swarm_events

    def make(tx):  # type: ignore[no-untyped-def]
        tx.create(Network(id="w1", spec=NetworkSpec(name="backend")))
        tx.create(Secret(id="x1", spec=SecretSpec(name="pw")))
        tx.create(Config(id="c1", spec=ConfigSpec(name="conf")))

    await store.update(make)
    got = await events_of(log, 3)
    assert sorted((e.type, e.action, e.actor_id, e.attributes["name"]) for e in got) == [
        ("config", "create", "c1", "conf"), ("network", "create", "w1", "backend"),
        ("secret", "create", "x1", "pw")]


def test_a_relist_is_folded_into_real_changes() -> None:
    old_web, old_db = service(), Service(id="s2", spec=ServiceSpec(name="db"))
    old_web.version.index, old_db.version.index = 5, 6
    new_web = copy(old_web)
    new_web.version.index = 9
    new_web.spec.mode.replicated = Replicated(replicas=4)
    new_db = copy(old_db)
    batch = [Change("services", old_web, None, 20), Change("services", old_db, None, 20),
             Change("services", None, new_web, 20), Change("services", None, new_db, 20)]
    folded = list(fold(batch))
    assert len(folded) == 1 and folded[0].old is old_web and folded[0].new is new_web
    converted = convert(folded[0])
    assert converted is not None and converted[1] == "update"
    assert converted[3] == {"name": "web", "replicas.old": "1", "replicas.new": "4"}
    plain = [Change("services", old_web, None, 20), Change("services", None, new_web, 21)]
    assert list(fold(plain)) == plain  # a real remove, then a create
