"""The seed's scenario on 5 shoald processes (1 manager, 4 workers, sim executor, 1 s heartbeat),
driven through the real docker CLI: services, scaling, global services, constraints, node
failure and return, drain."""

from __future__ import annotations

import json
from typing import Any

from shoal.dev.local import Daemon, Swarm, wait_for
from tests.integration.conftest import init_swarm


def tasks(manager: Daemon, service: str, *, desired: str = "running") -> list[dict[str, Any]]:
    out = manager.docker("service", "ps", service, "--filter", f"desired-state={desired}", "--no-trunc",
                         "--format", "{{json .}}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def running_nodes(manager: Daemon, service: str) -> list[str]:
    return sorted(t["Node"] for t in tasks(manager, service) if t["CurrentState"].startswith("Running"))


def replicas(manager: Daemon, service: str) -> str:
    out = manager.docker("service", "ls", "--filter", f"name={service}", "--format", "{{.Name}} {{.Replicas}}").stdout
    return dict(line.split(" ", 1) for line in out.splitlines())[service]


def test_seed_scenario(swarm: Swarm) -> None:
    manager, workers = init_swarm(swarm, 4, labels={3: {"com.example.storage": "ssd"}})
    manager.docker("network", "create", "-d", "overlay", "mynet")
    out = manager.docker("service", "create", "--replicas", "3", "--name", "frontend", "--network", "mynet",
                         "--publish", "80:80/tcp", "frontend_image:latest", timeout=90)
    assert "converged" in out.stdout
    assert replicas(manager, "frontend") == "3/3"
    assert len(set(running_nodes(manager, "frontend"))) == 3  # spread over three nodes
    manager.docker("service", "create", "-d", "--name", "redis", "redis:latest")
    wait_for("redis running", lambda: replicas(manager, "redis") == "1/1")

    manager.docker("service", "scale", "frontend=6", timeout=90)
    assert replicas(manager, "frontend") == "6/6"
    manager.docker("service", "scale", "-d", "frontend=10")
    wait_for("10 frontend replicas", lambda: replicas(manager, "frontend") == "10/10")
    per_node = {n: running_nodes(manager, "frontend").count(n) for n in set(running_nodes(manager, "frontend"))}
    assert len(per_node) == 5 and max(per_node.values()) - min(per_node.values()) <= 1

    # global: once on every node, including one that joins later
    manager.docker("service", "create", "-d", "--mode", "global", "--name", "prometheus", "prom/prometheus")
    wait_for("prometheus on 5 nodes", lambda: len(running_nodes(manager, "prometheus")) == 5)
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    late = swarm.add()
    late.docker("swarm", "join", "--token", token, "--advertise-addr", late.ip, f"{manager.ip}:2377")
    wait_for("prometheus on the late node", lambda: late.hostname in running_nodes(manager, "prometheus"))

    # constraints on engine labels and node labels
    manager.docker("service", "create", "-d", "--name", "db", "--replicas", "2",
                   "--constraint", "engine.labels.com.example.storage==ssd", "redis:latest")
    wait_for("db on the ssd node", lambda: running_nodes(manager, "db") == [workers[1].hostname] * 2)
    manager.docker("node", "update", "--label-add", "zone=east", workers[2].hostname)
    manager.docker("service", "create", "-d", "--name", "east", "--replicas", "2",
                   "--constraint", "node.labels.zone==east", "redis:latest")
    wait_for("east on the labelled node", lambda: running_nodes(manager, "east") == [workers[2].hostname] * 2)

    # a worker dies: its tasks are replaced elsewhere within 3 heartbeats + 1 s (+ the restart delay)
    victim = workers[0]
    before = [t for t in tasks(manager, "frontend") if t["Node"] == victim.hostname]
    assert before
    victim.kill()
    wait_for("victim down", lambda: "Down" in manager.docker("node", "ls", "--filter", f"name={victim.hostname}").stdout, timeout=6)
    wait_for("frontend replaced elsewhere",
             lambda: replicas(manager, "frontend") == "10/10" and victim.hostname not in running_nodes(manager, "frontend"),
             timeout=15)
    # it comes back: its stale tasks are shut down, not restarted
    victim.start()
    wait_for("victim ready", lambda: "Ready" in manager.docker("node", "ls", "--filter", f"name={victim.hostname}").stdout)
    stale_ids = {t["ID"] for t in before}
    wait_for("stale tasks shut down", lambda: all(
        t["CurrentState"].split()[0] in ("Shutdown", "Complete", "Failed", "Orphaned")
        for t in tasks(manager, "frontend", desired="shutdown") if t["ID"] in stale_ids) or None)

    # drain empties a node
    drained = workers[3]
    manager.docker("node", "update", "--availability", "drain", drained.hostname)
    wait_for("drained node empty", lambda: not manager.docker("node", "ps", drained.hostname, "--filter", "desired-state=running", "-q").stdout.strip())
    wait_for("frontend still 10/10", lambda: replicas(manager, "frontend") == "10/10")
