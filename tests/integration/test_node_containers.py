"""Every node an engine for its containers: a manager and a worker with the runc executor on
127.0.91.x, tasks' containers seen with the unmodified docker CLI and docker-py on each node's
own socket: ``docker ps`` (names, labels, filters), ``inspect``, ``exec`` (with and without a
terminal, driven through a pty), ``logs``, ``top``, ``stats``, and ``docker stop`` of a task's
container, which the swarm replaces. Needs root, runc and docker-registry (skipped otherwise)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shoal.dev.images import build_all
from shoal.dev.local import Daemon, Swarm
from shoal.dev.registry import LocalRegistry
from shoal.dev.wait import wait_for
from shoal.store.etcd.testing import free_port
from tests.integration.conftest import TwoNodes, close_and_check, runc_manager_and_worker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs containers: needs root"),
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    pytest.mark.skipif(shutil.which("docker-registry") is None,
                       reason="docker-registry is not installed"),
]

PREFIX = "shoaltest-ctr"
BASE_IP = "127.0.91"
SERVICE = "shoaltest-ctr-web"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    root = tmp_path_factory.mktemp(PREFIX)
    registry = LocalRegistry(root / "registry", f"127.0.0.1:{free_port()}")
    registry.start()
    swarm = Swarm(root, base_ip=BASE_IP, prefix=PREFIX)
    try:
        for image in build_all():
            registry.push(image)
        yield TwoNodes(*runc_manager_and_worker(swarm), registry.addr)
    finally:
        registry.stop()
        close_and_check(swarm)


@pytest.fixture(scope="module")
def web(cluster: TwoNodes) -> Iterator[str]:
    """A global service: one task's container on each node."""
    m = cluster.manager
    m.docker("service", "create", "-d", "--name", SERVICE, "--mode", "global",
             "--label", "svc=web", "--container-label", "role=front", cluster.image("web"),
             timeout=120)
    try:
        wait_for("a running task on each node", lambda: len(cluster.running(SERVICE)) == 2,
                 timeout=120, interval=0.3)
        yield SERVICE
    finally:
        cluster.remove(SERVICE)


def _ps(d: Daemon, *args: str) -> list[dict[str, Any]]:
    out = d.docker("ps", "--no-trunc", "--format", "{{json .}}", *args).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _task_container(cluster: TwoNodes, d: Daemon) -> dict[str, Any]:
    node_id = d.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    task = next(t for t in cluster.running(SERVICE) if t["NodeID"] == node_id)
    return {"task": task, "node": node_id, "cid": task["Status"]["ContainerStatus"]["ContainerID"]}


def test_ps_and_inspect_show_task_containers(cluster: TwoNodes, web: str) -> None:
    w = cluster.worker
    found = _task_container(cluster, w)
    rows = _ps(w, "--filter", "is-task=true")
    assert [r["ID"] for r in rows] == [found["cid"]]
    name = f"{SERVICE}.{found['node']}.{found['task']['ID']}"  # global: SERVICE.NODEID.TASKID
    assert rows[0]["Names"] == name
    assert rows[0]["Image"].startswith(cluster.image("web") + "@sha256:")  # as the spec pins it
    assert rows[0]["State"] == "running"
    assert _ps(w, "--filter", f"label=com.docker.swarm.service.name={SERVICE}")[0]["Names"] == name
    assert _ps(w, "--filter", "label=role=front")[0]["Names"] == name
    assert _ps(w, "--filter", "is-task=false") == []
    assert _ps(w, "--filter", f"name={SERVICE}")[0]["ID"] == found["cid"]
    info = json.loads(w.docker("inspect", name).stdout)[0]
    assert info["Id"] == found["cid"]
    assert info["Name"] == "/" + name
    labels = info["Config"]["Labels"]
    assert labels["com.docker.swarm.task.id"] == found["task"]["ID"]
    assert labels["com.docker.swarm.node.id"] == found["node"]
    assert labels["com.docker.swarm.service.name"] == SERVICE
    assert labels["role"] == "front"
    assert info["Config"]["Tty"] is False
    assert info["State"]["Running"] is True and info["State"]["Pid"] > 0
    wait_for("healthy", lambda: json.loads(w.docker("inspect", name).stdout)[0]["State"]
             ["Health"]["Status"] == "healthy", timeout=60)
    # ID prefixes resolve; unknown names are dockerd's 404
    assert w.docker("inspect", "-f", "{{.Name}}", found["cid"][:12]).stdout.strip() == "/" + name
    missing = w.docker("inspect", "--type", "container", "nosuch", check=False)
    assert missing.returncode != 0 and "No such container: nosuch" in missing.stderr
    # the manager's own node shows only its own container
    assert found["cid"] not in [r["ID"] for r in _ps(cluster.manager)]


def test_exec_logs_top_stats(cluster: TwoNodes, web: str) -> None:
    w = cluster.worker
    cid = _task_container(cluster, w)["cid"]
    hostname = w.docker("inspect", "-f", "{{.Config.Hostname}}", cid).stdout.strip()
    assert w.docker("exec", cid[:12], "cat", "/etc/hostname").stdout.strip() == hostname
    assert w.docker("exec", "-e", "GREETING=hi", cid, "sh", "-c", "echo $GREETING; echo err >&2")\
        .stdout == "hi\n"
    res = w.docker("exec", cid, "sh", "-c", "echo oops >&2; exit 3", check=False)
    assert res.returncode == 3 and res.stderr == "oops\n"
    piped = subprocess.run(["docker", "exec", "-i", cid, "cat"], env=w.env(), input="through\n",
                           capture_output=True, text=True, timeout=60, check=True)
    assert piped.stdout == "through\n"
    missing = w.docker("exec", cid, "nosuchcmd", check=False)
    assert missing.returncode != 0
    # logs: the web server's start line, stream selection, tail and timestamps
    logs = w.docker("logs", cid)
    assert logs.stdout + logs.stderr
    stamped = w.docker("logs", "-t", "--tail", "1", cid)
    assert len((stamped.stdout + stamped.stderr).splitlines()) == 1
    assert (stamped.stdout + stamped.stderr)[:4].isdigit()
    top = w.docker("top", cid).stdout
    assert "PID" in top.splitlines()[0] and "httpd" in top
    stats = w.docker("stats", "--no-stream", "--format", "{{json .}}", cid).stdout
    row = json.loads(stats)
    assert row["ID"] == cid[:12] and row["MemUsage"].split()[0] != "0B"
    assert int(row["PIDs"]) >= 1


def _pty_run(argv: list[str], env: dict[str, str], script: list[tuple[bytes, bytes]],
             timeout: float = 30) -> bytes:
    """Run ``argv`` on a pty; for each (wait_for, send) read until wait_for shows, then send."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec the CLI on the pty
        os.execvpe(argv[0], argv, env)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        for expect, send in script:
            while expect not in seen:
                assert time.monotonic() < deadline, f"waiting for {expect!r}, saw {seen!r}"
                ready, _, _ = select.select([fd], [], [], 0.5)
                if ready:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:
                        chunk = b""
                    assert chunk, f"the CLI ended before {expect!r}: {seen!r}"
                    seen += chunk
            os.write(fd, send)
        while time.monotonic() < deadline:  # to its end
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7, seen
    finally:
        os.close(fd)
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    return seen


def test_exec_interactive_terminal(cluster: TwoNodes, web: str) -> None:
    w = cluster.worker
    cid = _task_container(cluster, w)["cid"]
    seen = _pty_run(["docker", "exec", "-it", cid, "sh"], w.env(), [
        (b"# ", b"echo $TERM-$((6*7))\r"),
        (b"xterm-42", b"stty size\r"),
        (b"# ", b"exit 7\r")])
    assert b"xterm-42" in seen


def test_docker_py(cluster: TwoNodes, web: str) -> None:
    import docker

    w = cluster.worker
    cid = _task_container(cluster, w)["cid"]
    client = docker.DockerClient(base_url=w.host)
    try:
        listed = client.containers.list(filters={"label": f"com.docker.swarm.service.name={SERVICE}"})
        assert [c.id for c in listed] == [cid]
        c = client.containers.get(cid[:10])
        assert c.status == "running" and c.labels["role"] == "front"
        code, out = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
        assert code == 0 and out == (b"out\n", b"err\n")
        assert c.logs(tail=1)
        s = c.stats(stream=False)
        assert s["memory_stats"]["usage"] > 0 and "precpu_stats" in s
        assert c.top()["Titles"]
    finally:
        client.close()


def test_task_containers_cannot_be_removed_by_hand(cluster: TwoNodes, web: str) -> None:
    w = cluster.worker
    found = _task_container(cluster, w)
    res = w.docker("rm", "-f", found["cid"], check=False)
    assert res.returncode != 0 and "swarm task's container" in res.stderr
    assert _task_container(cluster, w)["cid"] == found["cid"]


def test_stop_a_task_container_and_the_swarm_replaces_it(cluster: TwoNodes, web: str) -> None:
    w = cluster.worker
    found = _task_container(cluster, w)
    w.docker("stop", "-t", "1", found["cid"])
    state = json.loads(w.docker("inspect", found["cid"]).stdout)[0]["State"]
    assert state["Status"] == "exited" and state["Running"] is False

    def replaced() -> bool:
        try:
            return _task_container(cluster, w)["cid"] != found["cid"]
        except StopIteration:
            return False

    wait_for("a new task running on the worker", replaced, timeout=90, interval=0.3)
    old = cluster.manager.api(f"/tasks/{found['task']['ID']}")
    assert old["DesiredState"] == "shutdown" and old["Status"]["State"] in ("failed", "complete")
    # kill too
    found = _task_container(cluster, w)
    w.docker("kill", found["cid"])
    wait_for("a new task after kill", replaced, timeout=90, interval=0.3)


# --- standalone containers ------------------------------------------------------------------


def _standalone_left(d: Daemon) -> list[str]:
    return [r["Names"] for r in _ps(d, "-a", "--filter", "is-task=false")]


@pytest.fixture
def worker(cluster: TwoNodes) -> Iterator[Daemon]:
    """The worker; every standalone container it has is removed after the test, pass or fail."""
    yield cluster.worker
    left = _standalone_left(cluster.worker)
    if left:
        cluster.worker.docker("rm", "-f", *left, check=False)


def test_docker_run_rm_and_refusals(cluster: TwoNodes, worker: Daemon) -> None:
    w = worker
    image = cluster.image("web")
    # the image is not on the node: the CLI pulls it on create's 404, then runs it
    res = w.docker("run", "--rm", "--network", "none", image, "echo", "hi", timeout=120)
    assert res.stdout == "hi\n"
    res = w.docker("run", "--rm", "--network", "none", image, "sh", "-c", "echo bad >&2; exit 3",
                   check=False)
    assert res.returncode == 3 and res.stderr.endswith("bad\n")
    res = w.docker("run", "--rm", "--network", "host", image, "hostname")
    assert res.stdout.strip()  # the node's own network namespace
    # the loopback test daemons run with --bridge none: no default bridge, said and cleaned up
    no_net = w.docker("run", "--rm", image, "true", check=False)
    assert no_net.returncode != 0 and "bridge" in no_net.stderr
    privileged = w.docker("run", "--rm", "--privileged", "--network", "none", image, "true",
                          check=False)
    assert privileged.returncode != 0 and "HostConfig.Privileged" in privileged.stderr
    assert _standalone_left(w) == []


def test_docker_run_detached_lifecycle(cluster: TwoNodes, worker: Daemon) -> None:
    w = worker
    image = cluster.image("web")
    w.docker("pull", image, timeout=120)
    cid = w.docker("run", "-d", "--name", "shoaltest-ctr-x", "--network", "none",
                   "--label", "k=v", image, "sleep", "100").stdout.strip()
    try:
        rows = _ps(w, "--filter", "name=shoaltest-ctr-x")
        assert [r["ID"] for r in rows] == [cid] and rows[0]["Labels"] == "k=v"
        assert w.docker("exec", "shoaltest-ctr-x", "hostname").stdout.strip() == cid[:12]
        dup = w.docker("run", "-d", "--name", "shoaltest-ctr-x", "--network", "none", image,
                       check=False)
        assert dup.returncode != 0 and "is already in use" in dup.stderr
        w.docker("stop", "-t", "1", "shoaltest-ctr-x")
        assert w.docker("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "exited"
        w.docker("start", "shoaltest-ctr-x")
        assert w.docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
        w.docker("restart", "-t", "1", "shoaltest-ctr-x")
        assert w.docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
        running = w.docker("rm", "shoaltest-ctr-x", check=False)
        assert running.returncode != 0 and "container is running" in running.stderr
        w.docker("rename", "shoaltest-ctr-x", "shoaltest-ctr-y")
        assert [r["Names"] for r in _ps(w, "--filter", f"id={cid}")] == ["shoaltest-ctr-y"]
    finally:
        w.docker("rm", "-f", "shoaltest-ctr-x", check=False)
        w.docker("rm", "-f", "shoaltest-ctr-y", check=False)
    assert _standalone_left(w) == []
    gone = w.docker("inspect", cid, check=False)
    assert gone.returncode != 0 and f"No such object: {cid}" in gone.stderr


def test_restart_policy_and_prune(cluster: TwoNodes, worker: Daemon) -> None:
    w = worker
    image = cluster.image("web")
    w.docker("pull", image, timeout=120)
    cid = w.docker("run", "-d", "--name", "shoaltest-ctr-retry", "--restart", "on-failure:2",
                   "--network", "none", image, "sh", "-c", "exit 1").stdout.strip()
    try:
        def settled() -> bool:
            out = w.docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", cid).stdout
            return out.split() == ["2", "exited"]

        wait_for("two restarts, then exited", settled, timeout=60, interval=0.3)
        w.docker("run", "--name", "shoaltest-ctr-done", "--network", "none", image, "true")
        assert len(_standalone_left(w)) == 2
        out = w.docker("container", "prune", "-f").stdout
        assert cid in out
        assert _standalone_left(w) == []
    finally:
        w.docker("rm", "-f", "shoaltest-ctr-retry", "shoaltest-ctr-done", check=False)


def test_docker_run_interactive_terminal(cluster: TwoNodes, worker: Daemon) -> None:
    w = worker
    image = cluster.image("web")
    w.docker("pull", image, timeout=120)
    seen = _pty_run(["docker", "run", "--rm", "-it", "--network", "none", image, "sh"], w.env(), [
        (b"# ", b"echo $((6*7))-ok\r"),
        (b"42-ok", b"exit 7\r")])
    assert b"42-ok" in seen
    piped = subprocess.run(["docker", "run", "--rm", "-i", "--network", "none", image, "cat"],
                           env=w.env(), input="via stdin\n", capture_output=True, text=True,
                           timeout=60, check=True)
    assert piped.stdout == "via stdin\n"
    assert _standalone_left(w) == []


def test_docker_py_run(cluster: TwoNodes, worker: Daemon) -> None:
    import docker

    w = worker
    image = cluster.image("web")
    w.docker("pull", image, timeout=120)
    client = docker.DockerClient(base_url=w.host)
    try:
        assert client.containers.run(image, ["echo", "hi"], remove=True,
                                     network_mode="none") == b"hi\n"
        c = client.containers.run(image, ["sleep", "100"], detach=True, network_mode="none",
                                  name="shoaltest-ctr-py")
        try:
            assert c.exec_run(["cat", "/etc/hostname"]).output.strip() == c.id[:12].encode()
            assert client.containers.get("shoaltest-ctr-py").status == "running"
        finally:
            c.remove(force=True)
    finally:
        client.close()
    assert _standalone_left(w) == []


def test_restart_policy_after_a_daemon_restart(cluster: TwoNodes, worker: Daemon) -> None:
    w = worker
    image = cluster.image("web")
    w.docker("pull", image, timeout=120)
    always = w.docker("run", "-d", "--name", "shoaltest-ctr-always", "--restart", "always",
                      "--network", "none", image, "sleep", "1000").stdout.strip()
    once = w.docker("run", "-d", "--name", "shoaltest-ctr-once", "--network", "none", image,
                    "sleep", "1000").stdout.strip()
    w.stop()  # the containers outlive shoald; then they die while it is away
    for cid in (always, once):
        subprocess.run(["runc", "--root", f"{w.root}/exec/runc", "kill", cid, "KILL"],
                       check=True, capture_output=True)
    w.start()
    wait_for("the --restart always container running again", lambda: w.docker(
        "inspect", "-f", "{{.State.Running}}", always, check=False).stdout.strip() == "true",
        timeout=60, interval=0.3)
    wait_for("the other one exited", lambda: w.docker(
        "inspect", "-f", "{{.State.Status}}", once, check=False).stdout.strip() == "exited",
        timeout=30, interval=0.3)
    wait_for("the worker back in the swarm", lambda: cluster.manager.docker(
        "node", "ls", "--format", "{{.Status}}").stdout.split().count("Ready") == 2,
        timeout=60, interval=0.5)
