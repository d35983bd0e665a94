"""``shoal dev``: a 3-node dev swarm (sim executor, daemons on 127.0.8.x, a registry on
127.0.8.254) started by one command that exits while the swarm keeps running; listed, reached
with ``eval $(shoal dev env)`` by the docker CLI and by shoal's; the registry serves the demo
images; a second ``up`` is refused; ``down`` leaves no process, no directory and no mount, and
running it again is harmless."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shoal.dev import cleanup, cluster, procs
from shoal.dev.images import MANIFEST_TYPE, build_all
from shoal.dev.local import SHOAL

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None,
                                reason="docker-registry is not installed (scripts/setup installs it)")

BASE = "127.0.8"  # the README demo uses 127.0.9, the swarm fixture 127.0.7


def dev(root: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(SHOAL + ["dev", *args, "--root", str(root)], capture_output=True,
                          text=True, timeout=timeout, check=False, env=env)


@pytest.fixture
def dev_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("shoaltest-dev") / "dev"
    try:
        yield root
    finally:
        dev(root, "down")
        if root.exists():  # the CLI failed: clean up in-process, and fail loudly
            cluster.down(root)


def test_up_ls_env_down(dev_root: Path) -> None:
    up = dev(dev_root, "up", "--nodes", "3", "--managers", "1", "--executor", "sim",
             "--base-ip", BASE)
    assert up.returncode == 0, up.stderr
    assert f"export DOCKER_HOST=unix://{dev_root}/node1/api.sock" in up.stdout
    assert f"{BASE}.254:5000/shoal/web:latest" in up.stdout

    # the command has exited; the swarm still runs
    ls = dev(dev_root, "ls")
    assert ls.returncode == 0, ls.stderr
    rows = [line.split() for line in ls.stdout.splitlines()]
    assert rows[0] == ["NAME", "ADDRESS", "ROLE", "PID", "STATUS", "SOCKET"]
    assert [(r[0], r[1], r[2], r[4]) for r in rows[1:]] == [
        ("node1", f"{BASE}.1", "manager", "running"), ("node2", f"{BASE}.2", "worker", "running"),
        ("node3", f"{BASE}.3", "worker", "running"),
        ("registry", f"{BASE}.254:5000", "registry", "running")]

    env_out = dev(dev_root, "env")
    assert env_out.stdout.strip() == f"export DOCKER_HOST=unix://{dev_root}/node1/api.sock"
    assert dev(dev_root, "env", "node3").stdout.strip().endswith("/node3/api.sock")
    missing = dev(dev_root, "env", "node9")
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1

    script = ('eval "$(' + " ".join(f"'{a}'" for a in SHOAL) + f' dev env --root {dev_root})"'
              ' && docker node ls --format "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"'
              ' && echo --- && ' + " ".join(f"'{a}'" for a in SHOAL)
              + ' node ls --format "{{.Hostname}} {{.Status}}"')
    shell = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                           check=False, env={**os.environ, "DOCKER_CLI_HINTS": "false"})
    assert shell.returncode == 0, shell.stderr
    docker_part, shoal_part = shell.stdout.split("---\n")
    assert sorted(docker_part.splitlines()) == [
        "node1 Ready Leader", "node2 Ready ", "node3 Ready "]
    assert sorted(shoal_part.splitlines()) == ["node1 Ready", "node2 Ready", "node3 Ready"]

    registry = f"http://{BASE}.254:5000"
    catalog = httpx.get(f"{registry}/v2/_catalog", timeout=10).json()["repositories"]
    assert set(catalog) == {"shoal/web", "shoal/kv", "shoal/fail", "shoal/unhealthy"}
    web = next(i for i in build_all() if i.name == "shoal/web")
    r = httpx.get(f"{registry}/v2/shoal/web/manifests/latest", headers={"Accept": MANIFEST_TYPE},
                  timeout=10)
    assert r.headers["Docker-Content-Digest"] == web.manifest_digest  # same bytes as a new build

    again = dev(dev_root, "up", "--nodes", "1", "--base-ip", BASE)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"shoal dev: a dev swarm is already up in {dev_root}; run 'shoal dev down' first"]

    pids = [int(r[3]) for r in rows[1:]]
    down = dev(dev_root, "down")
    assert down.returncode == 0, down.stderr
    assert not dev_root.exists()
    assert not procs.matching(str(dev_root) + "/")
    assert not any(procs.cmdline(pid) for pid in pids)
    assert not cleanup.mounts_under(dev_root)
    assert dev(dev_root, "down").returncode == 0  # idempotent
    gone = dev(dev_root, "ls")
    assert gone.returncode == 1 and "no dev swarm" in gone.stderr


def test_down_after_the_processes_died(dev_root: Path) -> None:
    up = dev(dev_root, "up", "--nodes", "1", "--base-ip", BASE)
    assert up.returncode == 0, up.stderr
    state = cluster.load_state(dev_root)
    assert state is not None and state.registry is not None
    for pid, marker in [(n.pid, n.root) for n in state.nodes] + [
            (state.registry.pid, state.registry.root)]:
        assert procs.terminate(pid, marker)
    ls = dev(dev_root, "ls")
    assert [line.split()[4] for line in ls.stdout.splitlines()[1:]] == ["dead", "dead"]
    refused = dev(dev_root, "up", "--nodes", "1", "--base-ip", BASE)
    assert refused.returncode == 1 and "left over" in refused.stderr
    down = dev(dev_root, "down")
    assert down.returncode == 0, down.stderr
    assert not dev_root.exists()
    assert not procs.matching(str(dev_root) + "/")
