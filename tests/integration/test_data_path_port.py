"""`swarm init --data-path-port`: the overlay traffic of a manager and a worker on simulated hosts
goes over VXLAN on that UDP port (every node's vxlan devices say so) and tasks on the two hosts
reach each other; a port outside 1024-49151 is refused at init with moby's words. Needs root,
runc and docker-registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from shoal.dev import hosts
from shoal.dev.images import build_all
from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import TwoNodes, close_and_check

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-dpp"
PORT = 7789


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    if os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("docker-registry"):
        pytest.skip("runs containers on simulated hosts: needs root, runc and docker-registry")
    root = tmp_path_factory.mktemp(PREFIX)
    hosts.remove_all(PREFIX)  # a crashed earlier run
    swarm = Swarm(root, prefix=PREFIX, hosts=True)
    try:
        registry = swarm.start_registry()
        for image in build_all():
            registry.push(image)
        manager, worker = swarm.add(executor="runc"), swarm.add(executor="runc")
        refused = worker.docker("swarm", "init", "--advertise-addr", worker.ip, "--data-path-port", "80",
                                check=False)
        assert refused.returncode != 0
        assert "Datapath port number is not in valid range (1024-49151) : 80" in refused.stderr
        manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--data-path-port", str(PORT))
        token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.ip, f"{manager.ip}:2377")
        wait_for("2 nodes ready", lambda: manager.docker("node", "ls", "--format", "{{.Status}}")
                 .stdout.split().count("Ready") == 2, timeout=60)
        yield TwoNodes(manager, worker, swarm.registry_addr)
    finally:
        close_and_check(swarm)
    left = hosts.list_netns(PREFIX)
    assert not left, f"namespaces left: {left}"


def _vxlan_ports(d: Daemon) -> list[int]:
    out = d.exec("ip", "-d", "-j", "link", "show", "type", "vxlan").stdout
    return [link["linkinfo"]["info_data"]["port"] for link in json.loads(out or "[]")]


def test_overlay_traffic_uses_the_swarms_data_path_port(cluster: TwoNodes) -> None:
    m, w = cluster.manager, cluster.worker
    assert m.api("/swarm")["DataPathPort"] == PORT
    assert f"Data Path Port: {PORT}" in m.docker("info").stdout
    service = f"{PREFIX}-web"
    try:
        m.docker("network", "create", "-d", "overlay", f"{PREFIX}-net")
        m.docker("service", "create", "--detach", "--name", service, "--replicas", "2",
                 "--replicas-max-per-node", "1", "--network", f"{PREFIX}-net", cluster.image("web"))
        wait_for("a task on each node", lambda: len({t["NodeID"] for t in cluster.running(service)}) == 2,
                 timeout=90)
        tasks = cluster.running(service)
        nodes = {n["ID"]: n["Description"]["Hostname"] for n in m.api("/nodes")}
        here = next(t for t in tasks if nodes[t["NodeID"]] == m.hostname)
        there = next(t for t in tasks if t is not here)
        ip = next(a["Addresses"][0].split("/")[0] for a in there["NetworksAttachments"]
                  if a["Network"]["Spec"]["Name"] == f"{PREFIX}-net")
        pid = str(here["Status"]["ContainerStatus"]["PID"])

        def fetch() -> str:
            res = subprocess.run(["nsenter", "-t", pid, "-n", "-m", "--", "/bin/busybox", "wget", "-q",
                                  "-O", "-", f"http://{ip}/"], capture_output=True, text=True,
                                 timeout=15, check=False)
            return res.stdout

        wait_for("the worker's task answering over the overlay", fetch, timeout=30)
        for d in (m, w):
            ports = _vxlan_ports(d)
            assert ports and set(ports) == {PORT}, (d.hostname, ports)
    finally:
        m.docker("service", "rm", service, check=False)
        wait_for("the containers removed", lambda: not cluster.containers(), timeout=60)
        m.docker("network", "rm", f"{PREFIX}-net", check=False)
