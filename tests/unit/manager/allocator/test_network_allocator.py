"""The network allocator wired into the allocator loop, over a real Store (in-memory backend):
networks get subnets and VXLAN IDs, services VIPs, tasks and nodes addresses, and everything is
given back when its holder goes; a new leader rebuilds the same state."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import pytest
from parts import FAST_ALLOC, Parts

from shoal.dev.wait import wait_for_async
from shoal.errors import Conflict
from shoal.manager.allocator import Allocator
from shoal.manager.controlapi.network import create_network, remove_network
from shoal.manager.controlapi.service import create_service, remove_service, update_service
from shoal.model.ids import new_id
from shoal.model.objects import Cluster, Network, Node, Service, Task, TaskStatus
from shoal.model.specs import (
    IPAM,
    EndpointSpec,
    IPAMConfig,
    NetworkAttachmentConfig,
    NetworkSpec,
    PortConfig,
    ServiceSpec,
    TaskSpec,
)
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx, copy


async def init(store: Store, pool: list[str] | None = None, size: int = 24) -> Network:
    """What swarm init writes: the cluster (with its pool), a node and the ingress network."""
    ingress = Network(id="ingress0", spec=NetworkSpec(name="ingress", driver="overlay", scope="swarm",
                                                     ingress=True, ipam=IPAM()))

    def fn(tx: Tx) -> None:
        tx.create(Cluster(id="c1", default_addr_pool=pool or ["10.0.0.0/8"], subnet_size=size))
        tx.create(Node(id="node1"))
        tx.create(ingress)

    await store.update(fn)
    return ingress


async def overlay(store: Store, name: str, subnet: str = "", gateway: str = "") -> Network:
    cfg = [IPAMConfig(subnet=subnet, gateway=gateway)] if subnet else None
    return await create_network(store, NetworkSpec(name=name, driver="overlay", ipam=IPAM(config=cfg)))


async def service(store: Store, name: str, networks: Sequence[str] = (),
                  ports: list[PortConfig] | None = None, mode: str = "") -> Service:
    spec = ServiceSpec(name=name, task_template=TaskSpec(
        container_spec={"Image": "busybox"},
        networks=[NetworkAttachmentConfig(target=n, aliases=[f"{name}-alias"]) for n in networks] or None),
        endpoint_spec=EndpointSpec(mode=mode, ports=ports))
    return await create_service(store, spec)


async def add_tasks(store: Store, svc: Service, n: int) -> list[str]:
    """NEW tasks as the orchestrator makes them."""
    ids = [new_id() for _ in range(n)]

    def fn(tx: Tx) -> None:
        for i, tid in enumerate(ids):
            tx.create(Task(id=tid, service_id=svc.id, slot=i + 1, spec=svc.spec.task_template,
                           endpoint_spec=svc.spec.endpoint_spec))

    await store.update(fn)
    return ids


async def set_state(store: Store, task_id: str, state: str) -> None:
    def fn(tx: Tx) -> None:
        old = tx.view.get(Task, task_id)
        assert old is not None
        t = copy(old)
        t.status = TaskStatus(state=state)
        tx.update(t)

    await store.update(fn)


def get_net(store: Store, nid: str) -> Network:
    net = store.view().get(Network, nid)
    assert net is not None
    return net


def allocated(store: Store, nid: str) -> Network | None:
    net = store.view().get(Network, nid)
    return net if net is not None and net.allocated else None


def all_allocated(store: Store, *ids: str) -> bool:
    return all(allocated(store, i) for i in ids)


def subnets(net: Network) -> list[str]:
    return [c.subnet for c in (net.ipam_options.config if net.ipam_options else None) or []]


def pending(store: Store, ids: list[str]) -> bool:
    return all((t := store.view().get(Task, i)) is not None and t.status.state == TaskState.PENDING for i in ids)


def addresses(store: Store, task_id: str) -> dict[str, list[str]]:
    task = store.view().get(Task, task_id)
    assert task is not None
    return {a.network.id: list(a.addresses or []) for a in task.networks_attachments or []}


def in_use(alloc: Allocator, nid: str) -> int:
    return sum(s.in_use for s in alloc.network.state.networks[nid])


# --- networks ------------------------------------------------------------------------------


async def test_networks_get_pool_subnets_gateways_and_vxlan_ids(store: Store, parts: Parts) -> None:
    ingress = await init(store)
    parts.start(Allocator(store, FAST_ALLOC))
    a = await overlay(store, "a")
    b = await overlay(store, "b", subnet="192.168.7.0/24", gateway="192.168.7.254")
    await wait_for_async("networks allocated", lambda: all_allocated(store, ingress.id, a.id, b.id))
    configs = {nid: get_net(store, nid).ipam_options for nid in (ingress.id, a.id, b.id)}
    assert [(c.config[0].subnet, c.config[0].gateway) for c in configs.values() if c and c.config] == [
        ("10.0.0.0/24", "10.0.0.1"), ("10.0.1.0/24", "10.0.1.1"), ("192.168.7.0/24", "192.168.7.254")]
    vnis = [v for nid in (ingress.id, a.id, b.id) for v in get_net(store, nid).vxlan_ids()]
    assert len(set(vnis)) == 3 and all(v >= 4096 for v in vnis)


async def test_overlapping_subnet_is_refused_at_create(store: Store, parts: Parts) -> None:
    await init(store)
    parts.start(Allocator(store, FAST_ALLOC))
    a = await overlay(store, "a")
    await wait_for_async("a allocated", lambda: allocated(store, a.id))
    with pytest.raises(Conflict, match="overlaps"):
        await overlay(store, "b", subnet="10.0.1.128/25")  # inside a's pool subnet
    await overlay(store, "c", subnet="172.30.0.0/16")
    with pytest.raises(Conflict, match="overlaps"):
        await overlay(store, "d", subnet="172.30.4.0/24")  # inside c's requested subnet


async def test_pool_never_hands_out_a_users_subnet(store: Store, parts: Parts) -> None:
    """A --subnet in the pool that the pool has not reached yet: the pool steps around it."""
    ingress = await init(store)
    user = await overlay(store, "user", subnet="10.0.1.0/24")
    other = await overlay(store, "other")
    parts.start(Allocator(store, FAST_ALLOC))
    await wait_for_async("networks allocated", lambda: all_allocated(store, ingress.id, user.id, other.id))
    got = [s for nid in (ingress.id, user.id, other.id) for s in subnets(get_net(store, nid))]
    assert got == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]


async def test_custom_default_pool(store: Store, parts: Parts) -> None:
    ingress = await init(store, ["10.20.0.0/16"], 26)
    parts.start(Allocator(store, FAST_ALLOC))
    a = await overlay(store, "a")
    net = await wait_for_async("a allocated", lambda: allocated(store, a.id))
    assert subnets(net) == ["10.20.0.64/26"]
    assert subnets(get_net(store, ingress.id)) == ["10.20.0.0/26"]


async def test_removed_network_gives_its_subnet_back(store: Store, parts: Parts) -> None:
    await init(store)
    alloc = parts.start(Allocator(store, FAST_ALLOC))
    a = await overlay(store, "a")
    await wait_for_async("a allocated", lambda: allocated(store, a.id))
    await remove_network(store, a.id)
    await wait_for_async("a released", lambda: a.id not in alloc.network.state.networks)
    b = await overlay(store, "b", subnet="10.0.1.0/24")  # a's subnet is free again
    await wait_for_async("b allocated", lambda: allocated(store, b.id))


# --- services, tasks, nodes ----------------------------------------------------------------


async def test_service_vips_task_addresses_and_endpoint(store: Store, parts: Parts) -> None:
    ingress = await init(store)
    parts.start(Allocator(store, FAST_ALLOC))
    net = await overlay(store, "front")
    await wait_for_async("front allocated", lambda: allocated(store, net.id))
    svc = await service(store, "web", [net.id], [PortConfig(target_port=80, published_port=8080)])
    made = store.view().get(Service, svc.id)  # create returns once the allocator is done with it
    assert made is not None and not made.pending_allocation and len(made.endpoint.virtual_ips or []) == 2
    ids = await add_tasks(store, svc, 3)
    await wait_for_async("3 pending", lambda: pending(store, ids))
    stored = store.view().get(Service, svc.id)
    assert stored is not None
    vips = {v.network_id: v.addr for v in stored.endpoint.virtual_ips or []}
    assert set(vips) == {net.id, ingress.id}
    assert vips[net.id].startswith("10.0.1.") and vips[net.id].endswith("/24")
    task = store.view().get(Task, ids[0])
    assert task is not None and task.endpoint is not None
    assert task.endpoint.virtual_ips == stored.endpoint.virtual_ips
    assert [(p.target_port, p.published_port) for p in task.endpoint.ports or []] == [(80, 8080)]
    atts = {a.network.id: a for a in task.networks_attachments or []}
    assert set(atts) == {net.id, ingress.id}
    assert atts[net.id].aliases == ["web-alias"] and atts[ingress.id].aliases is None
    for a in atts.values():  # the whole network, as the node side needs it
        assert a.network == get_net(store, a.network.id)
        assert a.network.vxlan_ids() and a.network.subnets()[0].subnet
    every = [addr for i in ids for addrs in addresses(store, i).values() for addr in addrs]
    assert len(every) == 6 and len(set(every) | set(vips.values())) == 8  # all distinct


async def test_dnsrr_has_no_vips_and_host_ports_still_attach_ingress(store: Store, parts: Parts) -> None:
    ingress = await init(store)
    parts.start(Allocator(store, FAST_ALLOC))
    net = await overlay(store, "back")
    await wait_for_async("back allocated", lambda: allocated(store, net.id))
    svc = await service(store, "db", [net.id], [PortConfig(target_port=5432, published_port=5432,
                                                             publish_mode="host")], mode="dnsrr")
    ids = await add_tasks(store, svc, 1)
    await wait_for_async("pending", lambda: pending(store, ids))
    stored = store.view().get(Service, svc.id)
    assert stored is not None and not stored.endpoint.virtual_ips and not stored.pending_allocation
    assert set(addresses(store, ids[0])) == {net.id, ingress.id}


async def test_task_waits_for_an_unallocatable_network(store: Store, parts: Parts) -> None:
    await init(store)
    parts.start(Allocator(store, FAST_ALLOC))
    a = await overlay(store, "a", subnet="10.99.0.0/24")
    await wait_for_async("a allocated", lambda: allocated(store, a.id))
    # Written past controlapi's overlap check (as a race would): the allocator refuses it.
    bad = Network(id="bad", spec=NetworkSpec(name="bad", driver="overlay", scope="swarm",
                                             ipam=IPAM(config=[IPAMConfig(subnet="10.99.0.0/25")])))
    await store.update(lambda tx: tx.create(bad))
    svc = await service(store, "s", [bad.id])
    ids = await add_tasks(store, svc, 1)
    await asyncio.sleep(0.3)
    task = store.view().get(Task, ids[0])
    assert task is not None and task.status.state == TaskState.NEW and not task.networks_attachments
    assert not get_net(store, "bad").allocated


async def test_exhausted_subnet_leaves_the_task_new_until_an_address_frees(
    store: Store, parts: Parts
) -> None:
    await init(store)
    alloc = parts.start(Allocator(store, FAST_ALLOC))
    tiny = await overlay(store, "tiny", subnet="192.168.50.0/29")  # 6 hosts: gateway, VIP, 4 tasks
    await wait_for_async("tiny allocated", lambda: allocated(store, tiny.id))
    svc = await service(store, "s", [tiny.id])
    first = await add_tasks(store, svc, 4)
    await wait_for_async("4 pending", lambda: pending(store, first))
    late = await add_tasks(store, svc, 1)
    await asyncio.sleep(0.3)
    task = store.view().get(Task, late[0])
    assert task is not None and task.status.state == TaskState.NEW
    await set_state(store, first[0], "failed")  # terminal: its address goes back
    await wait_for_async("the late task pending", lambda: pending(store, late))
    assert addresses(store, late[0]) == addresses(store, first[0])  # the only free one
    assert in_use(alloc, tiny.id) == 5


async def test_releases_on_terminal_tasks_removed_services_and_updates(store: Store, parts: Parts) -> None:
    await init(store)
    alloc = parts.start(Allocator(store, FAST_ALLOC))
    a = await overlay(store, "a")
    b = await overlay(store, "b")
    await wait_for_async("networks allocated", lambda: all_allocated(store, a.id, b.id))
    svc = await service(store, "s", [a.id, b.id])
    ids = await add_tasks(store, svc, 2)
    await wait_for_async("pending", lambda: pending(store, ids))
    assert (in_use(alloc, a.id), in_use(alloc, b.id)) == (3, 3)  # a VIP and two tasks each

    await set_state(store, ids[0], "shutdown")
    await wait_for_async("a task's addresses back", lambda: in_use(alloc, a.id) == 2 and in_use(alloc, b.id) == 2)

    current = store.view().get(Service, svc.id)
    assert current is not None
    spec = copy(current).spec
    spec.task_template.networks = [NetworkAttachmentConfig(target=a.id)]
    await update_service(store, svc.id, current.version.index, spec)
    await wait_for_async("b's VIP back", lambda: in_use(alloc, b.id) == 1)  # the running task keeps its
    updated = store.view().get(Service, svc.id)
    assert updated is not None and [v.network_id for v in updated.endpoint.virtual_ips or []] == [a.id]

    await remove_service(store, svc.id)
    await wait_for_async("a's VIP back", lambda: in_use(alloc, a.id) == 1)
    await store.update(lambda tx: tx.delete(store.view().get(Task, ids[1])))  # type: ignore[arg-type]
    await wait_for_async("everything back", lambda: in_use(alloc, a.id) == 0 and in_use(alloc, b.id) == 0)


async def test_nodes_get_an_ingress_address_released_on_removal(store: Store, parts: Parts) -> None:
    ingress = await init(store)
    alloc = parts.start(Allocator(store, FAST_ALLOC))
    await store.update(lambda tx: tx.create(Node(id="node2")))

    def node_addrs() -> dict[str, list[str]]:
        return {n.id: [x for a in n.attachments or [] for x in a.addresses or []]
                for n in store.view().all(Node)}

    addrs = await wait_for_async("both nodes attached", lambda: all(node_addrs().values()) and node_addrs())
    assert sorted(addrs.values()) == [["10.0.0.2/24"], ["10.0.0.3/24"]]
    node = store.view().get(Node, "node1")
    assert node is not None and node.attachments and node.attachments[0].network.id == ingress.id
    version = node.version.index
    await asyncio.sleep(0.2)
    again = store.view().get(Node, "node1")
    assert again is not None and again.version.index == version  # written once only
    await store.update(lambda tx: tx.delete(store.view().get(Node, "node2")))  # type: ignore[arg-type]
    await wait_for_async("node2's address back", lambda: in_use(alloc, ingress.id) == 1)


async def test_new_leader_rebuilds_and_hands_out_nothing_twice(store: Store, parts: Parts) -> None:
    await init(store)
    first = parts.start(Allocator(store, FAST_ALLOC))
    net = await overlay(store, "a")
    await wait_for_async("allocated", lambda: allocated(store, net.id))
    svc = await service(store, "s", [net.id])
    ids = await add_tasks(store, svc, 3)
    await wait_for_async("pending", lambda: pending(store, ids))
    await set_state(store, ids[0], "complete")  # terminal: not rebuilt as held
    await wait_for_async("its address back", lambda: in_use(first, net.id) == 3)
    await parts.close()

    second = parts.start(Allocator(store, FAST_ALLOC))
    more = await add_tasks(store, svc, 2)
    await wait_for_async("new tasks pending", lambda: pending(store, more))
    live = [a for i in ids[1:] + more for a in addresses(store, i)[net.id]]
    vip = store.view().get(Service, svc.id).endpoint.virtual_ips[0].addr  # type: ignore[union-attr,index]
    assert len(set(live + [vip])) == 5
    assert in_use(second, net.id) == 5
    assert set(addresses(store, more[0])[net.id]).isdisjoint(addresses(store, ids[2])[net.id])


async def test_task_waits_for_its_service_vips(store: Store) -> None:
    """The voter alone (no loop): a service whose VIP is not in the store yet holds the task."""
    from shoal.manager.allocator import NetworkAllocator

    await init(store)
    net_alloc = NetworkAllocator()
    net_alloc.restore(store.view())
    await store.update(net_alloc.allocate_networks)
    assert net_alloc.settle(store.view())
    svc = await service(store, "s", [])
    svc_net = await overlay(store, "n")
    await store.update(net_alloc.allocate_networks)
    assert net_alloc.settle(store.view())
    spec = TaskSpec(container_spec={"Image": "busybox"}, networks=[NetworkAttachmentConfig(target=svc_net.id)])
    current = store.view().get(Service, svc.id)
    assert current is not None
    current = msgspec.structs.replace(current, spec=msgspec.structs.replace(
        current.spec, task_template=spec))
    await store.update(lambda tx: tx.update(current))
    task = Task(id="t1", service_id=svc.id, spec=spec)
    assert net_alloc.allocate(task, store.view()) is None  # the VIP is not allocated yet
    await store.update(net_alloc.allocate_services)
    assert net_alloc.settle(store.view())
    allocated_task = net_alloc.allocate(task, store.view())
    assert allocated_task is not None and allocated_task.networks_attachments
