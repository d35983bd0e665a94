"""A daemon restarted on the same data root is the same node in the same swarm: the manager
keeps every service and task (etcd under the data root), workers keep their tasks running."""

from __future__ import annotations

import json
import signal

from shoal.dev.local import Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import init_swarm


def _state(d, service: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    out = d.docker("service", "ps", service, "--no-trunc", "--format", "{{json .}}").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return sorted((r["ID"], r["Node"], r["DesiredState"]) for r in rows)


def test_manager_and_worker_restart_keep_the_swarm(swarm: Swarm) -> None:
    manager, (worker,) = init_swarm(swarm, 1)
    manager.docker("service", "create", "-d", "--name", "keep", "--replicas", "4", "redis:latest")
    wait_for("4/4", lambda: "4/4" in manager.docker("service", "ls").stdout)
    node_id = manager.api("/info")["Swarm"]["NodeID"]
    before = _state(manager, "keep")

    manager.stop()  # SIGTERM: a clean stop
    manager.start()
    wait_for("manager back", lambda: manager.api("/info")["Swarm"]["LocalNodeState"] == "active")
    assert manager.api("/info")["Swarm"]["NodeID"] == node_id
    wait_for("nodes ready again", lambda: manager.docker("node", "ls").stdout.count("Ready") == 2)
    assert _state(manager, "keep") == before  # same tasks, nothing restarted
    wait_for("4/4 after restart", lambda: "4/4" in manager.docker("service", "ls").stdout)

    worker.kill(signal.SIGKILL)
    worker.start()
    wait_for("worker ready", lambda: manager.docker("node", "ls").stdout.count("Ready") == 2)
    assert _state(manager, "keep") == before  # re-attached, not replaced
    assert worker.api("/info")["Swarm"]["LocalNodeState"] == "active"


def test_worker_leave_and_node_rm(swarm: Swarm) -> None:
    manager, (worker,) = init_swarm(swarm, 1)
    res = manager.docker("swarm", "leave", check=False)
    assert res.returncode == 1 and "--force" in res.stderr
    res = manager.docker("node", "rm", worker.hostname, check=False)
    assert res.returncode == 1 and "is not down" in res.stderr
    assert "Node left the swarm." in worker.docker("swarm", "leave").stdout
    wait_for("worker down", lambda: "Down" in manager.docker("node", "ls").stdout, timeout=10)
    manager.docker("node", "rm", worker.hostname)
    assert worker.hostname not in manager.docker("node", "ls").stdout
    res = worker.docker("swarm", "leave", check=False)
    assert res.returncode == 1 and "not part of a swarm" in res.stderr
