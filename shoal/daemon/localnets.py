"""The node's networks as the runc executor's standalone containers see them: shoal.net's
LocalBridges (bridge networks, the predefined ``host`` and ``none``) and, on a swarm node,
the swarm's attachable overlays (overlays.py: an attachment task from the managers, joined
through the NetworkAgent), behind shoal.exec.localnet's LocalNetworks contract (exec and net
sit in one layer and never import each other, so the daemon, above both, joins them here).

A name that is no local network is taken for a swarm overlay: on a manager it is looked up
first, and one that is not ``--attachable`` is refused before anything is made (dockerd's
403); on a worker the managers answer (the same refusal, or "network X not found"). Out of a
swarm it is simply not found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from ipaddress import IPv4Network

from shoal.daemon.overlays import OverlayJoins, SwarmSide
from shoal.errors import InvalidArgument, NotFound, PermissionDenied
from shoal.exec.localnet import Endpoint, EndpointRequest, PortBinding, Sandbox
from shoal.model.objects import Network
from shoal.net import links
from shoal.net.bridges import LocalBridges, PortWant, Want
from shoal.net.localrecords import dns_names
from shoal.net.localstore import ContainerRec, EndpointRec

__all__ = ["StandaloneNetworks"]


class StandaloneNetworks:
    """Implements shoal.exec.localnet.LocalNetworks."""

    def __init__(self, bridges: LocalBridges, *,
                 swarm_network: Callable[[str], Network | None] = lambda ref: None,
                 name_of: Callable[[str], str | None] = lambda container_id: None,
                 swarm: Callable[[], SwarmSide | None] = lambda: None) -> None:
        """``name_of``: a container's name ("web", no slash) by ID, for the embedded DNS and
        inspect (the contract carries the hostname only); the daemon wires it to its
        containers where it can. ``swarm``: the agent's attachments and the NetworkAgent
        while the node is in a swarm."""
        self.bridges = bridges
        self._swarm_network = swarm_network  # a swarm network by name or ID, where known
        self.name_of = name_of
        self._swarm = swarm
        self.overlays = OverlayJoins(bridges, swarm)
        bridges.has_way_out = self.overlays.has_gateway

    def _is_overlay(self, ref: str) -> bool:
        """A ref that is no local network: a swarm overlay to ask the managers for, or
        refused here with its reason (not attachable, or no swarm: not found)."""
        if ref in ("host", "none", "bridge"):
            return False
        try:
            self.bridges.get(ref)
            return False
        except NotFound:
            net = self._swarm_network(ref)
            if net is not None and (net.spec.ingress or not net.spec.attachable):
                raise PermissionDenied(f"rpc error: code = PermissionDenied desc = network "
                                       f"{net.spec.name} not manually attachable") from None
            if self._swarm() is None:
                raise
            return True

    def _names(self, container_id: str, hostname: str) -> tuple[str, list[str]]:
        name = (self.name_of(container_id) or "").lstrip("/")
        return name or hostname, [x for x in (container_id[:12], hostname) if x]

    def _endpoint(self, rec: ContainerRec, ep: EndpointRec) -> Endpoint:
        net = self.bridges.state.networks.get(ep.network_id)
        if net is None:  # host or none
            name = "host" if rec.netns is None else "none"
            return Endpoint(network_id=ep.network_id, network_name=name,
                            endpoint_id=ep.endpoint_id, ip_address="")
        return Endpoint(network_id=net.id, network_name=net.name, endpoint_id=ep.endpoint_id,
                        ip_address=ep.ip, prefix_len=IPv4Network(net.subnet).prefixlen,
                        gateway=net.gateway, mac_address=links.mac_for(ep.ip),
                        aliases=tuple(ep.aliases),
                        dns_names=() if net.predefined else tuple(dns_names(rec, ep)))

    def _sandbox(self, container_id: str) -> Sandbox | None:
        rec = self.bridges.container(container_id)
        overlay_eps = self.overlays.endpoints(container_id)
        if rec is None:
            path = self.overlays.netns_of(container_id)
            if path is None:
                return None
            return Sandbox(path=path, endpoints=tuple(overlay_eps), embedded_dns=bool(overlay_eps))
        return Sandbox(path=rec.netns,
                       endpoints=tuple(self._endpoint(rec, e) for e in rec.endpoints)
                       + tuple(overlay_eps),
                       ports=tuple(PortBinding(p.container_port, p.protocol, p.host_ip,
                                               p.host_port) for p in rec.ports),
                       embedded_dns=self.bridges.embedded_dns(rec) or bool(overlay_eps))

    async def attach(self, container_id: str, requests: Sequence[EndpointRequest], *,
                     hostname: str, ports: Sequence[PortBinding] = ()) -> Sandbox:
        overlays = [r for r in requests if self._is_overlay(r.network)]
        local = [r for r in requests if r not in overlays]
        if overlays and any(r.network in ("host", "none") for r in local):
            special = next(r.network for r in local if r.network in ("host", "none"))
            raise InvalidArgument(f"container cannot be connected to network {special} and "
                                  "to other networks at once")
        if any(r.ipv4_address for r in overlays):
            raise InvalidArgument("fixed addresses on swarm overlays are not supported by Shoal")
        fresh = self.bridges.container(container_id) is None
        name, dns_aliases = self._names(container_id, hostname)
        path: str | None = None
        if local or not overlays:
            rec = await self.bridges.attach(
                container_id, [Want(r.network, tuple(r.aliases), r.ipv4_address) for r in local],
                hostname=hostname, name=(self.name_of(container_id) or "").lstrip("/"),
                ports=[PortWant(p.container_port, p.protocol, p.host_ip, p.host_port)
                       for p in ports])
            path = rec.netns
        try:
            for r in overlays:
                if self.overlays.joined(container_id, r.network) is None:
                    await self.overlays.join(container_id, r.network, aliases=r.aliases,
                                             name=name, dns_aliases=dns_aliases,
                                             path=path or self.overlays.netns_of(container_id))
        except BaseException:
            await self.overlays.release(container_id)
            if fresh:
                await self.bridges.release(container_id)
            raise
        sandbox = self._sandbox(container_id)
        assert sandbox is not None
        return sandbox

    async def connect(self, container_id: str, request: EndpointRequest, *,
                      hostname: str) -> Endpoint:
        if not self._is_overlay(request.network):
            ep = await self.bridges.connect(
                container_id, Want(request.network, tuple(request.aliases),
                                   request.ipv4_address),
                hostname=hostname, name=(self.name_of(container_id) or "").lstrip("/"))
            rec = self.bridges.container(container_id)
            assert rec is not None
            return self._endpoint(rec, ep)
        rec = self.bridges.container(container_id)
        if rec is not None and rec.netns is None:
            raise InvalidArgument("container cannot be disconnected from host network or "
                                  "connected to host network")
        if rec is not None and any(not e.ip and e.network_id not in self.bridges.state.networks
                                   for e in rec.endpoints):
            raise InvalidArgument("container cannot be connected to multiple networks with one "
                                  "of the networks in private (none) mode")
        if request.ipv4_address:
            raise InvalidArgument("fixed addresses on swarm overlays are not supported by Shoal")
        joined = self.overlays.joined(container_id, request.network)
        if joined is not None:
            raise PermissionDenied(f"endpoint with name {hostname} already exists in network "
                                   f"{joined.network_name}")
        name, dns_aliases = self._names(container_id, hostname)
        path = rec.netns if rec is not None else self.overlays.netns_of(container_id)
        return await self.overlays.join(container_id, request.network, aliases=request.aliases,
                                        name=name, dns_aliases=dns_aliases, path=path)

    async def disconnect(self, container_id: str, network: str, *, force: bool = False) -> None:
        if await self.overlays.leave(container_id, network):
            return
        await self.bridges.disconnect(container_id, network, force=force)

    def sandbox(self, container_id: str) -> Sandbox | None:
        return self._sandbox(container_id)

    def overlay_users(self, network_id: str) -> list[tuple[str, str, Endpoint]]:
        """The standalone containers of this node on a swarm overlay (``network inspect``'s
        Containers): (container ID, name, endpoint)."""
        return self.overlays.users(network_id)

    def overlay_networks(self) -> list[Network]:
        """The swarm overlays this node's standalone containers are on, as their attachment
        tasks carry them (a worker lists an overlay while it uses one, as dockerd's)."""
        return self.overlays.networks()

    async def release(self, container_id: str) -> None:
        await self.overlays.release(container_id)
        await self.bridges.release(container_id)
