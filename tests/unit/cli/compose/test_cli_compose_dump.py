"""``stack config``: the merged config written back as docker writes it (outputs taken from
docker CLI 28's ``docker stack config``)."""

from __future__ import annotations

from pathlib import Path

from shoal.cli.compose.dump import dump
from shoal.cli.compose.loader import ConfigFile, load

from .test_cli_compose_loader import VOTING_APP

FILE = """
version: "3.8"
services:
  web:
    image: "nginx:${TAG:-1}"
    entrypoint: ["/bin/sh", "-c"]
    healthcheck: {test: "curl -f x", interval: 5s, retries: 3}
    labels: [a=b]
    deploy:
      mode: global
      labels: {x: "y: z"}
      resources: {limits: {cpus: "0.5", memory: 512M}}
      placement: {constraints: [node.role == manager], preferences: [{spread: node.labels.az}]}
      rollback_config: {order: start-first}
    ports: [{target: 80, published: 8080, mode: host}]
    secrets: [{source: s, target: /run/s, uid: "1", mode: 0400}]
    networks:
      front: {aliases: [w]}
    user: "1000"
    tty: true
networks:
  front: {driver: overlay, attachable: true, ipam: {config: [{subnet: 10.5.0.0/24}]}, labels: {k: v}}
  ext: {external: true}
  private: {internal: true}
secrets:
  s: {file: s.txt}
configs:
  c: {external: true, name: cc}
"""

EXPECTED = """\
version: "3.8"
services:
  web:
    deploy:
      mode: global
      labels:
        x: 'y: z'
      rollback_config:
        order: start-first
      resources:
        limits:
          cpus: "0.5"
          memory: "536870912"
      placement:
        constraints:
          - node.role == manager
        preferences:
          - spread: node.labels.az
    entrypoint:
      - /bin/sh
      - -c
    healthcheck:
      test:
        - CMD-SHELL
        - curl -f x
      interval: 5s
      retries: 3
    image: nginx:1
    labels:
      a: b
    networks:
      front:
        aliases:
          - w
    ports:
      - mode: host
        target: 80
        published: 8080
    secrets:
      - source: s
        target: /run/s
        uid: "1"
        mode: 256
    tty: true
    user: "1000"
networks:
  ext:
    name: ext
    external: true
  front:
    driver: overlay
    ipam:
      config:
        - subnet: 10.5.0.0/24
    attachable: true
    labels:
      k: v
  private:
    internal: true
secrets:
  s:
    file: WORKDIR/s.txt
configs:
  c:
    name: cc
    external: true
"""


def test_dump_as_docker_writes_it() -> None:
    config = load([ConfigFile("f.yml", FILE)], env={}, working_dir="WORKDIR")
    assert dump(config) == EXPECTED


def test_dump_skip_interpolation_and_voting_app(tmp_path: Path) -> None:
    text = 'services:\n  a:\n    image: "x:${T:-1}"\n    environment: [P=$$HOME]\n'
    raw = load([ConfigFile("f.yml", text)], env={}, interpolation=False)
    assert dump(raw) == (
        'version: "3.13"\nservices:\n  a:\n    environment:\n      P: $$HOME\n'
        "    image: x:${T:-1}\n"
    )
    vote = dump(load([ConfigFile("v.yml", VOTING_APP)], env={}))
    assert vote.startswith('version: "3.13"\nservices:\n  db:\n    deploy:\n      placement:\n')
    assert "    depends_on:\n      - redis\n" in vote
    assert "      - mode: ingress\n        target: 6379\n        protocol: tcp\n" in vote
    assert vote.endswith("volumes:\n  db-data: {}\n")
