"""The network state nodes gossip, and the lookups built on it (DNS, load balancing, peers).

Each node publishes one `Endpoint` per network for every task of its own that is attached, in
the gossip table ``ep/<network ID>`` under the task ID, marked serving once it runs (and is
healthy when it has a health check) and not serving again before it is stopped, and one ``kind="node"`` endpoint in the ingress network's table for its own ingress address
(the routing mesh sends from it). Every node sees every table; `Directory` turns them into
dictionary lookups (``Records`` for the embedded DNS, backends for the VIPs and published ports,
remote endpoints for the vxlan forwarding entries). It is rebuilt after each batch of gossip
changes; lookups then never do I/O, as the DNS server runs them on the event loop per query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

__all__ = ["Directory", "Endpoint", "PublishedPort", "decode_endpoint", "encode_endpoint",
           "table_name"]

TABLE_PREFIX = "ep/"


def table_name(network_id: str) -> str:
    return TABLE_PREFIX + network_id


class PublishedPort(msgspec.Struct, array_like=True, frozen=True):
    protocol: str  # "tcp" | "udp"
    published: int
    target: int
    mode: str  # "ingress" | "host"


class Endpoint(msgspec.Struct, omit_defaults=True, frozen=True):
    """One task's (or node's) place on one network, as gossiped (kept small: a datagram)."""

    ip: str  # the address on the network, without the prefix length
    vtep: str  # the underlay address of the node holding it
    node: str  # that node's ID
    kind: str = "task"  # "task" | "node"
    task: str = ""  # task ID
    name: str = ""  # the task's name, "web.1.<task id>"
    service: str = ""  # service name
    service_id: str = ""
    vip: str = ""  # the service's VIP on this network ("" in dnsrr mode)
    aliases: tuple[str, ...] = ()  # the service's aliases on this network
    ports: tuple[PublishedPort, ...] = ()  # published ports (on the ingress network only)
    # False while the task is attached but not serving (starting, unhealthy, stopping): the
    # others forward to it (its connections live on) but neither balance nor resolve to it
    serving: bool = True


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Endpoint)


def encode_endpoint(ep: Endpoint) -> bytes:
    return _encoder.encode(ep)


def decode_endpoint(data: bytes) -> Endpoint | None:
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError:
        return None  # a newer or broken peer: skipped, never fatal


@dataclass
class _NetworkIndex:
    vips: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # name -> VIPs
    dnsrr: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # name -> IPs
    tasks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # name -> IPs
    names: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # task name -> IPs
    owners: dict[str, str] = field(default_factory=dict)  # IP -> task or service name


@dataclass
class Directory:
    """The gossip tables, indexed. Implements shoal.net.dns.Records."""

    endpoints: dict[str, list[Endpoint]] = field(default_factory=dict)  # network ID -> endpoints
    containers: dict[str, dict[str, str]] = field(default_factory=dict)  # cid -> {net ID: name}
    _index: dict[str, _NetworkIndex] = field(default_factory=dict)

    @classmethod
    def build(cls, tables: Mapping[str, Mapping[str, bytes]],
              containers: Mapping[str, Mapping[str, str]]) -> Directory:
        """From ``{network ID: {key: encoded endpoint}}`` and the local containers' networks."""
        d = cls(containers={c: dict(n) for c, n in containers.items()})
        for network_id, entries in tables.items():
            eps = [ep for raw in entries.values() if (ep := decode_endpoint(raw)) is not None]
            d.endpoints[network_id] = sorted(eps, key=lambda e: (e.kind, e.ip))
            d._index[network_id] = _index(eps)
        return d

    # -- load balancing and forwarding --------------------------------------------------------

    def tasks(self, network_id: str) -> list[Endpoint]:
        """The serving tasks on the network."""
        return [e for e in self.endpoints.get(network_id, ()) if e.kind == "task" and e.serving]

    def vip_backends(self, network_id: str) -> dict[str, list[str]]:
        """VIP -> the addresses of its service's serving tasks, on one network."""
        out: dict[str, list[str]] = defaultdict(list)
        for ep in self.tasks(network_id):
            if ep.vip:
                out[ep.vip].append(ep.ip)
        return dict(out)

    def remote(self, network_id: str, me: str) -> dict[str, str]:
        """Overlay address -> VTEP of every endpoint another node holds on the network."""
        return {e.ip: e.vtep for e in self.endpoints.get(network_id, ()) if e.node != me}

    # -- Records (the embedded DNS) -----------------------------------------------------------

    def networks(self, container_id: str) -> Mapping[str, str]:
        return self.containers.get(container_id, {})

    def _each(self, networks: Collection[str]) -> Iterable[_NetworkIndex]:
        return (self._index[n] for n in networks if n in self._index)

    def lookup_service(self, name: str, networks: Collection[str]) -> Sequence[str]:
        out: list[str] = []
        for ix in self._each(networks):
            out += sorted(ix.vips.get(name, ()))
            out += ix.dnsrr.get(name, ())  # dnsrr mode: the tasks themselves
        return _unique(out)

    def lookup_tasks(self, service: str, networks: Collection[str]) -> Sequence[str]:
        return _unique([ip for ix in self._each(networks) for ip in ix.tasks.get(service, ())])

    def lookup_task_name(self, name: str, networks: Collection[str]) -> Sequence[str]:
        return _unique([ip for ix in self._each(networks) for ip in ix.names.get(name, ())])

    def lookup_address(self, address: str, networks: Collection[str]) -> str | None:
        for ix in self._each(networks):
            if address in ix.owners:
                return ix.owners[address]
        return None


def _index(eps: Iterable[Endpoint]) -> _NetworkIndex:
    ix = _NetworkIndex()
    for ep in eps:
        if ep.kind != "task" or not ep.serving:
            continue
        names = [ep.service.lower(), *(a.lower() for a in ep.aliases)]
        for n in names:
            if ep.vip:
                ix.vips[n].add(ep.vip)
            else:
                ix.dnsrr[n].append(ep.ip)
            ix.tasks[n].append(ep.ip)
        if ep.vip:
            ix.owners.setdefault(ep.vip, ep.service)
        if ep.name:
            ix.names[ep.name.lower()].append(ep.ip)
            ix.owners[ep.ip] = ep.name
    return ix


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))
