"""A demoted manager's etcd certificate stops working at once: etcd's authentication with one
user per manager (CN = node ID), on a real etcd whose certificates come from a raft CA as the
managers' do. EtcdUsers alone, then the role manager's demotion."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from parts import Parts

from shoal.dev.wait import wait_for_async
from shoal.errors import PermissionDenied
from shoal.manager.ca.etcdtls import RAFT_CA_CN, EtcdTLS, issue_etcd_tls
from shoal.manager.ca.rootca import RootCA
from shoal.manager.etcdusers import EtcdUsers
from shoal.manager.roles import RoleManager
from shoal.model.objects import ManagerStatus, Node
from shoal.model.specs import NodeSpec
from shoal.store.etcd import EtcdMember, GrpcEtcdClient
from shoal.store.etcd.testing import ThrowawayPKI, member_settings
from shoal.store.store import Store, Tx

LEADER, OTHER, STRANGER = "leader0000000000000000001", "other00000000000000000001", "worker0000000000000000001"


@dataclass
class Etcd:
    member: EtcdMember
    certs: dict[str, EtcdTLS]
    root: Path

    def client(self, node_id: str) -> GrpcEtcdClient:
        cert, key, ca = self.certs[node_id].files(self.root / node_id)
        return GrpcEtcdClient([self.member.settings.client_url], cert_file=cert, key_file=key,
                              ca_file=ca, timeout=3.0)


@pytest.fixture
async def etcd(tmp_path: Path) -> AsyncIterator[Etcd]:
    """One member serving with LEADER's etcd certificate; certificates for two more IDs."""
    raft = RootCA.create(common_name=RAFT_CA_CN)
    certs = {}
    for node_id in (LEADER, OTHER, STRANGER):
        certs[node_id] = issue_etcd_tls(raft, node_id=node_id, cluster_id="c1", ips=["127.0.0.1"])
        certs[node_id].save(tmp_path / node_id)
    cert, key, ca = certs[LEADER].files(tmp_path / LEADER)
    settings = member_settings(tmp_path, ThrowawayPKI(ca, cert, key), name=LEADER)
    member = EtcdMember(settings)
    await member.start()
    try:
        yield Etcd(member, certs, tmp_path)
    finally:
        await member.stop()
        shutil.rmtree(settings.data_dir, ignore_errors=True)


async def test_only_the_managers_users_get_in_and_a_revoked_one_is_out_at_once(etcd: Etcd) -> None:
    leader, other, stranger = etcd.client(LEADER), etcd.client(OTHER), etcd.client(STRANGER)
    try:
        await stranger.put(b"k", b"before")  # authentication is off: any raft-CA cert gets in
        users = EtcdUsers(leader)
        await users.sync([LEADER, OTHER])
        assert sorted(await leader.user_list()) == sorted([LEADER, OTHER, "root"])
        await other.put(b"k", b"v")  # its connection stays open across the revocation
        with pytest.raises(PermissionDenied, match="permission denied"):
            await stranger.range(b"k")
        await users.revoke(OTHER)
        with pytest.raises(PermissionDenied):
            await other.put(b"k", b"after")
        with pytest.raises(PermissionDenied):
            await other.range(b"k")
        assert (await leader.range(b"k")).kvs[0].value == b"v"
        await users.sync([LEADER])  # nothing to change: no call
        await users.revoke(OTHER)  # twice: fine
        users.forget()
        await users.sync([LEADER, STRANGER])  # a new term reads etcd again
        await stranger.put(b"k", b"now a manager")
    finally:
        for c in (leader, other, stranger):
            await c.close()


async def test_writes_go_through_while_users_change(etcd: Etcd) -> None:
    """etcd refuses, unapplied, a request whose users changed in flight; the client resends it."""
    leader = etcd.client(LEADER)
    try:
        users = EtcdUsers(leader)
        await users.sync([LEADER])

        async def writes() -> None:
            for i in range(150):
                await leader.put(b"w", str(i).encode())

        async def churn() -> None:
            for i in range(20):
                await users.grant(f"manager{i:017d}")

        await asyncio.gather(writes(), writes(), churn())
    finally:
        await leader.close()


async def test_the_member_restarts_and_answers_its_health_check_with_authentication_on(etcd: Etcd) -> None:
    leader = etcd.client(LEADER)
    try:
        await EtcdUsers(leader).sync([LEADER])
    finally:
        await leader.close()
    await etcd.member.stop()
    await etcd.member.start()  # waits for the health check (gRPC status) to answer
    assert etcd.member.healthy


async def test_demotion_revokes_the_etcd_user_for_good(
        etcd: Etcd, store: Store, parts: Parts) -> None:
    def seed(tx: Tx) -> None:
        tx.create(Node(id=LEADER, spec=NodeSpec(role="manager"), role="manager",
                       manager_status=ManagerStatus(leader=True, addr="127.0.0.1:2377")))
        tx.create(Node(id=OTHER, spec=NodeSpec(role="manager"), role="manager",
                       manager_status=ManagerStatus(addr="127.0.0.2:2377")))
    await store.update(seed)
    leader, other = etcd.client(LEADER), etcd.client(OTHER)
    users = EtcdUsers(leader)
    roles = RoleManager(store, leader, node_id=LEADER, swarm_port=2377,
                        connect=lambda url: etcd.client(LEADER), resign=lambda: None, users=users)
    try:
        parts.start(roles)
        await wait_for_async("the managers' users", lambda: _users(leader))
        await other.put(b"k", b"a manager's write")

        def demote(tx: Tx) -> None:
            node = tx.view.get(Node, OTHER)
            assert node is not None
            node.spec = NodeSpec(role="worker")
            tx.update(node)
        await store.update(demote)
        await wait_for_async("the demoted node a worker", lambda: _role(store, OTHER) == "worker")
        with pytest.raises(PermissionDenied):
            await other.put(b"k", b"a demoted manager's write")
        assert OTHER not in await leader.user_list()
        await asyncio.sleep(0.3)  # another pass of the role manager does not grant it again
        assert OTHER not in await leader.user_list()
    finally:
        await parts.close()
        await leader.close()
        await other.close()


async def _users(client: GrpcEtcdClient) -> bool:
    return {LEADER, OTHER, "root"} <= set(await client.user_list())


def _role(store: Store, node_id: str) -> str:
    node = store.view().get(Node, node_id)
    assert node is not None
    return node.actual_role()
