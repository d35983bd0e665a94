"""RuncExecutor: runs tasks as runc containers on this machine (root, cgroupfs driver).

Containers live under ``<data_root>/containers`` (see controller.py for the layout), runc's
own state under ``<exec_root>/runc``, cgroups under ``<cgroup_parent>/<cid>`` in every
hierarchy, named volumes under ``<data_root>/volumes/<name>/_data`` (kept after their task).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Collection
from pathlib import Path

from shoal import __version__
from shoal.events import EventLog
from shoal.exec.executor import (
    ImageProvider,
    NetworkAttacher,
    TaskFiles,
    VolumeProvider,
    host_description,
)
from shoal.exec.runc import cgroups, mounts, prune
from shoal.exec.runc.controller import RuncController
from shoal.exec.runc.shims import ShimServer
from shoal.exec.runc.state import (
    VOLUMES_FILE,
    RuncConfig,
    read_json,
    remove_container_files,
    shim_alive,
)
from shoal.model.objects import NodeDescription, Task

__all__ = ["RuncExecutor"]

ENGINE_VERSION = __version__


class RuncExecutor:
    """Implements shoal.exec.Executor and TaskPruning."""

    def __init__(self, hostname: str, engine_labels: dict[str, str] | None, data_root: Path,
                 exec_root: Path, images: ImageProvider, cgroup_parent: str = "/shoal",
                 runtime: str = "runc", log_max_size: int = 10 * 1024 * 1024,
                 log_max_files: int = 3, network: NetworkAttacher | None = None,
                 volumes: VolumeProvider | None = None, events: EventLog | None = None) -> None:
        self._hostname = hostname
        self._labels = dict(engine_labels or {})
        self.config = RuncConfig(data_root=Path(data_root), exec_root=Path(exec_root),
                                 images=images, cgroup_parent=cgroup_parent, runtime=runtime,
                                 log_max_size=log_max_size, log_max_files=log_max_files,
                                 shims=ShimServer(str(exec_root)), network=network,
                                 volumes=volumes, hostname=hostname, events=events)

    def describe(self) -> NodeDescription:
        return host_description(self._hostname, self._labels, engine_version=ENGINE_VERSION)

    def controller(self, task: Task, files: TaskFiles | None = None) -> RuncController:
        return RuncController(task, self.config, files)

    async def remove_tasks_except(self, keep: Collection[str]) -> list[str]:
        """Kill and remove the containers of every task not in ``keep`` (prune.py)."""
        return await prune.remove_task_containers(self.config, keep)

    def containers(self) -> list[str]:
        """IDs of the containers on disk (prepared, running or exited)."""
        root = self.config.containers
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if len(p.name) == 64 and p.is_dir())

    def volume_users(self) -> dict[str, list[str]]:
        """Named volume -> the containers on disk (running or not) that use it, as dockerd
        counts a volume's references (what ``volume rm`` and ``dangling`` ask)."""
        users: dict[str, list[str]] = {}
        for cid in self.containers():
            record = read_json(self.config.containers / cid / VOLUMES_FILE) or {}
            for name in record.get("names") or []:
                users.setdefault(str(name), []).append(cid)
        return users

    def cleanup_all(self, *, volumes: bool = False) -> None:
        """Remove every container this executor owns: its processes (``runc delete -f`` kills
        them, and their shims then exit), mounts, cgroups and files; named volumes too when
        asked (``swarm leave`` keeps them, as Docker does). Blocking; for leave and tests."""
        cfg = self.config
        runc = cfg.runc
        ids = set(self.containers())
        listed = _run([*runc, "list", "--format", "json"])
        if listed.strip() not in ("", "null"):
            ids.update(c["id"] for c in json.loads(listed))
        shims = []
        for cid in sorted(ids):
            _run([*runc, "delete", "--force", cid])
            info = read_json(cfg.containers / cid / "shim.json")
            if info and shim_alive(info, cid):
                shims.append(int(info["shim_pid"]))
        _wait_gone(shims)  # each shim records its container's exit, then leaves the dir alone
        for cid in sorted(ids):
            remove_container_files(cfg, cid)
        for point in mounts.mounts_under(cfg.containers):
            mounts.umount(point)
        cgroups.remove_parent(cfg.cgroup_parent)
        # --one-file-system: never into a mount that could not be removed
        _run(["rm", "-rf", "--one-file-system", str(cfg.containers)])
        if volumes:
            # a volume's device first: a bound host directory is on the same filesystem, and
            # --one-file-system would go into it
            for point in mounts.mounts_under(cfg.data_root / "volumes"):
                mounts.umount(point)
            _run(["rm", "-rf", "--one-file-system", str(cfg.data_root / "volumes")])



def _wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    """Wait (bounded) until these processes have exited; reap those that are our children."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        for pid in list(left):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            stat = Path(f"/proc/{pid}/stat")
            if not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                left.remove(pid)
        if left:
            time.sleep(0.02)
    for pid in left:  # a stuck shim: it must not outlive its container's files
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _run(argv: list[str]) -> str:
    """Run a command; its stdout, or "" when it failed or does not exist."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return proc.stdout if proc.returncode == 0 else ""
