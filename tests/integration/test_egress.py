"""Egress through the gateway bridge, on a manager and a worker on simulated hosts: a task on an
overlay network fetches the fabric's registry (``<base>.254:5000``, outside the swarm) through
its node's ``shoal_gwbridge``, masqueraded, its default route on the interface after its overlay
ones; its host-mode published port still answers; a task whose only network is ``--internal``
has no default route and cannot get out; a task on no network gets out too (Docker's default
bridge's role). The bridge and its nft table are made only where a container needs them and go
with the last one. Needs root, runc and docker-registry."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from shoal.dev.local import Daemon
from shoal.dev.wait import wait_for
from tests.integration.conftest import TwoNodes

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-egr"
OUT, PRIVATE, BARE = "egr-out", "egr-private", "egr-bare"
NET, INTERNAL = "egr-net", "egr-internal"
BRIDGE, TABLE, GATEWAY = "shoal_gwbridge", "shoal_gw", "172.18.0.1"
HOST_PORT = 8090


@pytest.fixture(scope="module")
def cluster(hosts_cluster: TwoNodes) -> TwoNodes:
    return hosts_cluster


def _in_container(pid: int, *argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` from the container's own filesystem, in its namespaces."""
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "--", *argv], capture_output=True,
                          text=True, timeout=20, check=False)


def _fetch(pid: int, url: str) -> subprocess.CompletedProcess[str]:
    # busybox wget -T segfaults here (linux.md, pitfall): bounded by timeout instead
    return _in_container(pid, "/bin/busybox", "timeout", "5", "/bin/busybox", "wget", "-q", "-O", "-", url)


def _routes(pid: int) -> str:
    """The container's IPv4 routes, read with the machine's ip in its network namespace."""
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "--", "ip", "-4", "route"],
                          capture_output=True, text=True, timeout=20, check=True).stdout


def _gateway_on(node: Daemon) -> tuple[str, bool]:
    """The node's gateway bridge's addresses ("" without one) and whether its table exists."""
    addr = node.exec("ip", "-4", "-o", "addr", "show", "dev", BRIDGE, timeout=20)
    table = node.exec("nft", "list", "table", "ip", TABLE, timeout=20)
    return (addr.stdout if addr.returncode == 0 else ""), table.returncode == 0


def _running(cluster: TwoNodes, service: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = wait_for(f"{service} running", lambda: cluster.running(service),
                                           timeout=90, interval=0.3)
    return found[0]


def test_tasks_get_out_through_the_gateway_bridge_unless_internal(cluster: TwoNodes) -> None:
    m, w = cluster.manager, cluster.worker
    registry = f"http://{cluster.registry}/v2/"
    on_worker = ["--constraint", f"node.hostname=={w.hostname}"]
    m.docker("network", "create", "-d", "overlay", NET)
    m.docker("network", "create", "-d", "overlay", "--internal", INTERNAL)
    try:
        assert m.docker("network", "inspect", "-f", "{{.Internal}}", INTERNAL).stdout.strip() == "true"
        m.docker("service", "create", "--detach", "--name", OUT, "--network", NET, "--publish",
                 f"mode=host,published={HOST_PORT},target=80", *on_worker, cluster.image("web"))
        m.docker("service", "create", "--detach", "--name", PRIVATE, "--network", INTERNAL,
                 *on_worker, cluster.image("web"))
        m.docker("service", "create", "--detach", "--name", BARE, *on_worker, cluster.image("web"))
        out, private, bare = (_running(cluster, s) for s in (OUT, PRIVATE, BARE))

        # on an overlay (and ingress, for its published port): out through eth2, after them
        pid = out["Status"]["ContainerStatus"]["PID"]
        assert len(out["NetworksAttachments"]) == 2
        assert f"default via {GATEWAY} dev eth2" in _routes(pid)
        got = _fetch(pid, registry)
        assert got.returncode == 0 and got.stdout.strip() == "{}", got
        # the host-mode port still answers, from the other host
        page = m.exec("timeout", "5", "busybox", "wget", "-q", "-O", "-",
                      f"http://{w.ip}:{HOST_PORT}/", timeout=20)
        assert page.returncode == 0 and "Hello from" in page.stdout, page

        # on an --internal overlay only: no default route, no way out
        pid = private["Status"]["ContainerStatus"]["PID"]
        assert "default" not in _routes(pid)
        got = _fetch(pid, registry)
        assert got.returncode != 0 and "{}" not in got.stdout, got

        # on no network: the gateway bridge is its eth0, as Docker's default bridge would be
        pid = bare["Status"]["ContainerStatus"]["PID"]
        assert f"default via {GATEWAY} dev eth0" in _routes(pid)
        got = _fetch(pid, registry)
        assert got.returncode == 0 and got.stdout.strip() == "{}", got

        addrs, table = _gateway_on(w)
        assert f"inet {GATEWAY}/16" in addrs and table
        assert _gateway_on(m) == ("", False)  # no container there needs one
    finally:
        cluster.remove(OUT, PRIVATE, BARE)
        m.docker("network", "rm", NET, INTERNAL, check=False)
    # gone with the last container on it
    wait_for("the worker's gateway bridge and table removed", lambda: _gateway_on(w) == ("", False),
             timeout=15, interval=0.2)
