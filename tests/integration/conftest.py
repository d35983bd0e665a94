"""Fixtures: a swarm of shoald processes that is always torn down, and a leak check; a manager
and a worker running real containers on simulated hosts, with the demo images (and the voting
app's stand-ins) in a registry of their own, once per module that asks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.dev import hosts
from shoal.dev.images import build_all
from shoal.dev.local import Daemon, Swarm
from shoal.dev.votingapp import voting_app_images
from shoal.dev.wait import wait_for


def pytest_configure(config: pytest.Config) -> None:
    if sys.version_info >= (3, 13):
        # On Python 3.13 (Debian 13) one AF_UNIX stream socket of the test process is found
        # unclosed by the garbage collector after the integration tests (seen once per run of
        # test_quorum, test_networks and test_api_tls; not found yet: not pyroute2's IPRoute,
        # not the tests' httpx clients, which all close); 3.11 never reports it.
        config.addinivalue_line("filterwarnings", "ignore:unclosed <socket.socket:ResourceWarning")


def _etcd_pids(root: Path) -> list[str]:
    """etcd and shoald processes still running for this test's root."""
    out = subprocess.run(["pgrep", "-f", f"(etcd|shoal.daemon).*{root}"], capture_output=True, text=True,
                         check=False)
    return out.stdout.split()


@pytest.fixture
def swarm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    """Named and addressed after the module's PREFIX and BASE_IP where it has them."""
    prefix: str = getattr(request.module, "PREFIX", "shoaltest")
    s = Swarm(tmp_path_factory.mktemp(prefix), prefix=prefix, base_ip=getattr(request.module, "BASE_IP", None))
    try:
        yield s
    finally:
        close_and_check(s)


def close_and_check(s: Swarm) -> None:
    """Stop the swarm; fail on a daemon left running or an exception in a daemon's log; remove
    its root either way."""
    s.close()
    try:
        wait_for("etcd and shoald processes to exit", lambda: not _etcd_pids(s.root), timeout=15)
        crashes = {d.hostname: _tracebacks(d.log) for d in s.daemons}
        assert not any(crashes.values()), f"unexpected exceptions in daemon logs: {crashes}"
    finally:
        shutil.rmtree(s.root, ignore_errors=True)  # etcd preallocates 64 MB of WAL per member


def _tracebacks(log: Path) -> list[str]:
    """Every traceback (its log line, its last frame and its exception), every warning from
    Python and every callback that held the event loop too long (shoal.aio.LoopWatchdog) in a
    daemon's log."""
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    found = []
    for i, line in enumerate(lines):
        if "Warning:" in line or " event loop blocked for " in line:
            found.append(line)
        elif line.startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines)) if not lines[j].startswith(" ")), len(lines) - 1)
            found.append(" | ".join([lines[i - 1] if i else "", lines[end - 2].strip(), lines[end]]))
    return found


def init_swarm(swarm: Swarm, workers: int, *, labels: dict[int, dict[str, str]] | None = None,
               tool: str = "docker") -> tuple[Daemon, list[Daemon]]:
    """One manager (heartbeat 1 s) and ``workers`` workers joined through the docker CLI (or
    the shoal CLI with ``tool="shoal"``)."""
    labels = labels or {}
    manager = swarm.add(labels.get(1))

    def run(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = getattr(d, tool)(*args)
        return result

    run(manager, "swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s")
    token = run(manager, "swarm", "join-token", "-q", "worker").stdout.strip()
    joined = []
    for i in range(workers):
        w = swarm.add(labels.get(i + 2))
        run(w, "swarm", "join", "--token", token, "--advertise-addr", w.ip, f"{manager.ip}:2377")
        joined.append(w)
    wait_for("every node ready", lambda: run(manager, "node", "ls", "--format", "{{.Status}}").stdout.split().count("Ready") == workers + 1)
    # And its ingress address allocated: that write bumps the node's version, and a `node
    # update|promote` read before it fails "update out of sequence" (as docker's would).
    wait_for("every node's ingress address", lambda: all(n.get("Attachments") for n in manager.api("/nodes")))
    return manager, joined


class TwoNodes:
    """A manager and a worker running runc containers (on simulated hosts, or on loopback)."""

    def __init__(self, manager: Daemon, worker: Daemon, registry: str) -> None:
        self.manager, self.worker, self.registry = manager, worker, registry
        self.nodes = [manager, worker]

    def image(self, name: str) -> str:
        return f"{self.registry}/shoal/{name}:latest"

    def tasks(self, service: str) -> list[dict[str, Any]]:
        return self.manager.api(f'/tasks?filters={{"service":["{service}"]}}')  # type: ignore[no-any-return]

    def running(self, service: str) -> list[dict[str, Any]]:
        return [t for t in self.tasks(service)
                if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]

    def remove(self, *services: str) -> None:
        """Remove the services and wait until no node runs a container."""
        for service in services:
            self.manager.docker("service", "rm", service, check=False)
        wait_for("the services' containers removed", lambda: not self.containers(), timeout=60, interval=0.2)

    def containers(self) -> list[str]:
        out = []
        for d in self.nodes:
            root = d.root / "data" / "containers"
            out += [p.name for p in root.iterdir() if p.is_dir() and p.name != "by-task"] if root.exists() else []
        return out


def runc_manager_and_worker(swarm: Swarm) -> tuple[Daemon, Daemon]:
    """A manager (heartbeat 1 s) and a worker of ``swarm``, both running runc containers."""
    manager = swarm.add(executor="runc")
    manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s")
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    worker = swarm.add(executor="runc")
    worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.ip, f"{manager.ip}:2377")
    wait_for("2 nodes ready", lambda: manager.docker("node", "ls", "--format", "{{.Status}}")
             .stdout.split().count("Ready") == 2, timeout=60)
    return manager, worker


@pytest.fixture(scope="module")
def hosts_cluster(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    """Named after the asking module's PREFIX (its namespaces, hostnames and cgroups)."""
    if os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("docker-registry"):
        pytest.skip("runs containers on simulated hosts: needs root, runc and docker-registry")
    prefix: str = request.module.PREFIX
    root = tmp_path_factory.mktemp(prefix)
    hosts.remove_all(prefix)  # a crashed earlier run
    swarm = Swarm(root, prefix=prefix, hosts=True)
    try:
        registry = swarm.start_registry()  # the nodes' Docker Hub mirror too
        for image in [*build_all(), *voting_app_images()]:
            registry.push(image)
        yield TwoNodes(*runc_manager_and_worker(swarm), swarm.registry_addr)
    finally:
        close_and_check(swarm)
    left = hosts.list_netns(prefix)
    assert not left, f"namespaces left: {left}"
