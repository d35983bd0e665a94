"""``shoal dev``: a 3-node dev swarm (sim executor) on simulated hosts (network namespaces
``shoaltest-XXXXXX-node1``... on a switch of their own, underlay 172.31.8.x, the registry on
172.31.8.254) started by one command that exits while the swarm keeps running; listed, reached
with ``eval $(shoal dev env)`` by the docker CLI and by shoal's; ``dev exec`` runs commands in a
node's namespace; ``--publish-host`` reaches a listener inside node1 from 127.0.0.1; the registry
serves the demo images to the nodes; a second ``up`` is refused; ``down`` leaves no process, no
namespace, no directory and no mount, even with the state gone, and running it again is harmless;
the machine's own network namespace is never changed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shoal.dev import cleanup, cluster, hosts, procs
from shoal.dev.images import MANIFEST_TYPE, build_all
from shoal.dev.local import SHOAL
from shoal.net import netns

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None or os.geteuid() != 0,
                                reason="needs root and docker-registry (scripts/setup installs it)")

BASE = "172.31.8"  # scripts/demo uses 172.31.9, `shoal dev` 172.31.10, Swarm(hosts=True) 172.31.7


def dev(root: Path, command: str, *args: str, timeout: float = 180,
        stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(SHOAL + ["dev", command, "--root", str(root), *args],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=stdin)


def _root_netns() -> tuple[str, str]:
    return (subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout,
            subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"shoaltest-{uuid.uuid4().hex[:6]}"
    try:
        yield name
    finally:
        assert hosts.remove_all(name) == [], "namespaces left behind"


@pytest.fixture
def dev_root(tmp_path_factory: pytest.TempPathFactory, prefix: str) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("shoaltest-dev") / "dev"
    try:
        yield root
    finally:
        dev(root, "down", "--prefix", prefix)
        if root.exists():  # the CLI failed: clean up in-process, and fail loudly
            cluster.down(root, prefix=prefix)


def test_up_ls_env_exec_publish_down(dev_root: Path, prefix: str) -> None:
    root_before = _root_netns()
    port = _free_port()
    up = dev(dev_root, "up", "--nodes", "3", "--managers", "1", "--executor", "sim",
             "--base-ip", BASE, "--prefix", prefix, "--publish-host", str(port))
    assert up.returncode == 0, up.stderr
    assert f"export DOCKER_HOST=unix://{dev_root}/node1/api.sock" in up.stdout
    assert f"{BASE}.254:5000/shoal/web:latest" in up.stdout
    assert f"published: 127.0.0.1:{port} -> node1 {BASE}.1:{port}" in up.stdout
    assert _root_netns() == root_before  # no link, no address in the machine's namespace

    # the command has exited; the swarm still runs
    ls = dev(dev_root, "ls")
    assert ls.returncode == 0, ls.stderr
    rows = [line.split() for line in ls.stdout.splitlines()]
    assert rows[0] == ["NAME", "ADDRESS", "ROLE", "PID", "STATUS", "NETNS", "SOCKET"]
    assert [tuple(r[:3]) + tuple(r[4:6]) for r in rows[1:]] == [
        ("node1", f"{BASE}.1", "manager", "running", f"{prefix}-node1"),
        ("node2", f"{BASE}.2", "worker", "running", f"{prefix}-node2"),
        ("node3", f"{BASE}.3", "worker", "running", f"{prefix}-node3"),
        ("registry", f"{BASE}.254:5000", "registry", "running", f"{prefix}-registry"),
        ("forward", f"127.0.0.1:{port}", "forwarder", "running", "-")]
    assert hosts.list_netns(prefix) == sorted(
        f"{prefix}-{n}" for n in ("node1", "node2", "node3", "registry", "sw"))

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

    # exec: the node's namespace, the caller's stdio, the command's exit code
    addrs = dev(dev_root, "exec", "node2", "--", "ip", "-o", "-4", "addr")
    assert addrs.returncode == 0, addrs.stderr
    assert f"eth0    inet {BASE}.2/24" in addrs.stdout
    assert dev(dev_root, "exec", "node1", "--", "sh", "-c", "exit 7").returncode == 7
    piped = subprocess.run(SHOAL + ["dev", "exec", "--root", str(dev_root), "node3", "--",
                                    "cat"], input="through stdin\n", capture_output=True,
                           text=True, timeout=30, check=False)
    assert piped.stdout == "through stdin\n"
    ping = dev(dev_root, "exec", "node3", "--", "busybox", "ping", "-c", "1", "-W", "5",
               f"{BASE}.1")
    assert ping.returncode == 0, ping.stdout
    assert f"inet {BASE}.254/24" in dev(dev_root, "exec", "registry", "--", "ip", "-o", "addr").stdout
    unknown = dev(dev_root, "exec", "node9", "--", "true")
    assert unknown.returncode == 1 and "no node 'node9'" in unknown.stderr

    # --publish-host: 127.0.0.1:PORT here reaches a plain listener inside node1
    listener = subprocess.Popen(SHOAL + ["dev", "exec", "--root", str(dev_root), "node1", "--",
                                         "busybox", "nc", "-l", "-p", str(port), "-e", "echo",
                                         "hello from node1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        got = b""
        for _ in range(100):  # until nc listens (the forwarder closes a refused connection)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                got = c.recv(100)
            if got:
                break
            time.sleep(0.1)
        assert got == b"hello from node1\n"
        assert listener.wait(timeout=10) == 0
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()

    # the registry serves the nodes (from node1's namespace; it is not reachable from here)
    registry = f"http://{BASE}.254:5000"
    node1 = f"/run/netns/{prefix}-node1"
    catalog = netns.run_in(node1, lambda: httpx.get(f"{registry}/v2/_catalog",
                                                          timeout=10)).json()["repositories"]
    assert set(catalog) == {"shoal/web", "shoal/kv", "shoal/fail", "shoal/unhealthy",  # and the
                            "library/redis", "library/postgres",  # voting app's stand-ins
                            *(f"dockersamples/examplevotingapp_{n}" for n in ("vote", "result", "worker"))}
    web = next(i for i in build_all() if i.name == "shoal/web")
    r = netns.run_in(node1, lambda: httpx.get(f"{registry}/v2/shoal/web/manifests/latest",
                                                    headers={"Accept": MANIFEST_TYPE}, timeout=10))
    assert r.headers["Docker-Content-Digest"] == web.manifest_digest  # same bytes as a new build

    again = dev(dev_root, "up", "--nodes", "1", "--base-ip", BASE, "--prefix", prefix)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"shoal dev: a dev swarm is already up in {dev_root}; run 'shoal dev down' first"]
    elsewhere = dev(dev_root.parent / "other", "up", "--nodes", "1", "--prefix", prefix)
    assert elsewhere.returncode == 1 and "another dev swarm uses --prefix" in elsewhere.stderr
    assert not (dev_root.parent / "other").exists()
    assert dev(dev_root.parent / "other", "up", "--base-ip", "10.0.9").returncode == 1

    pids = [int(r[3]) for r in rows[1:]]
    down = dev(dev_root, "down")
    assert down.returncode == 0, down.stderr
    assert not dev_root.exists()
    assert not procs.matching(str(dev_root) + "/")
    assert not any(procs.cmdline(pid) for pid in pids)
    assert not cleanup.mounts_under(dev_root)
    assert hosts.list_netns(prefix) == []
    assert _root_netns() == root_before
    with pytest.raises(OSError):  # the forwarder is gone with its port
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert dev(dev_root, "down").returncode == 0  # idempotent
    gone = dev(dev_root, "ls")
    assert gone.returncode == 1 and "no dev swarm" in gone.stderr


def test_down_after_a_crash(dev_root: Path, prefix: str) -> None:
    """Every process dead and state.json lost: down finds the processes by the root and the
    namespaces by the prefix the root's marker names."""
    up = dev(dev_root, "up", "--nodes", "1", "--base-ip", BASE, "--prefix", prefix)
    assert up.returncode == 0, up.stderr
    state = cluster.load_state(dev_root)
    assert state is not None and state.registry is not None
    for pid, marker in [(n.pid, n.root) for n in state.nodes] + [
            (state.registry.pid, state.registry.root)]:
        assert procs.terminate(pid, marker)
    ls = dev(dev_root, "ls")
    assert [line.split()[4] for line in ls.stdout.splitlines()[1:]] == ["dead", "dead"]
    refused = dev(dev_root, "up", "--nodes", "1", "--base-ip", BASE, "--prefix", prefix)
    assert refused.returncode == 1 and "left over" in refused.stderr
    (dev_root / "state.json").unlink()
    assert hosts.list_netns(prefix)
    down = dev(dev_root, "down")
    assert down.returncode == 0, down.stderr
    assert not dev_root.exists()
    assert not procs.matching(str(dev_root) + "/")
    assert hosts.list_netns(prefix) == []


def test_down_with_the_root_gone_needs_the_prefix(tmp_path: Path, prefix: str) -> None:
    fabric = hosts.Fabric(prefix, BASE)
    fabric.add_host("node1", 1)  # what a crash that lost the dev root leaves
    assert dev(tmp_path / "gone", "down").stdout.startswith("no dev swarm")
    assert hosts.list_netns(prefix) == [f"{prefix}-node1", f"{prefix}-sw"]
    down = dev(tmp_path / "gone", "down", "--prefix", prefix)
    assert down.returncode == 0, down.stderr
    assert hosts.list_netns(prefix) == []
