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
