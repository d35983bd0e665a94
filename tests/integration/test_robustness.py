"""Issue 16 on real shoald processes: what used to take a daemon down or hang it.

- a second shoald on a data root another one holds is refused at once (dockerd's words, exit 1),
  and a restart that overlaps the old process's exit waits for it instead of failing on its ports;
- an absurd replica count is refused with a 400 and the manager keeps answering;
- a long heartbeat period, then a short one, leaves the nodes Ready;
- the store follows etcd through a kill of its member: writes are accepted again after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from shoal.dev.local import SHOALD, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import init_swarm
from tests.integration.procfaults import etcd_pid

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-crs"
BASE_IP = "127.0.94"


def test_one_shoald_per_data_root_and_an_overlapping_restart(swarm: Swarm) -> None:
    manager, _ = init_swarm(swarm, 0)
    pidfile = manager.root / "data" / "shoald.pid"
    assert manager.proc is not None and pidfile.read_text().strip() == str(manager.proc.pid)
    second = subprocess.run(
        SHOALD + ["--data-root", str(manager.root / "data"), "--exec-root", str(swarm.root / "exec2"),
                  "-H", f"unix://{swarm.root / 'second.sock'}", "--executor", "sim"],
        capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"shoald: failed to start daemon, ensure shoald is not running or delete {pidfile}: "
        f"process with PID {manager.proc.pid} is still running")
    assert not (swarm.root / "exec2").exists()
    assert manager.docker("node", "ls", "-q").stdout.split()  # the first one serves on

    # A restart overlapping the old process's exit: the new one waits, then starts cleanly
    # (no "address already in use": the daemon log is checked for tracebacks at teardown).
    old = manager.proc
    os.killpg(old.pid, signal.SIGTERM)
    manager.start()
    assert old.wait(timeout=30) == 0
    assert manager.proc is not None and manager.proc.poll() is None
    wait_for("the restarted manager Ready", lambda: manager.docker(
        "node", "ls", "--format", "{{.Status}}", check=False).stdout.split() == ["Ready"], timeout=30)
    assert pidfile.read_text().strip() == str(manager.proc.pid)


def test_absurd_replicas_are_refused_and_the_manager_answers(swarm: Swarm) -> None:
    manager, _ = init_swarm(swarm, 0)
    with manager.client() as c:
        r = c.post("/v1.43/services/create", json={
            "Name": "huge", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
            "Mode": {"Replicated": {"Replicas": 9223372036854775807}}})
        assert r.status_code == 400
        assert r.json()["message"] == (
            "rpc error: code = InvalidArgument desc = replicas must be at most 10000 (Shoal's "
            "limit of tasks per service), not 9223372036854775807")
    out = manager.docker("service", "create", "--name", "big", "--replicas", "20000", "busybox",
                         check=False)
    assert out.returncode != 0 and "replicas must be at most 10000" in out.stderr
    assert manager.api("/services") == []
    assert manager.docker("node", "ls", "-q").stdout.split()


def test_a_long_heartbeat_period_then_a_short_one(swarm: Swarm) -> None:
    manager, (worker,) = init_swarm(swarm, 1)
    refused = manager.docker("swarm", "update", "--dispatcher-heartbeat", "672h", check=False)
    assert refused.returncode != 0
    assert "heartbeat time period must be between 1s and 1h0m0s" in refused.stderr
    manager.docker("swarm", "update", "--dispatcher-heartbeat", "1h")
    time.sleep(2)  # the agents took the hour and are asleep until their next beat
    manager.docker("swarm", "update", "--dispatcher-heartbeat", "1s")
    seen: set[str] = set()
    deadline = time.monotonic() + 8  # well past 3 of the new periods
    while time.monotonic() < deadline:
        seen |= set(manager.docker("node", "ls", "--format", "{{.Status}}").stdout.split())
        time.sleep(0.2)
    assert seen == {"Ready"}, seen
    # and a node that stops beating is still seen Down by the new period
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for("the paused worker Down", lambda: "Down" in manager.docker(
            "node", "ls", "--format", "{{.Status}}").stdout.split(), timeout=20)
    finally:
        worker.proc.send_signal(signal.SIGCONT)


def test_the_store_follows_etcd_through_a_kill(swarm: Swarm) -> None:
    manager, _ = init_swarm(swarm, 0)
    manager.docker("service", "create", "--detach", "--name", "before", "busybox")
    first = etcd_pid(manager)
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for("etcd restarted", lambda: etcd_pid(manager) not in (None, first), timeout=60)

    def created() -> bool:
        out = manager.docker("service", "create", "--detach", "--name", "after", "busybox",
                             check=False)
        return out.returncode == 0 or "already exists" in out.stderr
    wait_for("a write accepted after the kill", created, timeout=60, interval=0.5)
    wait_for("both services listed", lambda: sorted(manager.docker(
        "service", "ls", "--format", "{{.Name}}", check=False).stdout.split()) == ["after", "before"],
        timeout=30)
