"""Standalone containers on attachable overlays, end to end on a manager and a worker on
simulated hosts (runc daemons, each in its own network namespace), with the docker CLI: a
``docker run --network ATTACHABLE`` on the worker reaches a service's task on the manager by
its name (through the VIP) and resolves it; a non-attachable overlay is refused with dockerd's
words; once the container is gone no attachment task is left in the store, its address is
released and the worker no longer lists the overlay. Needs root, runc and docker-registry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shoal.dev.wait import wait_for
from tests.integration.conftest import TwoNodes

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-att"
ATT, PLAIN, SVC, CTR, REFUSED = "att-net", "att-plain", "att-web", "att-client", "att-refused"


@pytest.fixture(scope="module")
def cluster(hosts_cluster: TwoNodes) -> TwoNodes:
    return hosts_cluster


def _attachments(cluster: TwoNodes) -> list[dict[str, Any]]:
    """The attachment tasks in the store (tasks of no service)."""
    tasks: list[dict[str, Any]] = cluster.manager.api("/tasks")
    return [t for t in tasks if not t.get("ServiceID")]


def test_a_container_on_a_worker_reaches_a_service_by_name(cluster: TwoNodes) -> None:
    m, w = cluster.manager, cluster.worker
    image = cluster.image("web")
    m.docker("network", "create", "-d", "overlay", "--attachable", ATT)
    m.docker("network", "create", "-d", "overlay", PLAIN)
    try:
        m.docker("service", "create", "--detach", "--name", SVC, "--network", ATT,
                 "--constraint", f"node.hostname=={m.hostname}", image)
        wait_for(f"{SVC} running", lambda: cluster.running(SVC), timeout=90, interval=0.3)
        svc = json.loads(m.docker("service", "inspect", SVC).stdout)[0]
        vip = svc["Endpoint"]["VirtualIPs"][0]["Addr"].split("/")[0]
        w.docker("pull", image, timeout=120)

        # by name, through the VIP, from the other host: the page names the task's container
        page = w.docker("run", "--rm", "--network", ATT, image, "busybox", "timeout", "10",
                        "busybox", "wget", "-q", "-O", "-", f"http://{SVC}/", timeout=60)
        assert "Hello from" in page.stdout, page
        looked = w.docker("run", "--rm", "--network", ATT, image, "busybox", "nslookup", SVC,
                          timeout=60)
        assert vip in looked.stdout, looked
        # a detached one: its attachment task holds its address, which the container has and
        # the worker's network inspect shows
        w.docker("run", "-d", "--name", CTR, "--network", ATT, image, "sleep", "300",
                 timeout=60)
        (task,) = _attachments(cluster)
        assert task["NodeID"] == json.loads(w.docker("info", "--format", "{{json .Swarm}}")
                                            .stdout)["NodeID"]
        address = task["NetworksAttachments"][0]["Addresses"][0]
        inside = w.docker("exec", CTR, "busybox", "ip", "-4", "-o", "addr", timeout=30).stdout
        assert f"inet {address} " in inside, inside
        on_worker = json.loads(w.docker("network", "inspect", ATT).stdout)[0]
        assert [c["IPv4Address"] for c in on_worker["Containers"].values()] == [address]
        # the service's task reaches it by its name too
        pid = cluster.running(SVC)[0]["Status"]["ContainerStatus"]["PID"]
        seen = m.exec("nsenter", "-t", str(pid), "-n", "-m", "--", "/bin/busybox", "nslookup",
                      CTR, timeout=20)
        assert address.split("/")[0] in seen.stdout, seen
        w.docker("rm", "-f", CTR, timeout=60)

        # not attachable: dockerd's refusal when it starts, nothing made
        w.docker("create", "--name", REFUSED, "--network", PLAIN, image, "true", timeout=60)
        refused = w.docker("start", REFUSED, check=False, timeout=60)
        assert refused.returncode != 0
        assert (f"rpc error: code = PermissionDenied desc = network {PLAIN} not manually "
                "attachable") in refused.stderr, refused
        w.docker("rm", REFUSED, timeout=60)

        # gone with the containers: no attachment task, the overlay unused on the worker
        wait_for("no attachment task left", lambda: not _attachments(cluster), timeout=30,
                 interval=0.2)
        listed = w.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        assert ATT not in listed
        gone = w.docker("network", "inspect", ATT, check=False)
        assert gone.returncode != 0 and f"network {ATT} not found" in gone.stderr
        # nothing of the containers' left on the worker: no overlay veth, no gateway veth
        links = w.exec("ip", "-o", "link", timeout=20).stdout
        assert " shv" not in links and " shgw" not in links, links
    finally:
        w.docker("rm", "-f", CTR, REFUSED, check=False)
        cluster.remove(SVC)
        m.docker("network", "rm", ATT, PLAIN, check=False)
    assert ATT not in m.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
