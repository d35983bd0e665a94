"""Secrets and configs end to end: a manager and a worker running real (runc) containers on
simulated hosts (network namespaces), driven by the docker CLI, docker-py and the shoal CLI as a
user would. The secret reaches the containers of both nodes on a tmpfs with its uid, gid and
mode; its bytes are nowhere on disk; rotation replaces the tasks; `stack deploy` and `stack rm`
of a compose file with a secret and a config leave nothing of the stack. Needs root, runc and
docker-registry."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import docker
import pytest

from shoal.dev.local import Daemon
from shoal.dev.wait import wait_for
from tests.integration.conftest import TwoNodes

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs containers: needs root"),
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
]

PREFIX = "shoaltest-sec"


@pytest.fixture(scope="module")
def cluster(hosts_cluster: TwoNodes) -> TwoNodes:
    return hosts_cluster


def _mount_type(pid: int, target: str) -> str:
    """The filesystem type of the mount at ``target`` inside the container of ``pid``."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        if left.split()[4] == target:
            return right.split()[0]
    return ""


def _tmpfs_under(root: Path) -> list[Path]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        point = Path(left.split()[4])
        if right.split()[0] == "tmpfs" and point.is_relative_to(root):
            out.append(point)
    return out


def _files_holding(root: Path, needle: bytes) -> list[str]:
    """Files under ``root`` holding ``needle``, on disk: memory (tmpfs) is where it belongs."""
    found = []
    memory = _tmpfs_under(root)
    for path in root.rglob("*"):
        if any(path.is_relative_to(m) for m in memory):
            continue
        try:
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(str(path))
        except OSError:
            continue  # a socket, or a file that went meanwhile
    return found


def _create(d: Daemon, kind: str, name: str, data: bytes, tmp: Path, *flags: str) -> str:
    source = tmp / f"{name}.data"
    source.write_bytes(data)
    return d.docker(kind, "create", *flags, name, str(source)).stdout.strip()


def test_a_secret_and_a_config_reach_both_nodes_and_rotate(cluster: TwoNodes, tmp_path: Path) -> None:
    m = cluster.manager
    value = b"shoaltest-" + secrets.token_hex(16).encode()
    newer = b"shoaltest-" + secrets.token_hex(16).encode()
    _create(m, "secret", "shoaltest-pw", value, tmp_path)
    _create(m, "secret", "shoaltest-pw2", newer, tmp_path)
    _create(m, "config", "shoaltest-cfg", b"listen 8080\n", tmp_path)
    _create(m, "config", "shoaltest-tmpl", b'{{.Service.Name}} {{.Task.Slot}} {{env "GREETING"}} '
            b'{{secret "pw"}}', tmp_path, "--template-driver", "golang")
    inspected = m.api("/secrets/shoaltest-pw")
    assert "Data" not in inspected["Spec"] and inspected["Spec"]["Name"] == "shoaltest-pw"
    assert m.api("/configs/shoaltest-cfg")["Spec"]["Data"]  # a config's data is shown
    m.docker("service", "create", "--name", "shoaltest-sec", "--replicas", "2",
             "--replicas-max-per-node", "1",
             "--secret", "source=shoaltest-pw,target=pw,uid=123,gid=45,mode=0400",
             "--config", "source=shoaltest-cfg,target=/etc/app.conf,mode=0440",
             "--config", "source=shoaltest-tmpl,target=/etc/who", "--env", "GREETING=hi",
             cluster.image("web"), timeout=180)
    try:
        running = cluster.running("shoaltest-sec")
        assert len(running) == 2 and {t["NodeID"] for t in running} == {
            n["ID"] for n in m.api("/nodes")}
        for task in running:
            pid = task["Status"]["ContainerStatus"]["PID"]
            secret = Path(f"/proc/{pid}/root/run/secrets/pw")
            assert secret.read_bytes() == value
            st = secret.stat()
            assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o777)) == (123, 45, "0o400")
            assert _mount_type(pid, "/run/secrets/pw") == "tmpfs"
            config = Path(f"/proc/{pid}/root/etc/app.conf")
            assert config.read_bytes() == b"listen 8080\n" and oct(config.stat().st_mode & 0o777) == "0o440"
            rendered = Path(f"/proc/{pid}/root/etc/who").read_bytes()  # per task, on the node
            assert rendered == f"shoaltest-sec {task['Slot']} hi ".encode() + value
        refused = m.docker("secret", "rm", "shoaltest-pw", check=False)
        assert refused.returncode != 0 and "in use by the following service: shoaltest-sec" in refused.stderr
        for d in cluster.nodes:
            assert not _files_holding(d.root, value), f"{d.hostname}: the secret's bytes on disk"

        m.docker("service", "update", "--secret-rm", "shoaltest-pw",
                 "--secret-add", "source=shoaltest-pw2,target=pw", "shoaltest-sec", timeout=180)
        rotated = cluster.running("shoaltest-sec")
        assert len(rotated) == 2
        for task in rotated:
            pid = task["Status"]["ContainerStatus"]["PID"]
            assert Path(f"/proc/{pid}/root/run/secrets/pw").read_bytes() == newer
    finally:
        cluster.remove("shoaltest-sec")
    for name in ("shoaltest-pw", "shoaltest-pw2"):
        m.docker("secret", "rm", name)
    m.docker("config", "rm", "shoaltest-cfg", "shoaltest-tmpl")
    assert m.api("/secrets") == [] and m.api("/configs") == []
    for d in cluster.nodes:
        assert not _files_holding(d.root, value) and not _files_holding(d.root, newer), d.hostname


def test_docker_py_secrets_and_configs(cluster: TwoNodes) -> None:
    client = docker.DockerClient(base_url=cluster.manager.host, timeout=30)
    made: list[Any] = []
    try:
        secret = client.secrets.create(name="shoaltest-py", data=b"py-secret", labels={"shoaltest": "1"})
        made.append(secret)
        config = client.configs.create(name="shoaltest-pycfg", data=b"py-config")
        made.append(config)
        assert [s.name for s in client.secrets.list(filters={"label": "shoaltest=1"})] == ["shoaltest-py"]
        got = client.secrets.get(secret.id)
        assert got.name == "shoaltest-py" and "Data" not in got.attrs["Spec"]
        assert client.configs.get(config.id).attrs["Spec"]["Data"]
        with pytest.raises(docker.errors.NotFound):
            client.secrets.get("shoaltest-missing")
    finally:
        for obj in made:
            obj.remove()
        client.close()


COMPOSE = """\
version: "3.8"
services:
  web:
    image: {image}
    deploy:
      replicas: 2
    networks: [front]
    secrets:
      - source: pw
        target: pw
        mode: 0400
    configs:
      - source: conf
        target: /etc/app.conf
networks:
  front:
    driver: overlay
secrets:
  pw:
    file: ./pw.txt
configs:
  conf:
    file: ./app.conf
"""


@pytest.mark.parametrize("cli", ["docker", "shoal"])
def test_stack_deploy_and_rm(cluster: TwoNodes, tmp_path: Path, cli: str) -> None:
    m = cluster.manager
    run = m.docker if cli == "docker" else m.shoal
    (tmp_path / "pw.txt").write_text("stack-secret\n")
    (tmp_path / "app.conf").write_text("stack-config\n")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE.format(image=cluster.image("web")))
    _create(m, "secret", "shoaltest-keep", b"not the stack's", tmp_path)
    try:
        run("stack", "deploy", "-c", str(compose), "shoaltest-stack", timeout=120)
        try:
            wait_for("the stack's 2 tasks running",
                     lambda: len(cluster.running("shoaltest-stack_web")) == 2, timeout=120)
        except AssertionError:
            states = [(t["Status"]["State"], t["Status"].get("Err"), t["Status"].get("Message"))
                      for t in m.api('/tasks?filters={"service":["shoaltest-stack_web"]}')]
            raise AssertionError(f"stack tasks: {states}") from None
        task = cluster.running("shoaltest-stack_web")[0]
        pid = task["Status"]["ContainerStatus"]["PID"]
        assert Path(f"/proc/{pid}/root/run/secrets/pw").read_text() == "stack-secret\n"
        assert Path(f"/proc/{pid}/root/etc/app.conf").read_text() == "stack-config\n"
        listed = run("stack", "ls", "--format", "{{.Name}} {{.Services}}").stdout.split()
        assert listed == ["shoaltest-stack", "1"]
        assert "shoaltest-stack_web" in run("stack", "services", "shoaltest-stack").stdout

        run("stack", "rm", "shoaltest-stack")
        wait_for("the stack's containers removed", lambda: not cluster.containers(), timeout=60)
        assert [s["Spec"]["Name"] for s in m.api("/secrets")] == ["shoaltest-keep"]
        assert m.api("/configs") == []
        assert not [n for n in m.api("/networks") if n["Name"].startswith("shoaltest-stack")]
        assert not m.api("/services")
    finally:
        m.docker("stack", "rm", "shoaltest-stack", check=False)
        cluster.remove()
        m.docker("secret", "rm", "shoaltest-keep", check=False)
