"""The on-disk state shared by an executor's controllers: paths, JSON records written
atomically, the shim's liveness, waiting for a process that may not be our child (pidfd), and
removing what a container left on the host."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.events import EventLog
from shoal.exec.executor import ImageProvider, NetworkAttacher, VolumeProvider
from shoal.exec.runc import cgroups, mounts
from shoal.exec.runc.shims import ShimServer
from shoal.fsutil import write_atomic

__all__ = ["VOLUMES_FILE", "RuncConfig", "read_json", "remove_container_files", "shim_alive", "wait_pid",
           "write_json"]

VOLUMES_FILE = "volumes.json"  # in a container's directory: the named volumes it uses


@dataclass(frozen=True, slots=True)
class RuncConfig:
    """What every controller of one executor shares."""

    data_root: Path
    exec_root: Path
    images: ImageProvider
    cgroup_parent: str = "/shoal"
    runtime: str = "runc"  # a path or a name on PATH
    log_max_size: int = 10 * 1024 * 1024
    log_max_files: int = 3
    shims: ShimServer = field(default_factory=ShimServer)  # forks the shims (shimserver.py)
    network: NetworkAttacher | None = None  # overlays, gateway; None: containers get loopback only
    volumes: VolumeProvider | None = None  # named volumes; None: a task mounting one is rejected
    hostname: str = ""  # the node's, for templated secrets and configs (.Node.Hostname)
    events: EventLog | None = None  # the node's events (container create, start, die...)

    @property
    def containers(self) -> Path:
        return self.data_root / "containers"

    @property
    def runc(self) -> list[str]:
        return [shutil.which(self.runtime) or self.runtime, "--root", str(self.exec_root / "runc")]

    def cgroups_path(self, cid: str) -> str:
        return f"{self.cgroup_parent.rstrip('/')}/{cid}"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def write_json(path: Path, obj: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(obj))


def shim_alive(info: dict[str, Any], cid: str) -> bool:
    """Whether the shim that wrote ``info`` (shim.json) still runs: the same pid with the same
    start time, so a reused pid is not taken for it."""
    pid = int(info.get("shim_pid", 0))
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return False
    if fields[0] == b"Z":
        return False  # exited, not reaped yet
    if "shim_start" in info:
        return int(fields[19]) == int(info["shim_start"])
    try:  # a shim.json from before start times were recorded: its own process, by cmdline
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"shim.py" in cmdline and cid.encode() in cmdline


async def wait_pid(pid: int, timeout: float | None = None) -> bool:
    """Wait until process ``pid`` (child or not) has exited; False on timeout."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def exited() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, exited)
    try:
        await asyncio.wait_for(done, timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    with contextlib.suppress(ChildProcessError):
        # our own child: reap it (after a restart it is not); WNOHANG never blocks
        os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222
    return True


def remove_container_files(cfg: RuncConfig, cid: str) -> None:
    """Unmount, remove the cgroup dirs and the directory of container ``cid`` (after ``runc
    delete``); no error for what is already gone."""
    d = cfg.containers / cid
    for point in mounts.mounts_under(d):
        mounts.umount(point)
    cgroups.remove_dirs(cfg.cgroups_path(cid))
    shutil.rmtree(d, ignore_errors=True)
