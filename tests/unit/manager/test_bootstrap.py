"""swarm init's first objects come from one place, and a request Docker refuses makes nothing."""

from __future__ import annotations

import asyncio

import pytest
from cryptography import x509
from parts import FAST_ALLOC, Parts

from shoal.dev.wait import wait_for_async
from shoal.errors import InvalidArgument
from shoal.manager.allocator import Allocator
from shoal.manager.bootstrap import await_first_writes, new_swarm
from shoal.manager.controlapi.cluster import update_cluster
from shoal.manager.controlapi.node import update_node
from shoal.manager.deks import ClusterKeys
from shoal.manager.keymanager import KeyManager
from shoal.model.objects import Cluster, Node, NodeStatus
from shoal.model.requests import InitRequest
from shoal.model.states import NodeRole, NodeState
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store, Tx, copy


async def test_the_first_transaction_holds_the_cluster_the_node_and_ingress() -> None:
    swarm = await new_swarm(InitRequest(), hostname="h1", advertise_ip="10.9.0.2", manager_addr="10.9.0.2:2377")
    cert = x509.load_pem_x509_certificate(swarm.identity.cert_pem.encode())
    assert swarm.identity.node_id == swarm.node_id and swarm.identity.role == NodeRole.MANAGER
    assert cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == swarm.cluster_id
    assert swarm.cluster.root_ca is not None and swarm.cluster.root_ca.ca_key
    assert swarm.cluster.default_addr_pool == ["10.0.0.0/8"] and swarm.cluster.data_path_port == 4789
    assert swarm.node.manager_status is not None and swarm.node.manager_status.addr == "10.9.0.2:2377"
    assert swarm.ingress.spec.ingress and swarm.ingress.spec.name == "ingress"
    store = Store(MemoryBackend())
    await store.start()
    try:
        await store.update(swarm.write)
        view = store.view()
        assert view.get(type(swarm.cluster), swarm.cluster_id) is not None
        assert view.get(type(swarm.node), swarm.node_id) is not None
        assert view.get(type(swarm.ingress), swarm.ingress.id) is not None
    finally:
        await store.close()


@pytest.mark.parametrize("req", [InitRequest(availability="sleepy"),
                                 InitRequest(default_addr_pool=["10.0.0.0/30"], subnet_size=24),
                                 InitRequest(data_path_port=1023), InitRequest(data_path_port=49152)])
async def test_a_refused_request_raises_before_anything_is_made(req: InitRequest) -> None:
    with pytest.raises(InvalidArgument):
        await new_swarm(req, hostname="h1", advertise_ip="10.9.0.2", manager_addr="10.9.0.2:2377")


async def test_the_data_path_port_is_the_clusters() -> None:
    swarm = await new_swarm(InitRequest(data_path_port=7789), hostname="h1", advertise_ip="10.9.0.2",
                            manager_addr="10.9.0.2:2377")
    assert swarm.cluster.data_path_port == 7789


async def test_init_waits_for_the_leaders_first_writes(store: Store, parts: Parts) -> None:
    """Once the wait is over, updates with the versions just read are in sequence (docker-py's
    init then ``node update``)."""
    swarm = await new_swarm(InitRequest(), hostname="h1", advertise_ip="10.9.0.2", manager_addr="10.9.0.2:2377")
    await store.update(swarm.write)
    waiter = asyncio.create_task(await_first_writes(store, swarm.node_id, timeout=10))
    parts.start(KeyManager(store))
    parts.start(Allocator(store, FAST_ALLOC))

    def written() -> bool:
        node, cluster = store.view().get(Node, swarm.node_id), store.view().cluster()
        return bool(node and node.attachments and cluster and cluster.network_bootstrap_keys)

    await wait_for_async("the gossip keys and the node's ingress address", written, timeout=5)
    assert not waiter.done()  # the agent has not registered yet

    def register(tx: Tx) -> None:  # what the dispatcher writes when the node's agent registers
        node = copy(tx.view.get(Node, swarm.node_id))
        node.status = NodeStatus(state=NodeState.READY, addr="10.9.0.2")
        tx.update(node)

    await store.update(register)
    assert await waiter
    node, cluster = store.view().get(Node, swarm.node_id), store.view().cluster()
    assert node is not None and cluster is not None
    await update_node(store, node.id, node.version.index, node.spec)
    await update_cluster(store, cluster.version.index, cluster.spec, rotate_worker=False,
                         rotate_manager=False, keys=ClusterKeys(swarm.dek))


async def test_the_wait_is_bounded(store: Store) -> None:
    swarm = await new_swarm(InitRequest(), hostname="h1", advertise_ip="10.9.0.2", manager_addr="10.9.0.2:2377")
    await store.update(swarm.write)
    assert not await await_first_writes(store, swarm.node_id, timeout=0.05)
    assert store.view().get(Cluster, swarm.cluster_id) is not None
