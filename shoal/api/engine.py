"""What the API needs from the daemon: the local swarm state, the store on managers, and the
swarm lifecycle calls. The daemon implements it (shoal.daemon.node.SwarmNode); tests may fake it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from shoal.events import EventLog
from shoal.exec.localnet import LocalNetworks
from shoal.exec.runc.engine import ContainerEngine
from shoal.image.service import ImageService
from shoal.manager.deks import ClusterKeys
from shoal.manager.logbroker import LogBroker, RemoteLogs
from shoal.model.requests import InitRequest, JoinRequest
from shoal.net.bridges import LocalBridges
from shoal.store.store import Store
from shoal.volume import VolumeService

__all__ = ["API_WARNINGS", "ENGINE", "Engine", "SwarmState"]


@dataclass
class SwarmState:
    local_node_state: str = "inactive"  # inactive | pending | active | error | locked
    node_id: str = ""
    cluster_id: str = ""  # from the node's certificate (O=)
    node_addr: str = ""
    control_available: bool = False
    role: str = ""  # the role this node's certificate carries
    error: str = ""
    remote_managers: list[tuple[str, str]] = field(default_factory=list)  # (node id, host:port)


class Engine(Protocol):
    hostname: str
    engine_labels: dict[str, str]
    data_root: str
    images: ImageService  # the node's images (/images, /distribution)
    volumes: VolumeService  # the node's named volumes (/volumes)
    events: EventLog  # the node's events (/events)
    bridge_networks: LocalBridges  # the node's local networks (/networks, beside the swarm's)
    local_networks: LocalNetworks  # the same, as standalone containers use them

    def swarm_state(self) -> SwarmState: ...

    @property
    def store(self) -> Store | None: ...

    def cluster_keys(self) -> ClusterKeys:
        """What opens the cluster object's sealed keys (called once ``store`` is not None)."""
        ...

    async def init(self, req: InitRequest) -> str: ...

    async def join(self, req: JoinRequest) -> None: ...

    async def leave(self, force: bool) -> None: ...

    async def unlock(self, key: str) -> None:
        """``swarm unlock`` with the key text the client sent."""
        ...

    async def rewrap_local_keys(self) -> None:
        """After a swarm update: this manager's key files follow the unlock key at once."""
        ...

    def container_runtime(self) -> ContainerEngine | None:
        """This node's containers (/containers, /exec); None without the runc executor."""
        ...

    def logs(self) -> LogBroker | RemoteLogs | None:
        """Where this manager reads service logs (None on a worker)."""
        ...


ENGINE: web.AppKey[Engine] = web.AppKey("engine")
# What ``docker info`` lists under Warnings about the API's own listeners (set by ``serve``).
API_WARNINGS: web.AppKey[list[str]] = web.AppKey("api_warnings")
