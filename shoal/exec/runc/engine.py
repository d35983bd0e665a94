"""This node's containers as the Engine API drives them (/containers, /exec): the task
containers of the runc executor and the standalone ones, which share ``<data_root>/containers``.
Made by the daemon at its start, with or without a swarm; ``run`` watches the standalone
containers again and applies their restart policies after a daemon restart."""

from __future__ import annotations

from pathlib import Path

from shoal.events import EventLog
from shoal.exec.executor import ImageProvider, VolumeProvider
from shoal.exec.localnet import LocalNetworks
from shoal.exec.runc.containers import Containers
from shoal.exec.runc.execs import Execs
from shoal.exec.runc.shims import ShimServer
from shoal.exec.runc.standalone import Standalone
from shoal.exec.runc.state import RuncConfig

__all__ = ["ContainerEngine"]


class ContainerEngine:
    def __init__(self, *, data_root: Path, exec_root: Path, images: ImageProvider,
                 cgroup_parent: str = "/shoal", log_max_size: int = 10 * 1024 * 1024,
                 log_max_files: int = 3, volumes: VolumeProvider | None = None,
                 hostname: str = "", events: EventLog | None = None,
                 networks: LocalNetworks | None = None) -> None:
        self.config = RuncConfig(data_root=Path(data_root), exec_root=Path(exec_root),
                                 images=images, cgroup_parent=cgroup_parent,
                                 log_max_size=log_max_size, log_max_files=log_max_files,
                                 shims=ShimServer(str(exec_root)), volumes=volumes,
                                 hostname=hostname, events=events)
        self.containers = Containers(self.config, events)
        self.execs = Execs(self.containers)
        self.standalone = Standalone(self.containers, networks)

    async def run(self) -> None:
        await self.standalone.run()

    def close(self) -> None:
        self.config.shims.close()
