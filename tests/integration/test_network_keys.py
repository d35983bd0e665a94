"""Gossip keys on a real swarm (a manager and a worker, sim executor): the leader creates the
ring, every agent gets it over its session, a rotation (a 2 s interval instead of 12 h) reaches
the worker, and the keys never show in the API (GET /swarm, /nodes, /info, `docker info`, `docker
node inspect`; the docker CLI has no `swarm inspect`: GET /swarm is what it would show)."""

from __future__ import annotations

import json
import re

import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import init_swarm

pytestmark = pytest.mark.integration

ROTATION = "2"  # seconds between rotations on the leader
AGENT_LINE = re.compile(r"network keys: (\d+) \(lamport (\d+)\)")
HIDDEN = ("NetworkBootstrapKeys", "EncryptionKeyLamportClock", "LamportTime", "networking:gossip")


def _received(d: Daemon) -> list[tuple[int, int]]:
    """(number of keys, newest Lamport time) of every NetworkUpdate the agent logged."""
    text = d.log.read_text(errors="replace") if d.log.exists() else ""
    return [(int(m.group(1)), int(m.group(2))) for m in AGENT_LINE.finditer(text)]


def test_keys_reach_agents_and_rotate(swarm: Swarm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_KEY_ROTATION_INTERVAL", ROTATION)  # read by each shoald at start
    manager, (worker,) = init_swarm(swarm, 1)

    first = wait_for("the worker's first keys", lambda: _received(worker) or None, timeout=20)[0]
    assert first[0] == 3
    wait_for("the manager's own agent's keys", lambda: _received(manager) or None, timeout=20)
    # two rotations later the worker holds a ring whose newest key is two Lamport ticks newer
    wait_for("a rotation reaching the worker",
             lambda: any(n == 3 and t >= first[1] + 2 for n, t in _received(worker)), timeout=30)
    times = [t for _, t in _received(worker)]
    assert times == sorted(times)
    assert "gossip key rotated" in manager.log.read_text(errors="replace")

    shown = [json.dumps(manager.api("/swarm")), json.dumps(manager.api("/nodes")),
             json.dumps(worker.api("/info")), manager.docker("node", "inspect", "self").stdout,
             manager.docker("info", "--format", "{{json .}}").stdout]
    for text in shown:
        for word in HIDDEN:
            assert word not in text
