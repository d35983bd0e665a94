"""NodeIdentity: key and CSR, reading role and cluster back, files on disk, SSL contexts."""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from shoal.errors import InvalidArgument
from shoal.fsutil import temp_path
from shoal.manager.ca import RootCA
from shoal.manager.ca.etcdtls import RAFT_CA_CN, EtcdTLS, issue_etcd_tls
from shoal.pki import (
    NodeIdentity,
    ServingContext,
    bootstrap_ssl_context,
    generate_key_and_csr,
    peer_identity,
)

CLUSTER_ID = "cluster0000000000000000001"  # as conftest.py
MakeIdentity = Callable[..., NodeIdentity]


def test_key_and_csr() -> None:
    key_pem, csr_pem = generate_key_and_csr()
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    public = csr.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"


def test_identity_reads_back_role_and_cluster(make_identity: MakeIdentity) -> None:
    worker = make_identity("worker", node_id="w1")
    manager = make_identity("manager", node_id="m1")
    assert (worker.node_id, worker.role, worker.cluster_id) == ("w1", "worker", CLUSTER_ID)
    assert (manager.node_id, manager.role, manager.cluster_id) == ("m1", "manager", CLUSTER_ID)
    assert worker.peer.role != manager.peer.role
    soon = datetime.now(UTC) + timedelta(days=90)
    assert abs(worker.not_after - soon) < timedelta(minutes=1)
    assert "PRIVATE" not in repr(worker)


def test_identity_rejects_mismatches(root: RootCA, make_identity: MakeIdentity) -> None:
    good = make_identity()
    other_key, _ = generate_key_and_csr()
    with pytest.raises(InvalidArgument, match="does not match"):
        NodeIdentity(cert_pem=good.cert_pem, key_pem=other_key, ca_pem=good.ca_pem)
    with pytest.raises(InvalidArgument, match="not signed by the root CA"):
        NodeIdentity(cert_pem=good.cert_pem, key_pem=good.key_pem, ca_pem=RootCA.create().cert_pem)
    with pytest.raises(InvalidArgument):
        NodeIdentity(cert_pem="junk", key_pem=good.key_pem, ca_pem=good.ca_pem)


def test_save_load_round_trip(tmp_path: Path, make_identity: MakeIdentity) -> None:
    ident = make_identity("manager")
    state = tmp_path / "swarm" / "certificates"
    ident.save(state)
    assert sorted(os.listdir(state)) == ["swarm-node.crt", "swarm-node.key", "swarm-root-ca.crt"]
    assert stat.S_IMODE((state / "swarm-node.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "swarm-node.crt").stat().st_mode) == 0o644
    loaded = NodeIdentity.load(state)
    assert loaded == ident
    assert loaded is not None and loaded.role == "manager" and loaded.node_id == ident.node_id
    # Saving again replaces the files in place and leaves no temp files behind.
    renewed = make_identity("worker", node_id=ident.node_id)
    renewed.save(state)
    assert len(os.listdir(state)) == 3
    assert NodeIdentity.load(state) == renewed


def test_load_missing_and_corrupt(tmp_path: Path, make_identity: MakeIdentity) -> None:
    assert NodeIdentity.load(tmp_path / "nothing") is None
    make_identity().save(tmp_path)
    (tmp_path / "swarm-node.key").write_text(generate_key_and_csr()[0])
    with pytest.raises(InvalidArgument, match="invalid node identity in"):
        NodeIdentity.load(tmp_path)
    (tmp_path / "swarm-node.crt").unlink()
    assert NodeIdentity.load(tmp_path) is None


def test_a_save_cut_short_between_key_and_certificate_is_finished_at_load(
        tmp_path: Path, make_identity: MakeIdentity) -> None:
    old = make_identity("worker")
    old.save(tmp_path)
    new = make_identity("manager", node_id=old.node_id)
    # A crash after the key's rename, before the certificate's: the new certificate is left
    # in its temporary file beside the old one.
    (tmp_path / "swarm-node.key").write_text(new.key_pem)
    temp_path(tmp_path / "swarm-node.crt").write_text(new.cert_pem)
    assert NodeIdentity.load(tmp_path) == new
    assert sorted(os.listdir(tmp_path)) == ["swarm-node.crt", "swarm-node.key", "swarm-root-ca.crt"]
    # A stale temporary file that fits nothing is left alone (and the pair still loads).
    temp_path(tmp_path / "swarm-node.crt").write_text(old.cert_pem)
    assert NodeIdentity.load(tmp_path) == new


async def test_a_listener_context_takes_a_renewed_certificate(make_identity: MakeIdentity) -> None:
    first = make_identity("manager", san_ips=["127.0.0.1"])
    renewed = make_identity("manager", node_id=first.node_id, san_ips=["127.0.0.1"])
    ctx = first.server_ssl_context()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # held open until the client goes
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]

    async def served_serial() -> tuple[int, asyncio.StreamWriter]:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=first.client_ssl_context(),
                                                  server_hostname="swarm-manager")
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number, writer

    try:
        before, open_writer = await served_serial()
        renewed.load_into(ctx)
        after, writer = await served_serial()
        assert before == first.certificate.serial_number
        assert after == renewed.certificate.serial_number
        assert open_writer.get_extra_info("ssl_object").getpeercert(binary_form=True)  # still up
        for w in (open_writer, writer):
            w.close()
            await w.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_listener_switched_to_new_roots_refuses_the_old_ones(
        root: RootCA, make_identity: MakeIdentity) -> None:
    """After a root rotation the swarm port must not take a certificate from the old root."""
    new_root = RootCA.create()
    server = make_identity("manager", ca=new_root, san_ips=["127.0.0.1"])
    old_client = make_identity("worker")  # from the old root, trusting both roots
    old_client = old_client.with_trust(root.cert_pem + new_root.cert_pem)
    new_client = make_identity("worker", ca=new_root)
    serving = ServingContext(server.with_trust(root.cert_pem + new_root.cert_pem).server_ssl_context())
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_identity(writer.get_extra_info("ssl_object"))
        seen.append(peer.node_id if peer else "")
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=serving.listener)
    port = listener.sockets[0].getsockname()[1]

    async def call(client: NodeIdentity) -> bool:
        """Whether the server took the client's certificate."""
        before = len(seen)
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client.client_ssl_context(), server_hostname="swarm-manager")
            await reader.read()  # TLS 1.3: a refused client certificate shows after the handshake
            writer.close()
            await writer.wait_closed()
        except (ssl.SSLError, ConnectionError):
            return False
        return len(seen) > before and seen[-1] == client.node_id

    try:
        assert await call(old_client) and await call(new_client)
        serving.use(server.with_trust(new_root.cert_pem).server_ssl_context())
        assert not await call(old_client)
        assert await call(new_client)
    finally:
        listener.close()
        await listener.wait_closed()


def test_ssl_contexts(make_identity: MakeIdentity) -> None:
    ident = make_identity("manager")
    server = ident.server_ssl_context()
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server.verify_mode == ssl.CERT_OPTIONAL
    client = ident.client_ssl_context()
    assert client.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client.verify_mode == ssl.CERT_REQUIRED and client.check_hostname
    boot = bootstrap_ssl_context()
    assert boot.verify_mode == ssl.CERT_NONE and not boot.check_hostname


def test_peer_identity_from_getpeercert_dict() -> None:
    cert = {
        "subject": (
            (("commonName", "n1"),),
            (("organizationalUnitName", "swarm-worker"),),
            (("organizationName", "c1"),),
        )
    }
    peer = peer_identity(cert)
    assert peer is not None and (peer.node_id, peer.role, peer.cluster_id) == ("n1", "worker", "c1")
    assert peer_identity(None) is None
    assert peer_identity({}) is None  # what getpeercert() gives for an unverified certificate
    wrong_ou = {"subject": ((("commonName", "n1"),), (("organizationalUnitName", "x"),))}
    assert peer_identity(wrong_ou) is None


def test_etcd_certificate_files_are_replaced_together(tmp_path: Path) -> None:
    raft = RootCA.create(common_name=RAFT_CA_CN)
    old = issue_etcd_tls(raft, node_id="m1", cluster_id=CLUSTER_ID, ips=["10.0.0.1"])
    old.save(tmp_path)
    assert EtcdTLS.load(tmp_path) == old
    new = issue_etcd_tls(raft, node_id="m1", cluster_id=CLUSTER_ID, ips=["10.0.0.1"])
    (tmp_path / "node.key").write_text(new.key_pem)  # a crash between the two renames
    temp_path(tmp_path / "node.crt").write_text(new.cert_pem)
    assert EtcdTLS.load(tmp_path) == new
    assert sorted(os.listdir(tmp_path)) == ["ca.crt", "node.crt", "node.key"]
