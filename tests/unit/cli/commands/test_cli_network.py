"""``shoal network ...`` end to end."""

from __future__ import annotations

import pytest

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon


@pytest.fixture(autouse=True)
def networks(daemon: FakeDaemon) -> None:
    daemon.add_network("ingress", ingress=True)
    daemon.add_network("bridge", driver="bridge", scope="local")
    daemon.add_network("mynet")


def test_create_sends_docker_body(shoal: Shoal, daemon: FakeDaemon) -> None:
    result = shoal("network", "create", "-d", "overlay", "mynet2")
    assert (result.status, result.out) == (0, daemon.networks[-1]["Id"] + "\n")
    assert daemon.calls("POST")[0][3] == {
        "Driver": "overlay",
        "Scope": "",
        "IPAM": {"Driver": "default", "Options": {}, "Config": []},
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "ConfigOnly": False,
        "ConfigFrom": None,
        "Options": {},
        "Labels": {},
        "Name": "mynet2",
    }


def test_create_with_ipam_and_options(shoal: Shoal, daemon: FakeDaemon) -> None:
    shoal(
        "network",
        "create",
        "-d",
        "overlay",
        "--attachable",
        "--subnet",
        "10.1.0.0/24",
        "--gateway",
        "10.1.0.1",
        "--ip-range",
        "10.1.0.0/25",
        "--label",
        "a=b",
        "-o",
        "com.x=1",
        "--ipv6",
        "--internal",
        "n3",
    )
    body = daemon.calls("POST")[0][3]
    assert body["IPAM"]["Config"] == [
        {"Subnet": "10.1.0.0/24", "IPRange": "10.1.0.0/25", "Gateway": "10.1.0.1"}
    ]
    assert (body["Attachable"], body["Internal"], body["EnableIPv6"]) == (True, True, True)
    assert (body["Labels"], body["Options"]) == ({"a": "b"}, {"com.x": "1"})
    assert "EnableIPv4" not in body
    result = shoal("network", "create", "--subnet", "10.1.0.0/24", "--gateway", "10.2.0.1", "bad")
    assert (result.status, result.err) == (1, "no matching subnet for gateway 10.2.0.1\n")


def test_create_duplicate(shoal: Shoal) -> None:
    result = shoal("network", "create", "mynet")
    assert (result.status, result.err) == (
        1,
        "Error response from daemon: network with name mynet already exists\n",
    )


def test_ls(shoal: Shoal) -> None:
    assert shoal("network", "ls").out == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "netbridge100   bridge    bridge    local\n"
        "netingress00   ingress   overlay   swarm\n"
        "netmynet2000   mynet     overlay   swarm\n"
    )
    assert (
        shoal("network", "ls", "-q", "--no-trunc").out.splitlines()[0]
        == "netbridge1000000000000000"
    )
    assert shoal("network", "ls", "--format", "{{.Name}}:{{.Driver}}").out == (
        "bridge:bridge\ningress:overlay\nmynet:overlay\n"
    )


def test_inspect_and_rm(shoal: Shoal, daemon: FakeDaemon) -> None:
    assert shoal("network", "inspect", "-f", "{{.Name}} {{.Scope}}", "mynet").out == "mynet swarm\n"
    result = shoal("network", "rm", "mynet", "nosuch")
    assert (result.status, result.out) == (1, "mynet\n")
    assert result.err == "Error response from daemon: network nosuch not found\nexit status 1\n"
    assert shoal("network", "rm", "-f", "nosuch").status == 0


def test_rm_ingress_asks_first(shoal: Shoal, daemon: FakeDaemon) -> None:
    result = shoal("network", "rm", "ingress", input="n\n")
    assert result.status == 0
    assert result.out.startswith("WARNING! Before removing the routing-mesh network")
    assert not daemon.calls("DELETE")
