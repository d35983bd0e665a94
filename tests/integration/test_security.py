"""Mutual TLS everywhere: a worker certificate cannot call manager-only RPCs nor reach etcd;
no certificate gets nothing but the root CA; promotion renews the certificate's role."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from shoal.pki.identity import NodeIdentity, generate_key_and_csr
from tests.integration.conftest import init_swarm


def _identity(d: Daemon) -> NodeIdentity:
    ident = NodeIdentity.load(d.root / "data" / "swarm" / "certificates")
    assert ident is not None
    return ident


async def _post(url: str, ctx: ssl.SSLContext, body: dict[str, str]) -> tuple[int, str]:
    async with (aiohttp.ClientSession() as s,
                s.post(url, json=body, ssl=ctx, server_hostname="swarm-manager") as r):
        return r.status, await r.text()


def test_worker_certificate_is_refused_for_manager_calls_and_etcd(swarm: Swarm) -> None:
    manager, (worker,) = init_swarm(swarm, 1)
    w_ident, m_ident = _identity(worker), _identity(manager)
    assert w_ident.role == "worker" and m_ident.role == "manager"
    assert w_ident.cluster_id == m_ident.cluster_id and w_ident.node_id != m_ident.node_id
    _, csr = generate_key_and_csr()
    url = f"https://{manager.ip}:2377/ca/raft"
    status, text = asyncio.run(_post(url, w_ident.client_ssl_context(), {"CSR": csr}))
    assert status == 403 and "swarm-manager" in text
    status, text = asyncio.run(_post(url, m_ident.client_ssl_context(), {"CSR": csr}))
    assert status == 200 and "BEGIN CERTIFICATE" in text

    # etcd trusts only the raft CA: the worker's swarm certificate does not get in.
    async def etcd_status(ctx: ssl.SSLContext) -> int:
        async with (aiohttp.ClientSession() as s,
                    s.post(f"https://{manager.ip}:2379/v3/maintenance/status", json={}, ssl=ctx) as r):
            return r.status

    ctx = w_ident.client_ssl_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        asyncio.run(etcd_status(ctx))

    # A session without any client certificate is refused.
    async def anonymous_session() -> int:
        plain = ssl.create_default_context()
        plain.check_hostname = False
        plain.verify_mode = ssl.CERT_NONE
        async with aiohttp.ClientSession() as s, s.get(f"https://{manager.ip}:2377/session", ssl=plain) as r:
            return r.status

    assert asyncio.run(anonymous_session()) == 403


def test_promote_and_demote_renew_the_node_certificate(swarm: Swarm) -> None:
    manager, (worker,) = init_swarm(swarm, 1)
    out = manager.docker("node", "promote", worker.hostname).stdout
    assert f"Node {worker.hostname} promoted to a manager in the swarm." in out
    wait_for("manager certificate", lambda: _identity(worker).role == "manager")
    wait_for("the promoted node reachable", lambda: "Reachable" in manager.docker(
        "node", "ls", "--filter", f"name={worker.hostname}").stdout, timeout=60)
    out = manager.docker("node", "demote", worker.hostname).stdout
    assert "demoted" in out
    wait_for("worker certificate", lambda: _identity(worker).role == "worker")
    res = manager.docker("node", "demote", manager.hostname, check=False)
    assert res.returncode == 1 and "last manager" in res.stderr


def test_joining_with_the_manager_token_records_a_manager(swarm: Swarm) -> None:
    manager, _ = init_swarm(swarm, 0)
    token = manager.docker("swarm", "join-token", "-q", "manager").stdout.strip()
    second = swarm.add()
    out = second.docker("swarm", "join", "--token", token, "--advertise-addr", second.ip, f"{manager.ip}:2377").stdout
    assert "joined a swarm" in out
    assert _identity(second).role == "manager"
    node = manager.api(f"/nodes/{second.hostname}")
    assert node["Spec"]["Role"] == "manager" and node["ManagerStatus"]["Addr"] == f"{second.ip}:2377"
    # It holds the swarm state too: its own socket answers manager commands.
    assert second.docker("service", "ls").returncode == 0
    assert _identity(second).role == "manager"
