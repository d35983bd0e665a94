"""Heartbeats on a running swarm: a shorter period set by `swarm update` does not mark nodes
down, and a node marked down while its session lived on (a paused daemon) comes back Ready
with its next heartbeat."""

from __future__ import annotations

import signal
import time

import pytest

from shoal.dev.local import Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import init_swarm

pytestmark = pytest.mark.integration


def _states(manager: object) -> list[str]:
    return manager.docker("node", "ls", "--format", "{{.Status}}").stdout.split()  # type: ignore[attr-defined, no-any-return]


def test_a_shorter_period_then_a_pause(swarm: Swarm) -> None:
    manager, (worker,) = init_swarm(swarm, 1)
    manager.docker("swarm", "update", "--dispatcher-heartbeat", "5s")
    time.sleep(6)  # agents now beat every 5 s
    manager.docker("swarm", "update", "--dispatcher-heartbeat", "1s")
    seen = set()
    deadline = time.monotonic() + 8  # several of the new periods, and the old one
    while time.monotonic() < deadline:
        seen |= set(_states(manager))
        time.sleep(0.2)
    assert seen == {"Ready"}, seen

    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGSTOP)  # its session stays open, its heartbeats stop
    try:
        wait_for("the paused worker Down", lambda: "Down" in _states(manager), timeout=20)
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    wait_for("the worker Ready again", lambda: _states(manager) == ["Ready", "Ready"], timeout=20)
