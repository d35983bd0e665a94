"""What a node's local networks keep on disk, so a shoald restart finds its networks and its
running containers' endpoints again: ``<data-root>/network/local.json``, replaced whole
(fsutil.write_atomic) after every change. No store, no Raft: dockerd's local networks are the
node's own too. Written by bridges.LocalBridges only."""

from __future__ import annotations

from pathlib import Path

import msgspec

from shoal.fsutil import write_atomic
from shoal.net.bridgeconf import BridgeNet

__all__ = ["ContainerRec", "EndpointRec", "LocalState", "PortRec", "load", "save"]


class EndpointRec(msgspec.Struct, kw_only=True):
    network_id: str
    endpoint_id: str
    ifname: str  # inside the container: eth<N>
    host_ifname: str  # the veth's end on the bridge
    ip: str  # "" on host and none
    aliases: list[str] = msgspec.field(default_factory=list)
    gateway_route: bool = False  # the container's default route goes through this network


class PortRec(msgspec.Struct, kw_only=True):
    container_port: int
    protocol: str
    host_ip: str
    host_port: int
    network_id: str  # the network whose address the port goes to


class ContainerRec(msgspec.Struct, kw_only=True):
    id: str
    hostname: str
    name: str = ""  # the container's name ("web"), when the daemon knows it: a DNS name
    netns: str | None  # None: the node's own (--network host)
    endpoints: list[EndpointRec] = msgspec.field(default_factory=list)
    ports: list[PortRec] = msgspec.field(default_factory=list)
    next_index: int = 0  # the next eth<N>

    def endpoint(self, network_id: str) -> EndpointRec | None:
        return next((e for e in self.endpoints if e.network_id == network_id), None)


class LocalState(msgspec.Struct, kw_only=True):
    networks: dict[str, BridgeNet] = msgspec.field(default_factory=dict)
    containers: dict[str, ContainerRec] = msgspec.field(default_factory=dict)

    def used(self, network_id: str) -> list[str]:
        return [e.ip for c in self.containers.values() for e in c.endpoints
                if e.network_id == network_id and e.ip]

    def users(self, network_id: str) -> list[ContainerRec]:
        return [c for c in self.containers.values() if c.endpoint(network_id) is not None]


def load(path: Path) -> LocalState:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return LocalState()
    return msgspec.json.decode(raw, type=LocalState)


def save(path: Path, state: LocalState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, msgspec.json.encode(state))
