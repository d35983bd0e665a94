"""``Swarm(hosts=True)``: each shoald in a simulated host of its own (shoal.dev.hosts), the swarm
formed over the underlay (172.31.7.x), the API still on unix sockets from this namespace; a node
pulls an image over plain HTTP from the registry host; ``close()`` leaves no namespace."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from shoal.dev import hosts
from shoal.dev.images import build_all
from shoal.dev.local import Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import close_and_check

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None or os.geteuid() != 0,
                                reason="needs root and docker-registry")


@pytest.fixture
def host_swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    prefix = f"shoaltest-{uuid.uuid4().hex[:6]}"
    s = Swarm(tmp_path_factory.mktemp("shoaltest-hosts"), prefix=prefix, hosts=True)
    try:
        yield s
    finally:
        close_and_check(s)
        assert hosts.list_netns(prefix) == []


def test_a_swarm_of_simulated_hosts_pulls_from_the_registry_host(host_swarm: Swarm) -> None:
    registry = host_swarm.start_registry()
    web = next(i for i in build_all() if i.name == "shoal/web")
    registry.push(web)  # from this namespace, through a socket made in the registry's
    assert registry.catalog() == ["shoal/web"]

    manager = host_swarm.add()
    worker = host_swarm.add()
    assert (manager.ip, worker.ip) == ("172.31.7.1", "172.31.7.2")
    assert f"inet {worker.ip}/24" in worker.exec("ip", "-o", "-4", "addr", "show", "eth0").stdout
    manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s")
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.ip,
                  f"{manager.ip}:2377")
    wait_for("2 nodes ready", lambda: manager.docker("node", "ls", "--format", "{{.Status}}")
             .stdout.split().count("Ready") == 2)
    addrs = manager.docker("node", "inspect", "--format", "{{.Status.Addr}}", "self",
                           worker.hostname).stdout.split()
    assert addrs == [manager.ip, worker.ip]

    ref = web.reference(host_swarm.registry_addr)
    worker.docker("pull", ref, timeout=60)
    listed = worker.docker("image", "ls", "--format", "{{.Repository}}").stdout.split()
    assert f"{host_swarm.registry_addr}/shoal/web" in listed
