"""The runc executor with real containers: a busybox rootfs as the only image layer, private
runc state, cgroups under /shoaltest-<random>. Needs root and runc; every test removes what
it made (the fixture checks that no mount, cgroup, container or process is left)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shoal.dev.wait import wait_for_async
from shoal.errors import Conflict, NotFound
from shoal.exec import ExecError, ExitError, TaskRejected, Unhealthy
from shoal.exec.executor import (
    ContainerStatuser,
    Controller,
    Executor,
    LogLine,
    LogOptions,
    LogSource,
    ProgressReporting,
)
from shoal.exec.runc import RuncController, RuncExecutor
from shoal.exec.runc.mounts import mounts_under
from shoal.model.objects import Task
from shoal.model.specs import Limits, Resources, TaskSpec
from shoal.volume import VolumeService
from shoal.volume.local import is_mounted

RUNC = shutil.which("runc")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="runc containers need root"),
    pytest.mark.skipif(RUNC is None, reason="runc is not installed"),
    pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed"),
]
MS = 1_000_000  # nanoseconds


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="shoaltest-", dir="/tmp"))
    bb = base / "bb"
    try:
        for d in ("bin", "proc", "dev", "sys", "tmp", "etc", "root", "data"):
            (bb / d).mkdir(parents=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", bb / "bin/busybox")
        subprocess.run(["chroot", str(bb), "/bin/busybox", "--install", "-s", "/bin"], check=True)
        (bb / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                       "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        (bb / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
        (bb / "data/seed").write_text("from the image\n")
        (bb / "tmp").chmod(0o1777)
        yield bb
    finally:
        shutil.rmtree(base)


@dataclass
class FakeImage:
    layer_dirs: list[Path]
    config: dict[str, Any] = field(default_factory=lambda: {"Env": ["PATH=/bin"], "Cmd": ["sh"]})
    id: str = "sha256:" + "0" * 64


class FakeImages:
    def __init__(self, layer: Path) -> None:
        self.layer = layer
        self.config: dict[str, Any] = {"Env": ["PATH=/bin"], "Cmd": ["sh"]}
        self.calls: list[tuple[str, str]] = []

    async def ensure(self, image: str, *, registry_auth: str = "",
                     progress: Callable[[str], None] | None = None) -> FakeImage:
        self.calls.append((image, registry_auth))
        if image == "missing":
            raise NotFound("pull access denied for missing, repository does not exist")
        if progress is not None:
            progress("Pulling fs layer")
        return FakeImage([self.layer], dict(self.config))


@dataclass
class Env:
    base: Path
    executor: RuncExecutor
    images: FakeImages
    cgroup_parent: str

    def task(self, cmd: list[str] | None = None, *, limits: Limits | None = None,
             **container_spec: Any) -> Task:
        spec: dict[str, Any] = {"Image": "busybox", **container_spec}
        if cmd is not None:
            spec["Command"] = cmd
        return Task(id=secrets.token_hex(12), name="svc.1",
                    spec=TaskSpec(container_spec=spec, resources=Resources(limits=limits)))

    def controller(self, task: Task) -> RuncController:
        return self.executor.controller(task)


def leftovers(env: Env, *, parent: bool = True) -> list[str]:
    """What is left of the env's containers (with ``parent``: the cgroup parent too)."""
    found = [f"mount {m}" for m in mounts_under(env.base)]
    pattern = "*" + env.cgroup_parent + ("" if parent else "/*/")
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(pattern)]
    listed = subprocess.run([RUNC or "runc", "--root", str(env.base / "run/runc"), "list", "-q"],
                            capture_output=True, text=True, check=False).stdout.split()
    found += [f"container {c}" for c in listed]
    ps = subprocess.run(["pgrep", "-f", f"shim.*{env.base}"], capture_output=True, text=True,
                        check=False).stdout.split()  # shims, and their server once the executor is gone
    found += [f"shim {p}" for p in ps if Path(f"/proc/{p}/comm").read_text().strip() == "shoal-shim"]
    containers = env.base / "data/containers"
    if containers.exists():
        found += [f"file {p}" for p in containers.rglob("*")]
    return found


@pytest.fixture
def env(rootfs: Path) -> Iterator[Env]:
    base = Path(tempfile.mkdtemp(prefix="shoaltest-", dir="/tmp"))
    parent = f"/shoaltest-{secrets.token_hex(4)}"
    images = FakeImages(rootfs)
    volumes = VolumeService(base / "data" / "volumes")
    executor = RuncExecutor("node-1", {"zone": "a"}, base / "data", base / "run", images,
                            cgroup_parent=parent, log_max_size=1024 * 1024, log_max_files=3,
                            volumes=volumes)
    volumes.users = executor.volume_users
    e = Env(base, executor, images, parent)
    try:
        yield e
    finally:
        executor.cleanup_all(volumes=True)
        left = leftovers(e)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"left behind: {left}"


async def collect(ctl: RuncController, options: LogOptions | None = None) -> list[LogLine]:
    async def run() -> list[LogLine]:
        return [line async for line in ctl.logs(options or LogOptions())]
    return await asyncio.wait_for(run(), 20)


def text(lines: list[LogLine]) -> str:
    return b"".join(line.data for line in lines).decode()


async def run_to_exit(ctl: RuncController) -> int:
    await ctl.prepare()
    await ctl.start()
    return await asyncio.wait_for(ctl.wait(), 30)


def test_implements_protocols(env: Env) -> None:
    exe: Executor = env.executor
    ctl: Controller = exe.controller(env.task(["true"]))
    assert isinstance(ctl, ContainerStatuser) and isinstance(ctl, LogSource)
    assert isinstance(ctl, ProgressReporting)
    desc = env.executor.describe()
    assert desc.hostname == "node-1" and desc.engine.labels == {"zone": "a"}
    assert desc.resources.nano_cpus > 0 and desc.resources.memory_bytes > 0


async def test_process_sees_env_user_cwd_hostname(env: Env) -> None:
    ctl = env.controller(env.task(["sh", "-c", ("id -u; id -g; pwd; echo $FOO; hostname; "
                                   "cat /etc/hostname; grep -c localhost /etc/hosts")],
                                  Env=["FOO=bar baz"], User="nobody", Dir="/tmp"))
    progress: list[str] = []
    ctl.on_progress(progress.append)
    try:
        assert await run_to_exit(ctl) == 0
        cid = ctl.status().container_id
        assert len(cid) == 64
        lines = text(await collect(ctl)).splitlines()
        assert lines[:5] == ["65534", "65534", "/tmp", "bar baz", cid[:12]]
        assert lines[5] == cid[:12] and int(lines[6]) >= 1
        assert progress == ["Pulling fs layer"]
    finally:
        await ctl.remove()


async def test_hostname_user_uid_gid_and_caps(env: Env) -> None:
    ctl = env.controller(env.task(["sh", "-c", "hostname; id -u; id -g; ip link show lo"],
                                  Hostname="web-1", User="1234:5678"))
    try:
        assert await run_to_exit(ctl) == 0
        out = text(await collect(ctl))
        assert out.splitlines()[:3] == ["web-1", "1234", "5678"]
        assert "LOOPBACK,UP" in out  # its own network namespace, lo up
    finally:
        await ctl.remove()


async def test_docker_sandbox_seccomp_caps_and_no_new_privs(env: Env) -> None:
    probe = ("unshare -m true && echo unshare-ok; chown 1 /tmp && echo chown-ok; "
             "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status")
    default = env.controller(env.task(["sh", "-c", probe + " 2>&1"]))
    admin = env.controller(env.task(["sh", "-c", probe], CapabilityAdd=["SYS_ADMIN"],
                                    CapabilityDrop=["chown"],
                                    Privileges={"NoNewPrivileges": True}))
    try:
        assert await run_to_exit(default) == 0
        out = text(await collect(default))
        assert "unshare(0x20000): Operation not permitted" in out and "chown-ok" in out
        assert "NoNewPrivs:\t0" in out and "Seccomp:\t2" in out  # filtered, as Docker's
        assert await run_to_exit(admin) == 0
        out = text(await collect(admin))
        assert "unshare-ok" in out and "chown-ok" not in out and "NoNewPrivs:\t1" in out
    finally:
        await default.remove()
        await admin.remove()


async def test_exit_codes(env: Env) -> None:
    ok = env.controller(env.task(["true"]))
    bad = env.controller(env.task(["sh", "-c", "echo oops >&2; exit 3"]))
    try:
        assert await run_to_exit(ok) == 0
        assert ok.status().exit_code == 0 and ok.status().pid == 0
        with pytest.raises(ExitError) as err:
            await run_to_exit(bad)
        assert err.value.code == 3 and str(err.value) == "task: non-zero exit (3)"
        assert bad.status().exit_code == 3
        assert await collect(bad, LogOptions(stdout=False)) != []
    finally:
        await ok.remove()
        await bad.remove()


async def test_bad_binary_fails_start_with_runcs_message(env: Env) -> None:
    ctl = env.controller(env.task(["/nonexistent"]))
    try:
        await ctl.prepare()
        with pytest.raises(ExecError) as err:
            await ctl.start()
        assert 'starting container failed' in str(err.value)
        assert 'exec: "/nonexistent": stat /nonexistent: no such file or directory' in str(err.value)
    finally:
        await ctl.remove()


async def test_image_error_rejects_the_task(env: Env) -> None:
    ctl = env.controller(env.task(["true"], Image="missing",
                                  PullOptions={"RegistryAuth": "secret"}))
    with pytest.raises(TaskRejected, match="pull access denied"):
        await ctl.prepare()
    assert env.images.calls == [("missing", "secret")]
    await ctl.remove()


async def test_unknown_user_and_missing_bind_source_reject(env: Env) -> None:
    user = env.controller(env.task(["true"], User="nosuch"))
    bind = env.controller(env.task(["true"], Mounts=[
        {"Type": "bind", "Source": str(env.base / "absent"), "Target": "/x"}]))
    with pytest.raises(TaskRejected, match="unable to find user nosuch"):
        await user.prepare()
    with pytest.raises(TaskRejected) as err:
        await bind.prepare()
    assert str(err.value) == ('invalid mount config for type "bind": bind source path does not '
                              f'exist: {env.base / "absent"}')
    await user.remove()
    await bind.remove()
    assert not mounts_under(env.base)


async def test_prepare_is_idempotent(env: Env) -> None:
    task = env.task(["true"])
    ctl = env.controller(task)
    try:
        await ctl.prepare()
        cid = ctl.container_id
        await ctl.prepare()
        again = env.controller(task)  # a new controller finds the same container
        await again.prepare()
        assert again.container_id == cid
        assert len(mounts_under(env.base)) == 1
    finally:
        await ctl.remove()


async def test_stop_kills_after_the_grace_period(env: Env) -> None:
    # PID 1 without a TERM handler ignores SIGTERM (as in Docker without --init)
    ctl = env.controller(env.task(["sleep", "100"], StopGracePeriod=500 * MS))
    try:
        await ctl.prepare()
        await ctl.start()
        assert ctl.status().pid > 0
        await asyncio.wait_for(ctl.shutdown(), 20)
        with pytest.raises(ExitError) as err:
            await ctl.wait()
        assert err.value.code == 137
    finally:
        await ctl.remove()


async def test_stop_signal_from_the_spec(env: Env) -> None:
    script = "trap 'echo got; exit 7' USR1; echo ready; while true; do sleep 0.05; done"
    ctl = env.controller(env.task(["sh", "-c", script], StopSignal="SIGUSR1"))
    try:
        await ctl.prepare()
        await ctl.start()
        async def ready() -> bool:
            return "ready" in text(await collect(ctl))

        await wait_for_async('"ready" out (the trap is set)', ready, 10, interval=0.05)
        await asyncio.wait_for(ctl.shutdown(), 20)
        with pytest.raises(ExitError) as err:
            await ctl.wait()
        assert err.value.code == 7 and "got" in text(await collect(ctl))
    finally:
        await ctl.remove()


async def test_terminate_kills_now(env: Env) -> None:
    ctl = env.controller(env.task(["sleep", "100"]))
    try:
        await ctl.prepare()
        await ctl.start()
        await asyncio.wait_for(ctl.terminate(), 20)
        with pytest.raises(ExitError) as err:
            await ctl.wait()
        assert err.value.code == 137
    finally:
        await ctl.remove()


async def test_oom_kill_is_reported(env: Env) -> None:
    ctl = env.controller(env.task(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                                  limits=Limits(memory_bytes=32 * 1024 * 1024)))
    try:
        with pytest.raises(ExitError) as err:
            await run_to_exit(ctl)
        assert err.value.code == 137 and "OOM" in str(err.value)
    finally:
        await ctl.remove()


async def test_limits_reach_the_cgroup(env: Env) -> None:
    limits = Limits(nano_cpus=500_000_000, memory_bytes=64 * 1024 * 1024, pids=50)
    ctl = env.controller(env.task(["sleep", "100"], limits=limits))
    try:
        await ctl.prepare()
        await ctl.start()
        rel = f"{env.cgroup_parent.strip('/')}/{ctl.container_id}"
        cg = Path("/sys/fs/cgroup")
        assert (cg / "pids" / rel / "pids.max").read_text().strip() == "50"
        assert (cg / "cpu" / rel / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (cg / "cpu" / rel / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert int((cg / "memory" / rel / "memory.limit_in_bytes").read_text()) == 64 << 20
        await ctl.terminate()
    finally:
        await ctl.remove()
    assert not (Path("/sys/fs/cgroup/pids") / rel).exists()


def health(test: list[str], *, interval_ms: int = 50, retries: int = 2,
           start_ms: int = 0) -> dict[str, Any]:
    return {"Test": test, "Interval": interval_ms * MS, "Timeout": 2000 * MS,
            "Retries": retries, "StartPeriod": start_ms * MS}


async def test_health_check_passes_before_running(env: Env) -> None:
    ctl = env.controller(env.task(["sleep", "100"], StopGracePeriod=0,
                                  Healthcheck=health(["CMD", "true"])))
    try:
        await ctl.prepare()
        await asyncio.wait_for(ctl.start(), 30)
        assert ctl.status().health == "healthy"
        await ctl.shutdown()
    finally:
        await ctl.remove()


async def test_failing_health_check_fails_start(env: Env) -> None:
    ctl = env.controller(env.task(["sleep", "100"], StopGracePeriod=0,
                                  Healthcheck=health(["CMD-SHELL", "exit 1"])))
    try:
        await ctl.prepare()
        with pytest.raises(Unhealthy) as err:
            await asyncio.wait_for(ctl.start(), 30)
        assert "dockerexec: unhealthy container" in str(err.value)
        assert ctl.status().health == "unhealthy" and ctl.status().pid == 0
    finally:
        await ctl.remove()


async def test_health_check_failing_later_fails_wait(env: Env) -> None:
    flags = env.base / "flags"
    flags.mkdir()
    ctl = env.controller(env.task(
        ["sleep", "100"], StopGracePeriod=0,
        Mounts=[{"Type": "bind", "Source": str(flags), "Target": "/flags", "ReadOnly": True}],
        Healthcheck=health(["CMD-SHELL", "test ! -e /flags/bad"])))
    try:
        await ctl.prepare()
        await asyncio.wait_for(ctl.start(), 30)
        assert ctl.status().health == "healthy"
        (flags / "bad").touch()
        with pytest.raises(Unhealthy):
            await asyncio.wait_for(ctl.wait(), 30)
        assert ctl.status().health == "unhealthy"
    finally:
        await ctl.remove()


async def test_health_check_timeout_counts_as_failure(env: Env) -> None:
    check = {"Test": ["CMD", "sleep", "100"], "Interval": 50 * MS, "Timeout": 100 * MS,
             "Retries": 1}
    ctl = env.controller(env.task(["sleep", "100"], StopGracePeriod=0, Healthcheck=check))
    try:
        await ctl.prepare()
        with pytest.raises(Unhealthy):
            await asyncio.wait_for(ctl.start(), 30)
    finally:
        await ctl.remove()


async def test_reattach_after_the_controller_is_gone(env: Env) -> None:
    flags = env.base / "flags"
    flags.mkdir()
    script = "echo started; while [ ! -e /flags/go ]; do sleep 0.02; done; exit 5"
    task = env.task(["sh", "-c", script],
                    Mounts=[{"Type": "bind", "Source": str(flags), "Target": "/flags"}])
    first = env.controller(task)
    await first.prepare()
    await first.start()
    cid, pid = first.status().container_id, first.status().pid
    del first  # the daemon died: only the shim and the container remain
    second = env.controller(task)
    try:
        assert second.status().container_id == cid and second.status().pid == pid
        await second.start()  # idempotent: already running
        waiter = asyncio.create_task(second.wait())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        (flags / "go").touch()
        with pytest.raises(ExitError) as err:
            await asyncio.wait_for(waiter, 30)
        assert err.value.code == 5
        # the exit was recorded by the shim: a third controller reads it too
        with pytest.raises(ExitError):
            await env.controller(task).wait()
        assert "started" in text(await collect(env.controller(task)))
    finally:
        await second.remove()


async def test_lost_container_when_the_shim_is_gone(env: Env) -> None:
    task = env.task(["sleep", "100"])
    ctl = env.controller(task)
    try:
        await ctl.prepare()
        await ctl.start()
        shim = json.loads((ctl.directory / "shim.json").read_text())["shim_pid"]
        os.kill(shim, signal.SIGKILL)
        for _ in range(500):
            try:
                if Path(f"/proc/{shim}/stat").read_text().split()[2] == "Z":
                    break
            except FileNotFoundError:  # reaped already
                break
            await asyncio.sleep(0.01)
        with pytest.raises(ExecError, match="lost"):
            await env.controller(task).wait()
    finally:
        await ctl.remove()  # still removes the running container


async def test_logs_tail_since_streams_and_follow(env: Env) -> None:
    flags = env.base / "flags"
    flags.mkdir()
    script = ("for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; "
              "while [ ! -e /flags/go ]; do sleep 0.02; done; echo late; printf partial")
    ctl = env.controller(env.task(["sh", "-c", script],
                                  Mounts=[{"Type": "bind", "Source": str(flags),
                                           "Target": "/flags"}]))
    try:
        await ctl.prepare()
        await ctl.start()
        async def all_ten() -> bool:
            return len(await collect(ctl)) == 10

        await wait_for_async("10 log lines", all_ten)
        every = await collect(ctl)
        assert len(every) == 10
        assert text(await collect(ctl, LogOptions(stderr=False, tail=2))) == "out4\nout5\n"
        assert text(await collect(ctl, LogOptions(stdout=False, tail=1))) == "err5\n"
        since = await collect(ctl, LogOptions(since=every[6].time))
        assert since and all(line.time >= every[6].time for line in since)
        assert since[-1].data == every[-1].data
        assert await collect(ctl, LogOptions(until=every[0].time - 1)) == []

        async def follow() -> list[LogLine]:
            out = []
            async for line in ctl.logs(LogOptions(follow=True, tail=1, stderr=False)):
                out.append(line)
                if line.data == b"out5\n":
                    (flags / "go").touch()
            return out

        followed = await asyncio.wait_for(follow(), 30)
        assert [line.data for line in followed] == [b"out5\n", b"late\n", b"partial"]
        assert await ctl.wait() == 0
    finally:
        await ctl.remove()


async def test_follow_stops_when_the_consumer_does(env: Env) -> None:
    ctl = env.controller(env.task(["sh", "-c", "echo one; sleep 100"], StopGracePeriod=0))
    try:
        await ctl.prepare()
        await ctl.start()
        stream = ctl.logs(LogOptions(follow=True))
        first = await asyncio.wait_for(anext(stream), 20)
        assert first.data == b"one\n"
        await stream.aclose()  # type: ignore[attr-defined]
    finally:
        await ctl.remove()


async def test_logs_rotate(env: Env, rootfs: Path) -> None:
    executor = RuncExecutor("node-1", None, env.base / "data", env.base / "run", env.images,
                            cgroup_parent=env.cgroup_parent, log_max_size=2000, log_max_files=3)
    ctl = executor.controller(env.task(["sh", "-c", ("i=0; while [ $i -lt 200 ]; do "
                                        "i=$((i+1)); echo line$i; done")]))
    try:
        assert await run_to_exit(ctl) == 0
        log = ctl.log_path
        assert log.with_name(log.name + ".1").exists() and log.with_name(log.name + ".2").exists()
        assert not log.with_name(log.name + ".3").exists()
        lines = [line.data.decode().strip() for line in await collect(ctl)]
        numbers = [int(x.removeprefix("line")) for x in lines]
        assert numbers == list(range(numbers[0], 201)) and numbers[0] > 1
        assert [d.data for d in await collect(ctl, LogOptions(tail=2))] == [b"line199\n",
                                                                           b"line200\n"]
    finally:
        await ctl.remove()


async def test_log_files_are_read_off_the_event_loop(env: Env, rootfs: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: `service logs` read and parsed every rotated file on the event loop (up to
    30 MiB). The files are read in a worker thread, a chunk at a time; a consumer that leaves
    while a chunk is being read leaves nothing open."""
    import threading

    from shoal.exec.runc import logfile

    executor = RuncExecutor("node-1", None, env.base / "data", env.base / "run", env.images,
                            cgroup_parent=env.cgroup_parent, log_max_size=2000, log_max_files=3)
    ctl = executor.controller(env.task(["sh", "-c", ("i=0; while [ $i -lt 200 ]; do "
                                        "i=$((i+1)); echo line$i; done")]))
    readers: set[int] = set()
    real = logfile.read_entries

    def recorded(path: str, *, rotated_only: bool = False) -> Iterator[logfile.Entry]:
        readers.add(threading.get_ident())
        return real(path, rotated_only=rotated_only)

    monkeypatch.setattr(logfile, "read_entries", recorded)
    try:
        assert await run_to_exit(ctl) == 0
        lines = await collect(ctl)
        assert lines[-1].data == b"line200\n"
        assert readers and threading.get_ident() not in readers
        stream = ctl.logs(LogOptions())
        assert (await asyncio.wait_for(anext(stream), 20)).data.startswith(b"line")
        await stream.aclose()  # type: ignore[attr-defined]
    finally:
        await ctl.remove()


async def test_read_only_root_and_mounts(env: Env) -> None:
    shared = env.base / "shared"
    shared.mkdir()
    (shared / "in").write_text("hello\n")
    script = ("touch /x 2>/dev/null && echo root-rw || echo root-ro; "
              "cat /host/in; touch /host/in2 2>/dev/null && echo bind-rw || echo bind-ro; "
              "echo out > /rw/out; cat /vol/seed; echo kept > /vol/new; "
              "grep ' /scratch ' /proc/mounts; touch /scratch/ok && echo tmpfs-ok")
    mounts = [
        {"Type": "bind", "Source": str(shared), "Target": "/host", "ReadOnly": True},
        {"Type": "bind", "Source": str(shared), "Target": "/rw"},
        {"Type": "volume", "Source": "myvol", "Target": "/data"},
        {"Type": "volume", "Source": "myvol", "Target": "/vol"},
        {"Type": "tmpfs", "Target": "/scratch",
         "TmpfsOptions": {"SizeBytes": 1024 * 1024, "Mode": 0o700}},
    ]
    ctl = env.controller(env.task(["sh", "-c", script], ReadOnly=True, Mounts=mounts))
    try:
        assert await run_to_exit(ctl) == 0
        out = text(await collect(ctl))
        assert "root-ro" in out and "hello" in out and "bind-ro" in out
        assert "from the image" in out  # the volume was seeded from the image's /data
        assert "size=1024k" in out and "mode=700" in out and "tmpfs-ok" in out
        assert (shared / "out").read_text() == "out\n"
    finally:
        await ctl.remove()
    assert (env.base / "data/volumes/myvol/_data/new").read_text() == "kept\n"


async def test_volumes_with_the_local_drivers_options(env: Env) -> None:
    """A service mount's DriverConfig makes the volume (tmpfs, a bound host directory), mounted
    while a container uses it, unmounted when the last one is gone; in use, ``rm`` refuses it."""
    host = env.base / "hostdir"
    host.mkdir()
    mounts = [
        {"Type": "volume", "Source": "scratch", "Target": "/scratch", "VolumeOptions": {
            "Labels": {"k": "v"},
            "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs",
                                                          "o": "size=1m"}}}},
        {"Type": "volume", "Source": "bound", "Target": "/bound", "VolumeOptions": {
            "NoCopy": True,
            "DriverConfig": {"Options": {"type": "none", "device": str(host), "o": "bind"}}}},
    ]
    script = "grep ' /scratch ' /proc/mounts; echo hi > /bound/f; echo kept > /scratch/g"
    ctl = env.controller(env.task(["sh", "-c", script], Mounts=mounts))
    volumes = env.executor.config.volumes
    assert isinstance(volumes, VolumeService)
    try:
        assert await run_to_exit(ctl) == 0
        assert "tmpfs" in text(await collect(ctl))
        assert (host / "f").read_text() == "hi\n"  # the host's directory, bound
        vol = volumes.get("scratch")
        assert vol.labels == {"k": "v"} and vol.options == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
        assert is_mounted(Path(vol.mountpoint))
        assert volumes.users() == {"scratch": [ctl.status().container_id],
                                   "bound": [ctl.status().container_id]}
        with pytest.raises(Conflict, match=r"remove bound: volume is in use - \["):
            volumes.remove("bound")
    finally:
        await ctl.remove()
    assert not is_mounted(Path(volumes.get("scratch").mountpoint))  # released: unmounted
    volumes.remove("bound")
    assert (host / "f").read_text() == "hi\n"  # removing the volume left the host's files


async def test_remove_leaves_nothing(env: Env) -> None:
    ctl = env.controller(env.task(["sleep", "100"], limits=Limits(pids=20),
                                  Mounts=[{"Type": "volume", "Target": "/anon"}]))
    await ctl.prepare()
    await ctl.start()
    directory = ctl.directory
    assert mounts_under(env.base) and env.base.joinpath("data/containers/by-task").is_dir()
    await asyncio.wait_for(ctl.remove(), 30)
    assert ctl.status().container_id == ""
    assert not directory.exists()
    assert [x for x in leftovers(env, parent=False) if not x.endswith("/by-task")] == []
    await ctl.remove()  # again: nothing to do


async def test_remove_after_a_half_prepare(env: Env) -> None:
    ctl = env.controller(env.task(["true"], User="nosuch"))
    with pytest.raises(TaskRejected):
        await ctl.prepare()
    assert not mounts_under(env.base)
    await ctl.remove()
    assert ctl.status().container_id == ""


async def test_cleanup_all_removes_running_containers(env: Env) -> None:
    ctls = [env.controller(env.task(["sleep", "100"])) for _ in range(2)]
    for ctl in ctls:
        await ctl.prepare()
    await ctls[0].start()
    await asyncio.to_thread(env.executor.cleanup_all)
    assert leftovers(env) == []



async def test_many_long_layer_paths_fit_the_overlay_mount(env: Env, rootfs: Path) -> None:
    # 40 layers with long paths make > 4096 bytes of mount data: short symlinks are used
    layers = [rootfs]
    for n in range(40):
        layer = env.base / "layers" / (f"{n:02d}-" + "x" * 100)
        (layer / "etc").mkdir(parents=True)
        (layer / "etc" / f"layer{n}").write_text(f"{n}\n")
        layers.append(layer)
    total = sum(len(str(p)) + 1 for p in layers)
    assert total > 4096

    class ManyLayers(FakeImages):
        async def ensure(self, image: str, *, registry_auth: str = "",
                         progress: Callable[[str], None] | None = None) -> FakeImage:
            return FakeImage(list(layers))

    executor = RuncExecutor("node-1", None, env.base / "data", env.base / "run",
                            ManyLayers(rootfs), cgroup_parent=env.cgroup_parent)
    ctl = executor.controller(env.task(["sh", "-c", "cat /etc/layer0 /etc/layer39"]))
    try:
        assert await run_to_exit(ctl) == 0
        assert text(await collect(ctl)) == "0\n39\n"
    finally:
        await ctl.remove()


async def test_missing_runtime_fails_start(env: Env) -> None:
    executor = RuncExecutor("node-1", None, env.base / "data", env.base / "run", env.images,
                            cgroup_parent=env.cgroup_parent, runtime=str(env.base / "no-runc"))
    ctl = executor.controller(env.task(["true"]))
    try:
        await ctl.prepare()
        with pytest.raises(ExecError, match="no-runc"):
            await ctl.start()
    finally:
        await ctl.remove()


DAEMON = """
import asyncio, os, signal, sys
from pathlib import Path
from shoal.exec.runc import RuncExecutor
from shoal.model.objects import Task
from shoal.model.specs import TaskSpec

class Image:
    id = "sha256:" + "0" * 64
    layer_dirs = [Path(sys.argv[2])]
    config = {"Env": ["PATH=/bin"]}

class Images:
    async def ensure(self, image, *, registry_auth="", progress=None):
        return Image()

async def main():
    base = Path(sys.argv[1])
    ex = RuncExecutor("n", None, base / "data", base / "run", Images(), cgroup_parent=sys.argv[3])
    spec = {"Image": "bb", "Command": ["sh", "-c", sys.argv[5]],
            "Mounts": [{"Type": "bind", "Source": str(base / "flags"), "Target": "/flags"}]}
    ctl = ex.controller(Task(id=sys.argv[4], spec=TaskSpec(container_spec=spec)))
    await ctl.prepare()
    await ctl.start()
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_reattach_after_the_daemon_was_killed(env: Env, rootfs: Path) -> None:
    (env.base / "flags").mkdir()
    script = "echo up; while [ ! -e /flags/go ]; do sleep 0.02; done; exit 9"
    task = env.task(["sh", "-c", script],
                    Mounts=[{"Type": "bind", "Source": str(env.base / "flags"),
                             "Target": "/flags"}])
    root = str(Path(__file__).resolve().parents[4])  # the checkout
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DAEMON, str(env.base), str(rootfs), env.cgroup_parent, task.id,
        script, env={**os.environ, "PYTHONPATH": root})
    assert await asyncio.wait_for(proc.wait(), 60) == -signal.SIGKILL
    ctl = env.controller(task)
    try:
        assert ctl.status().pid > 0  # still running without its daemon
        (env.base / "flags/go").touch()
        with pytest.raises(ExitError) as err:
            await asyncio.wait_for(ctl.wait(), 30)
        assert err.value.code == 9 and text(await collect(ctl)) == "up\n"
    finally:
        await ctl.remove()
