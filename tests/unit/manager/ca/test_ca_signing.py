"""Which signer signs (the external CAs for the root, else the root key) and what is accepted
back from an external CA."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest
from cryptography import x509
from fake_cfssl import refusal, serve_cfssl, server_identity

from shoal.errors import FailedPrecondition, InvalidArgument, Unavailable
from shoal.manager.ca import RootCA
from shoal.manager.ca.signing import NodeSigner, matching_external_cas
from shoal.model.specs import ExternalCA
from shoal.pki import NodeIdentity, generate_key_and_csr

CLUSTER_ID = "cluster0000000000000000001"  # as conftest.py
MakeIdentity = Callable[..., NodeIdentity]


def _keyless(root: RootCA) -> RootCA:
    return RootCA.from_pem(root.cert_pem)


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{sock.getsockname()[1]}/api/v1/cfssl/sign"


def test_external_cas_are_used_for_their_root_only(root: RootCA) -> None:
    other = RootCA.create()
    cas = [ExternalCA(protocol="cfssl", url="https://a/sign"),  # no CACert: the current root
           ExternalCA(protocol="cfssl", url="https://b/sign", ca_cert=other.cert_pem),
           ExternalCA(protocol="acme", url="https://c/sign"),
           ExternalCA(protocol="CFSSL", url="https://d/sign", ca_cert=root.cert_pem + "\n")]
    assert [ca.url for ca in matching_external_cas(root, cas)] == ["https://a/sign", "https://d/sign"]
    assert [ca.url for ca in matching_external_cas(other, cas)] == ["https://a/sign", "https://b/sign"]
    assert matching_external_cas(root, None) == []


async def test_without_external_ca_the_root_key_signs_or_nothing_does(root: RootCA) -> None:
    _, csr = generate_key_and_csr()
    cert = await NodeSigner(root, [], cluster_id=CLUSTER_ID, identity=None).sign(
        csr, node_id="n1", role="worker")
    assert x509.load_pem_x509_certificate(cert.encode()).issuer == root.certificate.subject
    signer = NodeSigner(_keyless(root), [ExternalCA(protocol="cfssl", url="https://x/sign",
                                                    ca_cert=RootCA.create().cert_pem)],
                        cluster_id=CLUSTER_ID, identity=None)
    with pytest.raises(Unavailable, match="no valid signer found"):
        await signer.sign(csr, node_id="n1", role="worker")


async def test_an_external_ca_signs_even_when_the_key_is_here(
        root: RootCA, make_identity: MakeIdentity) -> None:
    """swarmkit: a matching external CA comes first; the local key only when there is none."""
    manager = make_identity("manager")
    _, csr = generate_key_and_csr()
    async with serve_cfssl(root, tls=server_identity(root), require_client_cert=True) as cfssl:
        signer = NodeSigner(root, [ExternalCA(protocol="cfssl", url=_dead_url()),
                                   ExternalCA(protocol="cfssl", url=cfssl.url)],
                            cluster_id=CLUSTER_ID, identity=manager)
        cert = await signer.sign(csr, node_id="n1", role="manager", san_ips=["127.0.0.1"], wait=0)
    leaf = x509.load_pem_x509_certificate(cert.encode())
    assert leaf.issuer == root.certificate.subject
    assert cfssl.clients == [manager.peer]  # the dead URL first, then this one, once
    assert cfssl.requests[0]["hosts"] == ["swarm-manager", "n1", "swarm-ca", "127.0.0.1"]


async def test_a_down_signer_is_retried_within_the_wait(root: RootCA) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    _, csr = generate_key_and_csr()
    async with serve_cfssl(root, tls=server_identity(root)) as cfssl:
        cfssl.replies += [(503, b"busy"), (503, b"busy")]
        signer = NodeSigner(_keyless(root), [ExternalCA(protocol="cfssl", url=cfssl.url)],
                            cluster_id=CLUSTER_ID, identity=None)
        cert = await signer.sign(csr, node_id="n1", role="worker", wait=30, sleep=sleep)
    assert "BEGIN CERTIFICATE" in cert and len(cfssl.requests) == 3 and len(slept) == 2
    down = NodeSigner(_keyless(root), [ExternalCA(protocol="cfssl", url=_dead_url())],
                      cluster_id=CLUSTER_ID, identity=None)
    with pytest.raises(Unavailable, match=r"the swarm's external CA could not sign the certificate "
                                          r"of node n1 \(tried for 0s\): https://127.0.0.1:"):
        await down.sign(csr, node_id="n1", role="worker", wait=0)


@pytest.mark.parametrize(("case", "message"), [
    ("refused", r"refused the certificate of node n1: https://.*response errors: \[5300 no\]"),
    ("other root", "is not signed by the swarm's root CA"),
    ("other key", "is not for the key of the node's CSR"),
    ("other subject", r"does not have the subject asked for \(CN=n1, OU=swarm-worker"),
])
async def test_what_the_external_ca_returns_is_checked(root: RootCA, case: str, message: str) -> None:
    _, csr = generate_key_and_csr()
    signer_key = RootCA.create() if case == "other root" else root
    async with serve_cfssl(signer_key, tls=server_identity(root)) as cfssl:
        if case == "refused":
            cfssl.replies.append(refusal("no"))
        elif case in ("other key", "other subject"):
            other_csr = generate_key_and_csr()[1] if case == "other key" else csr
            node = "n1" if case == "other key" else "n2"
            cert = root.sign(other_csr, node_id=node, role="worker", cluster_id=CLUSTER_ID)
            reply = {"success": True, "result": {"certificate": cert}}
            cfssl.replies.append((200, json.dumps(reply).encode()))
        signer = NodeSigner(_keyless(root), [ExternalCA(protocol="cfssl", url=cfssl.url)],
                            cluster_id=CLUSTER_ID, identity=None)
        with pytest.raises(FailedPrecondition, match=message):
            await signer.sign(csr, node_id="n1", role="worker", wait=30)
    assert len(cfssl.requests) == 1  # a refusal is not retried


async def test_a_bad_csr_is_refused_before_anything_is_sent(root: RootCA) -> None:
    signer = NodeSigner(_keyless(root), [ExternalCA(protocol="cfssl", url=_dead_url())],
                        cluster_id=CLUSTER_ID, identity=None)
    with pytest.raises(InvalidArgument, match="invalid CSR"):
        await signer.sign("not a csr", node_id="n1", role="worker")
