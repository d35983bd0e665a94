"""Service options end to end (issue 15, "No silent options"): services created with the docker
CLI (and docker-py for OpenStdin, which the CLI has no flag for) on a manager and a worker
running real (runc) containers on simulated hosts; each option is observed from the host in the
task's container (/proc/<pid>/root/etc/resolv.conf, /etc/hosts, /proc/<pid>/status, limits, the
init as PID 1, the TTY, the templated hostname...). What the nodes cannot honour is refused at
create, naming the option. Needs root, runc, docker-registry and tini (tini-static)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.types import ContainerSpec, DriverConfig, Healthcheck, TaskTemplate

from shoal.dev.wait import wait_for
from tests.integration.conftest import TwoNodes

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs containers: needs root"),
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
    pytest.mark.skipif(shutil.which("tini-static") is None and shutil.which("docker-init") is None,
                       reason="no init binary (apt-get install tini)"),
]

PREFIX = "shoaltest-opt"
NET = "shoaltest-opt-net"


@pytest.fixture(scope="module")
def cluster(hosts_cluster: TwoNodes) -> TwoNodes:
    return hosts_cluster


def _root(pid: int, path: str) -> str:
    return Path(f"/proc/{pid}/root{path}").read_text()


def _child(pid: int) -> int:
    """The first child of the container's PID 1 (the command, under --init)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


def _status(pid: int, field: str) -> list[str]:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                if x.startswith(field + ":"))
    return line.split()[1:]


def _in_container(pid: int, *argv: str) -> str:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "--", *argv],
                          capture_output=True, text=True, timeout=15, check=False).stdout


def _node_of(cluster: TwoNodes, task: dict[str, Any]) -> Any:
    hostname = cluster.manager.api(f"/nodes/{task['NodeID']}")["Description"]["Hostname"]
    return next(d for d in cluster.nodes if d.hostname == hostname)


def test_options_reach_the_container(cluster: TwoNodes) -> None:
    m = cluster.manager
    m.docker("network", "create", "--driver", "overlay", NET)
    began = time.monotonic()
    m.docker(
        "service", "create", "--name", "shoaltest-opt", "--network", NET,
        "--dns", "192.0.2.53", "--dns-search", "example.com", "--dns-option", "ndots:2",
        "--host", "db.example.com:192.0.2.9", "--group", "nogroup", "--group", "4242",
        "--init", "-t", "--oom-score-adj", "321", "--ulimit", "nofile=321:654",
        "--sysctl", "net.ipv4.ip_forward=1",
        "--hostname", "{{.Service.Name}}-{{.Task.Slot}}", "--env", "WHERE={{.Node.Hostname}}",
        "--mount", "type=volume,source=shoaltest-opt-{{.Task.Slot}},target=/data",
        "--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=2",
        # a 60 s interval: only the 1 s start interval makes the task healthy, and running, soon
        "--health-cmd", "true", "--health-interval", "60s", "--health-start-period", "60s",
        "--health-start-interval", "1s",
        cluster.image("web"), timeout=180)
    try:
        assert time.monotonic() - began < 50, "not healthy at the start interval"
        [task] = cluster.running("shoaltest-opt")
        pid = task["Status"]["ContainerStatus"]["PID"]
        node = _node_of(cluster, task)

        resolv = _root(pid, "/etc/resolv.conf").splitlines()
        assert resolv[:3] == ["nameserver 127.0.0.11", "search example.com", "options ndots:2"]
        assert "# ExtServers: [192.0.2.53]" in resolv  # where the embedded DNS forwards
        # service names are still the embedded server's, though 192.0.2.53 never answers
        lookup = _in_container(pid, "/bin/busybox", "nslookup", "shoaltest-opt.")
        assert "Name:" in lookup and re.search(r"Address(?: \d+)?:\s*10\.",
                                               lookup.split("Name:", 1)[1]), lookup
        assert "192.0.2.9\tdb.example.com" in _root(pid, "/etc/hosts").splitlines()

        assert _root(pid, "/etc/hostname") == "shoaltest-opt-1\n"  # templated per task
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [
            b"/sbin/docker-init", b"--"]  # --init: PID 1
        command = _child(pid)
        assert {"65534", "4242"} <= set(_status(command, "Groups"))
        assert os.readlink(f"/proc/{command}/fd/0").startswith("/dev/pts/")  # -t
        environ = Path(f"/proc/{command}/environ").read_bytes().split(b"\0")
        assert f"WHERE={node.hostname}".encode() in environ and b"TERM=xterm" in environ
        limits = next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines()
                      if x.startswith("Max open files"))
        assert limits.split()[3:5] == ["321", "654"]
        assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "321"
        assert _in_container(pid, "/bin/busybox", "cat", "/proc/sys/net/ipv4/ip_forward") == "1\n"
        assert (node.root / "data/volumes/shoaltest-opt-1/_data").is_dir()

        # the terminal's output is logged (as one raw stream, what the CLI reads with --raw)
        wait_for("the TTY's output in the logs", lambda: "shoal/web: serving" in m.docker(
            "service", "logs", "--raw", "shoaltest-opt").stdout, timeout=30)
        spec = m.api("/services/shoaltest-opt")["Spec"]["TaskTemplate"]
        assert spec["ContainerSpec"]["Hostname"] == "{{.Service.Name}}-{{.Task.Slot}}"
        assert spec["LogDriver"] == {"Name": "json-file",
                                     "Options": {"max-file": "2", "max-size": "1m"}}
    finally:
        cluster.remove("shoaltest-opt")
        m.docker("network", "rm", NET, check=False)


def test_open_stdin_and_log_driver_none(cluster: TwoNodes) -> None:
    client = docker.DockerClient(base_url=cluster.manager.host, timeout=30)
    script = "while true; do sleep 1; done"
    try:
        spec = ContainerSpec(cluster.image("web"), command=["sh", "-c", script], open_stdin=True,
                             healthcheck=Healthcheck(test=["NONE"]))  # no httpd to check
        client.api.create_service(TaskTemplate(spec, log_driver=DriverConfig("none")),
                                  name="shoaltest-opt-in")
        wait_for("the service running", lambda: len(cluster.running("shoaltest-opt-in")) == 1,
                 timeout=120)
        [task] = cluster.running("shoaltest-opt-in")
        pid = task["Status"]["ContainerStatus"]["PID"]
        assert os.readlink(f"/proc/{pid}/fd/0").startswith("pipe:")  # kept open, not /dev/null
        node = _node_of(cluster, task)
        cid = task["Status"]["ContainerStatus"]["ContainerID"]
        assert not (node.root / f"data/containers/{cid}/{cid}-json.log").exists()
        logs = cluster.manager.docker("service", "logs", "shoaltest-opt-in", check=False)
        assert "configured logging driver does not support reading" in logs.stderr + logs.stdout
    finally:
        client.close()
        cluster.remove("shoaltest-opt-in")


@pytest.mark.parametrize(("flags", "message"), [
    (["--log-driver", "syslog"], "log driver 'syslog' is not supported by Shoal"),
    (["--log-driver", "json-file", "--log-opt", "compress=true"], "log-opt 'compress'"),
    (["--generic-resource", "gpu=1"], "no node of the swarm advertises generic resources"),
    (["--sysctl", "vm.swappiness=10"], 'sysctl "vm.swappiness" is not in a separate kernel'),
    (["--isolation", "hyperv"], "Invalid isolation: 'hyperv'"),
    (["--oom-score-adj", "1001"], "range for oom score adj is [-1000, 1000]"),
    (["--mount", "type=volume,source=v,target=/v,volume-driver=nfs"],
     "volume driver 'nfs' is not supported"),
    (["--host", "gw:host-gateway"], "host-gateway is not supported"),
])
def test_what_the_nodes_cannot_honour_is_refused(cluster: TwoNodes, flags: list[str],
                                                 message: str) -> None:
    res = cluster.manager.docker("service", "create", "--detach", "--name", "shoaltest-opt-no",
                                 *flags, cluster.image("web"), check=False)
    assert res.returncode != 0 and message in res.stderr, res.stderr
    assert not [s for s in cluster.manager.api("/services")
                if s["Spec"]["Name"] == "shoaltest-opt-no"]
