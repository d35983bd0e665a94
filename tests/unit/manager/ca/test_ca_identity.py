"""NodeIdentity: key and CSR, reading role and cluster back, files on disk, SSL contexts."""

from __future__ import annotations

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
from shoal.manager.ca import RootCA
from shoal.pki import NodeIdentity, bootstrap_ssl_context, generate_key_and_csr, peer_identity

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
