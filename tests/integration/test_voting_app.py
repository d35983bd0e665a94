"""Docker's example voting app (examples/voting-app/docker-stack.yml, unchanged) deployed with
`stack deploy` through the docker CLI and the shoal CLI, on a manager and a worker on simulated
hosts: its Docker Hub names come from the nodes' --registry-mirror (a local registry holding the
stand-ins of shoal/dev/votingapp.py). Votes cast through the routing mesh on either node travel
vote -> redis -> worker -> db and are counted by result; vote, on the frontend network only,
cannot reach db; `stack ps` and `stack services` show it; `stack rm` leaves nothing but the
volume (as Docker). Needs root, runc and docker-registry."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from shoal.dev import hosts
from shoal.dev.wait import wait_for
from tests.integration.conftest import TwoNodes

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-vote"
STACK = "shoaltest-vote"
STACK_FILE = Path(__file__).resolve().parents[2] / "examples" / "voting-app" / "docker-stack.yml"
REPLICAS = {"redis": 1, "db": 1, "vote": 2, "result": 1, "worker": 2}


@pytest.fixture(scope="module")
def cluster(hosts_cluster: TwoNodes) -> TwoNodes:
    return hosts_cluster


def _get(cluster: TwoNodes, url: str) -> str:
    """``url`` fetched with busybox wget from the manager's simulated host."""
    res = subprocess.run([*hosts.nsenter(cluster.manager.netns or ""), "/bin/busybox", "wget", "-q",
                          "-O", "-", url], capture_output=True, text=True, timeout=15, check=False)
    return res.stdout.strip() or f"(wget {url}: {res.stderr.strip()})"


def _in_container(pid: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "--", *argv], capture_output=True,
                          text=True, timeout=15, check=False)


def _all_running(cluster: TwoNodes) -> bool:
    return all(len(cluster.running(f"{STACK}_{name}")) == n for name, n in REPLICAS.items())


@pytest.mark.parametrize("cli", ["docker", "shoal"])
def test_the_voting_app_deploys_counts_votes_and_is_removed(cluster: TwoNodes, cli: str) -> None:
    m, w = cluster.manager, cluster.worker
    run: Callable[..., subprocess.CompletedProcess[str]] = m.docker if cli == "docker" else m.shoal
    try:
        run("stack", "deploy", "-c", str(STACK_FILE), STACK, timeout=120)
        try:
            wait_for("the voting app's 7 tasks running", lambda: _all_running(cluster), timeout=180)
        except AssertionError:
            states = {name: [(t["Status"]["State"], t["Status"].get("Err")) for t in cluster.tasks(f"{STACK}_{name}")]
                      for name in REPLICAS}
            raise AssertionError(f"voting app tasks: {states}") from None

        services = run("stack", "services", STACK, "--format", "{{.Name}} {{.Replicas}}").stdout.split("\n")
        assert sorted(s for s in services if s) == sorted(f"{STACK}_{name} {n}/{n}" for name, n in REPLICAS.items())
        ps = run("stack", "ps", STACK, "--format", "{{.Name}} {{.CurrentState}}").stdout.splitlines()
        assert len(ps) == sum(REPLICAS.values()) and all(" Running " in f"{line} " for line in ps), ps
        assert {line.split(".")[0] for line in ps} == {f"{STACK}_{name}" for name in REPLICAS}

        # three voters, through the published port of either node (the routing mesh)
        for ip, voter, vote in [(m.ip, "ann", "a"), (w.ip, "bob", "b"), (w.ip, "cid", "a"), (m.ip, "bob", "a")]:
            answer = _get(cluster, f"http://{ip}:8080/cgi-bin/vote?vote={vote}&voter={voter}")

            assert answer.startswith(f"voted {vote} as {voter}"), answer
        wait_for("the worker to move every vote to db",
                 lambda: _get(cluster, f"http://{w.ip}:8081/cgi-bin/results") == "Cats: 3 Dogs: 0",
                 timeout=60, interval=0.5)
        assert _get(cluster, f"http://{m.ip}:8081/cgi-bin/results") == "Cats: 3 Dogs: 0"
        assert "Cats vs Dogs!" in _get(cluster, f"http://{m.ip}:8080/")

        # db keeps its rows in the stack's volume, on the node it runs on
        db = cluster.running(f"{STACK}_db")[0]
        hostname = m.api(f"/nodes/{db['NodeID']}")["Description"]["Hostname"]
        node = next(d for d in cluster.nodes if d.hostname == hostname)
        data = node.root / "data" / "volumes" / f"{STACK}_db-data" / "_data"
        assert sorted(p.name for p in data.iterdir()) == ["ann", "bob", "cid"]
        # vote is on frontend only: redis answers it, db (on backend, by its VIP) does not
        vote_pid = cluster.running(f"{STACK}_vote")[0]["Status"]["ContainerStatus"]["PID"]
        ping = "printf 'PING\\nQUIT\\n' | timeout 5 nc {} {}"
        assert "PONG" in _in_container(vote_pid, "/bin/busybox", "sh", "-c", ping.format("redis", 6379)).stdout
        db_vip = m.api(f"/services/{STACK}_db")["Endpoint"]["VirtualIPs"][0]["Addr"].split("/")[0]
        assert "PONG" not in _in_container(vote_pid, "/bin/busybox", "sh", "-c", ping.format(db_vip, 5432)).stdout

        run("stack", "rm", STACK)
        wait_for("the stack's containers removed", lambda: not cluster.containers(), timeout=90)
        assert not m.api("/services")
        assert not [n["Name"] for n in m.api("/networks") if n["Name"].startswith(STACK)]
        assert run("stack", "ls", "--format", "{{.Name}}").stdout.strip() == ""
    finally:
        m.docker("stack", "rm", STACK, check=False)
        wait_for("the stack's containers removed", lambda: not cluster.containers(), timeout=90)
