"""``shoald --metrics-addr``, scraped by a real Prometheus server (Debian's prometheus): a
manager and a worker on loopback, a service of three replicas; PromQL queries return the
swarm's counts by state, the engine's container actions and the agent's heartbeats, and the
node count follows a worker killed."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-met"
BASE_IP = "127.0.107"
METRICS_PORT = 9323  # dockerd's documented example port
PROMETHEUS = f"{BASE_IP}.200:19090"  # not 9090: a machine may run its own


def _start(swarm: Swarm) -> Daemon:
    d = swarm.add(start=False)
    d.metrics_addr = f"{d.ip}:{METRICS_PORT}"
    d.start()
    return d


@pytest.fixture
def prometheus(tmp_path: Path, swarm: Swarm) -> Iterator[subprocess.Popen[bytes]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: ./scripts/setup installs Debian's prometheus")
    targets = [f"{BASE_IP}.{i}:{METRICS_PORT}" for i in (1, 2)]
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "shoal", "static_configs": [{"targets": targets}]}]}))
    with open(tmp_path / "prometheus.log", "wb") as log:
        proc = subprocess.Popen([binary, f"--config.file={config}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address={PROMETHEUS}"],
                                stdout=log, stderr=log, start_new_session=True)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def query(promql: str) -> dict[str, float]:
    """An instant query's result: {"<labels>": value}."""
    url = f"http://{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
            for r in body["data"]["result"]}


def value(promql: str) -> float | None:
    """A query whose result is one number (a sum), or None while Prometheus has none."""
    try:
        result = query(promql)
    except OSError:
        return None  # not listening yet
    return next(iter(result.values())) if len(result) == 1 else None


def test_prometheus_scrapes_the_swarm(swarm: Swarm, prometheus: subprocess.Popen[bytes]) -> None:
    manager = _start(swarm)
    manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s")
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    worker = _start(swarm)
    worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.ip, f"{manager.ip}:2377")
    manager.docker("service", "create", "--detach", "--replicas", "3", "--name", "metweb", "busybox")

    def equals(promql: str, expected: float) -> bool:
        return value(promql) == expected

    # Both targets up, scraped by Prometheus itself
    wait_for("both targets up", lambda: equals('sum(up{job="shoal"})', 2), timeout=60)
    # The swarm's counts, on the manager (Docker's names and labels)
    wait_for("3 running tasks", lambda: equals('swarm_manager_tasks_total{state="running"}', 3), timeout=60)
    assert value('swarm_manager_nodes{state="ready"}') == 2
    assert value("swarm_manager_services_total") == 1
    assert value("swarm_manager_leader") == 1
    assert value("shoal_etcd_up") == 1
    # Every node's engine: swarm membership, the containers' create and start actions of its
    # tasks (the sim executor's), the agent's heartbeats
    assert value("sum(swarm_node_info)") == 2
    assert value("sum(swarm_node_manager)") == 1
    wait_for("3 task starts over both engines", lambda: equals(
        'sum(engine_daemon_container_actions_seconds_count{action="start"})', 3), timeout=30)
    wait_for("heartbeats from both agents", lambda: equals(
        "count(shoal_agent_heartbeat_seconds_count > 0)", 2), timeout=30)
    delay = value("sum(swarm_dispatcher_scheduling_delay_seconds_count)")
    assert delay is not None and delay >= 3
    assert (value("sum(swarm_store_write_tx_latency_seconds_count)") or 0) > 0

    # A worker killed: the manager counts it down, its tasks move, Prometheus sees its target go
    worker.kill()
    wait_for("the worker down", lambda: equals('swarm_manager_nodes{state="down"}', 1), timeout=60)
    wait_for("its target down", lambda: equals('sum(up{job="shoal"})', 1), timeout=30)
    wait_for("3 running tasks again", lambda: equals('swarm_manager_tasks_total{state="running"}', 3),
             timeout=60)
