"""The node's local networks as the runc executor's standalone containers see them: shoal.net's
LocalBridges behind shoal.exec.localnet's LocalNetworks contract (exec and net sit in one
layer and never import each other, so the daemon, above both, joins them here).

Only bridge networks and the predefined ``host`` and ``none`` so far. A swarm overlay named
by a standalone container is refused before anything is made: not attachable, with dockerd's
403; attachable, as not implemented yet (docs/design/networking.md, "Local networks"). Where
the node has no store (a worker), an overlay is not found at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from ipaddress import IPv4Network

from shoal.errors import NotFound, PermissionDenied, Unimplemented
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
                 name_of: Callable[[str], str | None] = lambda container_id: None) -> None:
        """``name_of``: a container's name ("web", no slash) by ID, for the embedded DNS and
        inspect (the contract carries the hostname only); the daemon wires it to its
        containers where it can."""
        self.bridges = bridges
        self._swarm_network = swarm_network  # a swarm network by name or ID, where known
        self.name_of = name_of

    def _check(self, ref: str) -> None:
        """A ref that is no local network but a swarm overlay: refused with its reason."""
        if ref in ("host", "none", "bridge"):
            return
        try:
            self.bridges.get(ref)
        except NotFound:
            net = self._swarm_network(ref)
            if net is None:
                raise
            if not net.spec.attachable:
                raise PermissionDenied(f"rpc error: code = PermissionDenied desc = network "
                                       f"{net.spec.name} not manually attachable") from None
            raise Unimplemented(f"network {net.spec.name} is an attachable swarm overlay: "
                                "Shoal does not attach standalone containers to overlays yet "
                                "(use a bridge network, or run it as a service)") from None

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

    def _sandbox(self, rec: ContainerRec) -> Sandbox:
        return Sandbox(path=rec.netns,
                       endpoints=tuple(self._endpoint(rec, e) for e in rec.endpoints),
                       ports=tuple(PortBinding(p.container_port, p.protocol, p.host_ip,
                                               p.host_port) for p in rec.ports),
                       embedded_dns=self.bridges.embedded_dns(rec))

    async def attach(self, container_id: str, requests: Sequence[EndpointRequest], *,
                     hostname: str, ports: Sequence[PortBinding] = ()) -> Sandbox:
        for r in requests:
            self._check(r.network)
        rec = await self.bridges.attach(
            container_id, [Want(r.network, tuple(r.aliases), r.ipv4_address) for r in requests],
            hostname=hostname, name=(self.name_of(container_id) or "").lstrip("/"),
            ports=[PortWant(p.container_port, p.protocol, p.host_ip, p.host_port)
                   for p in ports])
        return self._sandbox(rec)

    async def connect(self, container_id: str, request: EndpointRequest, *,
                      hostname: str) -> Endpoint:
        self._check(request.network)
        ep = await self.bridges.connect(
            container_id, Want(request.network, tuple(request.aliases), request.ipv4_address),
            hostname=hostname, name=(self.name_of(container_id) or "").lstrip("/"))
        rec = self.bridges.container(container_id)
        assert rec is not None
        return self._endpoint(rec, ep)

    async def disconnect(self, container_id: str, network: str, *, force: bool = False) -> None:
        await self.bridges.disconnect(container_id, network, force=force)

    def sandbox(self, container_id: str) -> Sandbox | None:
        rec = self.bridges.container(container_id)
        return self._sandbox(rec) if rec is not None else None

    async def release(self, container_id: str) -> None:
        await self.bridges.release(container_id)
