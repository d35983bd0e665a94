"""init, join, node ls, join tokens, leave: the swarm lifecycle through the real docker CLI."""

from __future__ import annotations

from shoal.dev.local import Swarm
from tests.integration.conftest import init_swarm


def test_init_join_and_node_ls(swarm: Swarm) -> None:
    manager, workers = init_swarm(swarm, 2)
    out = manager.docker("node", "ls").stdout
    assert "Leader" in out and out.count("Ready") == 3
    for w in workers:
        assert w.hostname in out
    info = manager.api("/info")
    assert info["Swarm"]["LocalNodeState"] == "active" and info["Swarm"]["ControlAvailable"]
    res = workers[0].docker("node", "ls", check=False)
    assert res.returncode == 1 and "Worker nodes can't be used" in res.stderr


def test_wrong_and_rotated_tokens_are_refused(swarm: Swarm) -> None:
    manager, _ = init_swarm(swarm, 0)
    old = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    manager.docker("swarm", "join-token", "--rotate", "worker")
    new = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    assert old != new and old.split("-")[2] == new.split("-")[2]
    w = swarm.add()
    res = w.docker("swarm", "join", "--token", old, "--advertise-addr", w.ip, f"{manager.ip}:2377", check=False)
    assert res.returncode == 1 and "join token" in res.stderr
    bad_digest = "SWMTKN-1-" + "0" * 50 + "-" + new.split("-")[3]
    res = w.docker("swarm", "join", "--token", bad_digest, "--advertise-addr", w.ip, f"{manager.ip}:2377", check=False)
    assert res.returncode == 1 and "fingerprint" in res.stderr
    assert w.api("/info")["Swarm"]["LocalNodeState"] == "inactive"
    w.docker("swarm", "join", "--token", new, "--advertise-addr", w.ip, f"{manager.ip}:2377")


def test_swarm_update_changes_cluster_settings(swarm: Swarm) -> None:
    manager, _ = init_swarm(swarm, 0)
    manager.docker("swarm", "update", "--dispatcher-heartbeat", "2s", "--task-history-limit", "3")
    spec = manager.api("/swarm")["Spec"]
    assert spec["Dispatcher"]["HeartbeatPeriod"] == 2_000_000_000
    assert spec["Orchestration"]["TaskHistoryRetentionLimit"] == 3
    swarm_json = manager.api("/swarm")
    assert "PRIVATE KEY" not in str(swarm_json) and "RootCA" not in swarm_json
    assert swarm_json["TLSInfo"]["TrustRoot"].startswith("-----BEGIN CERTIFICATE-----")
    res = manager.docker("swarm", "init", "--advertise-addr", manager.ip, check=False)
    assert res.returncode == 1 and "already part of a swarm" in res.stderr
    out = manager.docker("node", "inspect", "--pretty", "self").stdout
    assert "Hostname:" in out and manager.hostname in out and "Manager Status:" in out
