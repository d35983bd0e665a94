"""Network create and remove. A network is recorded here; the allocator gives it its subnet,
gateway and VXLAN ID. A user's ``--subnet`` that overlaps another network's (allocated or asked
for) is refused here, in the creating transaction, so the error reaches the user."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Network

from shoal.errors import Conflict, FailedPrecondition, InvalidArgument
from shoal.manager.allocator.ipam import POOL_OVERLAP, parse_subnet
from shoal.manager.controlapi.validate import validate_name
from shoal.model.ids import new_id
from shoal.model.objects import Network, Service, Task
from shoal.model.specs import NetworkSpec
from shoal.store.store import Store, Tx
from shoal.store.tables import Tables

__all__ = ["LOCAL_NETWORKS", "create_network", "remove_network"]

# Node-local networks every engine lists (bridge, host, none); they are not swarm-scoped.
LOCAL_NETWORKS = ("bridge", "host", "none")


# The overlay driver options Docker knows, and why Shoal refuses each: accepting one and doing
# nothing would make a user believe in a property the network does not have.
_REFUSED_OPTIONS = {
    "encrypted": "Shoal does not encrypt the VXLAN data path (Docker's IPsec ESP is not "
                 "implemented); traffic between nodes on an overlay network is plaintext",
    "com.docker.network.driver.mtu": "the overlay MTU is fixed at 1450",
    "com.docker.network.driver.overlay.vxlanid_list": "VXLAN IDs are allocated by the managers",
}


def _check_options(options: dict[str, str]) -> None:
    for key in options:
        reason = _REFUSED_OPTIONS.get(key, "unknown option for the overlay driver")
        raise InvalidArgument(f"network option {key!r} is not supported: {reason}")


def _check_ipam(spec: NetworkSpec) -> list[IPv4Network]:
    """The requested subnets, checked (IPv4 CIDR, gateway and range inside)."""
    subnets = []
    for cfg in spec.subnets():
        if not cfg.subnet:
            if cfg.gateway or cfg.ip_range:
                raise InvalidArgument("invalid IPAM config: a gateway or ip-range needs a subnet")
            continue
        subnet = parse_subnet(cfg.subnet)
        try:
            if cfg.gateway and ipaddress.ip_address(cfg.gateway) not in subnet:
                raise InvalidArgument(f"gateway {cfg.gateway} is not in subnet {cfg.subnet}")
            if cfg.ip_range and not parse_subnet(cfg.ip_range, "ip-range").subnet_of(subnet):
                raise InvalidArgument(f"ip-range {cfg.ip_range} is not in subnet {cfg.subnet}")
        except ValueError as exc:
            raise InvalidArgument(f"invalid IPAM config: {exc}") from exc
        subnets.append(subnet)
    return subnets


def _subnets_of(net: Network) -> list[str]:
    """What a network holds (allocated) or will hold (asked for)."""
    return [c.subnet for c in net.subnets() if c.subnet]


def _check_overlap(view: Tables, subnets: list[IPv4Network]) -> None:
    for other in view.all(Network):
        for text in _subnets_of(other):
            try:
                theirs = ipaddress.ip_network(text, strict=False)
            except ValueError:
                continue
            for mine in subnets:
                if mine.overlaps(theirs):
                    raise Conflict(f"{POOL_OVERLAP}: {mine} overlaps {theirs} of network "
                                   f"{other.spec.name}")


async def create_network(store: Store, spec: NetworkSpec) -> Network:
    validate_name(spec.name, what="network name")
    spec.driver = spec.driver or "overlay"
    if spec.driver != "overlay":
        raise InvalidArgument(
            f"rpc error: code = InvalidArgument desc = network driver {spec.driver!r} is not supported "
            "in swarm scope; use overlay"
        )
    if spec.name in LOCAL_NETWORKS:
        raise Conflict(f"network with name {spec.name} already exists")
    subnets = _check_ipam(spec)
    spec.scope = "swarm"
    spec.labels = spec.labels or {}
    spec.options = spec.options or {}
    _check_options(spec.options)

    def fn(tx: Tx) -> Network:
        if tx.view.by_name(Network, spec.name):
            raise Conflict(f"network with name {spec.name} already exists")
        if spec.ingress and any(n.spec.ingress for n in tx.view.all(Network)):
            raise FailedPrecondition("ingress network already exists")
        _check_overlap(tx.view, subnets)
        net = Network(id=new_id(), spec=spec)
        tx.create(net)
        return net

    return await store.update(fn, retries=1)  # a name taken meanwhile: Conflict on retry


async def remove_network(store: Store, ref: str) -> None:
    def fn(tx: Tx) -> None:
        net = tx.view.resolve(Network, ref, what="network")
        users = [
            s.spec.name
            for s in tx.view.all(Service)
            if any(a.target == net.id for a in s.spec.task_template.networks or [])
            or (net.spec.ingress and any(p.publish_mode == "ingress" for p in s.endpoint.ports or []))
        ]
        if users:
            raise FailedPrecondition(
                f"rpc error: code = FailedPrecondition desc = network {net.id} is in use by service "
                f"{users[0]}"
            )
        attached = [t.id for t in tx.view.all(Task) if t.is_attachment
                    and any(a.target == net.id for a in t.spec.networks or [])]
        if attached:  # a standalone container is on it (swarmkit's words)
            raise FailedPrecondition(
                f"rpc error: code = FailedPrecondition desc = network {net.id} is in use by task "
                f"{attached[0]}"
            )
        tx.delete(net)

    await store.update(fn, retries=3)
