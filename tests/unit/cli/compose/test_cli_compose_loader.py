"""Loading compose files: YAML, interpolation, each mapping, merging, refusals naming the
file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.cli.compose.loader import Config, ConfigFile, load
from shoal.cli.errors import CliError

# The stack of Docker's voting-app sample (dockersamples/example-voting-app, docker-stack.yml),
# written here in our own layout: five app services and a visualizer, two overlay networks, a
# named volume, unquoted "5000:80" ports, depends_on, deploy labels as a list.
VOTING_APP = """
version: "3"
services:
  redis:
    image: redis:alpine
    ports: ["6379"]
    networks: [frontend]
    deploy:
      replicas: 2
      update_config: {parallelism: 2, delay: 10s}
      restart_policy: {condition: on-failure}
  db:
    image: postgres:9.4
    volumes: [db-data:/var/lib/postgresql/data]
    networks: [backend]
    deploy:
      placement: {constraints: [node.role == manager]}
  vote:
    image: dockersamples/examplevotingapp_vote:before
    ports:
      - 5000:80
    networks: [frontend]
    depends_on: [redis]
    deploy:
      replicas: 2
      update_config: {parallelism: 2}
      restart_policy: {condition: on-failure}
  result:
    image: dockersamples/examplevotingapp_result:before
    ports:
      - 5001:80
    networks: [backend]
    depends_on: [db]
    deploy:
      replicas: 2
      update_config: {parallelism: 2, delay: 10s}
      restart_policy: {condition: on-failure}
  worker:
    image: dockersamples/examplevotingapp_worker
    networks: [frontend, backend]
    deploy:
      mode: replicated
      replicas: 1
      labels: [APP=VOTING]
      restart_policy: {condition: on-failure, delay: 10s, max_attempts: 3, window: 120s}
  visualizer:
    image: manomarks/visualizer
    ports: ["8080:8080"]
    stop_grace_period: 1m30s
    volumes: ["/var/run/docker.sock:/var/run/docker.sock"]
networks:
  frontend:
  backend:
volumes:
  db-data:
"""

S = 1_000_000_000


def load_one(text: str, env: dict[str, str] | None = None, *, name: str = "docker-compose.yml",
             working_dir: str = "/stack") -> Config:
    return load([ConfigFile(name, text)], env=env or {}, working_dir=working_dir)


def refused(text: str, name: str = "docker-compose.yml") -> str:
    with pytest.raises(CliError) as info:
        load_one(text, name=name)
    return str(info.value)


def test_voting_app_loads() -> None:
    config = load_one(VOTING_APP)
    assert sorted(config.services) == ["db", "redis", "result", "visualizer", "vote", "worker"]
    assert config.services["vote"]["ports"] == [
        {"target": 80, "published": 5000, "protocol": "tcp", "mode": "ingress"}
    ]
    assert config.services["redis"]["ports"] == [
        {"target": 6379, "published": 0, "protocol": "tcp", "mode": "ingress"}
    ]
    assert config.services["worker"]["deploy"] == {
        "mode": "replicated",
        "replicas": 1,
        "labels": {"APP": "VOTING"},
        "restart_policy": {"condition": "on-failure", "delay": 10 * S, "max_attempts": 3,
                           "window": 120 * S},
    }
    assert config.services["visualizer"]["stop_grace_period"] == 90 * S
    assert config.services["visualizer"]["volumes"] == [
        {"source": "/var/run/docker.sock", "target": "/var/run/docker.sock", "type": "bind"}
    ]
    assert config.services["db"]["volumes"] == [
        {"source": "db-data", "target": "/var/lib/postgresql/data", "type": "volume"}
    ]
    assert set(config.networks) == {"frontend", "backend"}
    assert config.volumes == {"db-data": {"external": False, "name": ""}}
    # not honoured in a swarm, so not silent: `stack deploy` prints these
    assert [w for w in config.warnings if "depends_on" in w] == [
        f"docker-compose.yml: services.{name}.depends_on: ignored: a swarm starts services in no order"
        for name in ("vote", "result")
    ]


def test_base_60_numbers_stay_strings() -> None:
    config = load_one("services:\n  a:\n    image: x\n    ports:\n      - 5001:50\n")
    assert config.services["a"]["ports"][0]["published"] == 5001


def test_interpolation_from_the_environment() -> None:
    text = """
services:
  web:
    image: "nginx:${TAG:-latest}"
    environment: [ "PRICE=$$5", "USER=${WHO-nobody}" ]
    deploy:
      replicas: ${REPLICAS}
"""
    config = load_one(text, {"REPLICAS": "3", "WHO": ""})
    web = config.services["web"]
    assert web["image"] == "nginx:latest"
    assert web["environment"] == {"PRICE": "$5", "USER": ""}
    assert web["deploy"]["replicas"] == 3


def test_bad_interpolation_names_file_and_key() -> None:
    assert refused("services:\n  web:\n    image: a${\n", name="f.yml") == (
        'f.yml: invalid interpolation format for services.web.image: "a${"; you may need to '
        "escape any $ with another $"
    )


def test_yaml_errors_name_file_and_line() -> None:
    message = refused("services:\n  web:\n    image: a\n   bad: [\n", name="stack.yml")
    assert message.startswith("stack.yml: yaml: line ")
    assert refused("- a\n") == "docker-compose.yml: Top-level object must be a mapping"


def test_garbage_gets_one_clear_line() -> None:
    """Alias bombs, an anchor inside itself and numbers past 64 bits are refused, never
    expanded, recursed into or passed on (yaml.v3 and Go's integer types refuse them too)."""
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    bomb = "x-" + "\nx-".join(levels) + "\nservices:\n  web: {image: a, labels: {k: v}}\n"
    assert refused(bomb) == "docker-compose.yml: yaml: document contains excessive aliasing"
    assert refused("x-a: &a [*a]\nservices: {}\n") == (
        "docker-compose.yml: yaml: an anchor's value contains itself")
    assert refused("services: {web: {image: a, deploy: {replicas: 99999999999999999999999}}}\n") \
        == "docker-compose.yml: services.web.deploy.replicas must be a integer within 64 bits"
    # shared anchors that stay small load as before
    shared = load_one("x-l: &l {k: v}\nservices:\n  a: {image: a, labels: *l}\n"
                      "  b: {image: b, labels: *l}\n")
    assert shared.services["b"]["labels"] == {"k": "v"}


def test_versions() -> None:
    assert load_one("version: '3.8'\nservices: {}\n").version == "3.8"
    assert load_one("services: {}\n").version == "3.13"
    assert refused("version: '2.4'\n") == (
        "docker-compose.yml: unsupported Compose file version: 2.4"
    )
    with pytest.raises(CliError, match="version mismatched between two composefiles : 3.8 and 3.9"):
        load([ConfigFile("a", "version: '3.8'\n"), ConfigFile("b", "version: '3.9'\n")], env={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("services:\n  web:\n    build: .\n",
         "docker-compose.yml: services.web.build: not supported by shoal stack deploy"),
        ("services:\n  web:\n    privileged: true\n",
         "docker-compose.yml: services.web.privileged: not supported by shoal stack deploy"),
        ("services:\n  web:\n    deploy:\n      resources:\n        reservations:\n          pids: 3\n",
         ("docker-compose.yml: services.web.deploy.resources.reservations.pids: not supported by "
         "shoal stack deploy")),
        ("services:\n  web:\n    networks:\n      n:\n        ipv4_address: 10.0.0.2\n",
         ("docker-compose.yml: services.web.networks.n.ipv4_address: not supported by shoal stack "
         "deploy")),
        ("secrets:\n  s:\n    driver: vault\n",
         "docker-compose.yml: secrets.s.driver: not supported by shoal stack deploy"),
        ("volumes:\n  v:\n    driver_opts: {type: nfs}\n",
         "docker-compose.yml: volumes.v.driver_opts: not supported by shoal stack deploy"),
        ("networks:\n  n:\n    ipam:\n      config: [{subnet: 10.1.0.0/24, gateway: 10.1.0.1}]\n",
         ("docker-compose.yml: networks.n.ipam.config.gateway: not supported by shoal stack "
         "deploy")),
        ("services:\n  web:\n    pull_policy: always\n",
         "docker-compose.yml: services.web Additional property pull_policy is not allowed"),
        ("name: x\n", "docker-compose.yml: (root) Additional property name is not allowed"),
        ("services:\n  web:\n    deploy:\n      replicas: many\n",
         "docker-compose.yml: services.web.deploy.replicas must be a integer"),
        ("services:\n  web:\n    volumes: ['./a:/b:z']\n",
         ("docker-compose.yml: services.web.volumes: volume mode 'z' in './a:/b:z': not supported "
         "by shoal stack deploy")),
    ],
)
def test_refusals_name_file_and_key(text: str, expected: str) -> None:
    assert refused(text) == expected


def test_extension_fields_are_allowed() -> None:
    config = load_one("x-common: &c {image: busybox}\nservices:\n  a:\n    <<: *c\n    x-note: 1\n")
    assert config.services["a"]["image"] == "busybox"


def test_service_fields() -> None:
    text = """
services:
  web:
    image: busybox
    command: sh -c 'echo "hi there"'
    entrypoint: [/bin/tini, --]
    environment: {A: "1", FROM_ENV: null}
    labels: [a=b, c]
    hostname: h
    user: "1000:1000"
    working_dir: /w
    tty: true
    read_only: "true"
    stop_signal: SIGINT
    healthcheck:
      test: curl -f localhost
      interval: 5s
      timeout: 2s
      retries: 3
      start_period: 1s
    ports:
      - {target: 80, published: 8080, protocol: udp, mode: host}
      - "9090-9091:8080-8081/udp"
      - "127.0.0.1:8443:443"
    networks:
      front: {aliases: [www]}
      back:
    secrets: [a, {source: b, target: /run/b, uid: "1", gid: "2", mode: 0400}]
    configs: [c]
    deploy:
      mode: global
      endpoint_mode: dnsrr
      placement:
        constraints: [node.labels.x == y]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "0.5", memory: 512M}
        reservations: {cpus: 0.25, memory: 1024}
      rollback_config: {parallelism: 0, order: start-first, failure_action: pause,
                        monitor: 1m, max_failure_ratio: 0.5}
"""
    config = load_one(text, {"FROM_ENV": "env"})
    web = config.services["web"]
    assert web["command"] == ["sh", "-c", 'echo "hi there"']
    assert web["entrypoint"] == ["/bin/tini", "--"]
    assert web["environment"] == {"A": "1", "FROM_ENV": "env"}
    assert web["labels"] == {"a": "b", "c": ""}
    assert (web["hostname"], web["user"], web["working_dir"]) == ("h", "1000:1000", "/w")
    assert (web["tty"], web["read_only"], web["stop_signal"]) == (True, True, "SIGINT")
    assert web["healthcheck"] == {"test": ["CMD-SHELL", "curl -f localhost"], "interval": 5 * S,
                                  "timeout": 2 * S, "retries": 3, "start_period": S}
    assert web["ports"] == [
        {"target": 80, "published": 8080, "protocol": "udp", "mode": "host"},
        {"target": 8080, "published": 9090, "protocol": "udp", "mode": "ingress"},
        {"target": 8081, "published": 9091, "protocol": "udp", "mode": "ingress"},
        {"target": 443, "published": 8443, "protocol": "tcp", "mode": "ingress"},
    ]
    assert config.warnings == [
        "ignoring IP-address (127.0.0.1:8443:443/tcp) service will listen on '0.0.0.0'"
    ]
    assert web["networks"] == {"front": {"aliases": ["www"]}, "back": {}}
    assert web["secrets"] == [
        {"source": "a"}, {"source": "b", "target": "/run/b", "uid": "1", "gid": "2", "mode": 0o400}
    ]
    assert web["configs"] == [{"source": "c"}]
    deploy = web["deploy"]
    assert deploy["placement"] == {"constraints": ["node.labels.x == y"],
                                   "preferences": ["node.labels.zone"], "max_replicas_per_node": 2}
    assert deploy["resources"] == {"limits": {"cpus": 500_000_000, "memory": 512 * 1024 * 1024},
                                   "reservations": {"cpus": 250_000_000, "memory": 1024}}
    assert deploy["rollback_config"] == {"parallelism": 0, "order": "start-first",
                                         "failure_action": "pause", "monitor": 60 * S,
                                         "max_failure_ratio": 0.5}


def test_env_file_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "web.env").write_text("# comment\nA=from-file\nB=b\n\nC\n")
    text = """
services:
  web:
    image: x
    env_file: web.env
    environment: [A=inline]
    volumes: ["./data:/data:ro", {type: tmpfs, target: /t, tmpfs: {size: 1k}}]
secrets:
  s: {file: ./s.txt, labels: {a: b}}
  ext: {external: true}
configs:
  c: {file: c.txt, name: custom}
"""
    config = load_one(text, {"C": "from-env"}, working_dir=str(tmp_path))
    web = config.services["web"]
    assert web["environment"] == {"A": "inline", "B": "b", "C": "from-env"}
    assert web["volumes"] == [
        {"source": str(tmp_path / "data"), "target": "/data", "type": "bind", "read_only": True},
        {"type": "tmpfs", "source": "", "target": "/t", "tmpfs_size": 1024},
    ]
    assert config.secrets == {
        "s": {"external": False, "name": "", "labels": {"a": "b"}, "file": str(tmp_path / "s.txt")},
        "ext": {"external": True, "name": "ext"},
    }
    assert config.configs["c"] == {"external": False, "name": "custom",
                                   "file": str(tmp_path / "c.txt")}
    with pytest.raises(CliError, match="services.web.env_file: open .*missing.env"):
        load_one("services:\n  web:\n    image: x\n    env_file: missing.env\n",
                 working_dir=str(tmp_path))


def test_top_level_networks() -> None:
    text = """
networks:
  plain:
  custom:
    driver: overlay
    driver_opts: {encrypted: ""}
    attachable: true
    labels: {team: a}
    ipam: {config: [{subnet: 10.9.0.0/24}]}
  named: {name: exact}
  private: {internal: true}
  outside: {external: true}
  old: {external: {name: legacy}}
"""
    config = load_one(text)
    assert config.networks["plain"] == {"external": False, "name": ""}
    assert config.networks["custom"] == {
        "external": False, "name": "", "driver": "overlay", "driver_opts": {"encrypted": ""},
        "attachable": True, "labels": {"team": "a"}, "subnets": ["10.9.0.0/24"],
    }
    assert config.networks["named"]["name"] == "exact"
    assert config.networks["private"] == {"external": False, "name": "", "internal": True}
    assert config.networks["outside"] == {"external": True, "name": "outside"}
    assert config.networks["old"] == {"external": True, "name": "legacy"}
    assert config.warnings == [
        "networks.old.external.name is deprecated. Please use networks.old.name instead."
    ]


def test_volume_conflicts_and_drivers() -> None:
    assert refused("volumes:\n  v: {external: true, driver: local}\n") == (
        'conflicting parameters "external" and "driver" specified for volume "v"'
    )
    assert "volumes.v.driver: 'nfs': not supported" in refused("volumes:\n  v: {driver: nfs}\n")
    assert load_one("volumes:\n  v: {driver: local, labels: [a=b]}\n").volumes["v"] == {
        "external": False, "name": "", "labels": {"a": "b"}
    }


def test_merge_in_order() -> None:
    base = """
services:
  web:
    image: web:1
    command: [a, b]
    environment: {A: "1", B: "1"}
    labels: {x: "1"}
    ports: ["80:80", "443:443"]
    secrets: [s1, {source: s2, target: one}]
    deploy: {replicas: 1, placement: {constraints: [a==b]}}
  db:
    image: db
networks:
  n: {driver: overlay, labels: {a: b}}
"""
    override = """
services:
  web:
    image: web:2
    command: [c]
    environment: [B=2, C=3]
    ports: ["8080:443", "80:80/udp", "443:443"]
    secrets: [{source: s2, target: two}]
    deploy: {replicas: 3, placement: {constraints: [c==d]}}
  cache:
    image: redis
networks:
  n: {attachable: true}
"""
    config = load([ConfigFile("a.yml", base), ConfigFile("b.yml", override)], env={})
    web = config.services["web"]
    assert web["image"] == "web:2"
    assert web["command"] == ["c"]
    assert web["environment"] == {"A": "1", "B": "2", "C": "3"}
    assert web["labels"] == {"x": "1"}
    assert [(p["published"], p["target"], p["protocol"]) for p in web["ports"]] == [
        (80, 80, "tcp"), (443, 443, "tcp"), (8080, 443, "tcp"), (80, 80, "udp")
    ]
    assert web["secrets"] == [{"source": "s1"}, {"source": "s2", "target": "two"}]
    assert web["deploy"] == {"replicas": 3, "placement": {"constraints": ["a==b", "c==d"]}}
    assert sorted(config.services) == ["cache", "db", "web"]
    assert config.networks["n"] == {"external": False, "name": "", "attachable": True}


def test_refusal_names_the_file_it_is_in() -> None:
    with pytest.raises(CliError) as info:
        load([ConfigFile("a.yml", "services: {web: {image: x}}"),
              ConfigFile("b.yml", "services: {web: {restart: always}}")], env={})
    assert str(info.value) == "b.yml: services.web.restart: not supported by shoal stack deploy"


