"""A root rotation as a node sees it, over the real swarm port (CAServer, Dispatcher and the
reconciler over mutual TLS): both roots in SessionInfo, the request to renew, a certificate from
the new key that the old root verifies, the node's TLS report, and at the end the new root
alone. Also what swarm update stores of a CAConfig, and what it shows."""

from __future__ import annotations

from cryptography import x509
from parts import Parts
from swarmport import Session, SwarmPort, swarm_port

from shoal.api.render import swarm_json
from shoal.dev.wait import wait_for_async
from shoal.manager.ca import RootCA
from shoal.manager.ca.reconciler import RootRotationReconciler
from shoal.manager.ca.rotation import desired_issuer
from shoal.manager.controlapi.cluster import update_cluster
from shoal.manager.deks import ClusterKeys
from shoal.model.dispatch import SessionInfo, TLSReport
from shoal.model.objects import Cluster, Node, TLSInfo
from shoal.model.specs import ClusterSpec
from shoal.pki import NodeIdentity, generate_key_and_csr
from shoal.store.store import Store, Tx, copy


def _cluster(store: Store) -> Cluster:
    cluster = store.view().cluster()
    assert cluster is not None and cluster.root_ca is not None
    return cluster


def _infos(session: Session) -> list[SessionInfo]:
    return [m for m in session.got if isinstance(m, SessionInfo)]


async def _update(port: SwarmPort, **ca_config: object) -> None:
    cluster = _cluster(port.store)
    spec = ClusterSpec(ca_config=copy(cluster.spec.ca_config))
    for name, value in ca_config.items():
        setattr(spec.ca_config, name, value)
    await update_cluster(port.store, cluster.version.index, spec, rotate_worker=False,
                         rotate_manager=False, keys=ClusterKeys(port.swarm.dek))


async def _node_tls(store: Store, node_id: str) -> TLSInfo | None:
    node = store.view().get(Node, node_id)
    assert node is not None
    return node.description.tls_info


async def test_a_node_through_a_root_rotation(store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        ident = await port.add_node()
        session = await port.session(ident)
        old_root = _cluster(store).tls_info.trust_root
        assert _infos(session)[0].root_ca == old_root and not _infos(session)[0].rotate_certificate
        await session.send(TLSReport(tls_info=ident.tls_info()))
        await wait_for_async("the node's TLS info stored",
                             lambda: _node_tls(store, ident.node_id), timeout=5)
        parts.start(RootRotationReconciler(store, interval=0.05))

        await _update(port, force_rotate=1)
        rotation = _cluster(store).root_ca.root_rotation  # type: ignore[union-attr]
        assert rotation is not None
        both = old_root + rotation.ca_cert
        await wait_for_async("both roots, then the request to renew", lambda: any(
            i.root_ca == both and i.rotate_certificate for i in _infos(session)), timeout=5)

        key, csr = generate_key_and_csr()
        status, reply = await port.post("/ca/renew", ident, {"CSR": csr})
        assert status == 200 and reply["RootCA"] == both
        renewed = NodeIdentity(cert_pem=reply["Certificate"], key_pem=key, ca_pem=reply["RootCA"])
        chain = x509.load_pem_x509_certificates(renewed.cert_pem.encode())
        assert len(chain) == 2  # the leaf, then the new root cross-signed by the old one
        NodeIdentity(cert_pem=renewed.cert_pem, key_pem=key, ca_pem=old_root)  # the old root verifies it
        node = store.view().get(Node, ident.node_id)
        assert node is not None and not node.rotate_certificate  # the request is answered

        await session.send(TLSReport(tls_info=renewed.tls_info()))
        await wait_for_async("the new issuer in the node's description", lambda: (
            (tls := store.view().get(Node, ident.node_id).description.tls_info) is not None  # type: ignore[union-attr]
            and (tls.cert_issuer_subject, tls.cert_issuer_public_key) == desired_issuer(
                _cluster(store).root_ca)), timeout=5)  # type: ignore[arg-type]
        assert _cluster(store).root_rotation_in_progress  # the first manager has not renewed

        # It has no session here: as if it renewed and reported.
        def manager_renewed(tx: Tx) -> None:
            manager = copy(tx.view.get(Node, port.swarm.node_id))
            assert manager is not None
            manager.description.tls_info = renewed.tls_info()
            tx.update(manager)
        await store.update(manager_renewed)

        await wait_for_async("the rotation complete", lambda: not _cluster(store).root_rotation_in_progress,
                             timeout=5)
        assert _cluster(store).root_ca.ca_cert == rotation.ca_cert  # type: ignore[union-attr]
        await wait_for_async("the new root alone in a SessionInfo", lambda: any(
            i.root_ca == rotation.ca_cert for i in _infos(session)), timeout=5)
        final = renewed.with_trust(rotation.ca_cert)  # the renewed certificate chains to it alone
        assert final.tls_info().trust_root == _cluster(store).tls_info.trust_root


async def test_swarm_update_never_stores_the_signing_key(store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        new = RootCA.create()
        assert new.key_pem is not None
        await _update(port, signing_ca_cert=new.cert_pem, signing_ca_key=new.key_pem)
        cluster = _cluster(store)
        assert cluster.spec.ca_config.signing_ca_key == "" and cluster.spec.ca_config.signing_ca_cert == ""
        assert cluster.root_ca is not None and cluster.root_ca.root_rotation is not None
        assert new.key_pem.splitlines()[1] not in cluster.root_ca.root_rotation.ca_key  # sealed
        shown = swarm_json(cluster)
        assert shown["Spec"]["CAConfig"]["SigningCAKey"] == "" and "RootCA" not in shown
        assert shown["RootRotationInProgress"] is True
        assert ClusterKeys(port.swarm.dek).signer(cluster).can_sign
