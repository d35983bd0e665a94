"""A swarm whose root key an external CA holds: swarm init gets the first manager's
certificate from it, the CA server's joins go through it (with the manager's certificate), and
a join it does not sign fails with its reason and writes nothing."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fake_cfssl import refusal, serve_cfssl, server_identity

from shoal.errors import InvalidArgument, Unavailable
from shoal.manager.bootstrap import NewSwarm, new_swarm
from shoal.manager.ca import RootCA
from shoal.manager.ca.server import CAServer
from shoal.manager.deks import ClusterKeys
from shoal.model.objects import Node
from shoal.model.requests import InitRequest
from shoal.model.specs import CAConfig, ClusterSpec, ExternalCA
from shoal.pki import generate_key_and_csr
from shoal.store.store import Store


def _init(root_pem: str, *, key: str = "", urls: tuple[str, ...] = ()) -> InitRequest:
    cas = [ExternalCA(protocol="cfssl", url=u) for u in urls]
    return InitRequest(spec=ClusterSpec(ca_config=CAConfig(
        signing_ca_cert=root_pem, signing_ca_key=key, external_cas=cas)))


async def _new(req: InitRequest, wait: float = 0) -> NewSwarm:
    return await new_swarm(req, hostname="h1", advertise_ip="127.0.0.1",
                           manager_addr="127.0.0.1:2377", sign_wait=wait)


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{sock.getsockname()[1]}/api/v1/cfssl/sign"


async def test_init_join_and_a_signer_down_or_refusing(store: Store) -> None:
    root = RootCA.create()  # the external CA's: its key stays with the signer
    async with serve_cfssl(root, tls=server_identity(root)) as cfssl:
        swarm = await new_swarm(_init(root.cert_pem, urls=(cfssl.url,)), hostname="h1",
                                advertise_ip="127.0.0.1", manager_addr="127.0.0.1:2377")
        assert swarm.cluster.root_ca is not None and swarm.cluster.root_ca.ca_key == ""
        assert swarm.cluster.root_ca.ca_cert == root.cert_pem and swarm.identity.ca_pem == root.cert_pem
        assert swarm.cluster.spec.ca_config.signing_ca_cert == ""  # kept in the RootCA state only
        assert cfssl.clients == [None]  # the first manager had no certificate to show yet
        await store.update(swarm.write)

        ca = CAServer(store, ClusterKeys(swarm.dek), identity=lambda: swarm.identity, sign_wait=0)
        app = web.Application()
        ca.add_routes(app)
        async with TestClient(TestServer(app)) as client:
            body = {"Token": swarm.cluster.join_tokens.worker, "Hostname": "w1"}
            resp = await client.post("/ca/join", json={**body, "CSR": generate_key_and_csr()[1]})
            assert resp.status == 200
            joined = await resp.json()
            cert = x509.load_pem_x509_certificate(joined["Certificate"].encode())
            assert cert.issuer == root.certificate.subject
            # the node's certificate expiry, for the web view: as signed, here and at init
            node = store.view().get(Node, joined["NodeID"])
            assert node is not None
            assert node.cert_expiry == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            first = store.view().get(Node, swarm.node_id)
            assert first is not None and first.cert_expiry == swarm.identity.certificate \
                .not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert cfssl.clients[-1] == swarm.identity.peer  # mutual TLS with the manager's cert

            cfssl.replies.append(refusal("policy says no"))
            resp = await client.post("/ca/join", json={**body, "CSR": generate_key_and_csr()[1]})
            assert resp.status == 400
            assert "the swarm's external CA refused" in (await resp.json())["message"]
    async with TestClient(TestServer(app)) as client:  # the signer is gone
        resp = await client.post("/ca/join", json={**body, "CSR": generate_key_and_csr()[1]})
        message = (await resp.json())["message"]
        assert resp.status == 503 and "the swarm's external CA could not sign" in message
        assert cfssl.url in message
    assert len(store.view().all(Node)) == 2  # the manager and the one join that was signed


async def test_init_with_the_operators_root_and_key_signs_locally() -> None:
    root = RootCA.create()
    assert root.key_pem is not None
    swarm = await _new(_init(root.cert_pem, key=root.key_pem, urls=()))
    assert swarm.cluster.root_ca is not None and swarm.cluster.root_ca.ca_key
    assert swarm.identity.ca_pem == root.cert_pem


async def test_init_fails_when_the_external_ca_does_not_sign() -> None:
    root = RootCA.create()
    with pytest.raises(Unavailable, match="the swarm's external CA could not sign"):
        await _new(_init(root.cert_pem, urls=(_dead_url(),)))


def _intermediate() -> str:
    """A CA certificate that is not self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "intermediate")]))
            .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "elsewhere")]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(issuer, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(("make", "message"), [
    (lambda r: _init(r.cert_pem), "external CA corresponding to the desired CA certificate"),
    (lambda r: _init(r.cert_pem, urls=("https://ca.example/sign",),
                     key=RootCA.create().key_pem or ""), "does not match the root CA certificate"),
    (lambda r: _init("", key=r.key_pem or ""), "the signing CA cert must also be provided"),
    (lambda r: _init(r.cert_pem + r.cert_pem, urls=("https://ca.example/sign",)),
     "cannot contain multiple certificates"),
    (lambda r: _init(_intermediate(), urls=("https://ca.example/sign",)), "not self-signed"),
    (lambda r: _init(RootCA.create(timedelta(days=100)).cert_pem, urls=("https://ca.example/sign",)),
     "CA certificate expires too soon"),
    (lambda r: InitRequest(spec=ClusterSpec(ca_config=CAConfig(
        external_cas=[ExternalCA(protocol="acme", url="https://ca.example/sign")]))),
     'invalid protocol: "acme"'),
    (lambda r: InitRequest(spec=ClusterSpec(ca_config=CAConfig(
        external_cas=[ExternalCA(protocol="cfssl", url="http://ca.example/sign")]))),
     "invalid HTTP scheme"),
])
async def test_init_refuses_what_docker_refuses(
        make: Callable[[RootCA], InitRequest], message: str) -> None:
    root = RootCA.create()
    with pytest.raises(InvalidArgument, match=message):
        await _new(make(root))
