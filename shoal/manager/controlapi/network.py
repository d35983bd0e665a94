"""Network create and remove. Overlay networks are recorded now; addresses and the data path
come with the allocator and net parts (a later issue)."""

from __future__ import annotations

import ipaddress

from shoal.errors import Conflict, FailedPrecondition, InvalidArgument
from shoal.manager.controlapi.validate import validate_name
from shoal.model.ids import new_id
from shoal.model.objects import Network, Service
from shoal.model.specs import NetworkSpec
from shoal.store.store import Store, Tx

__all__ = ["LOCAL_NETWORKS", "create_network", "remove_network"]

# Node-local networks every engine lists (bridge, host, none); they are not swarm-scoped.
LOCAL_NETWORKS = ("bridge", "host", "none")


def _check_ipam(spec: NetworkSpec) -> None:
    for cfg in (spec.ipam.config if spec.ipam else None) or []:
        try:
            subnet = ipaddress.ip_network(cfg.subnet, strict=True) if cfg.subnet else None
            if cfg.gateway:
                gw = ipaddress.ip_address(cfg.gateway)
                if subnet is not None and gw not in subnet:
                    raise InvalidArgument(f"gateway {cfg.gateway} is not in subnet {cfg.subnet}")
        except ValueError as exc:
            raise InvalidArgument(f"invalid IPAM config: {exc}") from exc


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
    _check_ipam(spec)
    spec.scope = "swarm"
    spec.labels = spec.labels or {}
    spec.options = spec.options or {}

    def fn(tx: Tx) -> Network:
        if tx.view.by_name(Network, spec.name):
            raise Conflict(f"network with name {spec.name} already exists")
        if spec.ingress and any(n.spec.ingress for n in tx.view.all(Network)):
            raise FailedPrecondition("ingress network already exists")
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
        tx.delete(net)

    await store.update(fn, retries=3)
