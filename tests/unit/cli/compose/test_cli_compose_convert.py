"""Compose to Engine API specs: names and labels of docker's convert package, each field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shoal.cli.compose import convert
from shoal.cli.compose.convert import Namespace
from shoal.cli.compose.loader import Config, ConfigFile, load
from shoal.cli.errors import CliError

from .test_cli_compose_loader import VOTING_APP

NS = Namespace("vote")
LABEL = {"com.docker.stack.namespace": "vote"}
S = 1_000_000_000


def config_of(text: str, working_dir: str = "/stack") -> Config:
    return load([ConfigFile("docker-compose.yml", text)], env={}, working_dir=working_dir)


def spec(config: Config, key: str) -> dict[str, Any]:
    svc = config.services[key]
    refs = {
        kind: convert.file_references(NS, svc.get(kind) or [], getattr(config, kind), kind[:-1])
        for kind in ("secrets", "configs")
    }
    return convert.service_spec(NS, key, svc, config, refs["secrets"], refs["configs"])


def test_voting_app_specs() -> None:
    config = config_of(VOTING_APP)
    creates, external = convert.networks(NS, config)
    assert (sorted(creates), external) == (["vote_backend", "vote_default", "vote_frontend"], [])
    assert creates["vote_frontend"]["Driver"] == "overlay"
    assert creates["vote_frontend"]["Labels"] == LABEL

    vote = spec(config, "vote")
    assert vote["Name"] == "vote_vote"
    assert vote["Labels"] == {**LABEL, "com.docker.stack.image":
                              "dockersamples/examplevotingapp_vote:before"}
    assert vote["Mode"] == {"Replicated": {"Replicas": 2}}
    assert vote["UpdateConfig"]["Parallelism"] == 2
    assert vote["EndpointSpec"] == {"Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 5000, "PublishMode": "ingress"}]}
    assert vote["TaskTemplate"]["RestartPolicy"] == {"Condition": "on-failure"}
    assert vote["TaskTemplate"]["Networks"] == [{"Target": "vote_frontend", "Aliases": ["vote"]}]

    redis = spec(config, "redis")
    assert redis["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 6379, "PublishMode": "ingress"}]
    assert redis["UpdateConfig"] == {"Parallelism": 2, "Delay": 10 * S, "FailureAction": "",
                                     "Monitor": 0, "MaxFailureRatio": 0, "Order": ""}

    db = spec(config, "db")
    assert db["TaskTemplate"]["Placement"] == {"Constraints": ["node.role == manager"]}
    assert db["TaskTemplate"]["ContainerSpec"]["Mounts"] == [{
        "Type": "volume", "Source": "vote_db-data", "Target": "/var/lib/postgresql/data",
        "VolumeOptions": {"NoCopy": False, "Labels": LABEL},
    }]

    worker = spec(config, "worker")
    assert worker["Labels"]["APP"] == "VOTING"
    assert worker["TaskTemplate"]["RestartPolicy"] == {
        "Condition": "on-failure", "Delay": 10 * S, "MaxAttempts": 3, "Window": 120 * S}
    assert [n["Target"] for n in worker["TaskTemplate"]["Networks"]] == [
        "vote_backend", "vote_frontend"]

    visualizer = spec(config, "visualizer")
    container = visualizer["TaskTemplate"]["ContainerSpec"]
    assert container["StopGracePeriod"] == 90 * S
    assert container["Mounts"] == [{"Type": "bind", "Source": "/var/run/docker.sock",
                                    "Target": "/var/run/docker.sock"}]
    assert visualizer["TaskTemplate"]["Networks"] == [
        {"Target": "vote_default", "Aliases": ["visualizer"]}]
    assert "UpdateConfig" not in visualizer and "RestartPolicy" not in visualizer["TaskTemplate"]


def test_container_fields() -> None:
    config = config_of("""
services:
  web:
    image: busybox
    entrypoint: /bin/sh -c
    command: [echo, hi]
    hostname: h
    user: nobody
    working_dir: /w
    tty: true
    read_only: true
    stop_signal: SIGINT
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    labels: {a: b}
    environment: {Z: "1", A: null}
    healthcheck: {test: [CMD, "true"], interval: 2s, retries: 2}
    deploy:
      mode: global
      endpoint_mode: DNSRR
      placement: {preferences: [{spread: node.labels.az}], max_replicas_per_node: 1}
      resources: {limits: {cpus: "1.5", memory: 1G}, reservations: {memory: 10M}}
      rollback_config: {order: start-first}
    volumes:
      - /data
      - {type: tmpfs, target: /tmp, tmpfs: {size: 1M}}
      - {type: bind, source: /srv, target: /srv, read_only: true, bind: {propagation: rslave}}
""")
    out = spec(config, "web")
    container = out["TaskTemplate"]["ContainerSpec"]
    assert container == {
        "Image": "busybox", "Labels": {"a": "b", **LABEL}, "Env": ["A", "Z=1"],
        "Command": ["/bin/sh", "-c"], "Args": ["echo", "hi"], "Hostname": "h", "Dir": "/w",
        "User": "nobody", "StopSignal": "SIGINT", "TTY": True, "ReadOnly": True,
        "CapabilityAdd": ["NET_ADMIN"], "CapabilityDrop": ["ALL"],
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 2 * S, "Retries": 2},
        "Mounts": [
            {"Type": "volume", "Source": "", "Target": "/data"},
            {"Type": "tmpfs", "Source": "", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1 << 20}},
            {"Type": "bind", "Source": "/srv", "Target": "/srv", "ReadOnly": True,
             "BindOptions": {"Propagation": "rslave"}},
        ],
    }
    assert out["Mode"] == {"Global": {}}
    assert out["EndpointSpec"] == {"Mode": "dnsrr"}
    assert out["TaskTemplate"]["Placement"] == {
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.az"}}], "MaxReplicas": 1}
    assert out["TaskTemplate"]["Resources"] == {
        "Limits": {"NanoCPUs": 1_500_000_000, "MemoryBytes": 1 << 30},
        "Reservations": {"NanoCPUs": 0, "MemoryBytes": 10 << 20},
    }
    assert out["RollbackConfig"]["Order"] == "start-first"
    assert out["RollbackConfig"]["Parallelism"] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  a: {image: x, deploy: {mode: global, replicas: 2}}\n",
         "replicas can only be used with replicated or replicated-job mode"),
        ("services:\n  a: {image: x, deploy: {mode: daemon}}\n", "Unknown mode: daemon"),
        ("services:\n  a: {image: x, volumes: ['v:/v']}\n", 'undefined volume "v"'),
        ("services:\n  a: {image: x, secrets: [s]}\n", 'undefined secret "s"'),
        ("services:\n  a: {image: x, healthcheck: {test: [CMD, x], disable: true}}\n",
         "test and disable can't be set at the same time"),
    ],
)
def test_conversion_errors(text: str, message: str) -> None:
    with pytest.raises(CliError, match=message):
        spec(config_of(text), "a")


def test_names_labels_and_externals(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("data")
    config = config_of("""
services:
  a:
    image: x
    networks: {outside: {}, named: {aliases: [alias]}}
    secrets: [mine, theirs]
    volumes: [ext:/e, named:/n]
networks:
  outside: {external: true}
  named: {name: exact-net, internal: true}
secrets:
  mine: {file: s.txt, labels: {k: v}}
  theirs: {external: true, name: other}
volumes:
  ext: {external: true}
  named: {name: exact-vol}
""", working_dir=str(tmp_path))
    creates, external = convert.networks(NS, config)
    assert (list(creates), external) == (["exact-net"], ["outside"])
    assert creates["exact-net"]["Internal"] is True  # no way out for its tasks
    assert convert.file_objects(NS, config.secrets) == [
        {"Name": "vote_mine", "Labels": {"k": "v", **LABEL}, "Data": "ZGF0YQ=="}]
    out = spec(config, "a")
    assert out["TaskTemplate"]["Networks"] == [
        {"Target": "exact-net", "Aliases": ["alias", "a"]},
        {"Target": "outside", "Aliases": ["a"]},
    ]
    refs = convert.file_references(NS, config.services["a"]["secrets"], config.secrets, "secret")
    assert [r["Name"] for r in refs] == ["vote_mine", "other"]
    mounts = out["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert mounts[0] == {"Type": "volume", "Source": "ext", "Target": "/e",
                         "VolumeOptions": {"NoCopy": False}}
    assert mounts[1]["Source"] == "exact-vol"


def test_container_options_and_logging() -> None:
    """init, stdin_open, isolation, oom_score_adj, sysctls, ulimits, extra_hosts, dns,
    dns_search and logging, as docker/cli's convert.Service."""
    config = config_of("""
version: "3.13"
services:
  web:
    image: web
    init: true
    stdin_open: true
    isolation: default
    oom_score_adj: 200
    sysctls: [net.core.somaxconn=1024]
    ulimits:
      nproc: 65535
      nofile: {soft: 20000, hard: 40000}
    extra_hosts: ["db:10.0.0.9", "six:::1"]
    dns: 9.9.9.9
    dns_search: [example.com]
    deploy:
      resources:
        limits: {pids: 30}
    logging:
      driver: json-file
      options: {max-size: 1m}
""")
    web = spec(config, "web")
    cs = web["TaskTemplate"]["ContainerSpec"]
    assert cs["Init"] is True and cs["OpenStdin"] is True and cs["OomScoreAdj"] == 200
    assert cs["Isolation"] == "default" and cs["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert cs["Ulimits"] == [{"Name": "nofile", "Soft": 20000, "Hard": 40000},
                             {"Name": "nproc", "Soft": 65535, "Hard": 65535}]
    assert cs["Hosts"] == ["10.0.0.9 db", "::1 six"]
    assert cs["DNSConfig"] == {"Nameservers": ["9.9.9.9"], "Search": ["example.com"]}
    assert web["TaskTemplate"]["Resources"]["Limits"]["Pids"] == 30
    assert web["TaskTemplate"]["LogDriver"] == {"Name": "json-file",
                                                "Options": {"max-size": "1m"}}
    plain = spec(config_of("services:\n  web:\n    image: web\n"), "web")
    assert "LogDriver" not in plain["TaskTemplate"]
    assert not {"Init", "OpenStdin", "DNSConfig", "Ulimits"} & set(plain["TaskTemplate"]["ContainerSpec"])


def test_bad_ulimit_is_a_schema_error() -> None:
    with pytest.raises(CliError, match="services.web.ulimits.nofile must be a integer"):
        config_of("services:\n  web:\n    image: web\n    ulimits:\n      nofile: {soft: 1}\n")
