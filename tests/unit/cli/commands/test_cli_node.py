"""``shoal node ...`` end to end against the fake daemon (outputs checked against docker 28.2)."""

from __future__ import annotations

import pytest

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon


@pytest.fixture(autouse=True)
def nodes(daemon: FakeDaemon) -> None:
    daemon.add_node("worker-1")
    daemon.add_node("worker-2", state="down")


def test_ls(shoal: Shoal) -> None:
    result = shoal("node", "ls")
    assert (result.status, result.err) == (0, "")
    assert result.out == (
        "ID                            HOSTNAME    STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n"
        "manager100000000000000000 *   manager-1   Ready     Active         Leader           28.2.2\n"
        "worker1100000000000000000     worker-1    Ready     Active                          28.2.2\n"
        "worker2200000000000000000     worker-2    Down      Active                          28.2.2\n"
    )


def test_ls_formats(shoal: Shoal, daemon: FakeDaemon) -> None:
    assert shoal("node", "ls", "-q").out == (
        "manager100000000000000000\nworker1100000000000000000\nworker2200000000000000000\n"
    )
    assert shoal("node", "ls", "--format", "{{.Hostname}} {{.Self}}").out == (
        "manager-1 true\nworker-1 false\nworker-2 false\n"
    )
    first = shoal("node", "ls", "--format", "json").out.splitlines()[0]
    assert first == (
        '{"Availability":"Active","EngineVersion":"28.2.2","Hostname":"manager-1",'
        '"ID":"manager100000000000000000","ManagerStatus":"Leader","Self":true,'
        '"Status":"Ready","TLSStatus":"Unknown"}'
    )
    shoal("node", "ls", "-f", "role=manager")
    assert daemon.calls("GET", "/nodes")[-1][2] == {"filters": '{"role":{"manager":true}}'}


def test_inspect_self_is_resolved_by_the_client(shoal: Shoal, daemon: FakeDaemon) -> None:
    result = shoal("node", "inspect", "--format", "{{.ID}} {{.Spec.Role}}", "self")
    assert result.out == "manager100000000000000000 manager\n"
    assert [p for _, p, _, _ in daemon.requests] == ["/info", "/nodes/manager100000000000000000"]


def test_inspect_json_and_missing(shoal: Shoal) -> None:
    result = shoal("node", "inspect", "worker-1", "nosuch")
    assert result.status == 1
    assert result.out.startswith('[\n    {\n        "ID": "worker1100000000000000000",')
    assert result.err == "Error response from daemon: node nosuch not found\n"


def test_inspect_pretty(shoal: Shoal) -> None:
    assert shoal("node", "inspect", "--pretty", "self").out == (
        "ID:\t\t\tmanager100000000000000000\n"
        "Hostname:              \tmanager-1\n"
        "Joined at:             \t2024-05-01 10:00:00 +0000 utc\n"
        "Status:\n State:\t\t\tReady\n Availability:         \tActive\n Address:\t\t10.0.0.1\n"
        "Manager Status:\n Address:\t\t10.0.0.1:2377\n Raft Status:\t\tReachable\n Leader:\t\tYes\n"
        "Platform:\n Operating System:\tlinux\n Architecture:\t\tx86_64\n"
        "Resources:\n CPUs:\t\t\t4\n Memory:\t\t8GiB\n"
        "Engine Version:\t\t28.2.2\n"
    )
    assert shoal("node", "inspect", "--format", "pretty{{.ID}}", "self").err == (
        "cannot supply extra formatting options to the pretty template\n"
    )


def test_update_is_read_modify_write(shoal: Shoal, daemon: FakeDaemon) -> None:
    node = daemon.nodes[1]
    version = node["Version"]["Index"]
    result = shoal("node", "update", "--label-add", "a=b", "--availability", "drain", "worker-1")
    assert (result.status, result.out) == (0, "worker-1\n")
    _method, path, query, body = daemon.calls("POST")[0]
    assert (path, query) == (f"/nodes/{node['ID']}/update", {"version": str(version)})
    assert body == {"Labels": {"a": "b"}, "Role": "worker", "Availability": "drain"}
    result = shoal("node", "update", "--label-rm", "nope", "worker-1")
    assert (result.status, result.err) == (1, "key nope doesn't exist in node's labels\n")


def test_promote_and_demote(shoal: Shoal, daemon: FakeDaemon) -> None:
    assert (
        shoal("node", "promote", "worker-1").out
        == "Node worker-1 promoted to a manager in the swarm.\n"
    )
    assert daemon.nodes[1]["Spec"]["Role"] == "manager"
    assert (
        shoal("node", "promote", "manager-1").out
        == "Node manager100000000000000000 is already a manager.\n"
    )
    assert shoal("node", "demote", "worker-1").out == "Manager worker-1 demoted in the swarm.\n"


def test_rm_collects_errors(shoal: Shoal, daemon: FakeDaemon) -> None:
    result = shoal("node", "rm", "worker-2", "nosuch")
    assert (result.status, result.out) == (1, "worker-2\n")
    assert result.err == "Error response from daemon: node nosuch not found\n"
    shoal("node", "rm", "-f", "manager-1")
    assert daemon.calls("DELETE")[-1][2] == {"force": "1"}


def test_ps_defaults_to_self(shoal: Shoal, daemon: FakeDaemon) -> None:
    shoal(
        "service", "create", "-d", "--no-resolve-image", "--name", "web", "--replicas", "2", "nginx"
    )
    result = shoal("node", "ps")
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "IMAGE",
        "NODE",
        "DESIRED",
        "STATE",
        "CURRENT",
        "STATE",
        "ERROR",
        "PORTS",
    ]
    assert [line.split()[1] for line in lines[1:]] == ["web.1"]
    assert daemon.calls("GET", "/tasks")[-1][2] == {
        "filters": '{"node":{"manager100000000000000000":true}}'
    }
