"""A real container through a manager outage: three managers and a runc worker on simulated
hosts; the leader is cut off from every other host (shoal.dev.netfaults), the other two elect
and take writes, and the worker's container keeps running, the same process, throughout and
after the heal (the fault tests' other workers run the sim executor)."""

from __future__ import annotations

import time

import pytest

from shoal.dev import hosts
from shoal.dev.images import build_all
from shoal.dev.local import Daemon, Swarm
from shoal.dev.netfaults import NetFaults
from shoal.dev.wait import wait_for
from tests.integration.conftest import close_and_check
from tests.integration.quorum import init_managers, wait_leader

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-rft"
HOSTS_BASE = "172.31.27"
OUTAGE = 12.0  # seconds the leader stays cut off


def _pid(worker: Daemon) -> tuple[str, int]:
    """The worker's one running container and its process."""
    ids = worker.docker("ps", "-q", "--no-trunc").stdout.split()
    assert len(ids) == 1, f"expected one container on the worker, got {ids}"
    pid = int(worker.docker("inspect", "--format", "{{.State.Pid}}", ids[0]).stdout.strip())
    return ids[0], pid


def test_a_runc_worker_keeps_its_container_while_the_leader_is_cut_off(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    hosts.remove_all(PREFIX)  # a crashed earlier run
    swarm = Swarm(tmp_path_factory.mktemp(PREFIX), prefix=PREFIX, base_ip=HOSTS_BASE, hosts=True)
    faults = NetFaults()
    try:
        registry = swarm.start_registry()
        web = next(i for i in build_all() if i.name == "shoal/web")
        registry.push(web)
        managers = init_managers(swarm, 3)
        token = managers[0].docker("swarm", "join-token", "-q", "worker").stdout.strip()
        worker = swarm.add(executor="runc")
        worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.ip,
                      f"{managers[0].ip}:2377")
        managers[0].docker("service", "create", "--detach", "--name", "kept", "--constraint",
                           "node.role==worker", web.reference(swarm.registry_addr))
        wait_for("the container running on the worker", lambda: worker.docker(
            "ps", "-q").stdout.split(), timeout=90)
        container, pid = _pid(worker)

        lead = wait_leader(managers)
        others = [m for m in managers if m is not lead]
        fabric = swarm.fabric
        assert fabric is not None
        faults.isolate(fabric.hosts[f"node{lead.index}"],
                       [fabric.hosts[f"node{d.index}"] for d in swarm.daemons if d is not lead])
        cut_at = time.monotonic()
        new = wait_leader(others, other_than=lead, timeout=30)
        new.docker("service", "create", "--detach", "--name", "during", "--replicas", "0",
                   web.reference(swarm.registry_addr))  # the majority takes a write
        while time.monotonic() - cut_at < OUTAGE:
            assert _pid(worker) == (container, pid), "the worker's container changed during the outage"
            time.sleep(1)
        faults.heal()

        wait_for("every node ready and every manager reachable", lambda: all(
            n["Status"]["State"] == "ready" for n in new.api("/nodes")) and sum(
            (n.get("ManagerStatus") or {}).get("Reachability") == "reachable"
            for n in new.api("/nodes")) == 3, timeout=60)
        wait_for("the old leader sees the write", lambda: any(
            s["Spec"]["Name"] == "during" for s in lead.api("/services")), timeout=30)
        assert _pid(worker) == (container, pid), "the worker's container was replaced"
        tasks = [t for t in new.api('/tasks?filters={"service":["kept"]}')
                 if t["DesiredState"] == "running"]
        assert len(tasks) == 1 and tasks[0]["Status"]["State"] == "running"
        assert tasks[0]["Status"]["ContainerStatus"]["ContainerID"] == container
    finally:
        try:
            faults.heal()
        finally:
            close_and_check(swarm)
    assert not hosts.list_netns(PREFIX), f"namespaces left: {hosts.list_netns(PREFIX)}"
