"""The network allocator on a real shoald (sim executor) through the docker and shoal CLIs:
networks get subnets, gateways and VXLAN IDs from the swarm's pool, services VIPs, tasks
addresses; overlaps and port conflicts are refused; addresses come back when services go."""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import ip_interface, ip_network
from typing import Any

import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import close_and_check

VXLAN = "com.docker.network.driver.overlay.vxlanid_list"


@pytest.fixture
def net_swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    """A swarm on loopback addresses of its own (127.0.57.x), so other suites running at the
    same time on 127.0.7.x do not take its ports."""
    s = Swarm(tmp_path_factory.mktemp("shoaltest"), base_ip="127.0.57")
    try:
        yield s
    finally:
        close_and_check(s)


def inspect_network(d: Daemon, name: str, tool: str = "docker") -> dict[str, Any]:
    out: list[dict[str, Any]] = json.loads(getattr(d, tool)("network", "inspect", name).stdout)
    return out[0]


def allocated(d: Daemon, name: str, tool: str = "docker") -> tuple[str, str, int] | None:
    """(subnet, gateway, VXLAN ID) once the allocator has given them."""
    net = inspect_network(d, name, tool)
    configs = net["IPAM"]["Config"] or []
    vni = (net.get("Options") or {}).get(VXLAN)
    if not configs or not vni:
        return None
    return configs[0]["Subnet"], configs[0]["Gateway"], int(vni)


def service_tasks(d: Daemon, service: str) -> list[dict[str, Any]]:
    filters = json.dumps({"service": [service]})
    tasks: list[dict[str, Any]] = d.api(f"/tasks?filters={filters}")
    return tasks


def running(d: Daemon, service: str, n: int) -> bool:
    return sum(1 for t in service_tasks(d, service) if t["Status"]["State"] == "running") == n


def test_networks_vips_addresses_and_release(net_swarm: Swarm) -> None:
    m = net_swarm.add()
    m.docker("swarm", "init", "--advertise-addr", m.ip, "--default-addr-pool", "10.20.0.0/16",
             "--default-addr-pool-mask-length", "24")
    ingress = wait_for("ingress allocated", lambda: allocated(m, "ingress"))
    assert ingress[:2] == ("10.20.0.0/24", "10.20.0.1") and ingress[2] >= 4096

    m.docker("network", "create", "-d", "overlay", "--label", "team=a", "front")
    front = wait_for("front allocated", lambda: allocated(m, "front"))
    assert front[:2] == ("10.20.1.0/24", "10.20.1.1") and front[2] != ingress[2]
    assert inspect_network(m, "front")["Labels"] == {"team": "a"}
    m.docker("network", "create", "-d", "overlay", "--attachable", "--subnet", "192.168.77.0/24",
             "--gateway", "192.168.77.254", "own")
    own = wait_for("own allocated", lambda: allocated(m, "own"))
    assert own[:2] == ("192.168.77.0/24", "192.168.77.254")
    assert inspect_network(m, "own")["Attachable"] is True
    res = m.docker("network", "create", "-d", "overlay", "--subnet", "10.20.1.128/25", "clash", check=False)
    assert res.returncode != 0 and "overlaps" in res.stderr
    listed = m.docker("network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}}").stdout.split()
    assert sorted(listed) == ["front", "ingress", "own"]

    # VIPs on the attached network and on ingress (a published port), an address per task on both
    m.docker("service", "create", "-d", "--name", "web", "--network", "front", "--replicas", "3",
             "--publish", "8080:80", "busybox:latest")
    wait_for("web running", lambda: running(m, "web", 3))
    svc = json.loads(m.docker("service", "inspect", "web").stdout)[0]
    vips = {v["NetworkID"]: v["Addr"] for v in svc["Endpoint"]["VirtualIPs"]}
    front_id, ingress_id = inspect_network(m, "front")["Id"], inspect_network(m, "ingress")["Id"]
    assert set(vips) == {front_id, ingress_id}
    assert ip_interface(vips[front_id]) in {ip_interface(f"{h}/24") for h in ip_network(front[0]).hosts()}
    seen = set(vips.values())
    for t in service_tasks(m, "web"):
        task = json.loads(m.docker("inspect", "--type", "task", t["ID"]).stdout)[0]
        atts = {a["Network"]["ID"]: a["Addresses"] for a in task["NetworksAttachments"]}
        assert set(atts) == {front_id, ingress_id}
        assert ip_interface(atts[front_id][0]).network == ip_network(front[0])
        assert ip_interface(atts[ingress_id][0]).network == ip_network(ingress[0])
        assert task["Spec"]["Networks"][0]["Target"] == front_id
        seen |= {atts[front_id][0], atts[ingress_id][0]}
    assert len(seen) == 2 + 6  # all distinct

    res = m.docker("service", "create", "-d", "--name", "web2", "--publish", "8080:80", "busybox:latest",
                   check=False)
    assert res.returncode != 0 and "port '8080' is already in use by service 'web'" in res.stderr
    res = m.docker("network", "rm", "front", check=False)
    assert res.returncode != 0 and "in use by service web" in res.stderr

    # A /29 holds a VIP and 4 tasks: a second service waits until the first is removed.
    m.docker("network", "create", "-d", "overlay", "--subnet", "10.30.0.0/29", "tiny")
    wait_for("tiny allocated", lambda: allocated(m, "tiny"))
    m.docker("service", "create", "-d", "--name", "full", "--network", "tiny", "--replicas", "4", "busybox:latest")
    wait_for("full running", lambda: running(m, "full", 4))
    m.docker("service", "create", "-d", "--name", "late", "--network", "tiny", "busybox:latest")
    wait_for("late's task made", lambda: service_tasks(m, "late"), timeout=10)
    late = json.loads(m.docker("service", "inspect", "late").stdout)[0]
    assert not late["Endpoint"].get("VirtualIPs")  # no address left for its VIP
    assert [t["Status"]["State"] for t in service_tasks(m, "late")] == ["new"]
    m.docker("service", "rm", "full")
    wait_for("late running on freed addresses", lambda: running(m, "late", 1), timeout=30)
    m.docker("network", "rm", "own")
    assert "own" not in m.docker("network", "ls", "--format", "{{.Name}}").stdout.split()


def test_default_pool_through_the_shoal_cli(net_swarm: Swarm) -> None:
    m = net_swarm.add()
    m.shoal("swarm", "init", "--advertise-addr", m.ip)
    ingress = wait_for("ingress allocated", lambda: allocated(m, "ingress", "shoal"))
    assert ingress[:2] == ("10.0.0.0/24", "10.0.0.1")
    m.shoal("network", "create", "-d", "overlay", "back")
    back = wait_for("back allocated", lambda: allocated(m, "back", "shoal"))
    assert back[:2] == ("10.0.1.0/24", "10.0.1.1") and back[2] != ingress[2]
    assert "back" in m.shoal("network", "ls", "--format", "{{.Name}}").stdout.split()
    # the node's own address on ingress (the routing mesh's source)
    wait_for("node attached", lambda: m.api("/nodes")[0].get("Attachments"))
    node = m.api("/nodes")[0]
    assert ip_interface(node["Attachments"][0]["Addresses"][0]).network == ip_network("10.0.0.0/24")
    m.shoal("network", "rm", "back")
    assert "back" not in m.shoal("network", "ls", "--format", "{{.Name}}").stdout.split()
