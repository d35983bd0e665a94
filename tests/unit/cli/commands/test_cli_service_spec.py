"""``service create`` builds the request bodies docker sends (engine-api.md section 4)."""

from __future__ import annotations

from typing import Any

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon

S = 1_000_000_000


def created(shoal: Shoal, *args: str) -> dict[str, Any]:
    result = shoal("service", "create", "-d", *args)
    assert result.status == 0, result.err
    body: dict[str, Any] = shoal.daemon.calls("POST", "/services/create")[-1][3]
    return body


def test_frontend_example(shoal: Shoal, daemon: FakeDaemon) -> None:
    net = daemon.add_network("mynet")
    body = created(
        shoal,
        "--replicas",
        "3",
        "--name",
        "frontend",
        "--network",
        "mynet",
        "--publish",
        "80:80/tcp",
        "frontend_image:latest",
    )
    assert body == {
        "Name": "frontend",
        "Labels": {},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": f"frontend_image:latest@{daemon.digest}",
                "Init": False,
                "DNSConfig": {},
            },
            "Resources": {"Limits": {}, "Reservations": {}},
            "Placement": {"Platforms": [{"Architecture": "amd64", "OS": "linux"}]},
            "Networks": [{"Target": net["Id"]}],
            "ForceUpdate": 0,
        },
        "Mode": {"Replicated": {"Replicas": 3}},
        "EndpointSpec": {
            "Mode": "vip",
            "Ports": [
                {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 80, "PublishMode": "ingress"}
            ],
        },
    }
    # the CLI resolved the network by name, then pinned the image, then created
    paths = [(m, p) for m, p, _, _ in daemon.requests]
    assert paths == [
        ("GET", "/networks/mynet"),
        ("GET", "/distribution/frontend_image:latest/json"),
        ("POST", "/services/create"),
    ]
    assert daemon.requests[0][2] == {"scope": "swarm"}


def test_constraints_and_other_flags_example(shoal: Shoal) -> None:
    body = created(
        shoal,
        "--no-resolve-image",
        "--constraint",
        "engine.labels.com.example.storage==ssd",
        "--constraint",
        "node.role!=manager",
        "--placement-pref",
        "spread=node.labels.zone",
        "--limit-cpu",
        "0.5",
        "--limit-memory",
        "256M",
        "--reserve-cpu",
        "0.25",
        "--reserve-memory",
        "128M",
        "--restart-condition",
        "on-failure",
        "--restart-delay",
        "5s",
        "--restart-max-attempts",
        "3",
        "--update-parallelism",
        "2",
        "--update-delay",
        "10s",
        "--update-failure-action",
        "rollback",
        "--env",
        "FOO=bar",
        "--label",
        "com.x=y",
        "--container-label",
        "c=d",
        "--replicas",
        "2",
        "--name",
        "storage",
        "redis:7",
        "redis-server",
        "--appendonly",
        "yes",
    )
    assert body == {
        "Name": "storage",
        "Labels": {"com.x": "y"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "redis:7",
                "Labels": {"c": "d"},
                "Args": ["redis-server", "--appendonly", "yes"],
                "Env": ["FOO=bar"],
                "Init": False,
                "DNSConfig": {},
            },
            "Resources": {
                "Limits": {"NanoCPUs": 500000000, "MemoryBytes": 268435456},
                "Reservations": {"NanoCPUs": 250000000, "MemoryBytes": 134217728},
            },
            "RestartPolicy": {"Condition": "on-failure", "Delay": 5 * S, "MaxAttempts": 3},
            "Placement": {
                "Constraints": ["engine.labels.com.example.storage==ssd", "node.role!=manager"],
                "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
            },
            "ForceUpdate": 0,
        },
        "Mode": {"Replicated": {"Replicas": 2}},
        "UpdateConfig": {
            "Parallelism": 2,
            "Delay": 10 * S,
            "FailureAction": "rollback",
            "Monitor": 5 * S,
            "MaxFailureRatio": 0,
            "Order": "stop-first",
        },
        "EndpointSpec": {"Mode": "vip"},
    }


def test_healthcheck_example(shoal: Shoal) -> None:
    body = created(
        shoal,
        "--no-resolve-image",
        "--health-cmd",
        "curl -f http://localhost/",
        "--health-interval",
        "5m",
        "--health-timeout",
        "3s",
        "--health-retries",
        "4",
        "--health-start-period",
        "10s",
        "nginx",
    )
    assert body["TaskTemplate"]["ContainerSpec"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f http://localhost/"],
        "Interval": 300 * S,
        "Timeout": 3 * S,
        "StartPeriod": 10 * S,
        "Retries": 4,
    }
    assert body["TaskTemplate"]["ContainerSpec"]["Image"] == "nginx:latest"


def test_defaults_without_flags(shoal: Shoal) -> None:
    body = created(shoal, "--no-resolve-image", "nginx")
    assert body["Mode"] == {"Replicated": {}}  # no Replicas: the daemon stores 1
    assert (
        "Name" not in body
        and "UpdateConfig" not in body
        and "RestartPolicy" not in body["TaskTemplate"]
    )
    assert body["TaskTemplate"]["Placement"] == {}


def test_modes(shoal: Shoal) -> None:
    assert created(shoal, "--mode", "global", "nginx")["Mode"] == {"Global": {}}
    assert created(
        shoal, "--mode", "replicated-job", "--replicas", "4", "--max-concurrent", "2", "busybox"
    )["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 4}}
    assert created(shoal, "--mode", "global-job", "busybox")["Mode"] == {"GlobalJob": {}}


def test_entrypoint_mounts_and_misc(shoal: Shoal) -> None:
    body = created(
        shoal,
        "--no-resolve-image",
        "--entrypoint",
        "/bin/sh -x",
        "--mount",
        "type=bind,source=/a,target=/b,readonly",
        "--read-only",
        "--stop-signal",
        "SIGTERM",
        "--stop-grace-period",
        "20s",
        "--hostname",
        "h",
        "-u",
        "nobody",
        "-w",
        "/srv",
        "--endpoint-mode",
        "dnsrr",
        "--replicas-max-per-node",
        "2",
        "-p",
        "mode=host,target=443,published=8443",
        "nginx",
        "-c",
        "true",
    )
    spec = body["TaskTemplate"]["ContainerSpec"]
    assert spec["Command"] == ["/bin/sh", "-x"] and spec["Args"] == ["-c", "true"]
    assert spec["Mounts"] == [{"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True}]
    assert (spec["ReadOnly"], spec["StopSignal"], spec["StopGracePeriod"]) == (
        True,
        "SIGTERM",
        20 * S,
    )
    assert (spec["Hostname"], spec["User"], spec["Dir"]) == ("h", "nobody", "/srv")
    assert body["TaskTemplate"]["Placement"] == {"MaxReplicas": 2}
    assert body["EndpointSpec"] == {
        "Mode": "dnsrr",
        "Ports": [
            {"Protocol": "tcp", "TargetPort": 443, "PublishedPort": 8443, "PublishMode": "host"}
        ],
    }


def test_env_later_values_win(shoal: Shoal) -> None:
    body = created(shoal, "--no-resolve-image", "-e", "A=1", "-e", "B=2", "-e", "A=3", "nginx")
    assert body["TaskTemplate"]["ContainerSpec"]["Env"] == ["B=2", "A=3"]


def test_distribution_failure_warns_and_keeps_the_tag(shoal: Shoal, daemon: FakeDaemon) -> None:
    daemon.distribution_fails = True
    result = shoal("service", "create", "-d", "nginx")
    assert result.status == 0
    assert result.err == (
        "image nginx:latest could not be accessed on a registry to record\n"
        "its digest. Each node will access nginx:latest independently,\n"
        "possibly leading to different nodes running different\n"
        "versions of the image.\n\n"
    )
    assert (
        daemon.calls("POST", "/services/create")[0][3]["TaskTemplate"]["ContainerSpec"]["Image"]
        == "nginx:latest"
    )


def test_mode_errors(shoal: Shoal, daemon: FakeDaemon) -> None:
    cases = [
        (
            ["--mode", "global", "--replicas", "2"],
            "replicas can only be used with replicated or replicated-job mode",
        ),
        (["--max-concurrent", "2"], "max-concurrent can only be used with replicated-job mode"),
        (["--mode", "weird"], "Unknown mode: weird, only replicated and global supported"),
        (
            ["--mode", "replicated-job", "--update-delay", "1s"],
            "update and rollback configuration is not supported for jobs",
        ),
        (
            ["--no-healthcheck", "--health-cmd", "x"],
            "--no-healthcheck conflicts with --health-\\* options",
        ),
    ]
    for flags, message in cases:
        result = shoal("service", "create", "-d", *flags, "nginx")
        assert result.status == 1
        assert result.err.strip() == message.replace("\\", "")
    assert not daemon.calls("POST")
