"""LocalEngine: what makes a node a Docker engine on its own, in or out of a swarm (dockerd's
daemon without its cluster): the node's events, images, named volumes, local networks (the
default bridge, user bridges, host, none) and, with the runc executor, its containers (/containers,
/exec). SwarmNode owns one and hands it the swarm's side through callables, so nothing here
imports the swarm's parts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from shoal.daemon.localnets import StandaloneNetworks
from shoal.daemon.overlays import SwarmSide
from shoal.events import EventLog
from shoal.exec.localnet import LocalNetworks
from shoal.exec.runc.engine import ContainerEngine
from shoal.exec.runc.record import read_record
from shoal.image.service import ImageService
from shoal.model.objects import Network
from shoal.net.bridges import LocalBridges
from shoal.net.dns import read_resolv_conf
from shoal.net.records import Directory
from shoal.volume import VolumeService

__all__ = ["EngineSettings", "LocalEngine"]


class EngineSettings(Protocol):
    """The daemon flags the local engine reads (a NodeSettings fits)."""

    data_root: Path
    exec_root: Path
    hostname: str
    executor: str
    insecure_registries: list[str]
    registry_mirrors: list[str]
    cgroup_parent: str
    log_max_size: int
    log_max_files: int
    default_bridge: bool


class LocalEngine:
    def __init__(self, settings: EngineSettings, *, volume_users: Callable[[], dict[str, list[str]]],
                 swarm_network: Callable[[str], Network | None], swarm_side: Callable[[], SwarmSide | None],
                 overlay_records: Callable[[], Directory]) -> None:
        self.events = EventLog()  # the node's events (/events): its parts publish, the API reads
        with contextlib.suppress(RuntimeError):  # made on the daemon's loop, which subscribers use
            self.events.bind(asyncio.get_running_loop())
        self.images = ImageService(settings.data_root / "image",
                                   insecure_registries=settings.insecure_registries,
                                   registry_mirrors=settings.registry_mirrors, events=self.events)
        self.volumes = VolumeService(settings.data_root / "volumes", users=volume_users,
                                     events=self.events)
        # in the kernel with the runc executor, records only with sim, none with --bridge none
        upstreams, search = read_resolv_conf()
        self.bridge_networks = LocalBridges(
            settings.data_root, settings.exec_root, kernel=settings.executor == "runc",
            enabled=settings.default_bridge, upstreams=upstreams, search=search,
            events=self.events)
        self.standalone = StandaloneNetworks(self.bridge_networks, swarm_network=swarm_network,
                                             swarm=swarm_side)
        self.local_networks: LocalNetworks = self.standalone
        # the embedded DNS of standalone containers answers the overlays' names too
        self.bridge_networks.chain_records(overlay_records)
        self.containers: ContainerEngine | None = None
        if settings.executor == "runc":
            self.containers = ContainerEngine(
                data_root=settings.data_root, exec_root=settings.exec_root, images=self.images,
                cgroup_parent=settings.cgroup_parent, log_max_size=settings.log_max_size,
                log_max_files=settings.log_max_files, volumes=self.volumes,
                hostname=settings.hostname, events=self.events, networks=self.local_networks)
            self.standalone.name_of = self.container_name  # the containers' DNS names

    async def start(self, spawn: Callable[[Coroutine[Any, Any, None], str], None]) -> None:
        self.events.bind(asyncio.get_running_loop())
        await self.bridge_networks.start()
        if self.containers is not None:
            spawn(self.containers.run(), "containers")

    async def close(self) -> None:
        """Daemon shutdown: the containers and their shims run on."""
        await self.bridge_networks.close()
        if self.containers is not None:
            self.containers.close()  # the shim server

    def container_name(self, container_id: str) -> str | None:
        """A standalone container's name ("/web"), for the embedded DNS and inspect."""
        if self.containers is None:
            return None
        rec = read_record(self.containers.config.containers / container_id) or {}
        name = rec.get("Name")
        return name if isinstance(name, str) and name else None
