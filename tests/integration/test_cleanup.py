"""Nothing of a task stays on its node, whatever stops shoald or the task: a worker running real
containers (runc) on a simulated host, beside a sim manager, with the demo images from the
fabric's registry. Leftovers are counted the way a user looks for them (shoal.dev.leaks: runc
list, findmnt, cgroups, namespaces, links and nftables tables in the host's namespace, shims).
The containers ignore their stop signal (SIGUSR1 to a shell that is PID 1), so only a kill
stops them. Needs root, runc and docker-registry."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest

from shoal.dev import hosts
from shoal.dev.images import build_all
from shoal.dev.leaks import leftovers
from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import TwoNodes, close_and_check

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs containers: needs root"),
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
]

PREFIX = "shoaltest-soak"
BASE_IP = "172.31.24"
NET = "soak-net"
STUBBORN = ["--stop-signal", "SIGUSR1"]  # PID 1 without a handler: the signal is ignored


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    root = tmp_path_factory.mktemp(PREFIX)
    hosts.remove_all(PREFIX)  # a crashed earlier run
    swarm = Swarm(root, prefix=PREFIX, base_ip=BASE_IP, hosts=True)
    try:
        registry = swarm.start_registry()
        for image in build_all():
            registry.push(image)
        manager = swarm.add()
        manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s")
        worker = swarm.add(executor="runc")
        _join(manager, worker)
        manager.docker("network", "create", "-d", "overlay", NET)
        BEFORE.update({k: set(v) for k, v in leftovers(worker.root, worker.cgroup_parent,
                                                      worker.netns).items()})
        yield TwoNodes(manager, worker, swarm.registry_addr)
    finally:
        close_and_check(swarm)
    left = hosts.list_netns(PREFIX)
    assert not left, f"namespaces left: {left}"


def _join(manager: Daemon, worker: Daemon) -> None:
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.ip, f"{manager.ip}:2377")
    wait_for("the worker ready", lambda: worker.hostname in manager.docker(
        "node", "ls", "--filter", "role=worker", "--format", "{{.Hostname}} {{.Status}}").stdout
        .replace(" Ready", "").split(), timeout=60)


BEFORE: dict[str, set[str]] = {}  # what the worker had before any task ran (its shoal_br table)


def _left(node: Daemon) -> dict[str, list[str]]:
    found = leftovers(node.root, node.cgroup_parent, node.netns)
    return {kind: new for kind, items in found.items()
            if (new := [i for i in items if i not in BEFORE.get(kind, set())])}


def _wait_clean(node: Daemon, what: str, timeout: float) -> None:
    seen: list[dict[str, list[str]]] = []

    def clean() -> bool:
        seen[:] = [_left(node)]
        return not seen[0]
    try:
        wait_for(what, clean, timeout=timeout, interval=0.5)
    except AssertionError:
        raise AssertionError(f"{what}: still there after {timeout:g} s: {seen[0]}") from None


def _start_stubborn(cluster: TwoNodes, name: str, replicas: int, grace: str) -> None:
    w = cluster.worker
    cluster.manager.docker("service", "create", "--detach", "--name", name, "--replicas", str(replicas),
                           "--network", NET, "--constraint", f"node.hostname=={w.hostname}",
                           "--stop-grace-period", grace, *STUBBORN, cluster.image("web"))
    wait_for(f"{name} running", lambda: len(cluster.running(name)) == replicas, timeout=90, interval=0.3)
    assert _left(w).get("mounts") and _left(w).get("links")  # the check below can see them


def test_tasks_removed_as_shoald_stops_leave_nothing_once_it_is_back(cluster: TwoNodes) -> None:
    """``service rm``, then SIGTERM to the worker's shoald a moment later, in the middle of the
    tasks' grace period: once it is started again, their containers, mounts, cgroups,
    namespaces and the overlay's devices go."""
    w = cluster.worker
    _start_stubborn(cluster, "soak-rm", 2, "8s")
    cluster.manager.docker("service", "rm", "soak-rm")
    time.sleep(2)  # the worker is stopping the containers
    w.stop()
    w.start()
    started = time.monotonic()
    _wait_clean(w, "nothing of the removed tasks left on the worker", 90)
    print(f"\nleftovers gone {time.monotonic() - started:.1f} s after the restart")


def test_a_restart_removes_the_overlays_no_container_uses(cluster: TwoNodes) -> None:
    """The worker killed (SIGKILL) with a task running on an overlay; the service removed while
    it is down, its container killed by hand: once shoald is back, the network's bridge and
    vxlan go too (nothing attaches them again in this run)."""
    w = cluster.worker
    _start_stubborn(cluster, "soak-gone", 1, "2s")
    w.kill()
    cluster.manager.docker("service", "rm", "soak-gone")
    cid = leftovers(w.root, w.cgroup_parent, w.netns)["containers"]
    for short in cid:
        w.exec("runc", "--root", str(w.root / "exec" / "runc"), "kill", "--all",
               next(p.name for p in (w.root / "data" / "containers").iterdir() if p.name.startswith(short)),
               "KILL")
    w.start()
    _wait_clean(w, "nothing of the removed task left on the worker", 60)


def test_leave_removes_tasks_that_do_not_stop(cluster: TwoNodes) -> None:
    """``swarm leave`` with tasks that ignore their stop signal for 5 minutes: leave kills them
    once it has waited long enough, and nothing of them stays."""
    w = cluster.worker
    _start_stubborn(cluster, "soak-leave", 2, "5m")
    started = time.monotonic()
    try:
        w.docker("swarm", "leave", timeout=120)
        print(f"\nleave took {time.monotonic() - started:.1f} s")
        assert not _left(w)
    finally:
        cluster.manager.docker("service", "rm", "soak-leave", check=False)
