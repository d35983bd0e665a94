"""Who may call the CA's mutual-TLS endpoints: ``authorize`` and the blacklist of removed
nodes, then ``/ca/renew`` and ``/ca/raft`` of the real CAServer over TLS, on the leader and on a
follower (which checks before it redirects)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from parts import Parts
from swarmport import FOLLOWER_LEADS_TO, swarm_port

from shoal.errors import PermissionDenied
from shoal.manager.ca.auth import MANAGER_ONLY, authorize, blacklist, was_removed
from shoal.manager.controlapi.node import remove_node
from shoal.model.ids import NodeID
from shoal.model.objects import BlacklistedCertificate, Cluster, Node
from shoal.model.specs import ClusterSpec, NodeSpec
from shoal.pki import generate_key_and_csr
from shoal.pki.subjects import PeerIdentity
from shoal.store.store import Store, Tx, copy

CLUSTER = "cluster0000000000000000001"


async def _seeded(store: Store) -> None:
    def fn(tx: Tx) -> None:
        tx.create(Cluster(id=CLUSTER))
        tx.create(Node(id="worker1", spec=NodeSpec(role="worker")))
        tx.create(Node(id="manager1", spec=NodeSpec(role="manager"), role="manager"))
        tx.create(Node(id="demoted1", spec=NodeSpec(role="worker"), role="worker"))
    await store.update(fn)


def _peer(node_id: str, role: str = "worker", cluster: str = CLUSTER) -> PeerIdentity:
    return PeerIdentity(node_id=NodeID(node_id), role=role, cluster_id=cluster)  # type: ignore[arg-type]


@pytest.mark.parametrize(("peer", "roles", "message"), [
    (None, ("worker", "manager"), "a node certificate of this swarm is required"),
    (_peer("worker1", cluster="another"), ("worker", "manager"), "a node certificate of this swarm"),
    (_peer("worker1"), MANAGER_ONLY, "needs a swarm-manager certificate"),
    (_peer("nobody"), ("worker", "manager"), "node nobody is not part of this swarm"),
    # a manager certificate kept after a demotion: the store says worker
    (_peer("demoted1", "manager"), MANAGER_ONLY, "node demoted1 is not a manager of this swarm"),
])
async def test_authorize_refusals(store: Store, peer: PeerIdentity | None, roles: tuple[str, ...],
                                  message: str) -> None:
    await _seeded(store)
    with pytest.raises(PermissionDenied, match=message):
        authorize(store.view(), peer, cluster_id=CLUSTER, roles=roles)  # type: ignore[arg-type]


async def test_authorize_gives_the_callers_node(store: Store) -> None:
    await _seeded(store)
    assert authorize(store.view(), _peer("worker1"), cluster_id=CLUSTER).id == "worker1"
    node = authorize(store.view(), _peer("manager1", "manager"), cluster_id=CLUSTER, roles=MANAGER_ONLY)
    assert node.id == "manager1"


async def test_node_rm_remembers_the_node_as_removed(store: Store) -> None:
    await _seeded(store)
    await remove_node(store, "worker1", force=True)
    view = store.view()
    assert view.get(Node, "worker1") is None and was_removed(view.cluster(), "worker1")
    with pytest.raises(PermissionDenied, match="Permission denied: node worker1 was removed from swarm"):
        authorize(view, _peer("worker1"), cluster_id=CLUSTER)
    await store.update(lambda tx: tx.create(Node(id="worker1")))  # made again: still refused
    with pytest.raises(PermissionDenied, match="was removed from swarm"):
        authorize(store.view(), _peer("worker1"), cluster_id=CLUSTER)


def test_blacklist_entries_last_as_long_as_a_certificate_and_then_go() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    spec = ClusterSpec()
    spec.ca_config.node_cert_expiry = int(timedelta(hours=2).total_seconds() * 1e9)
    cluster = Cluster(id=CLUSTER, spec=spec, blacklisted_certificates={
        "old": BlacklistedCertificate(expiry=int((now - timedelta(seconds=1)).timestamp())),
        "forever": BlacklistedCertificate(expiry=0),
    })
    blacklist(cluster, "new", now=now)
    entries = cluster.blacklisted_certificates or {}
    assert set(entries) == {"forever", "new"}  # the expired one is forgotten
    assert entries["new"].expiry >= int((now + timedelta(hours=2)).timestamp())
    assert entries["new"].expiry <= int((now + timedelta(hours=2, seconds=2)).timestamp())


async def _csr() -> dict[str, str]:
    return {"CSR": generate_key_and_csr()[1]}


@pytest.mark.parametrize("leader", [True, False], ids=["leader", "follower"])
async def test_renew_is_refused_to_a_removed_node_on_every_manager(
        store: Store, parts: Parts, leader: bool) -> None:
    async with swarm_port(store, parts, leader=leader) as port:
        worker = await port.add_node()
        status, reply = await port.post("/ca/renew", worker, await _csr())
        if leader:
            assert status == 200 and "BEGIN CERTIFICATE" in reply["Certificate"]
        else:
            assert status == 307 and reply == f"https://{FOLLOWER_LEADS_TO}/ca/renew"
        await remove_node(store, worker.node_id, force=True)
        status, reply = await port.post("/ca/renew", worker, await _csr())
        assert status == 403
        assert reply["message"] == f"Permission denied: node {worker.node_id} was removed from swarm"
        stranger = port.identity("strangerxxxxxxxxxxxxxxxxx1")
        status, reply = await port.post("/ca/renew", stranger, await _csr())
        assert status == 403 and "is not part of this swarm" in reply["message"]


async def test_raft_certificates_only_for_managers_the_store_knows(store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        worker = await port.add_node()
        status, reply = await port.post("/ca/raft", worker, await _csr())
        assert status == 403 and "swarm-manager" in reply["message"]
        manager = await port.add_node("manager")
        status, reply = await port.post("/ca/raft", manager, await _csr())
        assert status == 200 and "BEGIN CERTIFICATE" in reply["Certificate"]
        assert reply["StoreDEK"] == port.swarm.dek.text  # a manager opens the swarm's keys

        def demote(tx: Tx) -> None:
            node = tx.view.get(Node, manager.node_id)
            assert node is not None
            node = copy(node)
            node.spec.role = node.role = "worker"
            tx.update(node)
        await store.update(demote)
        status, reply = await port.post("/ca/raft", manager, await _csr())  # its old certificate
        assert status == 403 and "is not a manager of this swarm" in reply["message"]
