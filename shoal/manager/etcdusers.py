"""Who may use etcd: one etcd user per manager, so a demoted manager loses the store at once.

etcd trusts the raft CA for its TLS, and a manager's etcd certificate stays valid until it
expires (90 days). With etcd's authentication on and ``--client-cert-auth``, etcd takes the
certificate's CN (the node ID) as the user name and checks on every request, and on every new
watch, that the user exists: so deleting the user shuts that certificate out at once, on every
member. (A watch opened before stays open until its connection ends: etcd checks permissions
when a watch is created. A demoted manager's own watches are on its own member, which the role
manager removes first.)

Users: ``root`` (etcd needs it before authentication can be turned on; no password, and the raft
CA never signs CN=root) and one per manager node, each with etcd's ``root`` role (the store, the
leases, and the membership calls a joining or leaving manager makes need it). The leader keeps
them: ``/ca/raft`` grants a joining manager its user before handing it a certificate, the role
manager revokes a demoted manager's user right after removing its etcd member, and reconciles
the users with the managers the store knows (``sync``), turning authentication on the first
time (a swarm made before this, or the first leader of a new one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from shoal.errors import FailedPrecondition
from shoal.store.etcd import GrpcEtcdClient

__all__ = ["ROOT", "EtcdUsers"]

log = logging.getLogger(__name__)

ROOT = "root"  # etcd's special user and role


class EtcdUsers:
    """The managers' etcd users, through this manager's client (a leader's; every call needs
    the root role once authentication is on). Keeps what it last saw, so that a pass with
    nothing to change makes no etcd call; ``forget`` drops it (a new term reads etcd again)."""

    def __init__(self, client: GrpcEtcdClient) -> None:
        self._client = client
        self._users: set[str] | None = None  # as etcd had them after our last call
        self._enabled = False  # authentication turned on (by this manager, this term)

    def forget(self) -> None:
        self._users = None
        self._enabled = False

    async def _known(self) -> set[str]:
        if self._users is None:
            self._users = set(await self._client.user_list())
        return self._users

    async def grant(self, node_id: str) -> None:
        """Let the manager ``node_id``'s etcd certificate in (idempotent)."""
        users = await self._known()
        if node_id in users:
            return
        try:
            await self._client.user_add(node_id)
        except FailedPrecondition:
            pass  # made meanwhile (by an earlier leader): it still needs its role below
        await self._client.user_grant_role(node_id, ROOT)
        users.add(node_id)
        log.info("etcd user %s granted", node_id)

    async def revoke(self, node_id: str) -> None:
        """Shut the manager ``node_id``'s etcd certificate out (idempotent)."""
        users = await self._known()
        try:
            await self._client.user_delete(node_id)
            log.info("etcd user %s revoked: its etcd certificate is refused from now on", node_id)
        except FailedPrecondition:
            pass  # already gone
        users.discard(node_id)

    async def sync(self, managers: Iterable[str]) -> None:
        """Exactly ``managers`` (and root) are users, then authentication is on."""
        wanted = set(managers)
        users = await self._known()
        for node_id in sorted(wanted - users - {ROOT}):
            await self.grant(node_id)
        for node_id in sorted(users - wanted - {ROOT}):
            await self.revoke(node_id)
        if self._enabled:
            return
        await self.grant(ROOT)
        await self._client.auth_enable()  # a no-op when it is on already
        self._enabled = True
