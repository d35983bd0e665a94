"""The fuzz tier: the Engine API fuzzed from moby's swagger (v1.50) against one real shoald, a
single-node swarm, for a bounded budget (``SHOAL_FUZZ_SECONDS``, 120 s by default).

It fails on any 5xx, a request left without an answer, a response that does not match Docker's
schema (Content-Type, and the body of a 2xx), and if after the run shoald no longer answers
``/_ping`` or the docker CLI can no longer read what the fuzzer stored (``docker info``,
``docker service ls``, ``docker node ls``...). The longer run is ``bench/bench_api_fuzz.py``.
"""

from __future__ import annotations

import os
import shutil

import pytest

from shoal.dev.local import Swarm
from tests.fuzz.apifuzz import run, seed

pytest.importorskip("schemathesis")

pytestmark = [pytest.mark.integration, pytest.mark.fuzz, pytest.mark.timeout(600)]

PREFIX = "shoaltest-fuz"
BASE_IP = "127.0.95"
PORT = 23750
BUDGET = float(os.environ.get("SHOAL_FUZZ_SECONDS", "120"))


def test_engine_api_survives_docker_swagger_fuzzing(swarm: Swarm) -> None:
    manager = swarm.add(start=False)
    manager.api_hosts = [f"tcp://{manager.ip}:{PORT}"]
    manager.start()
    manager.docker("swarm", "init", "--advertise-addr", manager.ip)
    base_url = f"http://{manager.ip}:{PORT}/v1.50"
    ids = seed(base_url)

    report = run(base_url, budget=BUDGET, seed_ids=ids)
    print(report.summary(), *report.failures, sep="\n")

    assert manager.ping(), "shoald no longer answers /_ping after the run"
    # Everything the fuzzer got stored, the docker CLI still reads (Go's types).
    if shutil.which("docker"):
        for argv in (["info"], ["service", "ls"], ["node", "ls"], ["secret", "ls"], ["config", "ls"],
                     ["network", "ls"], ["volume", "ls"]):
            result = manager.docker(*argv, check=False, timeout=30)
            assert result.returncode == 0 and "cannot unmarshal" not in result.stderr, (argv, result.stderr)
        services = manager.docker("service", "ls", "-q").stdout.split()
        if services:
            manager.docker("service", "inspect", *services)
    assert report.requests > 0
    assert not report.failures, f"{report.summary()}\n" + "\n".join(report.failures[:40])
