"""Tasks as real containers, end to end: two shoald with the runc executor (a manager and a
worker on 127.0.7.x), the demo images from a real docker-registry on loopback, everything driven
through the docker CLI. Needs root, runc and docker-registry (skipped otherwise).

Every test removes its service and waits for its containers to go; the module's teardown checks
that no container, mount, cgroup or shim is left, and stops the swarm and the registry."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import os
import select
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from aiohttp import web

from shoal.dev import cleanup, procs
from shoal.dev.images import build_all
from shoal.dev.local import Daemon, Swarm
from shoal.dev.registry import LocalRegistry, push_blob, push_manifest
from shoal.dev.wait import wait_for
from shoal.store.etcd.testing import free_port
from tests.integration.conftest import TwoNodes, close_and_check, runc_manager_and_worker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs containers: needs root"),
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
]

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    root = tmp_path_factory.mktemp("shoaltest-containers")
    registry = LocalRegistry(root / "registry", f"127.0.0.1:{free_port()}")
    registry.start()
    swarm = Swarm(root, base_ip="127.0.7")
    try:
        for image in build_all():
            registry.push(image)
        yield TwoNodes(*runc_manager_and_worker(swarm), registry.addr)
        _assert_nothing_left(swarm)
    finally:
        registry.stop()
        close_and_check(swarm)  # removes root, the registry's data too


def _assert_nothing_left(swarm: Swarm) -> None:
    for d in swarm.daemons:
        out = subprocess.run(["runc", "--root", f"{d.root}/exec/runc", "list", "--format", "json"],
                             capture_output=True, text=True, check=False).stdout
        listed = json.loads(out or "null") or []
        assert not listed, f"{d.hostname}: containers left: {listed}"
        assert not cleanup.mounts_under(d.root), f"{d.hostname}: mounts left"
        shims = [p for p in procs.matching(str(d.root) + "/") if _comm(p) == "shoal-shim"]
        assert not shims, f"{d.hostname}: shims left: {shims}"
        for ctrl in Path("/sys/fs/cgroup").iterdir():
            parent = ctrl / d.cgroup_parent.lstrip("/")
            left = [p.name for p in parent.iterdir() if p.is_dir()] if parent.is_dir() else []
            assert not left, f"{d.hostname}: cgroups left under {parent}: {left}"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text(errors="replace")


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    for line in _proc(pid, "cgroup").splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return (Path("/sys/fs/cgroup") / controller / path.lstrip("/") / name).read_text().strip()
    raise AssertionError(f"no {controller} cgroup for pid {pid}")


def test_frontend_runs_with_the_specs_env_user_and_limits(cluster: TwoNodes) -> None:
    m = cluster.manager
    m.docker("pull", cluster.image("web"))  # the Engine API's pull, from the local registry
    assert cluster.image("web").rsplit(":", 1)[0] in m.docker("images", "--format", "{{.Repository}}").stdout
    m.docker("service", "create", "--name", "shoaltest-frontend", "--replicas", "3",
             "--env", "GREETING=hello", "--env", "PORT=8080", "--user", "nobody",
             "--limit-memory", "64m", "--limit-cpu", "0.5", "--limit-pids", "50",
             cluster.image("web"), timeout=180)
    try:
        running = cluster.running("shoaltest-frontend")
        assert len(running) == 3
        for task in running:
            pid = task["Status"]["ContainerStatus"]["PID"]
            assert task["Status"]["ContainerStatus"]["Health"] == "healthy"
            env = _proc(pid, "environ").split("\0")
            assert "GREETING=hello" in env and "PORT=8080" in env
            uid_line = next(line for line in _proc(pid, "status").splitlines() if line.startswith("Uid:"))
            assert uid_line.split()[1:] == ["65534"] * 4
            assert int(_cgroup_file(pid, "memory", "memory.limit_in_bytes")) == 64 * MiB
            assert _cgroup_file(pid, "pids", "pids.max") == "50"
            assert _cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
            assert _cgroup_file(pid, "cpu", "cpu.cfs_period_us") == "100000"
            assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        image = m.api("/services/shoaltest-frontend")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert "@sha256:" in image  # pinned through /distribution
    finally:
        cluster.remove("shoaltest-frontend")


def test_a_container_that_exits_non_zero_is_replaced(cluster: TwoNodes) -> None:
    m = cluster.manager
    m.docker("service", "create", "-d", "--name", "shoaltest-fail", "--restart-condition", "on-failure",
             "--restart-delay", "1s", "--env", "EXIT_CODE=3", cluster.image("fail"))
    try:
        def replaced() -> bool:
            tasks = cluster.tasks("shoaltest-fail")
            failed = [t for t in tasks if t["Status"]["State"] == "failed"]
            return bool(failed) and len(tasks) > len(failed) and \
                failed[0]["Status"]["Err"] == "task: non-zero exit (3)" and \
                failed[0]["Status"]["ContainerStatus"]["ExitCode"] == 3
        wait_for("a failed task and its replacement", replaced, timeout=60, interval=0.3)
        logs = m.docker("service", "logs", "shoaltest-fail").stdout
        assert "failing" in logs
    finally:
        cluster.remove("shoaltest-fail")


def test_an_unhealthy_container_is_replaced(cluster: TwoNodes) -> None:
    m = cluster.manager
    m.docker("service", "create", "-d", "--name", "shoaltest-sick", "--restart-delay", "1s",
             cluster.image("unhealthy"))
    try:
        def replaced() -> bool:
            tasks = cluster.tasks("shoaltest-sick")
            sick = [t for t in tasks if "unhealthy" in t["Status"]["Err"]]
            return bool(sick) and len(tasks) > len(sick)
        wait_for("an unhealthy task and its replacement", replaced, timeout=60, interval=0.3)
        sick = next(t for t in cluster.tasks("shoaltest-sick") if "unhealthy" in t["Status"]["Err"])
        assert sick["Status"]["State"] == "failed"
        assert sick["Status"]["ContainerStatus"]["Health"] == "unhealthy"
        # never RUNNING: a task with a health check runs only once healthy
        assert all(t["Status"]["State"] != "running" for t in cluster.tasks("shoaltest-sick"))
    finally:
        cluster.remove("shoaltest-sick")


def test_service_logs_come_from_every_replica_through_the_docker_cli(cluster: TwoNodes) -> None:
    m = cluster.manager
    m.docker("service", "create", "-d", "--name", "shoaltest-talk", "--replicas", "2",
             "--restart-condition", "none", "--no-healthcheck",
             cluster.image("web"), "sh", "-c", 'for i in 1 2 3; do echo "line $i from $(hostname)"; done; '
             'echo oops >&2; exec sleep 600')
    try:
        tasks = wait_for("2 running", lambda: len(r := cluster.running("shoaltest-talk")) == 2 and r,
                         timeout=120, interval=0.3)
        assert {t["NodeID"] for t in tasks} == {m.api(f"/nodes/{d.hostname}")["ID"] for d in cluster.nodes}
        wait_for("4 lines per task", lambda: m.docker("service", "logs", "shoaltest-talk").stdout.count("\n") == 6)
        res = m.docker("service", "logs", "shoaltest-talk")
        for t in tasks:
            ours = [line for line in res.stdout.splitlines() if t["ID"][:12] in line]
            assert len(ours) == 3 and all("from " in line for line in ours), res.stdout
            assert f"shoaltest-talk.{t['Slot']}.{t['ID'][:12]}@" in ours[0]
        assert res.stderr.count("oops") == 2
        # An older client (Debian 12's docker CLI speaks API 1.41) gets the same multiplexed lines.
        old = subprocess.run(["docker", "service", "logs", "shoaltest-talk"], capture_output=True,
                             text=True, timeout=60, check=False,
                             env={**m.env(), "DOCKER_API_VERSION": "1.41"})
        assert (old.returncode, sorted(old.stdout.splitlines()), old.stderr.count("oops")) == (
            0, sorted(res.stdout.splitlines()), 2), old
        ours = m.shoal("service", "logs", "shoaltest-talk")  # shoal's CLI prints the same lines
        assert sorted(ours.stdout.splitlines()) == sorted(res.stdout.splitlines())
        tail = m.docker("service", "logs", "--tail", "2", "--timestamps", "shoaltest-talk")
        assert tail.stdout.count("line 3") == 2 and "line 2" not in tail.stdout
        assert tail.stderr.count("oops") == 2
        assert all(line[:4].isdigit() and "Z " in line for line in tail.stdout.splitlines())
        one = m.docker("service", "logs", "--raw", tasks[0]["ID"])  # a task's logs
        assert one.stdout.splitlines()[0].startswith("line 1 from")
        assert "line 3" in _follow(m, "shoaltest-talk", lines=6)
    finally:
        cluster.remove("shoaltest-talk")


def _follow(d: Daemon, service: str, lines: int, timeout: float = 30) -> str:
    """``docker service logs --follow``: it keeps streaming; read ``lines`` lines, then stop it."""
    proc = subprocess.Popen(["docker", "service", "logs", "--follow", service], env=d.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while out.count(b"\n") < lines and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        assert proc.poll() is None, "a followed log stream ended by itself"
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
    return out.decode()


def test_an_oom_killed_task_says_so(cluster: TwoNodes) -> None:
    m = cluster.manager
    m.docker("service", "create", "-d", "--name", "shoaltest-oom", "--restart-condition", "none",
             "--limit-memory", "32m", "--no-healthcheck", cluster.image("web"),
             "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    try:
        def oom() -> dict[str, Any] | None:
            return next((t for t in cluster.tasks("shoaltest-oom") if "OOM" in t["Status"]["Err"]), None)
        task = wait_for("the OOM kill reported", oom, timeout=60, interval=0.3)
        assert task["Status"]["State"] == "failed"
    finally:
        cluster.remove("shoaltest-oom")


def test_sigkill_of_shoald_then_restart_reattaches_without_leaks(cluster: TwoNodes) -> None:
    m, w = cluster.manager, cluster.worker
    m.docker("service", "create", "--name", "shoaltest-keep", "--mode", "global",
             "--restart-condition", "none", cluster.image("web"), timeout=180)
    try:
        before = {t["ID"]: t["Status"]["ContainerStatus"]["PID"] for t in cluster.running("shoaltest-keep")}
        assert len(before) == 2
        w.kill(signal.SIGKILL)
        for pid in before.values():
            assert Path(f"/proc/{pid}").exists()  # containers outlive the daemon
        w.start()
        wait_for("the worker's session back", lambda: m.api(f"/nodes/{w.hostname}")["Status"]["State"] == "ready")
        after = {t["ID"]: t["Status"]["ContainerStatus"]["PID"] for t in cluster.running("shoaltest-keep")}
        assert after == before  # the same tasks, the same processes: re-attached, not restarted
        # a re-attached container's exit is still collected: kill its process and see the code
        victim = next(tid for tid, _ in before.items()
                      if m.api(f"/tasks/{tid}")["NodeID"] == m.api(f"/nodes/{w.hostname}")["ID"])
        os.kill(before[victim], signal.SIGKILL)
        wait_for("the exit collected", lambda: m.api(f"/tasks/{victim}")["Status"]["State"] == "failed")
        assert m.api(f"/tasks/{victim}")["Status"]["ContainerStatus"]["ExitCode"] == 137
    finally:
        cluster.remove("shoaltest-keep")


def _malicious_image(registry: str) -> str:
    """An image whose second layer writes ../ outside its root and through an absolute link."""
    base = build_all()[0]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        escape = tarfile.TarInfo("../shoaltest-escaped")
        escape.size = 3
        tar.addfile(escape, io.BytesIO(b"bad"))
        link = tarfile.TarInfo("evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/tmp"
        tar.addfile(link)
        through = tarfile.TarInfo("evil/shoaltest-pwned")
        through.size = 3
        tar.addfile(through, io.BytesIO(b"bad"))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.loads(base.config)
    config["rootfs"]["diff_ids"] = [config["rootfs"]["diff_ids"][0],
                                    "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]
    config_bytes = json.dumps(config).encode()
    manifest = json.loads(base.manifest)
    with httpx.Client(base_url=f"http://{registry}", timeout=30) as c:
        cfg_digest = push_blob(c, "shoaltest/evil", config_bytes)
        base_digest = push_blob(c, "shoaltest/evil", base.layers[0])
        evil_digest = push_blob(c, "shoaltest/evil", layer)
        manifest["config"].update(digest=cfg_digest, size=len(config_bytes))
        manifest["layers"] = [{**manifest["layers"][0], "digest": base_digest},
                              {**manifest["layers"][0], "digest": evil_digest, "size": len(layer)}]
        push_manifest(c, "shoaltest/evil", "1", json.dumps(manifest).encode())
    return f"{registry}/shoaltest/evil:1"


def test_a_malicious_layer_is_refused(cluster: TwoNodes) -> None:
    m = cluster.manager
    image = _malicious_image(cluster.registry)
    m.docker("service", "create", "-d", "--name", "shoaltest-evil", "--restart-condition", "none",
             "--constraint", "node.role==manager", image)
    try:
        def rejected() -> dict[str, Any] | None:
            return next((t for t in cluster.tasks("shoaltest-evil") if t["Status"]["State"] == "rejected"), None)
        task = wait_for("the task rejected", rejected, timeout=60, interval=0.3)
        assert "shoaltest-escaped" in task["Status"]["Err"] or "evil" in task["Status"]["Err"], task["Status"]
        assert not Path("/tmp/shoaltest-pwned").exists()
        assert not (m.root / "data" / "image" / "shoaltest-escaped").exists()
        layers = m.root / "data" / "image" / "layers"
        assert not any(p.name.endswith(".partial") for p in layers.iterdir()) if layers.exists() else True
    finally:
        cluster.remove("shoaltest-evil")


class _AuthProxy:
    """The local registry behind basic auth (alice:secret): a small aiohttp reverse proxy in a
    thread, on its own loopback port. Without credentials it answers 401 with a challenge."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.addr = f"127.0.0.1:{free_port()}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        want = "Basic " + base64.b64encode(b"alice:secret").decode()
        if request.headers.get("Authorization") != want:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED",
                                                  "message": "authentication required"}]},
                                     status=401, headers={"WWW-Authenticate": 'Basic realm="shoaltest"'})
        async with httpx.AsyncClient(base_url=f"http://{self.upstream}") as c:
            r = await c.request(request.method, request.path_qs,
                                headers={k: v for k, v in request.headers.items()
                                         if k.lower() in ("accept", "content-type")})
        headers = {k: v for k, v in r.headers.items()
                   if k.lower() in ("content-type", "docker-content-digest")}
        return web.Response(status=r.status_code, body=r.content, headers=headers)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        host, port = self.addr.split(":")
        self._loop.run_until_complete(web.TCPSite(runner, host, int(port)).start())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()


def test_with_registry_auth_reaches_the_nodes(cluster: TwoNodes, tmp_path: Path) -> None:
    """A private registry: without --with-registry-auth the task is REJECTED with the registry's
    reason; with it (credentials from the docker CLI's config) the image is pulled and runs, and
    the credentials never show in the service."""
    m = cluster.manager
    with _AuthProxy(cluster.registry) as proxy:
        image = f"{proxy.addr}/shoal/web:latest"
        m.docker("service", "create", "-d", "--name", "shoaltest-private", "--restart-condition", "none",
                 "--no-resolve-image", image)
        try:
            def rejected() -> dict[str, Any] | None:
                return next((t for t in cluster.tasks("shoaltest-private")
                             if t["Status"]["State"] == "rejected"), None)
            task = wait_for("the pull refused", rejected, timeout=60, interval=0.3)
            assert "authentication required" in task["Status"]["Err"], task["Status"]
        finally:
            cluster.remove("shoaltest-private")
        config = tmp_path / "docker-config"
        config.mkdir()
        (config / "config.json").write_text(json.dumps(
            {"auths": {proxy.addr: {"auth": base64.b64encode(b"alice:secret").decode()}}}))
        env = {**m.env(), "DOCKER_CONFIG": str(config)}
        subprocess.run(["docker", "service", "create", "-d", "--name", "shoaltest-private",
                        "--with-registry-auth", "--no-resolve-image", image],
                       env=env, check=True, capture_output=True, timeout=60)
        try:
            wait_for("the private image running", lambda: cluster.running("shoaltest-private"),
                     timeout=90, interval=0.3)
            spec = m.api("/services/shoaltest-private")["Spec"]["TaskTemplate"]["ContainerSpec"]
            assert "PullOptions" not in spec
        finally:
            cluster.remove("shoaltest-private")


def test_logs_through_a_follower_manager(cluster: TwoNodes) -> None:
    """Sessions live on the leader; another manager's API reads logs through the leader's
    broker over the swarm port."""
    m, w = cluster.manager, cluster.worker
    m.docker("service", "create", "-d", "--name", "shoaltest-echo", "--restart-condition", "none",
             "--no-healthcheck", cluster.image("web"), "sh", "-c", "echo hello from $(hostname); exec sleep 600")
    m.docker("node", "promote", w.hostname)
    try:
        wait_for("the worker a reachable manager", lambda: w.docker(
            "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}", check=False).stdout.count("Reachable") == 1,
            timeout=90, interval=0.5)
        wait_for("the task running", lambda: cluster.running("shoaltest-echo"), timeout=60, interval=0.3)
        out = w.docker("service", "logs", "shoaltest-echo", check=False)
        assert out.returncode == 0 and out.stdout.count("hello from") == 1, (out.stdout, out.stderr)
    finally:
        cluster.remove("shoaltest-echo")
        m.docker("node", "demote", w.hostname, check=False)
        wait_for("the worker a worker again", lambda: "Reachable" not in m.docker(
            "node", "ls", "--format", "{{.ManagerStatus}}").stdout, timeout=60, interval=0.5)
