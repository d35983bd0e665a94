"""The embedded DNS's records for local bridge networks (dns.Records): a container on a user
bridge network resolves the other containers of that network by their DNS names (its name,
its aliases, its hostname, its short ID), as libnetwork's resolver does; the default ``bridge`` network has
no embedded DNS (Docker's neither). Rebuilt by bridges.LocalBridges after every change; the
lookups are dictionary reads, as the resolver asks on the event loop."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from shoal.net.bridgeconf import BridgeNet
from shoal.net.localstore import ContainerRec, EndpointRec

__all__ = ["LocalRecords", "dns_names"]


def dns_names(c: ContainerRec, ep: EndpointRec) -> list[str]:
    """Docker's DNSNames of an endpoint: the container's name, its aliases, the short ID,
    the hostname."""
    out: list[str] = []
    for name in [c.name, *ep.aliases, c.id[:12], c.hostname]:
        if name and name not in out:
            out.append(name)
    return out


class LocalRecords:
    def __init__(self) -> None:
        self._nets: dict[str, dict[str, str]] = {}  # container -> {network id: name}
        self._names: dict[tuple[str, str], list[str]] = {}  # (network, name) -> addresses
        self._ptr: dict[tuple[str, str], str] = {}  # (network, address) -> name

    def rebuild(self, networks: Mapping[str, BridgeNet],
                containers: Collection[ContainerRec]) -> None:
        nets: dict[str, dict[str, str]] = {}
        names: dict[tuple[str, str], list[str]] = {}
        ptr: dict[tuple[str, str], str] = {}
        for c in containers:
            for ep in c.endpoints:
                net = networks.get(ep.network_id)
                if net is None or net.predefined or not ep.ip:
                    continue
                nets.setdefault(c.id, {})[net.id] = net.name
                found = dns_names(c, ep)
                for name in found:
                    names.setdefault((net.id, name.lower()), []).append(ep.ip)
                ptr[(net.id, ep.ip)] = f"{found[0]}.{net.name}" if found else c.id[:12]
        self._nets, self._names, self._ptr = nets, names, ptr

    def networks(self, container_id: str) -> Mapping[str, str]:
        return self._nets.get(container_id, {})

    def lookup_service(self, name: str, networks: Collection[str]) -> Sequence[str]:
        return ()

    def lookup_tasks(self, service: str, networks: Collection[str]) -> Sequence[str]:
        return ()

    def lookup_task_name(self, name: str, networks: Collection[str]) -> Sequence[str]:
        out: list[str] = []
        for net in networks:
            out += [a for a in self._names.get((net, name), ()) if a not in out]
        return out

    def lookup_address(self, address: str, networks: Collection[str]) -> str | None:
        for net in networks:
            found = self._ptr.get((net, address))
            if found:
                return found
        return None
