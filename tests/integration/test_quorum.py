"""Managers in a quorum: leader failover (SIGKILL and SIGSTOP) under a stream of writes with a
linearizability check, a full restart, promote/demote round trips, quorum loss and
force-new-cluster. Daemons run on 127.0.7.x with the sim executor; the ``swarm`` fixture stops
every shoald and checks that no etcd is left."""

from __future__ import annotations

import signal
import time

import pytest

from shoal.dev.linearizability import check
from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.quorum import (
    Recorder,
    init_managers,
    leader,
    pause,
    statuses,
    wait_leader,
)


def _service_labels(d: Daemon) -> dict[str, str | None]:
    return {s["Spec"]["Name"]: s["Spec"]["Labels"].get("v") for s in d.api("/services")}


# httpcore leaks the socket of a unix-socket connect that fails (a killed daemon's socket).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("managers", [3, 5])
def test_leader_kill_and_pause_keep_every_acknowledged_write(swarm: Swarm, managers: int) -> None:
    daemons = init_managers(swarm, managers, workers=1)
    mgrs = daemons[:managers]
    keys = ["qa", "qb", "qc"]
    with Recorder(mgrs, keys) as rec:
        time.sleep(3)
        first = wait_leader(mgrs)
        killed_at = time.monotonic()
        first.kill(signal.SIGKILL)
        second = wait_leader(mgrs, other_than=first, timeout=45)
        time.sleep(3)  # writes through the new leader and the followers
        writes_after_kill = [op for op in rec.history.ops()
                             if op.f in ("create", "write") and op.status == "ok" and op.call > killed_at]
        first.start()
        wait_for("the restarted manager reachable again",
                 lambda: statuses(second)["managers"] == managers, timeout=60)
        pause(second, 6)  # a paused leader: its lease runs out, another leads, its writes are fenced
        wait_leader(mgrs, timeout=45)
        time.sleep(3)
    assert writes_after_kill, "no write was acknowledged after the leader was killed"
    result = check(rec.history)
    assert result.ok, result.explanation
    acknowledged = [op for op in rec.history.ops() if op.status == "ok" and op.f != "read"]
    assert len(acknowledged) >= 10, f"too few acknowledged writes to mean anything: {len(acknowledged)}"
    # Every manager ends with the same services (it serves them from its own cache).
    views = {d.hostname: wait_for(f"{d.hostname} serving", lambda d=d: _service_labels(d), timeout=30)
             for d in mgrs}
    assert len({tuple(sorted(v.items())) for v in views.values()}) == 1, views
    # The worker joined through the first (killed) manager and found the others on its own.
    wait_for("every node ready", lambda: statuses(mgrs[1]) == {"Ready": managers + 1, "managers": managers},
             timeout=60)


def test_full_restart_keeps_services_nodes_and_tasks(swarm: Swarm) -> None:
    daemons = init_managers(swarm, 3, workers=1)
    m1, m2, m3, _ = daemons
    m2.docker("service", "create", "--detach", "--name", "web", "--replicas", "4", "busybox")
    m3.docker("service", "create", "--detach", "--name", "api", "--mode", "global", "busybox")
    wait_for("every task running", lambda: sum(
        t["Status"]["State"] == "running" for t in m1.api("/tasks")) == 8, timeout=60)
    before_tasks = {t["ID"] for t in m1.api("/tasks") if t["Status"]["State"] == "running"}
    before_nodes = {n["ID"]: n["Spec"]["Role"] for n in m1.api("/nodes")}
    for d in daemons:
        d.stop()
    for d in daemons:
        d.start()
    for d in (m1, m2, m3):
        wait_for(f"{d.hostname} serving the swarm", lambda d=d: d.docker("service", "ls", check=False).returncode == 0,
                 timeout=60)
    wait_leader(daemons[:3])
    wait_for("every node ready again", lambda: statuses(m2) == {"Ready": 4, "managers": 3}, timeout=60)
    assert {n["ID"]: n["Spec"]["Role"] for n in m3.api("/nodes")} == before_nodes
    assert sorted(_service_labels(m2)) == ["api", "web"]
    running = wait_for("the same tasks running", lambda: (
        ids := {t["ID"] for t in m3.api("/tasks") if t["Status"]["State"] == "running"}) == before_tasks and ids,
        timeout=30)
    assert running == before_tasks


def test_promote_demote_round_trip(swarm: Swarm) -> None:
    daemons = init_managers(swarm, 1, workers=2)
    m1, w1, w2 = daemons
    out = w1.docker("service", "ls", check=False)
    assert out.returncode != 0 and "not a swarm manager" in out.stderr
    m1.docker("node", "promote", w1.hostname, w2.hostname)
    wait_for("three reachable managers", lambda: statuses(m1)["managers"] == 3, timeout=90)
    # A promoted node serves every command from its own socket, writes included.
    w2.docker("service", "create", "--detach", "--name", "promoted", "--replicas", "2", "busybox")
    assert "promoted" in w1.docker("service", "ls", "--format", "{{.Name}}").stdout.split()
    table = m1.docker("node", "ls").stdout
    assert table.count("Reachable") == 2 and table.count("Leader") == 1, table
    # Demoting the leader hands the leadership over first.
    w1.docker("node", "demote", m1.hostname)
    new = wait_leader(daemons, other_than=m1, timeout=45)
    wait_for("the old leader is a worker", lambda: statuses(new)["managers"] == 2, timeout=60)
    wait_for("the demoted node refuses manager commands",
             lambda: "not a swarm manager" in m1.docker("node", "ls", check=False).stderr, timeout=30)
    other = w2 if new is w1 else w1
    new.docker("node", "demote", other.hostname)
    wait_for("one manager left", lambda: statuses(new)["managers"] == 1, timeout=60)
    last = new.docker("node", "demote", new.hostname, check=False)
    assert last.returncode != 0 and "attempting to demote the last manager of the swarm" in last.stderr
    # Round trip: the first node becomes a manager again and the quorum is back to two.
    new.docker("node", "promote", m1.hostname)
    wait_for("two reachable managers", lambda: statuses(new)["managers"] == 2, timeout=90)
    rm = new.docker("node", "rm", "--force", m1.hostname, check=False)
    assert rm.returncode != 0 and "must be demoted to worker before removal" in rm.stderr
    leave = m1.docker("swarm", "leave", check=False)
    assert leave.returncode != 0 and "participating as a manager" in leave.stderr
    assert "promoted" in m1.docker("service", "ls", "--format", "{{.Name}}").stdout


def test_quorum_loss_then_force_new_cluster(swarm: Swarm) -> None:
    daemons = init_managers(swarm, 3, workers=1)
    m1, m2, m3, worker = daemons
    m1.docker("service", "create", "--detach", "--name", "keep", "--replicas", "3", "busybox")
    wait_for("3 tasks running", lambda: sum(t["Status"]["State"] == "running" for t in m1.api("/tasks")) == 3,
             timeout=60)
    tasks = {t["ID"] for t in m1.api("/tasks")}
    m2.kill(signal.SIGKILL)
    m3.kill(signal.SIGKILL)
    # Writes fail with Docker's message within seconds; reads still answer.
    start = time.monotonic()
    out = m1.docker("service", "create", "--detach", "--name", "lost", "busybox", check=False, timeout=30)
    assert out.returncode != 0 and "does not have a leader" in out.stderr, out.stderr
    assert time.monotonic() - start < 15
    assert "keep" in m1.docker("service", "ls", "--format", "{{.Name}}", timeout=30).stdout
    with worker.client() as c:
        assert c.get("/_ping").status_code == 200
    # Recovery: this manager alone, from its own data.
    m1.docker("swarm", "init", "--force-new-cluster", "--advertise-addr", m1.ip)
    wait_for("a writable store", lambda: m1.docker("service", "create", "--detach", "--name", "after", "busybox",
                                                   check=False).returncode == 0, timeout=60)
    assert leader([m1]) is m1
    names = m1.docker("service", "ls", "--format", "{{.Name}}").stdout.split()
    assert sorted(names) == ["after", "keep"]
    # The worker's tasks kept running through it all: the same tasks, never replaced.
    running = wait_for("the kept tasks running", lambda: (
        ids := {t["ID"] for t in m1.api("/tasks?filters={\"service\":[\"keep\"]}")
                if t["Status"]["State"] == "running" and t["DesiredState"] == "running"}) and ids, timeout=30)
    assert running <= tasks
    # The lost managers can be demoted and removed now.
    m1.docker("node", "demote", m2.hostname, m3.hostname)
    wait_for("the old managers are workers",
             lambda: sum(1 for n in m1.api("/nodes") if n.get("ManagerStatus")) == 1, timeout=30)
    m1.docker("node", "rm", "--force", m2.hostname, m3.hostname)
    assert len(m1.api("/nodes")) == 2


def test_manager_leave(swarm: Swarm) -> None:
    daemons = init_managers(swarm, 3)
    m1, m2, m3 = daemons
    refused = m3.docker("swarm", "leave", check=False)
    assert refused.returncode != 0 and "participating as a manager" in refused.stderr
    assert "--force-new-cluster" in refused.stderr
    m3.docker("swarm", "leave", "--force")
    assert m3.api("/info")["Swarm"]["LocalNodeState"] == "inactive"
    # Two managers left, both members: the swarm still takes writes.
    m2.docker("service", "create", "--detach", "--name", "after-leave", "busybox")
    wait_for("the left manager unreachable", lambda: any(
        n["Description"]["Hostname"] == m3.hostname and n["ManagerStatus"]["Reachability"] == "unreachable"
        for n in m1.api("/nodes")), timeout=30)
    m1.docker("node", "demote", m3.hostname)
    wait_for("two managers", lambda: sum(1 for n in m1.api("/nodes") if n.get("ManagerStatus")) == 2, timeout=30)
    wait_for("the left node down", lambda: any(
        n["Description"]["Hostname"] == m3.hostname and n["Status"]["State"] == "down" for n in m1.api("/nodes")),
        timeout=30)
    m1.docker("node", "rm", m3.hostname)
    assert sorted(n["Description"]["Hostname"] for n in m2.api("/nodes")) == [m1.hostname, m2.hostname]
