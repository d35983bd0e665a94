"""Local networks on a manager and a worker on simulated hosts (runc daemons, each in its own
network namespace), driven by the docker CLI and docker-py: the predefined networks as dockerd
lists them on a swarm node; ``network create -d bridge`` with every IPAM flag and options,
made in the node's namespace (a real bridge with its gateway address, the ``shoal_br`` nft
table); refusals with dockerd's words; overlays still going to the managers; a shoald restart
keeping the networks; ``network rm`` and ``prune`` taking the bridges away. The containers'
side (``docker run --network``) is the container engineer's; its data path is
tests/unit/net/test_bridges.py's. Needs root, runc and docker-registry."""

from __future__ import annotations

import json

import docker
import pytest

from shoal.dev.local import Daemon
from tests.integration.conftest import TwoNodes

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-brg"
ONE, TWO, PY, OV = "brg-one", "brg-two", "brg-py", "brg-ov"


@pytest.fixture(scope="module")
def cluster(hosts_cluster: TwoNodes) -> TwoNodes:
    return hosts_cluster


def _ls(d: Daemon, *filters: str) -> list[tuple[str, str, str]]:
    args = [a for f in filters for a in ("--filter", f)]
    out = d.docker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", *args)
    return sorted(tuple(line.split()) for line in out.stdout.splitlines())  # type: ignore[misc]


def _link(d: Daemon, name: str) -> str:
    """The link's IPv4 addresses in the node's namespace ("" without such a link)."""
    out = d.exec("ip", "-4", "-o", "addr", "show", "dev", name, timeout=20)
    return out.stdout if out.returncode == 0 else ""


def _table(d: Daemon) -> str:
    return d.exec("nft", "list", "table", "ip", "shoal_br", timeout=20).stdout


def test_predefined_networks_as_dockerd_lists_them(cluster: TwoNodes) -> None:
    m, w = cluster.manager, cluster.worker
    assert _ls(m) == [("bridge", "bridge", "local"), ("docker_gwbridge", "bridge", "local"),
                      ("host", "host", "local"), ("ingress", "overlay", "swarm"),
                      ("none", "null", "local")]
    assert ("bridge", "bridge", "local") in _ls(w)
    default = json.loads(w.docker("network", "inspect", "bridge").stdout)[0]
    assert default["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert default["Options"]["com.docker.network.bridge.name"] == "shoal0"
    assert "172.17.0.1/16" in _link(w, "shoal0")  # docker0's role, in the node's namespace only
    assert "shoal0" in _table(w)
    for ref in ("bridge", "host", "none"):
        r = w.docker("network", "rm", ref, check=False)
        assert r.returncode != 0 and f"{ref} is a pre-defined network and cannot be removed" in r.stderr


def test_bridge_networks_created_kept_and_removed(cluster: TwoNodes) -> None:
    m, w = cluster.manager, cluster.worker
    w.docker("network", "create", "-d", "bridge", "--subnet", "10.91.0.0/24", "--gateway",
             "10.91.0.254", "--ip-range", "10.91.0.128/25", "--aux-address", "router=10.91.0.129",
             "--label", "team=a", "--internal", "--attachable",
             "--opt", "com.docker.network.bridge.name=brg-test",
             "--opt", "com.docker.network.bridge.enable_icc=false", ONE)
    w.docker("network", "create", TWO)  # the default driver is bridge, as dockerd's
    try:
        one = json.loads(w.docker("network", "inspect", ONE).stdout)[0]
        assert (one["Driver"], one["Scope"], one["Internal"], one["Attachable"]) == (
            "bridge", "local", True, True)
        assert one["IPAM"]["Config"] == [{"Subnet": "10.91.0.0/24", "Gateway": "10.91.0.254",
                                          "IPRange": "10.91.0.128/25",
                                          "AuxiliaryAddresses": {"router": "10.91.0.129"}}]
        assert one["Labels"] == {"team": "a"} and one["Containers"] == {}
        assert "10.91.0.254/24" in _link(w, "brg-test")
        two = json.loads(w.docker("network", "inspect", TWO).stdout)[0]
        bridge_two = "br-" + two["Id"][:12]
        # 172.17 is the default bridge's, 172.18 the gateway bridge's
        assert two["IPAM"]["Config"][0]["Subnet"] == "172.19.0.0/16"
        assert "172.19.0.1/16" in _link(w, bridge_two)
        table = _table(w)
        assert 'iifname "brg-test" oifname "brg-test" drop' in table  # ICC off
        assert 'iifname "brg-test" drop' in table  # --internal: no way out
        assert "ip saddr 172.19.0.0/16" in table  # masqueraded out
        assert not _link(m, "brg-test")  # local: only on the node that made it
        assert _ls(w, "type=custom") == [(ONE, "bridge", "local"), (TWO, "bridge", "local")]
        # refused, naming what
        for args, words in [
            (["--opt", "foo=bar", "brg-x"], "network option 'foo' is not supported"),
            (["--ipv6", "brg-x"], "IPv6"),
            (["-d", "macvlan", "brg-x"], "macvlan"),
            (["--subnet", "10.91.0.0/25", "brg-x"], "Pool overlaps"),
            ([TWO], f"network with name {TWO} already exists"),
        ]:
            r = w.docker("network", "create", *args, check=False)
            assert r.returncode != 0 and words in r.stderr, (args, r.stderr)
        # a restart keeps them, with their bridges
        w.stop()
        w.start()
        assert _ls(w, "type=custom") == [(ONE, "bridge", "local"), (TWO, "bridge", "local")]
        assert json.loads(w.docker("network", "inspect", TWO).stdout)[0]["Id"] == two["Id"]
        assert "172.19.0.1/16" in _link(w, bridge_two)
        # removal takes the bridge
        w.docker("network", "rm", ONE)
        assert not _link(w, "brg-test") and "brg-test" not in _table(w)
        assert w.docker("network", "prune", "-f").stdout.split() == ["Deleted", "Networks:", TWO]
        assert not _link(w, bridge_two)
    finally:
        w.docker("network", "rm", ONE, TWO, check=False)


def test_docker_py_and_overlays_beside(cluster: TwoNodes) -> None:
    m = cluster.manager
    client = docker.DockerClient(base_url=m.host, version="1.44", timeout=30)
    try:
        net = client.networks.create(PY, driver="bridge", labels={"k": "v"},
                                     options={"com.docker.network.driver.mtu": "1400"})
        assert net.attrs["Scope"] == "local"
        found = client.networks.list(filters={"label": "k=v"})
        assert [n.name for n in found] == [PY]
        assert client.networks.get(PY).attrs["Options"]["com.docker.network.driver.mtu"] == "1400"
        assert "mtu 1400" in m.exec("ip", "link", "show", "dev", "br-" + net.id[:12]).stdout
        ov = client.networks.create(OV, driver="overlay", attachable=True)  # to the managers
        assert client.networks.get(OV).attrs["Scope"] == "swarm"
        with pytest.raises(docker.errors.APIError, match="already exists"):
            client.networks.create(OV, driver="bridge")
        ov.remove()
        net.remove()
        assert PY not in [n.name for n in client.networks.list()]
    finally:
        for name in (PY, OV):
            m.docker("network", "rm", name, check=False)
        client.close()
