"""Who may call the swarm port's mutual-TLS endpoints (swarmkit ca/auth.go, manager.go
``authorize``): the dispatcher's session, ``/ca/renew``, ``/ca/raft`` and ``/logs``.

The caller is the node its verified certificate names (CN = node ID, OU = role, O = cluster
ID), never what a request body says. Every manager checks, on every session open, session
message and request: the certificate is of this swarm and of an allowed role, its node was not
removed (``Cluster.blacklisted_certificates``, kept by ``node rm``), and its node is in the
store. A refusal is ``PermissionDenied`` with a sentence that says which check failed.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from aiohttp import web

from shoal.errors import PermissionDenied
from shoal.manager.ca.rootca import NODE_CERT_EXPIRY
from shoal.model.objects import BlacklistedCertificate, Cluster, Node
from shoal.model.states import NodeRole
from shoal.pki.subjects import PeerIdentity, Role, peer_identity
from shoal.store.tables import Tables

__all__ = ["ANY_ROLE", "MANAGER_ONLY", "authorize", "blacklist", "request_peer", "was_removed"]

ANY_ROLE: tuple[Role, ...] = ("manager", "worker")
MANAGER_ONLY: tuple[Role, ...] = ("manager",)


def request_peer(request: web.Request) -> PeerIdentity | None:
    """The verified identity of the request's TLS peer, or None without a verified cert."""
    transport = request.transport
    return peer_identity(transport.get_extra_info("ssl_object") if transport is not None else None)


def was_removed(cluster: Cluster | None, node_id: str) -> bool:
    return cluster is not None and node_id in (cluster.blacklisted_certificates or {})


def authorize(view: Tables, peer: PeerIdentity | None, *, cluster_id: str,
              roles: Collection[Role] = ANY_ROLE) -> Node:
    """The caller's Node, or PermissionDenied."""
    if peer is None or peer.cluster_id != cluster_id:
        raise PermissionDenied("permission denied: a node certificate of this swarm is required")
    if peer.role not in roles:
        raise PermissionDenied("permission denied: this call needs a swarm-manager certificate")
    if was_removed(view.cluster(), peer.node_id):
        raise PermissionDenied(f"Permission denied: node {peer.node_id} was removed from swarm")
    node = view.get(Node, peer.node_id)
    if node is None:
        raise PermissionDenied(f"permission denied: node {peer.node_id} is not part of this swarm")
    if NodeRole.MANAGER in roles and NodeRole.WORKER not in roles \
            and node.actual_role() != NodeRole.MANAGER:
        raise PermissionDenied(f"permission denied: node {peer.node_id} is not a manager of this "
                               "swarm")
    return node


def blacklist(cluster: Cluster, node_id: str, *, now: datetime | None = None) -> None:
    """Remember ``node_id`` as removed in ``cluster`` (a copy the caller writes), and forget the
    entries whose certificates have all expired.

    The entry lasts as long as a certificate issued now would: the CA signs a node's
    certificates only while the node is in the store, so none of them outlives that. (A cluster
    whose expiry was shortened since keeps an older, longer one valid a while after the entry
    goes; the node is still not in the store, and the check on that refuses it.)
    """
    moment = now or datetime.now(UTC)
    expiry_ns = cluster.spec.ca_config.node_cert_expiry
    expiry = timedelta(microseconds=expiry_ns // 1000) if expiry_ns else NODE_CERT_EXPIRY
    kept = {nid: entry for nid, entry in (cluster.blacklisted_certificates or {}).items()
            if not entry.expiry or entry.expiry > moment.timestamp()}
    kept[node_id] = BlacklistedCertificate(expiry=int((moment + expiry).timestamp()) + 1)
    cluster.blacklisted_certificates = kept
