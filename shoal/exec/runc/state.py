"""The on-disk state shared by an executor's controllers: paths, JSON records written
atomically, the shim's liveness, waiting for a process that may not be our child (pidfd), and
removing what a container left on the host."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.exec.executor import ImageProvider
from shoal.exec.runc import cgroups, mounts

__all__ = ["RuncConfig", "read_json", "remove_container_files", "shim_alive", "wait_pid",
           "write_json"]


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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def shim_alive(pid: int, cid: str) -> bool:
    """Whether ``pid`` is still this container's shim (not a reused pid)."""
    try:
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
