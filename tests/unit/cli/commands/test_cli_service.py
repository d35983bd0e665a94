"""``shoal service ...`` end to end (table outputs checked against docker 28.2)."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon


@pytest.fixture(autouse=True)
def cluster(daemon: FakeDaemon) -> None:
    daemon.add_node("worker-1")
    daemon.add_network("mynet")


def make(shoal: Shoal, *args: str) -> str:
    result = shoal("service", "create", "-d", "--no-resolve-image", *args)
    assert result.status == 0, result.err
    for task in shoal.daemon.tasks:
        task["Status"]["State"] = "running"
    return result.out.strip()


def test_create_waits_for_convergence(shoal: Shoal) -> None:
    result = shoal("service", "create", "--name", "web", "--replicas", "2", "nginx")
    service_id = result.out.splitlines()[0]
    lines = result.out.splitlines()
    assert lines[1:4] == ["overall progress: 0 out of 2 tasks", "1/2:  ", "2/2:  "]
    assert "overall progress: 2 out of 2 tasks" in lines
    assert lines[-1] == f"verify: Service {service_id} converged"
    quiet = shoal("service", "create", "-q", "--name", "web2", "nginx")
    assert quiet.out.count("\n") == 1


def test_ls(shoal: Shoal) -> None:
    make(shoal, "--name", "web", "--replicas", "2", "-p", "8080:80", "-p", "8081:81", "nginx")
    make(shoal, "--name", "g", "--mode", "global", "redis:7")
    make(shoal, "--name", "db", "--replicas-max-per-node", "1", "postgres")
    web, g, db = (s["ID"][:12] for s in shoal.daemon.services)
    assert shoal("service", "ls").out == (
        "ID             NAME      MODE         REPLICAS               IMAGE             PORTS\n"
        f"{db}   db        replicated   1/1 (max 1 per node)   postgres:latest   \n"
        f"{g}   g         global       2/2                    redis:7           \n"
        f"{web}   web       replicated   2/2                    nginx:latest      *:8080-8081->80-81/tcp\n"
    )
    assert shoal.daemon.calls("GET", "/services")[-1][2] == {"status": "true"}
    assert shoal("service", "ls", "-q").out == f"{db}\n{g}\n{web}\n"
    assert shoal.daemon.calls("GET", "/services")[-1][2] == {}


def test_ps_names_history_and_errors(shoal: Shoal, daemon: FakeDaemon) -> None:
    make(shoal, "--name", "web", "--replicas", "2", "nginx")
    daemon.tasks[1]["Status"].update(
        State="pending", Err="no suitable node (scheduling constraints not satisfied)"
    )
    shoal("service", "update", "-d", "--force", "web")
    daemon.tasks[2]["Status"].update(State="running", Timestamp="2024-05-01T10:00:04Z")
    result = shoal("service", "ps", "web")
    lines = result.out.splitlines()
    assert lines[0] == (
        "ID             NAME        IMAGE          NODE        DESIRED STATE   CURRENT STATE"
        "            ERROR                              PORTS"
    )
    assert [line[15:27].rstrip() for line in lines[1:]] == [
        "web.1",
        " \\_ web.1",
        "web.2",
        " \\_ web.2",
    ]
    assert "   Running         Running 1 second ago   " in lines[1]
    assert lines[4].endswith('Shutdown 5 seconds ago   "no suitable node (scheduling …"   ')
    assert shoal("service", "ps", "-q", "web").out.splitlines()[0] == daemon.tasks[2]["ID"]


def test_ps_resolution(shoal: Shoal) -> None:
    service_id = make(shoal, "--name", "web", "nginx")
    for ref in ("web", service_id, service_id[:5]):
        assert shoal("service", "ps", "--format", "{{.Name}}", ref).out == "web.1\n"
    missing = shoal("service", "ps", "web", "nosuch")
    assert (missing.status, missing.out, missing.err) == (
        1,
        missing.out,
        "no such service: nosuch\n",
    )
    assert missing.out.splitlines()[1].split()[1] == "web.1"
    none = shoal("service", "ps", "nosuch")
    assert (none.status, none.out, none.err) == (1, "", "no such service: nosuch\n")


def test_inspect(shoal: Shoal) -> None:
    make(
        shoal,
        "--name",
        "web",
        "--network",
        "mynet",
        "-p",
        "80:80",
        "--limit-memory",
        "256M",
        "nginx",
    )
    assert (
        shoal(
            "service", "inspect", "-f", "{{.Spec.Name}} {{.Spec.Mode.Replicated.Replicas}}", "web"
        ).out
        == "web 1\n"
    )
    assert shoal.daemon.calls("GET", "/services/web")[-1][2] == {"insertDefaults": "true"}
    pretty = shoal("service", "inspect", "--pretty", "web").out
    assert "\nName:\t\tweb\nService Mode:\tReplicated\n Replicas:\t1\n" in pretty
    assert "Networks: mynet \nEndpoint Mode:\tvip\n" in pretty
    assert " Limits:\n  Memory:\t256MiB\n" in pretty
    missing = shoal("service", "inspect", "nosuch")
    assert (missing.status, missing.out, missing.err) == (
        1,
        "[]\n",
        "Error: no such service: nosuch\n",
    )


def test_scale(shoal: Shoal, daemon: FakeDaemon) -> None:
    make(shoal, "--name", "web", "nginx")
    make(shoal, "--name", "g", "--mode", "global", "nginx")
    result = shoal("service", "scale", "-d", "web=3", "g=2")
    assert result.out == "web scaled to 3\n"
    assert result.err == "g: scale can only be used with replicated or replicated-job mode\n"
    assert result.status == 1
    _, _path, query, body = daemon.calls("POST", "/services/")[-1]
    assert query == {"version": query["version"]} and body["Mode"] == {
        "Replicated": {"Replicas": 3}
    }
    bad = shoal("service", "scale", "web")
    assert bad.err.startswith("invalid scale specifier 'web'.\nSee 'shoal service scale --help'.")
    waited = shoal("service", "scale", "web=1")
    assert waited.out.splitlines()[-1] == "verify: Service web converged"


def update_body(shoal: Shoal, *flags: str) -> dict[str, Any]:
    result = shoal("service", "update", "-d", *flags, "web")
    assert (result.status, result.out) == (0, "web\n"), result.err
    return shoal.daemon.calls("POST", "/services/")[-1][3]  # type: ignore[no-any-return]


def test_update_merges_flags_into_the_current_spec(shoal: Shoal, daemon: FakeDaemon) -> None:
    make(
        shoal,
        "--name",
        "web",
        "-e",
        "B=2",
        "--constraint",
        "node.role==manager",
        "-p",
        "80:80",
        "nginx",
    )
    body = update_body(
        shoal,
        "--replicas",
        "4",
        "--env-add",
        "A=1",
        "--label-add",
        "k=v",
        "--publish-add",
        "9090:90",
        "--constraint-add",
        "node.role==worker",
        "--limit-cpu",
        "0.5",
        "--update-parallelism",
        "2",
        "--restart-condition",
        "on-failure",
    )
    spec = body["TaskTemplate"]
    assert body["Mode"] == {"Replicated": {"Replicas": 4}}
    assert spec["ContainerSpec"]["Env"] == ["B=2", "A=1"]
    assert body["Labels"] == {"k": "v"}
    assert spec["Placement"]["Constraints"] == ["node.role==manager", "node.role==worker"]
    assert [p["TargetPort"] for p in body["EndpointSpec"]["Ports"]] == [80, 90]
    assert spec["Resources"]["Limits"] == {"NanoCPUs": 500_000_000}
    assert body["UpdateConfig"] == {
        "Parallelism": 2,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    assert spec["RestartPolicy"] == {
        "Condition": "on-failure",
        "Delay": 5_000_000_000,
        "MaxAttempts": 0,
    }
    query = daemon.calls("POST", "/services/")[-1][2]
    assert query["registryAuthFrom"] == "spec"
    body = update_body(
        shoal,
        "--env-rm",
        "A",
        "--env-rm",
        "B",
        "--publish-rm",
        "80",
        "--publish-rm",
        "90",
        "--constraint-rm",
        "node.role==manager",
        "--constraint-rm",
        "node.role==worker",
    )
    assert (
        "Env" not in body["TaskTemplate"]["ContainerSpec"] and "Ports" not in body["EndpointSpec"]
    )
    assert body["TaskTemplate"]["Placement"] == {}


def test_update_image_force_and_rollback(shoal: Shoal, daemon: FakeDaemon) -> None:
    make(shoal, "--name", "web", "nginx")
    body = update_body(shoal, "--image", "redis")
    assert body["TaskTemplate"]["ContainerSpec"]["Image"] == f"redis:latest@{daemon.digest}"
    assert daemon.calls("GET", "/distribution/")[-1][1] == "/distribution/redis:latest/json"
    assert update_body(shoal, "--force")["TaskTemplate"]["ForceUpdate"] == 1
    shoal("service", "update", "-d", "--rollback", "web")
    assert daemon.calls("POST", "/services/")[-1][2]["rollback"] == "previous"
    mixed = shoal("service", "update", "--rollback", "--replicas", "2", "web")
    assert (mixed.status, mixed.err) == (1, "other flags may not be combined with --rollback\n")
    rolled = shoal("service", "rollback", "-d", "web")
    assert (rolled.status, rolled.out) == (0, "web\n")


def test_update_networks_mounts_and_health(shoal: Shoal, daemon: FakeDaemon) -> None:
    make(shoal, "--name", "web", "nginx")
    net_id = daemon.networks[0]["Id"]
    body = update_body(
        shoal,
        "--network-add",
        "mynet",
        "--mount-add",
        "type=bind,source=/a,target=/b",
        "--health-cmd",
        "true",
        "--health-interval",
        "5s",
        "--args",
        "-g 'daemon off;'",
        "--read-only",
    )
    container = body["TaskTemplate"]["ContainerSpec"]
    assert body["TaskTemplate"]["Networks"] == [{"Target": net_id}]
    assert container["Mounts"] == [{"Type": "bind", "Source": "/a", "Target": "/b"}]
    assert container["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}
    assert container["Args"] == ["-g", "daemon off;"] and container["ReadOnly"] is True
    again = shoal("service", "update", "-d", "--network-add", "mynet", "web")
    assert again.err == "service is already attached to network mynet\n"


def test_rm(shoal: Shoal) -> None:
    make(shoal, "--name", "web", "nginx")
    result = shoal("service", "rm", "web", "nosuch")
    assert (result.status, result.out, result.err) == (
        1,
        "web\n",
        "Error response from daemon: service nosuch not found\n",
    )
