"""The root rotation reconciler over a real Store (MemoryBackend): which nodes it asks to renew,
how many at a time, when it completes the rotation, and that it leaves alone a rotation that
changed under it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from parts import Parts

from shoal.dev.wait import wait_for_async
from shoal.manager.bootstrap import NewSwarm, new_swarm
from shoal.manager.ca.reconciler import RootRotationReconciler, unconverged
from shoal.manager.ca.rotation import desired_issuer, desired_root_ca, set_root_ca
from shoal.manager.deks import ClusterKeys
from shoal.model.objects import Cluster, Node, NodeDescription, TLSInfo
from shoal.model.requests import InitRequest
from shoal.model.specs import CAConfig
from shoal.pki.tokens import digest_matches
from shoal.store.store import Store, Tx, copy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def swarm(store: Store) -> AsyncIterator[NewSwarm]:
    made = await new_swarm(InitRequest(), hostname="m1", advertise_ip="127.0.0.1", manager_addr="127.0.0.1:2377")
    await store.update(made.write)
    yield made


def _cluster(store: Store) -> Cluster:
    cluster = store.view().cluster()
    assert cluster is not None and cluster.root_ca is not None
    return cluster


def _info(cluster: Cluster) -> TLSInfo:
    """A node's TLS info with a certificate from the issuer the cluster wants now."""
    assert cluster.root_ca is not None
    return TLSInfo(cluster.root_ca.ca_cert, *desired_issuer(cluster.root_ca))


async def _add_nodes(store: Store, count: int, *, info: TLSInfo | None) -> list[str]:
    ids = [f"node{i:03d}" for i in range(count)]

    def fn(tx: Tx) -> None:
        for node_id in ids:
            tx.create(Node(id=node_id, description=NodeDescription(hostname=node_id, tls_info=info)))
    await store.update(fn)
    return ids


async def _start_rotation(store: Store, swarm: NewSwarm, force: int = 1) -> None:
    def fn(tx: Tx) -> None:
        cluster = copy(_cluster(store))
        set_root_ca(cluster, desired_root_ca(cluster, CAConfig(force_rotate=force), ClusterKeys(swarm.dek)))
        tx.update(cluster)
    await store.update(fn)


async def _renewed(store: Store, node_ids: list[str]) -> None:
    """What a node's renewal does: the CA clears the request, the node reports the new issuer."""
    info = _info(_cluster(store))

    def fn(tx: Tx) -> None:
        for node_id in node_ids:
            node = tx.view.get(Node, node_id)
            assert node is not None
            node = copy(node)
            node.rotate_certificate = False
            node.description.tls_info = info
            tx.update(node)
    await store.update(fn)


def _asked(store: Store) -> set[str]:
    return {n.id for n in store.view().all(Node) if n.rotate_certificate}


async def test_without_a_rotation_nothing_is_written(store: Store, swarm: NewSwarm) -> None:
    await _add_nodes(store, 3, info=None)
    before = store.revision
    await RootRotationReconciler(store).reconcile()
    assert store.revision == before and not _asked(store)


async def test_nodes_are_asked_in_batches_then_the_rotation_completes(store: Store, swarm: NewSwarm) -> None:
    old = _cluster(store)
    await _add_nodes(store, 5, info=_info(old))  # issued by the old root
    await _start_rotation(store, swarm)
    clock = Clock()
    reconciler = RootRotationReconciler(store, batch=2, interval=3.0, clock=clock)
    await reconciler.reconcile()
    first = _asked(store)
    assert len(first) == 2  # the swarm's first node (no TLS info yet) may be among them
    await reconciler.reconcile()
    assert _asked(store) == first  # not before the interval
    clock.now += 3.0
    await reconciler.reconcile()
    assert len(_asked(store)) == 4 and first < _asked(store)
    await _renewed(store, sorted(_asked(store)))
    clock.now += 3.0
    await reconciler.reconcile()
    assert len(_asked(store)) == 2  # the last two: six nodes in all
    await _renewed(store, sorted(_asked(store)))
    assert not unconverged(store.view().all(Node), _cluster(store).root_ca)  # type: ignore[arg-type]

    await reconciler.reconcile()  # nothing left: it completes, at once
    done = _cluster(store)
    assert done.root_ca is not None and done.root_ca.root_rotation is None
    assert old.root_ca is not None and done.root_ca.ca_cert != old.root_ca.ca_cert
    assert not done.root_rotation_in_progress and done.tls_info.trust_root == done.root_ca.ca_cert
    assert digest_matches(done.join_tokens.worker, done.root_ca.ca_cert)
    assert done.join_tokens.worker != old.join_tokens.worker
    assert done.join_tokens.manager != old.join_tokens.manager
    assert done.root_ca.raft_ca_cert == old.root_ca.raft_ca_cert  # the raft CA stays
    before = store.revision
    await reconciler.reconcile()
    assert store.revision == before  # a rerun writes nothing


async def test_a_node_asked_already_or_converged_is_not_asked_again(store: Store, swarm: NewSwarm) -> None:
    await _add_nodes(store, 2, info=None)
    await _start_rotation(store, swarm)
    await _renewed(store, ["node000"])  # renewed on its own (its renewal point came)
    clock = Clock()
    reconciler = RootRotationReconciler(store, clock=clock)
    await reconciler.reconcile()
    assert _asked(store) == {"node001", swarm.node_id}
    revision = store.revision
    clock.now += 10
    await reconciler.reconcile()
    assert store.revision == revision  # both still asked: nothing to write


async def test_a_node_that_never_renews_holds_the_rotation(store: Store, swarm: NewSwarm) -> None:
    await _add_nodes(store, 2, info=None)
    await _start_rotation(store, swarm)
    await _renewed(store, ["node000", swarm.node_id])
    await RootRotationReconciler(store).reconcile()
    assert _cluster(store).root_rotation_in_progress  # node001 (down, say) has not renewed


async def test_a_new_rotation_restarts_the_work(store: Store, swarm: NewSwarm) -> None:
    await _add_nodes(store, 1, info=None)
    await _start_rotation(store, swarm, force=1)
    await _renewed(store, ["node000", swarm.node_id])
    await _start_rotation(store, swarm, force=2)  # another root before this one completed
    reconciler = RootRotationReconciler(store)
    await reconciler.reconcile()
    assert _cluster(store).root_rotation_in_progress  # the nodes' issuer is the previous target
    assert _asked(store) == {"node000", swarm.node_id}


async def test_the_part_runs_a_rotation_to_its_end(store: Store, swarm: NewSwarm, parts: Parts) -> None:
    """The loop: nodes that renew as soon as they are asked (what the daemon does)."""
    await _add_nodes(store, 40, info=None)
    parts.start(RootRotationReconciler(store, interval=0.05))

    async def renew_when_asked() -> bool:
        asked = sorted(_asked(store))
        if asked:
            await _renewed(store, asked)
        return not _cluster(store).root_rotation_in_progress and _cluster(store).root_ca is not None

    await _start_rotation(store, swarm)
    assert _cluster(store).root_rotation_in_progress
    await wait_for_async("the rotation completed", renew_when_asked, timeout=10)
    cluster = _cluster(store)
    assert cluster.root_ca is not None and cluster.root_ca.root_rotation is None
    assert all(n.description.tls_info is not None
               and n.description.tls_info.cert_issuer_public_key == cluster.tls_info.cert_issuer_public_key
               for n in store.view().all(Node))
