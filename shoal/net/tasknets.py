"""What the NetworkAgent reads from a task and the managers: a task's overlay networks
(`networks`, from its allocated attachments), the DNS servers its service asked for
(`dns_servers`), the gossip keyring's order (`gossip_keys`) and the gossip's timings
(`gossip_defaults`), and the routing mesh's ports from the gossip (`mesh_ports`). Pure
functions, no kernel; netagent.py calls them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoal.errors import InvalidArgument
from shoal.model.containeropts import container_options
from shoal.model.objects import EncryptionKey, NetworkAttachment, Task
from shoal.net import nft
from shoal.net.records import Directory

__all__ = ["Net", "dns_servers", "gossip_defaults", "gossip_keys", "mesh_ports", "networks"]


def gossip_keys(keys: Sequence[EncryptionKey]) -> list[bytes]:
    """The keyring order GossipNode wants (first seals, all open) from the cluster's keys
    (oldest first): the second newest seals, so a new key is installed on every node before
    anyone seals with it (libnetwork's primary key), then the newest, then the rest."""
    ordered = [k.key for k in sorted(keys, key=lambda k: k.lamport_time) if k.key]
    if len(ordered) < 2:
        return ordered
    sealing = ordered[-2]
    return [sealing, ordered[-1], *ordered[:-2]]


@dataclass(frozen=True, slots=True)
class Net:
    """One of a container's networks."""

    id: str
    name: str
    vni: int
    address: str  # "10.0.1.5/24"
    aliases: tuple[str, ...]
    ingress: bool
    internal: bool = False

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]


def dns_servers(task: Task) -> list[tuple[str, int]]:
    """The service's ``--dns`` servers: where the container's DNS server forwards what it
    does not answer itself (none: the node's resolvers)."""
    try:
        dns = container_options(task.spec.container_spec or {}).dns
    except InvalidArgument:  # the control API refuses these; the executor rejects the task
        return []
    return [(server, 53) for server in dns.nameservers] if dns else []


def networks(task: Task) -> list[Net]:
    out = []
    for att in task.networks_attachments or []:
        net = att.network
        nid = net.id
        vnis = net.vxlan_ids()
        if not nid or not vnis or not att.addresses:
            raise InvalidArgument(f"task {task.id}: network {nid or '?'} is not allocated")
        out.append(Net(nid, net.spec.name, vnis[0], att.addresses[0],
                        tuple(att.aliases or ()), net.spec.ingress, net.spec.internal))
    return out


def gossip_defaults(overrides: dict[str, Any]) -> dict[str, Any]:
    """Faster failure detection than memberlist's LAN defaults: a dead host's backends must
    leave every node's rules within about 2 s (probe 0.25 s, suspicion 3 probes)."""
    base: dict[str, Any] = {"probe_interval": 0.25, "probe_timeout": 0.1, "suspicion_mult": 3.0,
                            "gossip_interval": 0.1, "push_pull_interval": 10.0}
    base.update(overrides)
    return base


def mesh_ports(d: Directory, ingress: NetworkAttachment | None, node_id: str
               ) -> tuple[list[nft.MeshPort], tuple[str, int] | None]:
    """The routing mesh's ports (ingress mode: every node's tasks; host mode: this node's) and
    the ingress network's (ID, VNI), from the gossip and this node's ingress attachment."""
    if ingress is None:
        return [], None
    net_id = ingress.network.id
    vnis = ingress.network.vxlan_ids()
    if not vnis:
        return [], None
    found: dict[tuple[str, int], tuple[int, list[str]]] = {}
    for ep in d.tasks(net_id):
        for p in ep.ports:
            if p.mode == "ingress" or ep.node == node_id:
                found.setdefault((p.protocol, p.published), (p.target, []))[1].append(ep.ip)
    ports = [nft.MeshPort(proto, published, target, tuple(sorted(ips)))
             for (proto, published), (target, ips) in sorted(found.items())]
    return ports, (net_id, vnis[0])
