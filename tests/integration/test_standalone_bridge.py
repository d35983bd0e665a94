"""Standalone containers on a node's local networks, end to end with the docker CLI on simulated
hosts (runc daemons, each in its own network namespace): ``docker run -p`` on the default
``bridge`` answers on the node's address from the other host; containers on a user bridge
network reach each other by name through the embedded DNS, and reach out through the NAT.
Needs root, runc and docker-registry."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import TwoNodes

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-sbr"
NET, SERVER, PUBLISHED = "sbr-net", "sbr-server", "sbr-published"


@pytest.fixture(scope="module")
def cluster(hosts_cluster: TwoNodes) -> TwoNodes:
    return hosts_cluster


def test_published_port_and_names_on_a_user_bridge(cluster: TwoNodes) -> None:
    m, w = cluster.manager, cluster.worker
    image = cluster.image("web")
    w.docker("pull", image, timeout=120)
    try:
        # -p on the default bridge: the page from the other host, through the worker's address
        w.docker("run", "-d", "--name", PUBLISHED, "-p", "8088:80", image, timeout=60)
        page = m.exec("busybox", "timeout", "20", "busybox", "wget", "-q", "-O", "-",
                      f"http://{w.ip}:8088/", timeout=30)
        assert "Hello from" in page.stdout, page
        assert "80/tcp -> 0.0.0.0:8088" in w.docker("port", PUBLISHED).stdout

        # a user bridge: a container by its name, through the embedded DNS
        w.docker("network", "create", "-d", "bridge", NET, timeout=30)
        w.docker("run", "-d", "--name", SERVER, "--network", NET, image, timeout=60)
        settings = json.loads(w.docker("inspect", SERVER).stdout)[0]["NetworkSettings"]
        address = settings["Networks"][NET]["IPAddress"]
        assert address and address in w.docker("exec", SERVER, "busybox", "ip", "-4", "-o",
                                                "addr").stdout
        by_name = w.docker("run", "--rm", "--network", NET, image, "busybox", "timeout", "20",
                           "busybox", "wget", "-q", "-O", "-", f"http://{SERVER}/", timeout=60)
        assert "Hello from" in by_name.stdout, by_name
        # and out through the NAT: the node's own published port, by the node's address
        out = w.docker("run", "--rm", "--network", NET, image, "busybox", "timeout", "20",
                       "busybox", "wget", "-q", "-O", "-", f"http://{w.ip}:8088/", timeout=60)
        assert "Hello from" in out.stdout, out
    finally:
        w.docker("rm", "-f", PUBLISHED, SERVER, check=False, timeout=60)
        w.docker("network", "rm", NET, check=False, timeout=30)
    assert w.docker("ps", "-a", "--filter", "name=sbr-", "-q").stdout.strip() == ""
