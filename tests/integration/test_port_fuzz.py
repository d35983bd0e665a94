"""The swarm port of a real shoald fuzzed (issue 16), within a bounded budget: a manager and a
worker (sim executor, heartbeat 1 s) on 127.0.103.x; a fuzz client joins as a node of its own
(``shoal.node.join``, a real worker certificate), then sends ``tests/fuzz/portfuzz.py``'s bad
joins without a certificate, bad renewals and session messages with its certificate, one
session frame past 64 MiB, and strangers that never finish their request.

It fails on any 5xx, a hang, a session answered otherwise than by its answer or a close with
1007/1009, a slow sender the manager did not cut off, the real worker missing a heartbeat
meanwhile (marked down), `docker node ls`/`node inspect` no longer reading what was stored, and
(the ``swarm`` fixture) a traceback or warning in a daemon's log. The manager's RSS before and
after is printed. Gossip and the embedded DNS server run only with the runc executor in a
simulated host: they are fuzzed in process (tests/unit/net/test_{gossip,dns}_fuzz.py). The
longer run is bench/bench_port_fuzz.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.node import join
from tests.fuzz.portfuzz import Report, fuzz_ca, fuzz_sessions, slow_senders
from tests.integration.conftest import init_swarm

pytestmark = [pytest.mark.integration, pytest.mark.fuzz, pytest.mark.timeout(400)]

PREFIX = "shoaltest-pfz"
BASE_IP = "127.0.103"
N = int(os.environ.get("SHOAL_PORT_FUZZ_N", "150"))  # hypothesis inputs per kind


def rss_kib(d: Daemon) -> int:
    assert d.proc is not None
    status = Path(f"/proc/{d.proc.pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


async def fuzz(manager: Daemon, token: str, report: Report, n: int, *, hold: float, seed: int = 0) -> int:
    """The swarm port fuzzed once; the number of the 20 slow senders the manager cut off."""
    addr = f"{manager.ip}:2377"
    worker = await join([addr], token, hostname=f"{PREFIX}-fuzzclient", advertise_addr=f"{BASE_IP}.200")
    await fuzz_ca(addr, token, worker, report, n=n, seed=seed)
    await fuzz_sessions(addr, worker, report, n=n, seed=seed, oversized=True)
    return await slow_senders(addr, report, count=20, hold=hold)


def test_the_swarm_port_of_a_real_manager_survives_bad_input(swarm: Swarm) -> None:
    manager, (worker,) = init_swarm(swarm, 1)
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    worker_id = worker.docker("info", "-f", "{{.Swarm.NodeID}}").stdout.strip()
    before = rss_kib(manager)
    report = Report()
    cut = asyncio.run(fuzz(manager, token, report, N, hold=12.0))
    after = rss_kib(manager)
    print(report.summary())
    print(f"manager RSS {before} KiB before, {after} KiB after; slow senders cut off: {cut}/20")

    assert not report.failures, "\n".join(report.failures)
    assert cut == 20, "strangers that never finish their request hold the manager's connections"
    nodes = manager.docker("node", "ls", "--format", "{{.ID}} {{.Status}}").stdout.split("\n")
    assert f"{worker_id} Ready" in nodes
    downs = [line for line in manager.log.read_text(errors="replace").splitlines()
             if worker_id in line and "->down" in line]
    assert not downs, f"the real worker missed heartbeats during the run: {downs}"
    if shutil.which("docker"):  # Go's types read every node the run left
        ids = manager.docker("node", "ls", "-q").stdout.split()
        result = manager.docker("node", "inspect", *ids, check=False)
        assert result.returncode == 0 and "cannot unmarshal" not in result.stderr, result.stderr
