"""The role manager (swarmkit manager/role_manager.go): a leader part that makes each node's role
follow its desired role (``Spec.Role``) through the etcd membership, and keeps every manager's
MANAGER STATUS (leader, reachability) current.

* promotion: the node's role becomes manager at once; the dispatcher tells the node, which renews
  its certificate and joins etcd as a learner, then promotes itself (shoal.manager.membership);
* demotion: its etcd member is removed first, only if the managers left still make a quorum
  (else retried every ``PERIOD``), then its etcd user is deleted (its etcd certificate is
  refused from then on, not at its expiry: shoal.manager.etcdusers), then its role becomes
  worker and the node stops its manager; the leader never removes itself: it resigns, and the
  next leader does it;
* etcd users: one per manager, kept in step with the store on every pass (``EtcdUsers.sync``);
* reachability: each member answers etcd's status within ``PROBE_TIMEOUT``, or is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

from shoal import aio
from shoal.errors import ShoalError
from shoal.manager.etcdusers import EtcdUsers
from shoal.manager.membership import MemberProbe
from shoal.model.objects import ManagerStatus, Node
from shoal.model.states import NodeRole
from shoal.store.etcd import EtcdAPI
from shoal.store.etcd.messages import Member
from shoal.store.store import Store, Tx, copy
from shoal.store.watch import SubscriptionOverflow

__all__ = ["RoleManager"]

log = logging.getLogger(__name__)

PERIOD = 2.0  # seconds between membership checks (and retries of a refused removal)
PROBE_TIMEOUT = 1.0


class RoleManager:
    def __init__(self, store: Store, etcd: EtcdAPI, *, node_id: str, swarm_port: int,
                 connect: Callable[[str], EtcdAPI], resign: Callable[[], None],
                 users: EtcdUsers | None = None) -> None:
        self._store = store
        self._etcd = etcd
        self._users = users  # None: etcd without per-manager users (tests of roles alone)
        self._node_id = node_id
        self._swarm_port = swarm_port
        self._resign = resign
        self._probe = MemberProbe(connect)

    async def run(self) -> None:
        if self._users is not None:
            self._users.forget()  # another leader may have changed them since
        sub = self._store.subscribe([Node])
        try:
            while True:
                try:
                    await self._reconcile()
                except ShoalError as exc:
                    log.warning("role manager: %s", exc.message)
                with suppress(TimeoutError, SubscriptionOverflow):  # the view is read again
                    async with aio.timeout(PERIOD):
                        await sub.next()
        finally:
            sub.close()
            await self._probe.close()

    async def _reconcile(self) -> None:
        members = await self._etcd.member_list()
        reachable = await self._reachable(members)
        by_name = {m.name: m for m in members if m.name}
        for node in self._store.view().all(Node):
            desired, actual = node.spec.role or NodeRole.WORKER, node.actual_role()
            demoting = desired == NodeRole.WORKER and actual == NodeRole.MANAGER
            if demoting and await self._demote(node, by_name.get(node.id), members, reachable):
                by_name.pop(node.id, None)
        await self._store.update(lambda tx: self._statuses(tx, by_name, reachable), retries=3,
                                 atomic=False)
        if self._users is not None:
            try:
                await self._users.sync(self._etcd_users(by_name))
            except ShoalError as exc:
                log.warning("role manager: the managers' etcd users: %s", exc.message)

    def _etcd_users(self, by_name: dict[str, Member]) -> set[str]:
        """The nodes that may use etcd: managers, but not one being demoted whose member is
        gone (its user went with it), and always this one."""
        wanted = {self._node_id}
        for node in self._store.view().all(Node):
            if node.actual_role() != NodeRole.MANAGER:
                continue
            if node.spec.role == NodeRole.WORKER and node.id not in by_name:
                continue
            wanted.add(node.id)
        return wanted

    async def _reachable(self, members: list[Member]) -> dict[int, bool]:
        answers = await asyncio.gather(*(self._probe.answers(m, PROBE_TIMEOUT) for m in members))
        return {m.id: ok for m, ok in zip(members, answers, strict=True)}

    async def _demote(self, node: Node, member: Member | None, members: list[Member],
                      reachable: dict[int, bool]) -> bool:
        """Whether the node's etcd member (and user) is gone now."""
        if node.id == self._node_id:
            log.info("this manager is being demoted: handing the leadership over")
            self._resign()
            return False
        if member is not None:
            voters = [m for m in members if not m.is_learner]
            left = sum(1 for m in voters if m.id != member.id and reachable.get(m.id))
            if not member.is_learner and left < (len(voters) - 1) // 2 + 1:
                log.warning("demotion of %s waits: removing its member would lose the quorum",
                            node.id)
                return False
            log.info("removing node %s from the etcd membership", node.id)
            await self._etcd.member_remove(member.id)
        if self._users is not None:
            await self._users.revoke(node.id)

        def fn(tx: Tx) -> None:
            current = tx.view.get(Node, node.id)
            if current is None or current.actual_role() != NodeRole.MANAGER:
                return
            updated = copy(current)
            updated.role = NodeRole.WORKER
            updated.manager_status = None
            updated.etcd_member = False
            tx.update(updated)

        await self._store.update(fn, retries=3)
        log.info("node %s is a worker now", node.id)
        return True

    def _statuses(self, tx: Tx, by_name: dict[str, Member], reachable: dict[int, bool]) -> None:
        for node in tx.view.all(Node):
            desired, actual = node.spec.role or NodeRole.WORKER, node.actual_role()
            if desired == NodeRole.MANAGER and actual != NodeRole.MANAGER:
                promoted = copy(node)
                promoted.role = NodeRole.MANAGER
                promoted.manager_status = ManagerStatus(
                    reachability="unknown", addr=f"{node.status.addr}:{self._swarm_port}")
                log.info("node %s is promoted: it joins the managers", node.id)
                tx.update(promoted)
                continue
            if actual != NodeRole.MANAGER:
                continue
            member = by_name.get(node.id)
            reach = "reachable" if member is not None and reachable.get(member.id) else "unreachable"
            if member is None and node.manager_status is not None \
                    and node.manager_status.reachability == "unknown":
                reach = "unknown"  # promoted or joining: not a member yet
            leader = node.id == self._node_id
            current = node.manager_status or ManagerStatus()
            is_member = member is not None
            if (current.leader, current.reachability, node.etcd_member) != (leader, reach, is_member) \
                    or not current.addr:
                updated = copy(node)
                updated.role = NodeRole.MANAGER
                updated.etcd_member = is_member
                updated.manager_status = ManagerStatus(
                    leader=leader, reachability=reach,
                    addr=current.addr or f"{node.status.addr}:{self._swarm_port}")
                tx.update(updated)
