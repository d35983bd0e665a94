"""Jobs end to end with the docker CLI: ``service create --mode replicated-job --replicas 3
--max-concurrent 2`` returns once the CLI's job progress reaches "job complete", ``service ls``
shows the completions, a global job runs once on every node, and ``service update --force``
runs each of them again (a new JobIteration; the earlier run's tasks stay as history).

Run alone (about 10 s, sim executor: a task "exits" 0 after SIM_EXIT_AFTER, loopback 127.0.86.N):
PYTHONPATH=. .venv/bin/python -m pytest -q -p no:cacheprovider tests/integration/test_jobs.py
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import init_swarm

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-job"
BASE_IP = "127.0.86"  # the conftest swarm fixture names and addresses its daemons after these
IMAGE = "busybox:latest"  # the sim executor runs no process: any name will do
EXITS = ("--env", "SIM_EXIT_AFTER=0.3", "--no-resolve-image")


def _tasks(d: Daemon, service: str) -> list[dict[str, Any]]:
    return d.api(f'/tasks?filters={{"service":["{service}"]}}')  # type: ignore[no-any-return]


def _run(tasks: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    return [t for t in tasks if (t.get("JobIteration") or {}).get("Index") == index]


def _replicas(d: Daemon, service: str) -> str:
    return d.docker("service", "ls", "--filter", f"name={service}", "--format", "{{.Replicas}}").stdout.strip()


def _job_complete(res: Any) -> None:
    assert res.returncode == 0, res.stderr
    assert "job complete" in res.stdout, res.stdout


def test_jobs_run_to_completion_and_again_on_update(swarm: Swarm) -> None:
    manager, _ = init_swarm(swarm, 2)
    nodes = {n["ID"] for n in manager.api("/nodes")}

    # A replicated job: 3 completions, 2 at a time; the CLI waits for them.
    name = "shoaltest-job-batch"
    _job_complete(manager.docker("service", "create", "--name", name, "--mode", "replicated-job",
                                 "--replicas", "3", "--max-concurrent", "2", *EXITS, IMAGE,
                                 timeout=60))
    tasks = _tasks(manager, name)
    assert sorted(t["Slot"] for t in tasks) == [0, 1, 2]
    assert {(t["Status"]["State"], t["DesiredState"]) for t in tasks} == {("complete", "complete")}
    assert _replicas(manager, name) == "0/2 (3/3 completed)"
    mode = manager.docker("service", "ls", "--filter", f"name={name}", "--format", "{{.Mode}}")
    assert mode.stdout.strip() == "replicated job"
    shoal_ls = manager.shoal("service", "ls", "--filter", f"name={name}", "--format", "{{.Replicas}}")
    assert shoal_ls.stdout.strip() == "0/2 (3/3 completed)"  # the shoal CLI reads it alike

    # A global job: once on each of the 3 nodes.
    each = "shoaltest-job-each"
    _job_complete(manager.docker("service", "create", "--name", each, "--mode", "global-job",
                                 *EXITS, IMAGE, timeout=60))
    tasks = _tasks(manager, each)
    assert Counter(t["NodeID"] for t in tasks) == Counter(nodes)
    assert {t["Status"]["State"] for t in tasks} == {"complete"}
    assert _replicas(manager, each) == "0/0 (3/3 completed)"
    assert len(_tasks(manager, name)) == 3  # the finished job: nothing restarted meanwhile

    # `service update --force`: a new run of each, to completion again.
    for service, total in ((name, 3), (each, 3)):
        _job_complete(manager.docker("service", "update", "--force", service, timeout=60))
        inspect = manager.docker("service", "inspect", service, "--format", "{{json .JobStatus}}")
        assert json.loads(inspect.stdout)["JobIteration"]["Index"] == 1
        tasks = _tasks(manager, service)
        again = _run(tasks, 1)
        assert len(again) == total and {t["Status"]["State"] for t in again} == {"complete"}
        assert len(_run(tasks, 0)) == total  # the first run's completions, as history
        assert _replicas(manager, service).endswith(f"({total}/{total} completed)")
    assert Counter(t["NodeID"] for t in _run(_tasks(manager, each), 1)) == Counter(nodes)

    # A job whose tasks fail is retried (on-failure) up to the policy's attempts, then stops.
    failing = "shoaltest-job-fail"
    manager.docker("service", "create", "-d", "--name", failing, "--mode", "replicated-job",
                   "--restart-delay", "0s", "--restart-max-attempts", "1", "--env", "SIM_EXIT_CODE=3",
                   *EXITS, IMAGE)
    wait_for("2 failed attempts", lambda: [t["Status"]["State"] for t in _tasks(manager, failing)]
             == ["failed", "failed"], timeout=20)
    assert _replicas(manager, failing) == "0/1 (0/1 completed)"
    assert len(_tasks(manager, failing)) == 2  # the slot is spent: no fresh task

    # Removing a job removes its tasks.
    manager.docker("service", "rm", name, each, failing)
    wait_for("no tasks left", lambda: not manager.api("/tasks"), timeout=20)
