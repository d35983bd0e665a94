"""End to end over TLS on 127.0.0.1: a tiny CA server, join(), renew(), mutual TLS."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from shoal.errors import InvalidArgument, PermissionDenied, ShoalError, Unavailable
from shoal.manager.ca import RootCA
from shoal.model.ids import new_id
from shoal.node import join, renew
from shoal.pki import NodeIdentity, Role, generate_token, match_token, peer_identity
from shoal.pki._tls import ca_verifying_ssl_context

CLUSTER_ID = "cluster0000000000000000001"  # as conftest.py
MakeIdentity = Callable[..., NodeIdentity]


@dataclass
class CAServer:
    """The server side of the join protocol, as a manager would run it."""

    root: RootCA
    worker_token: str
    manager_token: str
    join_calls: list[dict[str, str]] = field(default_factory=list)
    roles: dict[str, Role] = field(default_factory=dict)  # desired role per node (promotion)
    addr: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ca", self.get_ca)
        app.router.add_post("/ca/join", self.post_join)
        app.router.add_post("/ca/renew", self.post_renew)
        app.router.add_get("/whoami", self.whoami)
        return app

    async def get_ca(self, request: web.Request) -> web.Response:
        return web.Response(text=self.root.cert_pem, content_type="text/plain")

    async def post_join(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.join_calls.append(body)
        role = match_token(body["Token"], self.worker_token, self.manager_token)
        if role is None:
            message = "A valid join token is necessary to join this cluster"
            return web.json_response({"message": message}, status=403)
        node_id = new_id()
        try:
            cert = self.root.sign(body["CSR"], node_id=node_id, role=role, cluster_id=CLUSTER_ID)
        except ShoalError as exc:
            return web.json_response({"message": exc.message}, status=exc.status)
        self.roles[node_id] = role
        return web.json_response(
            {"NodeID": node_id, "Certificate": cert, "RootCA": self.root.cert_pem}
        )

    async def post_renew(self, request: web.Request) -> web.Response:
        peer = peer_identity(request.transport.get_extra_info("ssl_object"))  # type: ignore[union-attr]
        if peer is None or peer.cluster_id != CLUSTER_ID:
            return web.json_response({"message": "client certificate required"}, status=403)
        body = await request.json()
        role = self.roles.get(peer.node_id, peer.role)
        cert = self.root.sign(body["CSR"], node_id=peer.node_id, role=role, cluster_id=CLUSTER_ID)
        return web.json_response({"Certificate": cert})

    async def whoami(self, request: web.Request) -> web.Response:
        peer = peer_identity(request.transport.get_extra_info("ssl_object"))  # type: ignore[union-attr]
        if peer is None:
            return web.json_response({"message": "client certificate required"}, status=403)
        return web.json_response(
            {"NodeID": peer.node_id, "Role": peer.role, "Cluster": peer.cluster_id}
        )


@contextlib.asynccontextmanager
async def _serve(app: web.Application, identity: NodeIdentity) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=identity.server_ssl_context())
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def server(root: RootCA, make_identity: MakeIdentity) -> AsyncIterator[CAServer]:
    srv = CAServer(root, generate_token(root.digest), generate_token(root.digest))
    manager = make_identity("manager", san_ips=["127.0.0.1"])
    async with _serve(srv.app(), manager) as addr:
        srv.addr = addr
        yield srv


async def _whoami(
    addr: str, identity: NodeIdentity | None, ca_pem: str
) -> tuple[int, dict[str, str]]:
    ctx = identity.client_ssl_context() if identity else ca_verifying_ssl_context(ca_pem)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"https://{addr}/whoami", ssl=ctx, server_hostname="swarm-manager") as resp,
    ):
        return resp.status, json.loads(await resp.text())


async def test_worker_joins_and_is_recognised_over_mtls(server: CAServer) -> None:
    ident = await join([server.addr], server.worker_token, hostname="w1", availability="drain")
    assert ident.role == "worker" and ident.cluster_id == CLUSTER_ID
    assert len(ident.node_id) == 25 and ident.node_id in server.roles
    assert ident.ca_pem == server.root.cert_pem
    assert server.join_calls[0]["Hostname"] == "w1"
    assert server.join_calls[0]["Availability"] == "drain"
    status, who = await _whoami(server.addr, ident, server.root.cert_pem)
    assert status == 200
    assert who == {"NodeID": ident.node_id, "Role": "worker", "Cluster": CLUSTER_ID}


async def test_manager_token_gives_manager_cert(server: CAServer) -> None:
    ident = await join([server.addr], server.manager_token, hostname="m2")
    assert ident.role == "manager"
    sans = ident.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "swarm-manager" in sans.value.get_values_for_type(x509.DNSName)
    status, who = await _whoami(server.addr, ident, server.root.cert_pem)
    assert (status, who["Role"]) == (200, "manager")


async def test_request_without_client_cert_has_no_identity(server: CAServer) -> None:
    status, body = await _whoami(server.addr, None, server.root.cert_pem)
    assert status == 403 and body["message"] == "client certificate required"


async def test_wrong_secret_is_refused(server: CAServer) -> None:
    wrong = generate_token(server.root.digest)  # right CA, unknown secret
    with pytest.raises(PermissionDenied, match="valid join token is necessary"):
        await join([server.addr], wrong, hostname="x")
    assert len(server.join_calls) == 1


async def test_other_ca_fingerprint_fails_before_any_csr(server: CAServer) -> None:
    token = generate_token(RootCA.create().digest)
    with pytest.raises(PermissionDenied, match="remote CA does not match fingerprint"):
        await join([server.addr], token, hostname="x")
    assert server.join_calls == []


async def test_malformed_token_fails_before_network(server: CAServer) -> None:
    with pytest.raises(InvalidArgument, match="invalid join token"):
        await join([server.addr], "SWMTKN-1-nope", hostname="x")
    with pytest.raises(InvalidArgument, match="availability"):
        await join([server.addr], server.worker_token, hostname="x", availability="busy")


async def test_unreachable_manager_is_skipped(server: CAServer, unused_tcp_port: int) -> None:
    dead = f"127.0.0.1:{unused_tcp_port}"
    ident = await join([dead, server.addr], server.worker_token, hostname="w", timeout=5)
    assert ident.role == "worker"
    with pytest.raises(Unavailable, match=dead):
        await join([dead], server.worker_token, hostname="w", timeout=5)


async def test_renew_keeps_node_id_and_follows_promotion(server: CAServer) -> None:
    ident = await join([server.addr], server.worker_token, hostname="w")
    same = await renew(server.addr, ident)
    assert (same.node_id, same.role) == (ident.node_id, "worker")
    assert same.key_pem != ident.key_pem
    server.roles[ident.node_id] = "manager"  # promotion: the CA now issues a manager cert
    promoted = await renew(server.addr, same)
    assert (promoted.node_id, promoted.role) == (ident.node_id, "manager")


async def test_worker_cert_cannot_serve_as_manager(
    server: CAServer, make_identity: MakeIdentity
) -> None:
    """Clients verify the name swarm-manager, which only manager certificates carry."""
    worker = make_identity("worker", san_ips=["127.0.0.1"])
    srv = CAServer(server.root, server.worker_token, server.manager_token)
    async with _serve(srv.app(), worker) as addr:
        with pytest.raises(Unavailable, match=addr):
            await join([addr], server.worker_token, hostname="x", timeout=5)
        assert srv.join_calls == []
