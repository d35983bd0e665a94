"""RuncController: one task's container, run by runc under a per-container shim.

Where things live (``<data_root>/containers/``):

    by-task/<task id>.json     {"id": cid}: how a new controller (daemon restart) finds it
    <cid>/config.json          the OCI spec (written last in prepare: "prepared")
    <cid>/container.json       what docker ps/inspect show (record.py)
    <cid>/rootfs upper work    the overlayfs root (lower = the image's layer dirs)
    <cid>/hosts hostname resolv.conf, <cid>/volumes/ (anonymous volumes)
    <cid>/volumes.json         the named volumes it uses (the node's VolumeProvider holds them)
    <cid>/mounts/secrets       a tmpfs with the task's secrets and configs (taskfiles.py)
    <cid>/shim.json            {shim_pid, pid}: the container runs (written by the shim)
    <cid>/exit.json            {code, oom, finished_at} or {error}: written by the shim
    <cid>/<cid>-json.log[.N]   the output in Docker's json-file format
    <cid>/healthcheck.json     the health check (image + service), health.json its status

Re-attach: the shim (shim.py) outlives the daemon; a controller waits for it with a pidfd,
which works for a process that is not its child, then reads exit.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from shoal.errors import ShoalError
from shoal.exec import containerspec, templating
from shoal.exec.errors import ExecError, ExitError, TaskRejected, Unhealthy
from shoal.exec.executor import LogLine, LogOptions, TaskFiles
from shoal.exec.runc import hostfiles, logfile, mounts, record, shim, spec, taskfiles
from shoal.exec.runc.health import HEALTHY, STARTING, UNHEALTHY, HealthState, probe
from shoal.exec.runc.state import (
    VOLUMES_FILE,
    RuncConfig,
    read_json,
    remove_container_files,
    shim_alive,
    wait_pid,
    write_json,
)
from shoal.model import logdriver
from shoal.model.objects import ContainerStatus, Task
from shoal.model.references import FileRef, file_refs

__all__ = ["RuncConfig", "RuncController"]

DEFAULT_GRACE = 10.0  # seconds, Docker's stop timeout
KILL_WAIT = 10.0  # after SIGKILL, the longest we wait for the shim to report
START_WAIT = 60.0  # the longest runc may take to start a container
FOLLOW_POLL = 0.1
OOM_MESSAGE = "OOMKilled: the container was killed because it ran out of memory"


def _signal(value: Any) -> int:
    """A StopSignal ("SIGTERM", "TERM", "15") as a number; SIGTERM when unset."""
    text = str(value or "").strip().upper()
    if not text:
        return int(signal.SIGTERM)
    if text.isdigit():
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError:
        raise ExecError(f"invalid stop signal {value!r}") from None


def _close_after(read: asyncio.Future[Any], follower: logfile.Follower) -> None:
    """Close ``follower`` once the thread reading through it is done (its result dropped)."""
    if not read.cancelled():
        read.exception()
    follower.close()


class RuncController:
    """Implements Controller, ContainerStatuser, LogSource and ProgressReporting."""

    def __init__(self, task: Task, config: RuncConfig, files: TaskFiles | None = None, *,
                 standalone: bool = False) -> None:
        self._task = task
        # a standalone container (docker run): its start is not gated on its health, and an
        # unhealthy one keeps running (Docker's), shown as unhealthy
        self._standalone = standalone
        self._cfg = config
        self._files = files
        self._progress: Callable[[str], None] | None = None
        self._record_path = config.containers / "by-task" / f"{task.id}.json"
        record = read_json(self._record_path)
        self._cid: str | None = str(record["id"]) if record and "id" in record else None
        self._health_check: containerspec.HealthCheck | None = None
        self._shim_seen: dict[str, Any] | None = None
        self._exit_seen: dict[str, Any] | None = None

    # --- paths and state -------------------------------------------------------------------

    @property
    def container_id(self) -> str | None:
        return self._cid

    @property
    def directory(self) -> Path:
        if self._cid is None:
            raise ExecError(f"runc: no container for task {self._task.id}")
        return self._cfg.containers / self._cid

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self._cid}-json.log"

    # shim.json and exit.json are written once each, atomically, by the shim: once read, they
    # are kept (status() is asked at every transition; this spares the event loop the disk)
    def _shim_info(self) -> dict[str, Any] | None:
        if self._shim_seen is None and self._cid:
            self._shim_seen = read_json(self.directory / "shim.json")
        return self._shim_seen

    def _exit_info(self) -> dict[str, Any] | None:
        if self._exit_seen is None and self._cid:
            self._exit_seen = read_json(self.directory / "exit.json")
        return self._exit_seen

    def _running_shim(self) -> int:
        """The shim's pid while it runs, else 0."""
        info = self._shim_info()
        if info is None or self._cid is None:
            return 0
        pid = int(info.get("shim_pid", 0))
        return pid if pid and shim_alive(info, self._cid) else 0

    def _health(self) -> HealthState:
        return HealthState.load(self.directory / "health.json")

    # --- protocol ----------------------------------------------------------------------------

    def update(self, task: Task) -> None:
        self._task = task

    def on_progress(self, callback: Callable[[str], None]) -> None:
        self._progress = callback

    def status(self) -> ContainerStatus:
        if self._cid is None or not self.directory.is_dir():
            return ContainerStatus()
        exit_info = self._exit_info()
        shim_info = self._shim_info()
        pid = int(shim_info.get("pid", 0)) if shim_info and exit_info is None else 0
        code = int(exit_info.get("code", 0)) if exit_info else 0
        health = ""
        if shim_info is not None and (self.directory / "health.json").exists():
            health = self._health().status
        return ContainerStatus(container_id=self._cid, pid=pid, exit_code=max(code, 0),
                               health=health)

    async def prepare(self) -> None:
        cs = self._task.spec.container_spec or {}
        auth = str((cs.get("PullOptions") or {}).get("RegistryAuth") or "")
        try:
            image = await self._cfg.images.ensure(str(cs.get("Image", "")), registry_auth=auth,
                                                  progress=self._progress)
        except ShoalError as exc:
            raise TaskRejected(str(exc)) from exc
        refs = file_refs(self._task)
        # before anything is made: a task whose data has not arrived retries from scratch
        data = taskfiles.fetch(refs, self._files) if refs and self._fill_needed() else None
        if data is not None:
            data = self._expand(data)
        if self._cid is None:
            self._cid = secrets.token_hex(32)
            self._record_path.parent.mkdir(parents=True, exist_ok=True)
            # a standalone container's record says so: only swarm tasks' are ever pruned
            write_json(self._record_path, {"id": self._cid, "task_id": self._task.id,
                                           **({"standalone": True} if self._standalone else {})})
        d = self.directory
        if (d / "shim.json").exists() or (d / "exit.json").exists():
            return  # started already
        try:
            netns = await self._attach()
            created = not (d / "config.json").exists()
            await asyncio.to_thread(self._create, image.layer_dirs, image.config, netns, data,
                                    image.id)
            if created:
                self._publish("create")
        except Exception:
            # undo the half-made container; a cancelled prepare is resumed or removed later
            await self.remove()
            raise

    def _expand(self, raw: dict[FileRef, bytes]) -> dict[FileRef, bytes]:
        """Templated secrets and configs rendered for this task, in memory (a template that
        fails rejects the task, as swarmkit's)."""
        drivers = taskfiles.drivers(list(raw), self._files)
        if not drivers:
            return raw
        try:
            return templating.expand_files(raw, drivers, self._task,
                                           templating.NodeInfo.local(self._cfg.hostname))
        except templating.TemplateFailed as exc:
            raise TaskRejected(str(exc)) from exc

    def _fill_needed(self) -> bool:
        """Whether the files' tmpfs must be filled: the container is not made yet, or it is
        not started and its tmpfs is gone (a reboot). A running one keeps its tmpfs."""
        if self._cid is None:
            return True
        d = self.directory
        started = (d / "shim.json").exists() or (d / "exit.json").exists()
        return not started and not mounts.is_mounted(taskfiles.tmpfs_dir(d))

    # --- networks: attached before the container exists, announced once it serves -----------

    def _networked(self) -> bool:
        return self._cfg.network is not None and bool(self._task.networks_attachments)

    async def _attach(self) -> str | None:
        """The container's network namespace on the task's networks and the gateway bridge
        (idempotent), or None: runc makes one with loopback only."""
        if self._cfg.network is None or self._cid is None:
            return None
        assert self._cfg.network is not None
        try:
            return await self._cfg.network.attach(self._task, self._cid)
        except ShoalError as exc:
            raise ExecError(f"network attach failed: {exc}") from exc

    async def _announce(self) -> None:
        if self._networked():
            assert self._cfg.network is not None
            await self._cfg.network.announce(self._task)

    async def _withdraw(self) -> None:
        if self._networked():
            assert self._cfg.network is not None
            await self._cfg.network.withdraw(self._task)

    def _addresses(self) -> list[str] | None:
        if not self._networked():
            return None
        return [a for att in self._task.networks_attachments or [] for a in att.addresses or []]

    def _create(self, layers: list[Path], image_config: dict[str, Any],
                netns: str | None = None, data: dict[FileRef, bytes] | None = None,
                image_id: str = "") -> None:
        assert self._cid is not None
        cs = self._task.spec.container_spec or {}
        d, rootfs = self.directory, self.directory / "rootfs"
        for sub in ("rootfs", "upper", "work"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if not mounts.is_mounted(rootfs):
            mounts.mount_overlay(list(reversed(layers)), d / "upper", d / "work", rootfs)
        if data is not None:
            taskfiles.populate(d, data)
        if (d / "config.json").exists():
            # prepared; after a reboot only the mounts were missing (volumes' devices too)
            spec.remount_volumes(templating.expand_container_spec(
                cs, self._task, templating.NodeInfo.local(self._cfg.hostname)), self._cfg.volumes)
            return
        self._log_config()  # a driver the node does not have: rejected now, not at start
        try:  # Hostname, Env and Mounts may hold Go templates (swarmkit expands them too)
            cs = templating.expand_container_spec(
                cs, self._task, templating.NodeInfo.local(self._cfg.hostname))
            process = containerspec.resolve(image_config, cs)
        except templating.TemplateFailed as exc:
            raise TaskRejected(str(exc)) from exc
        except ShoalError as exc:
            raise TaskRejected(str(exc)) from exc
        hostname = process.hostname or self._cid[:12]
        user = spec.resolve_user(rootfs, process.user)
        options = spec.options_of(cs)
        # which named volumes it uses, before it is prepared: ``volume rm`` then refuses them
        write_json(d / VOLUMES_FILE, {"names": spec.named_volumes(cs)})
        mount_list = spec.build_mounts(cs, volumes=self._cfg.volumes, anon_root=d / "volumes",
                                       rootfs=rootfs)
        # after the service's own mounts: a file under a tmpfs mounted at /run stays visible
        mount_list += taskfiles.bind_mounts(d, file_refs(self._task))
        files = hostfiles.write_host_files(d, hostname, addresses=self._addresses(),
                                           dns=options.dns, hosts=options.hosts)
        oci = spec.build_spec(task=self._task, process=process, rootfs=rootfs, hostname=hostname,
                              user=user, mounts=mount_list, host_files=files,
                              cgroups_path=self._cfg.cgroups_path(self._cid), netns=netns,
                              container_spec=cs)
        if process.health is not None:
            h = process.health
            write_json(d / "healthcheck.json", {
                "test": list(h.test), "interval": h.interval, "timeout": h.timeout,
                "retries": h.retries, "start_period": h.start_period,
                "start_interval": h.start_interval})
        record.write_record(d, record.task_record(
            self._task, process=process, image_id=image_id, image_config=image_config,
            hostname=hostname, tty=options.tty, open_stdin=options.open_stdin))
        write_json(d / "config.json", oci)

    def _check(self) -> containerspec.HealthCheck | None:
        """The health check resolved at prepare (image's and service's), kept on disk."""
        if self._health_check is None:
            h = read_json(self.directory / "healthcheck.json")
            if h:
                self._health_check = containerspec.HealthCheck(
                    tuple(h["test"]), float(h["interval"]), float(h["timeout"]),
                    int(h["retries"]), float(h["start_period"]),
                    float(h.get("start_interval", containerspec.DEFAULT_START_INTERVAL)))
        return self._health_check

    async def start(self) -> None:
        d = self.directory
        if not (d / "config.json").exists():
            raise ExecError(f"runc: container for task {self._task.id} is not prepared")
        if self._shim_info() is None and self._exit_info() is None:
            await self._spawn_shim()
            if self._shim_info() is not None:
                self._publish("start")
        exit_info = self._exit_info()
        if exit_info is not None and "error" in exit_info:
            raise ExecError(f"starting container failed: {exit_info['error']}")
        if self._shim_info() is None:
            raise ExecError(f"runc: container {self._cid} did not start (see {d}/shim.log)")
        check = self._check()
        if exit_info is not None:
            return
        if check is not None and self._health().status == STARTING and not self._standalone:
            if self._progress is not None:  # its PID shows while it is not yet healthy
                self._progress("starting")
            await self._gate(check, self._health())
        await self._announce()

    async def _spawn_shim(self) -> None:
        assert self._cid is not None
        d = self.directory
        logs = self._log_config()
        size, files = logs.limits(self._cfg.log_max_size, self._cfg.log_max_files)
        if logs.driver == logdriver.NONE:
            log, size = os.devnull, 0
        else:
            log = str(self.log_path)
        options = spec.options_of(self._task.spec.container_spec or {})
        ready_r, ready_w = os.pipe()
        args = {"runc": self._cfg.runc, "dir": str(d), "cid": self._cid,
                "log": log, "max_size": size, "max_files": files,
                "cgroup": self._cfg.cgroups_path(self._cid),
                "tty": int(options.tty), "stdin": int(options.open_stdin),
                "attach": int(options.tty or options.open_stdin)}
        (self._cfg.exec_root / "runc").mkdir(parents=True, exist_ok=True)
        try:
            # forked by the shim server; its own Python process only if the server is not there
            if not self._cfg.shims.spawn(shim.shim_argv(args), ready_w):
                self._spawn_shim_process(args, ready_w)
        finally:
            os.close(ready_w)
        # the shim closes its end once running or failed (or when it dies)
        loop = asyncio.get_running_loop()
        eof = loop.create_future()

        def readable() -> None:
            if not os.read(ready_r, 64) and not eof.done():
                eof.set_result(None)

        loop.add_reader(ready_r, readable)
        try:
            await asyncio.wait_for(eof, START_WAIT)
        except TimeoutError:
            raise ExecError(f"runc did not start container {self._cid} within "
                            f"{START_WAIT:.0f} s") from None
        finally:
            loop.remove_reader(ready_r)
            os.close(ready_r)

    def _spawn_shim_process(self, args: dict[str, Any], ready_w: int) -> None:
        os.set_inheritable(ready_w, True)
        argv = [sys.executable, "-I", "-S", shim.__file__,
                *shim.shim_argv({**args, "ready_fd": ready_w})]
        os.posix_spawn(sys.executable, argv, dict(os.environ), setsid=True, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(self.directory / "shim.log"),
             os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ])

    async def _gate(self, check: containerspec.HealthCheck, health: HealthState) -> None:
        """Probe until healthy (return), unhealthy (stop, raise) or exited (return)."""
        result = await self._monitor(check, health, until_healthy=True)
        if result == UNHEALTHY:
            raise Unhealthy(await self._stop_unhealthy())

    async def _monitor(self, check: containerspec.HealthCheck, health: HealthState, *,
                       until_healthy: bool) -> str:
        """Runs probes every interval; returns HEALTHY (with until_healthy), UNHEALTHY, or ""
        when the container exited."""
        assert self._cid is not None
        started = (self.directory / "shim.json").stat().st_mtime
        shim_pid = self._running_shim()
        while True:
            wait = check.interval  # Docker's: the start interval while starting, in the period
            if health.status == STARTING and time.time() - started < check.start_period:
                wait = check.start_interval
            if shim_pid == 0 or await wait_pid(shim_pid, wait):
                return ""
            ok = await probe(self._cfg.runc, self._cid, check, self.directory / "health.pid")
            in_start = time.time() - started < check.start_period
            before = health.status
            status = health.record(ok, in_start_period=in_start)
            if status != before:
                self._publish(f"health_status: {status}")
            if status == HEALTHY and until_healthy:
                return HEALTHY
            if health.failed(check):
                if before != UNHEALTHY:
                    self._publish(f"health_status: {UNHEALTHY}")
                if not self._standalone:
                    return UNHEALTHY

    async def _stop_unhealthy(self) -> int:
        await self.shutdown()  # withdraws the task from the backends first
        info = self._exit_info() or {}
        code = int(info.get("code", 0))
        return code if code > 0 else 137

    async def wait(self) -> int:
        shim_info = self._shim_info()
        if shim_info is None and self._exit_info() is None:
            raise ExecError(f"runc: container for task {self._task.id} was not started")
        shim_pid = self._running_shim()
        check = self._check()
        if shim_pid:
            await self._attach()  # again after a daemon restart: DNS and rules live in it
            await self._announce()
        try:
            if shim_pid and check is not None:
                health = self._health()
                if await self._monitor(check, health, until_healthy=False) == UNHEALTHY:
                    raise Unhealthy(await self._stop_unhealthy())
            elif shim_pid:
                await wait_pid(shim_pid)
        finally:
            await self._withdraw()
            if shim_pid:
                self._publish_die()
        return self._result()

    def _publish(self, action: str, extra: dict[str, str] | None = None) -> None:
        if self._cfg.events is not None and self._cid is not None:
            record.publish(self._cfg.events, self.directory, action, extra)

    def _publish_die(self) -> None:
        info = self._exit_info()
        if info is None:
            return
        if info.get("oom"):
            self._publish("oom")
        code = max(int(info.get("code", 0)), 0)
        self._publish("die", {"exitCode": str(code), "execDuration": "0"})

    def _result(self) -> int:
        info = self._exit_info()
        if info is None:
            raise ExecError(f"runc: container {self._cid} is lost: its shim exited without "
                            "recording an exit code")
        if "error" in info:
            raise ExecError(f"starting container failed: {info['error']}")
        code = int(info["code"])
        if (self.directory / "health.json").exists() and self._health().status == UNHEALTHY \
                and not self._standalone:
            raise Unhealthy(code if code > 0 else 137)
        if code == 0:
            return 0
        if info.get("oom"):
            raise ExitError(code, f"task: non-zero exit ({code}): {OOM_MESSAGE}")
        raise ExitError(code)

    async def _runc(self, *args: str) -> tuple[int, str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._cfg.runc, *args, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        except OSError as exc:  # no runtime binary: nothing of it to clean up either
            return 127, str(exc)
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode(errors="replace")

    async def _kill(self, sig: int, wait: float) -> bool:
        """Send ``sig`` to the container's init; True once the shim recorded the exit."""
        shim_pid = self._running_shim()
        if not shim_pid:
            return True
        assert self._cid is not None
        await self._runc("kill", self._cid, str(sig))
        return await wait_pid(shim_pid, wait)

    async def shutdown(self) -> None:
        if self._cid is None or self._running_shim() == 0:
            return
        await self._withdraw()  # out of every node's backends before it stops
        cs = self._task.spec.container_spec or {}
        grace = cs.get("StopGracePeriod")
        grace_s = int(grace) / 1e9 if grace is not None else DEFAULT_GRACE
        if await self._kill(_signal(cs.get("StopSignal")), grace_s):
            return
        await self.terminate()

    async def terminate(self) -> None:
        if self._cid is None:
            return
        await self._withdraw()
        if not await self._kill(int(signal.SIGKILL), KILL_WAIT):
            raise ExecError(f"runc: container {self._cid} did not stop after SIGKILL")

    async def remove(self) -> None:
        cid = self._cid
        if cid is None:
            return
        d = self._cfg.containers / cid
        existed = (d / record.RECORD_FILE).exists()
        shim_pid = self._running_shim() if d.is_dir() else 0
        if shim_pid and not await self._kill(int(signal.SIGKILL), KILL_WAIT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(shim_pid, signal.SIGKILL)
            await wait_pid(shim_pid, KILL_WAIT)
        await self._runc("delete", "--force", cid)
        if self._cfg.network is not None:
            await self._cfg.network.detach(self._task, cid)
        used = read_json(d / VOLUMES_FILE) or {}  # the names as prepared (templates expanded)
        await asyncio.to_thread(remove_container_files, self._cfg, cid)
        with contextlib.suppress(FileNotFoundError):
            self._record_path.unlink()
        if existed and self._cfg.events is not None:
            self._cfg.events.publish("container", "destroy", cid, {
                **record.task_labels(self._task),
                "image": str((self._task.spec.container_spec or {}).get("Image", "")),
                "name": self._task.full_name})
        volumes = self._cfg.volumes
        for name in used.get("names") or [] if volumes else ():
            assert volumes is not None
            await asyncio.to_thread(volumes.release, name)  # the last user unmounts its device
        self._cid = None
        self._health_check = None
        self._shim_seen = self._exit_seen = None

    # --- logs ------------------------------------------------------------------------------

    def _exited(self) -> bool:
        return self._exit_info() is not None or self._running_shim() == 0

    def _log_config(self) -> logdriver.LogConfig:
        try:
            return logdriver.log_config(self._task.spec.log_driver)
        except ShoalError as exc:  # a spec stored before the control API checked it
            raise TaskRejected(str(exc)) from exc

    async def logs(self, options: LogOptions) -> AsyncIterator[LogLine]:
        if self._cid is None:
            return
        if self._log_config().driver == logdriver.NONE:
            raise ExecError("configured logging driver does not support reading")
        path = str(self.log_path)
        o = options
        follower = logfile.Follower(path)
        # The files written so far (up to max-file of max-size) are read and parsed in a worker
        # thread, a chunk at a time, so the event loop (heartbeats, DNS, gossip) never waits on
        # them (issue 16); the follower is the thread's until the chunk it reads is done.
        loop = asyncio.get_running_loop()
        chunks = logfile.history(path, follower, since=o.since, until=o.until, stdout=o.stdout,
                                 stderr=o.stderr, tail=o.tail)
        reading: asyncio.Future[list[logfile.Entry] | None] | None = None
        try:
            while True:
                reading = loop.run_in_executor(None, next, chunks, None)
                chunk = await asyncio.shield(reading)
                if chunk is None:
                    break
                for e in chunk:
                    yield LogLine(e.stream, e.time, e.data)
            while options.follow:
                done = self._exited()  # checked before reading: nothing can come after
                for e in follower.read_new():
                    if logfile.wanted(e, since=o.since, until=o.until, stdout=o.stdout,
                                      stderr=o.stderr):
                        yield LogLine(e.stream, e.time, e.data)
                if done:
                    return
                await asyncio.sleep(FOLLOW_POLL)
        finally:
            if reading is not None and not reading.done():  # left while a thread reads
                reading.add_done_callback(lambda f: _close_after(f, follower))
            else:
                follower.close()
