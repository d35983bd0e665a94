"""What standalone containers (``docker run``, ``docker network connect``) need from the node's
networks: a namespace with endpoints on local networks (the default ``bridge``, user bridge
networks) and attachable overlays, and published ports. The daemon passes shoal.net's
implementation to the runc executor's standalone containers; task containers keep using
``NetworkAttacher`` (executor.py).

Errors are ShoalErrors with dockerd's words: NotFound (no such network), Forbidden (an overlay
that is not attachable), Conflict (an address or host port in use), InvalidArgument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Endpoint", "EndpointRequest", "LocalNetworks", "PortBinding", "Sandbox"]


@dataclass(frozen=True, slots=True)
class PortBinding:
    """One ``-p``: HostConfig.PortBindings' entry."""

    container_port: int
    protocol: str = "tcp"  # "tcp" | "udp"
    host_ip: str = ""  # "" = every address of the node
    host_port: int = 0  # 0 = one the network side picks from the ephemeral range


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    """One network the container joins: NetworkingConfig.EndpointsConfig's entry (or
    HostConfig.NetworkMode's network), or ``docker network connect``'s."""

    network: str  # name, ID or ID prefix; "bridge" (the default), "none"
    aliases: tuple[str, ...] = ()
    ipv4_address: str = ""  # IPAMConfig.IPv4Address: a fixed address ("" = allocated)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What the container got on one network: EndpointSettings' content."""

    network_id: str
    network_name: str
    endpoint_id: str
    ip_address: str  # "" on "none"
    prefix_len: int = 0
    gateway: str = ""
    mac_address: str = ""
    aliases: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sandbox:
    """A standalone container's network namespace and what is in it."""

    path: str | None  # the namespace to run in; None: the node's own (``--network host``)
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[PortBinding, ...] = ()  # as bound (host ports chosen)
    embedded_dns: bool = False  # resolv.conf names 127.0.0.11 (user networks, overlays)


class LocalNetworks(Protocol):
    """The node's networks as standalone containers use them. Idempotent where a daemon
    restart may call again; ``release`` always succeeds."""

    async def attach(self, container_id: str, requests: Sequence[EndpointRequest], *,
                     hostname: str, ports: Sequence[PortBinding] = ()) -> Sandbox:
        """The container's namespace with an endpoint per request, its DNS server when a
        user network or overlay is among them, its ports published. All or nothing."""
        ...

    async def connect(self, container_id: str, request: EndpointRequest, *,
                      hostname: str) -> Endpoint:
        """A running (or created) container joins one more network."""
        ...

    async def disconnect(self, container_id: str, network: str, *, force: bool = False) -> None:
        """The container leaves one network."""
        ...

    def sandbox(self, container_id: str) -> Sandbox | None:
        """What the container has now (inspect, ps), None if nothing."""
        ...

    async def release(self, container_id: str) -> None:
        """Every endpoint, published port and the namespace gone (the container is)."""
        ...
