"""Authorization with the real certificates of real nodes (issue 14): a worker's certificate
reports statuses only of its own tasks; a removed node's certificate opens no session and
renews nothing on any manager, and it comes back only with a token, as a new node; a demoted
manager's etcd certificate is refused by etcd as soon as the demotion shows; the swarm's keys
are not in etcd in clear.

Daemons ``shoaltest-authz-N`` on 127.0.78.N (away from the other tests' 127.0.7.N)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from shoal.errors import PermissionDenied
from shoal.model.dispatch import (
    CLOSE_REMOVED,
    Heartbeat,
    HeartbeatAck,
    Message,
    Register,
    SessionInfo,
    StatusUpdate,
    TaskStatusUpdate,
    decode_message,
    encode_message,
)
from shoal.model.objects import NodeDescription, TaskStatus
from shoal.model.states import TaskState
from shoal.pki.identity import NodeIdentity, generate_key_and_csr
from shoal.store.etcd import GrpcEtcdClient
from shoal.store.etcd.messages import prefix_end
from tests.integration.conftest import init_swarm

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-authz"
BASE_IP = "127.0.78"


def _swarm_dir(d: Daemon) -> Path:
    return d.root / "data" / "swarm"


def _identity(d: Daemon) -> NodeIdentity:
    ident = NodeIdentity.load(_swarm_dir(d) / "certificates")
    assert ident is not None, f"{d.hostname} has no node certificate"
    return ident


def _join_manager(swarm: Swarm, manager: Daemon) -> Daemon:
    token = manager.docker("swarm", "join-token", "-q", "manager").stdout.strip()
    second = swarm.add()
    second.docker("swarm", "join", "--token", token, "--advertise-addr", second.ip, f"{manager.ip}:2377")
    wait_for("the second manager reachable", lambda: "Reachable" in manager.docker(
        "node", "ls", "--filter", f"name={second.hostname}").stdout, timeout=60)
    return second


def _task_on(manager: Daemon, service: str) -> dict[str, Any]:
    def running() -> dict[str, Any] | None:
        tasks = [t for t in manager.api("/tasks") if t["ServiceID"] == service]
        return next((t for t in tasks if t["Status"]["State"] == "running"), None)
    return wait_for(f"a running task of {service}", running, timeout=30)


# -- 1. statuses only of the node's own tasks ------------------------------------------------


async def _forge(addr: str, ident: NodeIdentity, ip: str, own: str, other: str,
                 manager: Daemon) -> list[Message]:
    """A session with the worker's own certificate: a status for another node's task and one
    for its own in one batch, then heartbeats until its own report is written."""
    got: list[Message] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"wss://{addr}/session", ssl=ident.client_ssl_context(), server_hostname="swarm-manager",
            max_msg_size=0) as ws:
        await ws.send_str(encode_message(Register(description=NodeDescription(hostname="forger"),
                                                  addr=ip)))
        got.append(decode_message(await ws.receive_str(timeout=10)))
        forged = TaskStatus(state=TaskState.FAILED, message="forged by another node", err="forged")
        mine = TaskStatus(state=TaskState.RUNNING, message="reported by its own node")
        await ws.send_str(encode_message(StatusUpdate(updates=[
            TaskStatusUpdate(task_id=other, status=forged),
            TaskStatusUpdate(task_id=own, status=mine),
        ])))
        deadline = time.monotonic() + 10
        while manager.api(f"/tasks/{own}")["Status"]["Message"] != "reported by its own node":
            assert time.monotonic() < deadline, "the node's report of its own task was not written"
            await ws.send_str(encode_message(Heartbeat()))  # the session goes on meanwhile
            await asyncio.sleep(0.3)
        await ws.send_str(encode_message(Heartbeat()))
        while not any(isinstance(m, HeartbeatAck) for m in got):
            msg = await ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.TEXT, f"the session ended: {msg}"
            got.append(decode_message(msg.data))
        await asyncio.sleep(0.5)  # past the next status flushes
    await asyncio.sleep(0.25)  # aiohttp's graceful shutdown: its TLS transport closes meanwhile
    return got


def test_a_worker_certificate_reports_statuses_only_of_its_own_tasks(swarm: Swarm) -> None:
    manager, (w1, w2) = init_swarm(swarm, 2)
    for name, node in (("mine", w1), ("theirs", w2)):
        manager.docker("service", "create", "-d", "--name", name, "--constraint",
                       f"node.hostname=={node.hostname}", "busybox")
    own, other = _task_on(manager, manager.api("/services/mine")["ID"]), \
        _task_on(manager, manager.api("/services/theirs")["ID"])
    ident = _identity(w1)
    assert own["NodeID"] == ident.node_id and other["NodeID"] != ident.node_id
    w1.stop()  # its certificate opens the session now, not its agent

    got = asyncio.run(_forge(f"{manager.ip}:2377", ident, w1.ip, own["ID"], other["ID"], manager))
    assert isinstance(got[0], SessionInfo) and got[0].node_id == ident.node_id
    status = manager.api(f"/tasks/{other['ID']}")["Status"]
    assert status["State"] == "running" and "forged" not in status["Message"]
    assert "forged" not in status.get("Err", "")
    log = manager.log.read_text(errors="replace")
    assert f"status of task {other['ID']} refused: permission denied: cannot update a task not " \
           "assigned this node" in log


# -- 2. a removed node ---------------------------------------------------------------------


async def _session_close(addr: str, ident: NodeIdentity) -> tuple[int | None, str]:
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(
                f"wss://{addr}/session", ssl=ident.client_ssl_context(), server_hostname="swarm-manager",
                max_msg_size=0) as ws:
            await ws.send_str(encode_message(Register(description=NodeDescription(hostname="removed"))))
            msg = await ws.receive(timeout=10)
    finally:
        await asyncio.sleep(0.25)  # aiohttp's graceful shutdown: its TLS transport closes meanwhile
    assert msg.type == aiohttp.WSMsgType.CLOSE, f"the session was not refused: {msg}"
    return msg.data, str(msg.extra or "")


async def _renew(addr: str, ident: NodeIdentity) -> tuple[int, dict[str, Any]]:
    _, csr = generate_key_and_csr()
    try:
        async with aiohttp.ClientSession() as http, http.post(
                f"https://{addr}/ca/renew", json={"CSR": csr}, ssl=ident.client_ssl_context(),
                server_hostname="swarm-manager", allow_redirects=False) as r:
            return r.status, await r.json(content_type=None)
    finally:
        await asyncio.sleep(0.25)  # aiohttp's graceful shutdown: its TLS transport closes meanwhile


def test_a_removed_node_is_refused_by_every_manager_and_rejoins_as_a_new_node(swarm: Swarm) -> None:
    m1, (worker,) = init_swarm(swarm, 1)
    m2 = _join_manager(swarm, m1)
    ident = _identity(worker)
    old_id = ident.node_id

    # Removed while its session is open: the session is closed at once, the node knows it.
    m1.docker("node", "rm", "--force", worker.hostname)
    wait_for("the removed node told so", lambda: worker.api("/info")["Swarm"]["LocalNodeState"] == "error",
             timeout=10)
    assert "removed from" in worker.api("/info")["Swarm"]["Error"]
    assert worker.hostname not in m1.docker("node", "ls").stdout

    # Its certificate, still valid, opens nothing and renews nothing, on the leader or not.
    removed = f"Permission denied: node {old_id} was removed from swarm"
    for manager in (m1, m2):  # wait_for: the follower's copy of the store may lag a moment
        addr = f"{manager.ip}:2377"
        wait_for(f"{manager.hostname} to refuse the removed node's session",
                 lambda a=addr: asyncio.run(_session_close(a, ident)) == (CLOSE_REMOVED, removed),
                 timeout=10)
        wait_for(f"{manager.hostname} to refuse its renewal",
                 lambda a=addr: asyncio.run(_renew(a, ident)) == (403, {"message": removed}), timeout=10)

    # A join token brings it back, as a new node.
    worker.docker("swarm", "leave", "--force")
    token = m1.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.ip, f"{m1.ip}:2377")
    new_id = _identity(worker).node_id
    assert new_id != old_id
    wait_for("the node back, Ready", lambda: "Ready" in m1.docker(
        "node", "ls", "--filter", f"name={worker.hostname}").stdout)
    code, _ = asyncio.run(_session_close(f"{m1.ip}:2377", ident))  # the old one: still refused
    assert code == CLOSE_REMOVED


# -- 3. a demoted manager and etcd; the keys at rest -----------------------------------------


def _etcd(d: Daemon, tls_dir: Path) -> GrpcEtcdClient:
    """An etcd client to ``d``'s member with the etcd certificate in ``tls_dir``."""
    return GrpcEtcdClient([f"https://{d.ip}:2379"], cert_file=tls_dir / "node.crt",
                          key_file=tls_dir / "node.key", ca_file=tls_dir / "ca.crt", timeout=5.0)


async def _read_store(client: GrpcEtcdClient) -> bytes:
    try:
        found = await client.range(b"/shoal/", prefix_end(b"/shoal/"))
        return b"".join(kv.value for kv in found.kvs)
    finally:
        await client.close()


async def _etcd_users(client: GrpcEtcdClient) -> list[str]:
    try:
        return await client.user_list()
    finally:
        await client.close()


def test_a_demoted_managers_etcd_certificate_is_refused_at_once(swarm: Swarm, tmp_path: Path) -> None:
    m1, _ = init_swarm(swarm, 0)
    m2 = _join_manager(swarm, m1)
    m2_id = _identity(m2).node_id
    kept = tmp_path / "m2-etcd-tls"  # the demoted node deletes its own copy
    shutil.copytree(_swarm_dir(m2) / "etcd-tls", kept)
    dek = _swarm_dir(m2) / "manager" / "store-dek.json"
    assert dek.read_text() == (_swarm_dir(m1) / "manager" / "store-dek.json").read_text()

    # A manager's etcd certificate reads the store; the keys there are sealed.
    stored = asyncio.run(_read_store(_etcd(m1, kept)))
    assert b'"RootCA"' in stored and b"PRIVATE KEY" not in stored
    assert m2_id in asyncio.run(_etcd_users(_etcd(m1, _swarm_dir(m1) / "etcd-tls")))

    m1.docker("node", "demote", m2.hostname)
    wait_for("the demotion in the store", lambda: m1.api(f"/nodes/{m2.hostname}").get("ManagerStatus") is None
             and m1.api(f"/nodes/{m2.hostname}")["Spec"]["Role"] == "worker", timeout=30)
    with pytest.raises(PermissionDenied, match="permission denied"):
        asyncio.run(_read_store(_etcd(m1, kept)))
    assert m2_id not in asyncio.run(_etcd_users(_etcd(m1, _swarm_dir(m1) / "etcd-tls")))
    wait_for("the demoted node without the manager's keys",
             lambda: not dek.exists() and not (_swarm_dir(m2) / "etcd-tls").exists(), timeout=30)
    assert asyncio.run(_read_store(_etcd(m1, _swarm_dir(m1) / "etcd-tls")))  # the leader's own: fine
