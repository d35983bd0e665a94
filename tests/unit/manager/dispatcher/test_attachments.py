"""Standalone containers' network attachments on the manager side, over a real Store (in-memory
backend) with the allocator and scheduler running: AttachNetwork makes a task for the caller
that gets an address and is ASSIGNED to it; a network that is not attachable is refused with
dockerd's words; DetachNetwork deletes only the caller's own attachment, and the address is
given back; removing the node removes its attachments."""

from __future__ import annotations

import pytest
from parts import FAST_ALLOC, FAST_SCHED, Parts
from swarmport import swarm_port

from shoal.dev.wait import wait_for_async
from shoal.errors import FailedPrecondition
from shoal.manager.allocator import Allocator
from shoal.manager.controlapi.network import create_network, remove_network
from shoal.manager.controlapi.node import remove_node
from shoal.manager.dispatcher import attachments
from shoal.manager.scheduler import Scheduler
from shoal.model.dispatch import Assignments, AttachNetwork, AttachNetworkReply, DetachNetwork
from shoal.model.objects import Cluster, Network, Node, Task
from shoal.model.specs import IPAM, NetworkSpec
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx
from tests.unit.manager.scheduler.conftest import make_node


async def _swarm(store: Store) -> None:
    ingress = Network(id="ingress0", spec=NetworkSpec(name="ingress", driver="overlay",
                                                     scope="swarm", ingress=True, ipam=IPAM()))

    def fn(tx: Tx) -> None:
        tx.create(Cluster(id="c1", default_addr_pool=["10.0.0.0/8"], subnet_size=24))
        tx.create(make_node("node1"))
        tx.create(make_node("node2", state="down"))
        tx.create(ingress)

    await store.update(fn)


def _task(store: Store, task_id: str) -> Task | None:
    return store.view().get(Task, task_id)


def _assigned_with_address(store: Store, task_id: str) -> bool:
    t = _task(store, task_id)
    return (t is not None and t.state == TaskState.ASSIGNED
            and bool(t.networks_attachments and t.networks_attachments[0].addresses))


async def test_attach_assigns_an_address_and_detach_releases_it(store: Store,
                                                                 parts: Parts) -> None:
    await _swarm(store)
    alloc = parts.start(Allocator(store, FAST_ALLOC))
    parts.start(Scheduler(store, FAST_SCHED))
    net = await create_network(store, NetworkSpec(name="att", driver="overlay", attachable=True,
                                                  ipam=IPAM()))
    reply = await attachments.attach(store, "node1", AttachNetwork(
        request_id="r1", container_id="c" * 64, network="att"))
    assert reply.request_id == "r1" and reply.error == "" and reply.task_id
    await wait_for_async("attachment assigned", lambda: _assigned_with_address(store, reply.task_id))
    task = _task(store, reply.task_id)
    assert task is not None and task.node_id == "node1" and task.is_attachment
    assert task.spec.network_attachment_spec == {"ContainerID": "c" * 64}
    assert task.networks_attachments and task.networks_attachments[0].network.id == net.id
    assert task.networks_attachments[0].addresses == ["10.0.1.2/24"]
    held = sum(s.in_use for s in alloc.network.state.networks[net.id])

    # another node may not remove it; a service's task is no attachment either
    await attachments.detach(store, "node2", DetachNetwork(task_id=reply.task_id))
    assert _task(store, reply.task_id) is not None
    await attachments.detach(store, "node1", DetachNetwork(task_id=reply.task_id))
    assert _task(store, reply.task_id) is None
    await wait_for_async("address released", lambda: sum(
        s.in_use for s in alloc.network.state.networks[net.id]) == held - 1)
    await attachments.detach(store, "node1", DetachNetwork(task_id=reply.task_id))  # again: fine


async def test_not_attachable_and_unknown_networks_are_refused(store: Store) -> None:
    await _swarm(store)
    await create_network(store, NetworkSpec(name="plain", driver="overlay", ipam=IPAM()))
    reply = await attachments.attach(store, "node1", AttachNetwork(
        request_id="r2", container_id="c" * 64, network="plain"))
    assert reply.task_id == "" and reply.code == "PermissionDenied"
    assert reply.error == ("rpc error: code = PermissionDenied desc = network plain not manually "
                           "attachable")
    reply = await attachments.attach(store, "node1", AttachNetwork(
        request_id="r3", container_id="c" * 64, network="ingress"))
    assert reply.code == "PermissionDenied"
    reply = await attachments.attach(store, "node1", AttachNetwork(
        request_id="r4", container_id="c" * 64, network="nope"))
    assert reply.code == "NotFound" and reply.error == "network nope not found"
    assert not list(store.view().all(Task))


async def test_removing_a_node_removes_its_attachments(store: Store) -> None:
    await _swarm(store)
    await create_network(store, NetworkSpec(name="att", driver="overlay", attachable=True,
                                            ipam=IPAM()))
    reply = await attachments.attach(store, "node2", AttachNetwork(
        request_id="r5", container_id="d" * 64, network="att"))
    assert reply.task_id
    await remove_node(store, "node2", force=False)
    assert store.view().get(Node, "node2") is None
    assert _task(store, reply.task_id) is None


async def test_a_network_with_a_container_on_it_is_not_removed(store: Store) -> None:
    await _swarm(store)
    net = await create_network(store, NetworkSpec(name="att", driver="overlay", attachable=True,
                                                  ipam=IPAM()))
    reply = await attachments.attach(store, "node1", AttachNetwork(
        request_id="r6", container_id="e" * 64, network="att"))
    with pytest.raises(FailedPrecondition, match=f"network {net.id} is in use by task "
                                                 f"{reply.task_id}"):
        await remove_network(store, "att")
    await attachments.detach(store, "node1", DetachNetwork(task_id=reply.task_id))
    await remove_network(store, "att")


async def test_round_trip_over_a_real_session(store: Store, parts: Parts) -> None:
    """A node's session asks; the allocator and the scheduler do their part; the dispatcher
    answers and then assigns the task to that node only; the node deletes it."""
    async with swarm_port(store, parts) as port:
        parts.start(Allocator(store, FAST_ALLOC))
        parts.start(Scheduler(store, FAST_SCHED))
        await create_network(store, NetworkSpec(name="att", driver="overlay", attachable=True,
                                                ipam=IPAM()))
        me, other = await port.add_node(), await port.add_node()
        mine = await port.session(me)
        theirs = await port.session(other)
        await mine.send(AttachNetwork(request_id="q1", container_id="f" * 64, network="att"))
        replies = await wait_for_async("the reply", lambda: [
            m for m in mine.got if isinstance(m, AttachNetworkReply)])
        task_id = replies[0].task_id
        assert task_id and replies[0].request_id == "q1"

        def assigned() -> list[Task]:
            return [t for m in mine.got if isinstance(m, Assignments) for t in m.tasks
                    if t.id == task_id and t.networks_attachments]

        (task, *_) = await wait_for_async("the attachment assigned", assigned)
        assert task.node_id == me.node_id and task.is_attachment
        assert not [t for m in theirs.got if isinstance(m, Assignments) for t in m.tasks]
        await theirs.send(DetachNetwork(task_id=task_id))  # not theirs: refused
        await mine.send(AttachNetwork(request_id="q2", container_id="f" * 64, network="ingress"))
        await wait_for_async("the refusal", lambda: [
            m for m in mine.got if isinstance(m, AttachNetworkReply) and m.request_id == "q2"
            and m.code == "PermissionDenied"])
        assert _task(store, task_id) is not None
        await mine.send(DetachNetwork(task_id=task_id))
        await wait_for_async("the task deleted", lambda: _task(store, task_id) is None)
        await wait_for_async("removed from the node's assignments", lambda: [
            m for m in mine.got if isinstance(m, Assignments) and task_id in m.removed])
