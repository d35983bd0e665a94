"""The CA's HTTPS endpoints on the swarm port (swarmkit ca/server.go), protocol of shoal.node.join:

    GET  /ca        the root CA certificate (no client certificate needed)
    POST /ca/join   token + CSR -> a new node ID and its certificate (token-authenticated)
    POST /ca/renew  CSR -> a certificate for the caller's node with its current role
                    (authenticated by the caller's certificate; every node's periodic renewal,
                    and at once on promote/demote)
    POST /ca/raft   CSR -> an etcd certificate from the raft CA, and the etcd client URLs of the
                    members to join through, the store DEK that opens the swarm's keys and
                    the unlock key that wraps it with autolock (manager certificates only; its etcd user is made first, so the
                    certificate gets into etcd: shoal.manager.etcdusers); a manager's join,
                    and the periodic renewal of its etcd certificate

A body is one JSON object whose fields are strings, sent within ``BODY_WAIT``; anything else is a
400 with its reason, and an AdvertiseAddr must be an IP address.

During a root rotation the certificates come from the new root's key, followed by the new root
cross-signed by the old one, and ``RootCA`` is both roots (``rotation.py``); ``GET /ca`` stays the
current root, which join tokens name, until the rotation ends.

Joining creates the Node object, so the node shows in ``node ls`` before its first session;
the certificate is signed first (``signing``: the root key, or the swarm's external CA, waited
for ``SIGN_WAIT`` at most), so a join the signer fails writes nothing. Only the leader signs: another manager answers the signing calls with a 307 redirect to the
leader (the client resends the same request there), or 503 while there is no leader. Every
manager first checks the caller of ``/ca/renew`` and ``/ca/raft`` (``auth.authorize``): a
removed node, or one not in the store, is refused (403) before any redirect, so its old
certificate can never be renewed; it may join again with a token, as a new node.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

from aiohttp import web

from shoal import aio
from shoal.errors import InvalidArgument, PermissionDenied, ShoalError
from shoal.manager.ca.auth import ANY_ROLE, MANAGER_ONLY, authorize, request_peer
from shoal.manager.ca.rootca import RootCA
from shoal.manager.ca.rotation import trust_bundle
from shoal.manager.ca.signing import SIGN_WAIT, NodeSigner
from shoal.manager.deks import ClusterKeys
from shoal.manager.etcdusers import EtcdUsers
from shoal.model.ids import new_id
from shoal.model.objects import Cluster, ManagerStatus, Node, NodeDescription, NodeStatus
from shoal.model.specs import NodeSpec
from shoal.model.states import Availability, NodeRole
from shoal.pki.identity import NodeIdentity
from shoal.pki.subjects import Role, expiry_of
from shoal.pki.tokens import match_token
from shoal.store.etcd import EtcdAPI
from shoal.store.store import NO_LEADER, Store, Tx, copy

__all__ = ["CAServer"]

log = logging.getLogger(__name__)


def _error(exc: ShoalError) -> web.Response:
    return web.json_response({"message": exc.message}, status=exc.status)


BODY_WAIT = 10.0  # seconds a caller has to send its body: a sender that never finishes is cut off


async def _body(request: web.Request, wait: float) -> dict[str, Any]:
    """The request's JSON object; anything else (not JSON, not an object, not all there within
    ``wait`` seconds) is a 400. aiohttp caps its size (1 MiB)."""
    try:
        async with aio.timeout(wait):
            body = await request.json()
    except TimeoutError:
        raise InvalidArgument(f"invalid request body: not received within {wait:g} s") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidArgument(f"invalid request body: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidArgument("invalid request body: a JSON object is required")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    """A string field of the body, "" when absent or null; another type is a 400."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid request body: {key} must be a string")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): JSON allows it, UTF-8 does not
        raise InvalidArgument(f"invalid request body: {key} is not valid UTF-8") from None
    return value


def _ip(addr: str) -> str:
    """An advertised address is an IP address (it is every manager's way to the node)."""
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError as exc:
        raise InvalidArgument(f"invalid advertise address {addr[:64]!r}: not an IP address") from exc


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...

    @property
    def leader_addr(self) -> str: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class CAServer:
    def __init__(self, store: Store, keys: ClusterKeys, *, swarm_port: int = 2377,
                 leadership: Leadership | None = None, etcd: EtcdAPI | None = None,
                 etcd_users: EtcdUsers | None = None, identity: Callable[[], NodeIdentity] | None = None,
                 sign_wait: float = SIGN_WAIT, body_wait: float = BODY_WAIT) -> None:
        self._store = store
        self._keys = keys  # opens the CA keys the cluster object holds sealed
        self._swarm_port = swarm_port
        self._leadership = leadership  # None: a lone manager that always signs (tests)
        self._etcd = etcd
        self._etcd_users = etcd_users  # None: etcd without per-manager users (tests)
        self._identity = identity  # this manager's, its client certificate at an external CA
        self._sign_wait = sign_wait
        self._body_wait = body_wait

    def _leader_only(self, handler: Handler, *, callers: tuple[Role, ...] | None = None) -> Handler:
        """``handler`` on the leader, a redirect elsewhere; with ``callers``, only for a node
        certificate of those roles whose node may call (checked here, on every manager)."""
        async def wrapped(request: web.Request) -> web.StreamResponse:
            if callers is not None:
                try:
                    authorize(self._store.view(), request_peer(request), cluster_id=self._cluster().id,
                              roles=callers)
                except PermissionDenied as exc:
                    log.warning("%s refused: %s", request.path, exc.message)
                    return _error(exc)
            lead = self._leadership
            if lead is None or lead.is_leader:
                return await handler(request)
            if not lead.leader_addr:
                return web.json_response({"message": NO_LEADER}, status=503)
            return web.Response(status=307, headers={"Location": f"https://{lead.leader_addr}{request.path}"})

        return wrapped

    def _cluster(self) -> Cluster:
        cluster = self._store.view().cluster()
        if cluster is None or cluster.root_ca is None:
            raise PermissionDenied("this manager has no swarm CA")
        return cluster

    def _signer(self) -> RootCA:
        return self._keys.signer(self._cluster())

    def _root_cert(self) -> str:
        """The current root: what a joining node checks against its token."""
        root_ca = self._cluster().root_ca
        assert root_ca is not None  # _cluster checked it
        return root_ca.ca_cert

    def _trust(self) -> str:
        """The roots a node trusts (both during a rotation): it gets them with its certificate."""
        root_ca = self._cluster().root_ca
        assert root_ca is not None  # _cluster checked it
        return trust_bundle(root_ca)

    def _expiry(self) -> timedelta:
        return timedelta(microseconds=self._cluster().spec.ca_config.node_cert_expiry // 1000)

    async def sign(self, csr: str, *, node_id: str, role: str, addr: str) -> str:
        sans = ["127.0.0.1"] + ([addr] if addr and addr != "127.0.0.1" else [])
        cluster = self._cluster()
        rotating = cluster.root_ca is not None and cluster.root_ca.root_rotation is not None
        # While rotating, the new root's key signs here: external CAs sign for the old root.
        signer = NodeSigner(self._signer(), None if rotating else cluster.spec.ca_config.external_cas,
                            cluster_id=cluster.id, identity=self._identity() if self._identity else None,
                            expiry=self._expiry())
        manager = role == NodeRole.MANAGER
        return await signer.sign(csr, node_id=node_id, role="manager" if manager else "worker",
                                 san_ips=sans if manager else [], wait=self._sign_wait)

    async def get_ca(self, request: web.Request) -> web.StreamResponse:
        try:
            return web.Response(text=self._root_cert(), content_type="text/plain")
        except ShoalError as exc:
            return _error(exc)

    async def join(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _body(request, self._body_wait)
            cluster = self._cluster()
            role = match_token(_text(body, "Token"), cluster.join_tokens.worker, cluster.join_tokens.manager)
            if role is None:
                raise PermissionDenied(
                    "rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"
                )
            availability = _text(body, "Availability") or Availability.ACTIVE
            if availability not in Availability.ALL:
                raise InvalidArgument(f"invalid availability {availability[:64]!r}")
            node_id = new_id()
            addr = _ip(_text(body, "AdvertiseAddr") or request.remote or "")
            cert = await self.sign(_text(body, "CSR"), node_id=node_id, role=role, addr=addr)
            node = Node(
                id=node_id,
                spec=NodeSpec(role=role, availability=availability, labels={}),
                description=NodeDescription(hostname=_text(body, "Hostname")),
                status=NodeStatus(state="unknown", addr=addr),
                manager_status=ManagerStatus(reachability="unknown", addr=f"{addr}:{self._swarm_port}")
                if role == NodeRole.MANAGER else None,
                cert_role=role,
                role=role,
                cert_expiry=expiry_of(cert),
            )
            await self._store.update(lambda tx: tx.create(node))
            log.info("node %s joined as %s from %s", node_id, role, addr)
            return web.json_response({"NodeID": node_id, "Certificate": cert, "RootCA": self._trust()})
        except ShoalError as exc:
            return _error(exc)

    async def renew(self, request: web.Request) -> web.StreamResponse:
        try:
            node = authorize(self._store.view(), request_peer(request), cluster_id=self._cluster().id,
                             roles=ANY_ROLE)
            body = await _body(request, self._body_wait)
            role = node.actual_role()
            cert = await self.sign(_text(body, "CSR"), node_id=node.id, role=role, addr=node.status.addr)

            expiry = expiry_of(cert)

            def fn(tx: Tx) -> None:
                current = tx.view.get(Node, node.id)
                if current is not None and (current.cert_role != role or current.rotate_certificate
                                            or current.cert_expiry != expiry):
                    updated = copy(current)
                    updated.cert_role = role
                    updated.rotate_certificate = False  # a root rotation's request is answered
                    updated.cert_expiry = expiry  # the web view's node list shows it
                    tx.update(updated)

            await self._store.update(fn, retries=5)
            log.info("node %s certificate renewed as %s", node.id, role)
            return web.json_response({"Certificate": cert, "RootCA": self._trust()})
        except ShoalError as exc:
            return _error(exc)

    async def raft(self, request: web.Request) -> web.StreamResponse:
        """Manager-only: a worker's certificate is refused with 403 before anything is signed."""
        try:
            cluster = self._cluster()
            node = authorize(self._store.view(), request_peer(request), cluster_id=cluster.id,
                             roles=MANAGER_ONLY)
            if node.spec.role == NodeRole.WORKER:
                raise PermissionDenied(f"permission denied: node {node.id} is being demoted")
            raft_ca = self._keys.raft_ca(cluster)
            body = await _body(request, self._body_wait)
            sans = sorted({"127.0.0.1", node.status.addr} - {""})
            cert = raft_ca.sign(_text(body, "CSR"), node_id=node.id, role="manager",
                                cluster_id=cluster.id, expiry=self._expiry(), san_ips=sans)
            if self._etcd_users is not None:
                await self._etcd_users.grant(node.id)
            endpoints: list[str] = []
            if self._etcd is not None:
                members = await self._etcd.member_list()
                endpoints = [url for m in members if not m.is_learner for url in m.client_urls]
            dek, unlock = self._keys.dek, self._keys.unlock_key(cluster)
            # The unlock key too (swarmkit's GetUnlockKey): a new manager of an autolocked swarm
            # writes the DEK wrapped from the start, never in clear.
            return web.json_response({"Certificate": cert, "RaftCA": raft_ca.cert_pem, "Endpoints": endpoints,
                                      "StoreDEK": dek.text if dek is not None else "",
                                      "UnlockKey": unlock.text if unlock is not None else ""})
        except ShoalError as exc:
            return _error(exc)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ca", self.get_ca)
        app.router.add_post("/ca/join", self._leader_only(self.join))
        app.router.add_post("/ca/renew", self._leader_only(self.renew, callers=ANY_ROLE))
        app.router.add_post("/ca/raft", self._leader_only(self.raft, callers=MANAGER_ONLY))
