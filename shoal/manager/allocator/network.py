"""The network allocator: subnets and VXLAN IDs for networks, VIPs for services, an address per
network for tasks and each node's ingress address, kept in ``ipam.IPAMState`` (swarmkit
``manager/allocator/network.go`` over the CNM allocator).

The numbers live in two places: the store (on the objects, the truth a new leader rebuilds from)
and the in-memory ``IPAMState`` (so nothing is handed out twice). A ledger (owner -> what the
store says it holds) keeps them in step: after every write, each owner touched is re-read from
the store's view, so what a failed or conflicting write took is given back and what a dropped
VIP, a terminal or deleted task, a removed service or node held is released (``sync``).

Each step reads only what the store already holds: services get VIPs on networks that are
allocated in the view, tasks wait for their service's VIPs in the view. A partly failed batch
therefore never leaves a task pointing at a VIP or subnet that was given back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import msgspec

from shoal.errors import Conflict, InvalidArgument, NotFound
from shoal.manager.allocator.ipam import (
    DEFAULT_POOL,
    DEFAULT_SUBNET_SIZE,
    Exhausted,
    IPAMState,
    rebuild,
)
from shoal.model.objects import Network, NetworkAttachment, Node, Service, Task, VirtualIP
from shoal.model.specs import IPAM, NetworkAttachmentConfig
from shoal.model.states import TaskState
from shoal.store.store import Tx
from shoal.store.tables import Tables

__all__ = [
    "Hold",
    "NetworkAllocator",
    "Owner",
    "held_by_node",
    "held_by_service",
    "held_by_task",
    "ingress_network",
    "publishes",
    "vip_networks",
]

log = logging.getLogger(__name__)

Owner = tuple[str, str]  # ("task" | "service" | "node", object ID)
Hold = tuple[str, str]  # (network ID, "10.0.1.5/24")


def _attachment_holds(atts: Iterable[NetworkAttachment] | None) -> frozenset[Hold]:
    return frozenset(
        (a.network.id, addr) for a in atts or [] for addr in a.addresses or []
    )


def held_by_task(task: Task | None) -> frozenset[Hold]:
    """A task's addresses, as long as it may still use them (not yet terminal)."""
    if task is None or task.state > TaskState.RUNNING:
        return frozenset()
    return _attachment_holds(task.networks_attachments)


def held_by_service(svc: Service | None) -> frozenset[Hold]:
    if svc is None:
        return frozenset()
    return frozenset((v.network_id, v.addr) for v in svc.endpoint.virtual_ips or [] if v.addr)


def held_by_node(node: Node | None) -> frozenset[Hold]:
    return frozenset() if node is None else _attachment_holds(node.attachments)


def ingress_network(view: Tables) -> Network | None:
    return next((n for n in view.all(Network) if n.spec.ingress), None)


def _ports(svc: Service) -> list[Any]:
    return list(svc.endpoint.ports or (svc.spec.endpoint_spec.ports if svc.spec.endpoint_spec else None) or [])


def publishes(svc: Service, *, ingress_only: bool = False) -> bool:
    """Whether the service publishes a port (in ingress mode only, with ``ingress_only``)."""
    return any(p.publish_mode == "ingress" or not ingress_only for p in _ports(svc))


def _vip_mode(svc: Service) -> bool:
    ep = svc.spec.endpoint_spec
    return (ep.mode if ep else "") in ("", "vip")


def vip_networks(svc: Service, ingress: Network | None) -> list[str]:
    """The networks the service needs a VIP on: each attached one, plus ingress when it publishes
    a port in ingress mode; none in dnsrr mode."""
    if not _vip_mode(svc):
        return []
    out = _unique(a.target for a in svc.spec.task_template.networks or [])
    if ingress is not None and publishes(svc, ingress_only=True) and ingress.id not in out:
        out.append(ingress.id)
    return out


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


class NetworkAllocator:
    """The allocation state and its ledger; the ``Allocator`` calls, per pass: ``sync`` (what
    changed), ``allocate_networks``, ``allocate_services`` and ``allocate_nodes`` (each inside a
    ``store.update``), ``allocate`` per task (the "network" voter), then ``settle`` after every
    write."""

    name = "network"

    def __init__(self) -> None:
        self.state = IPAMState()
        self.ready = False  # the cluster (its address pool) has been read
        self._held: dict[Owner, frozenset[Hold]] = {}
        self._attempted: dict[Owner, set[Hold]] = {}
        self._attempted_networks: set[str] = set()
        self._failed: dict[str, str] = {}  # network ID -> the error last logged for it

    # -- state -------------------------------------------------------------------------------
    def restore(self, view: Tables) -> None:
        """Rebuild from the store (a new term): allocated networks, services' VIPs, live tasks'
        and nodes' addresses; every problem found is logged."""
        cluster = view.cluster()
        pool = cluster.default_addr_pool if cluster and cluster.default_addr_pool else [DEFAULT_POOL]
        size = cluster.subnet_size if cluster and cluster.subnet_size else DEFAULT_SUBNET_SIZE
        tasks = [t for t in view.all(Task) if held_by_task(t)]
        nodes = view.all(Node)
        services = view.all(Service)
        self.state, problems = rebuild(
            [n for n in view.all(Network) if n.allocated], services, tasks,
            extra=[h for n in nodes for h in held_by_node(n)], pool=pool, size=size,
        )
        for problem in problems:
            log.warning("allocator restore: %s", problem)
        holders = ([(("task", t.id), held_by_task(t)) for t in tasks]
                   + [(("service", s.id), held_by_service(s)) for s in services]
                   + [(("node", n.id), held_by_node(n)) for n in nodes])
        self._held = {owner: h for owner, h in holders if h}
        self._attempted.clear()
        self._attempted_networks.clear()
        self.ready = cluster is not None
        log.info("allocator restored: %d networks, %d holders (pool %s /%d)",
                 len(self.state.networks), len(self._held), ",".join(pool), size)

    def held(self, owner: Owner) -> frozenset[Hold]:
        return self._held.get(owner, frozenset())

    def sync(self, owner: Owner, held: frozenset[Hold]) -> None:
        """The store says ``owner`` holds ``held``: give back what it no longer holds (and what
        this pass took for it that did not land), take what is new to the ledger."""
        old = self._held.get(owner, frozenset())
        attempted = self._attempted.pop(owner, set())
        for nid, addr in (old | attempted) - held:
            self._release(nid, addr)
        for nid, addr in held - old - attempted:
            if nid not in self.state.networks:
                continue  # its network is gone: nothing to hold
            try:
                self.state.reserve_address(nid, addr)
            except (Conflict, InvalidArgument) as exc:
                log.warning("%s %s holds %s on network %s: %s", *owner, addr, nid, exc.message)
        if held:
            self._held[owner] = held
        else:
            self._held.pop(owner, None)

    def _release(self, nid: str, addr: str) -> None:
        try:
            self.state.release_address(nid, addr)
        except InvalidArgument as exc:
            log.warning("releasing %s on network %s: %s", addr, nid, exc.message)

    def sync_from_view(self, view: Tables, owners: Iterable[Owner]) -> None:
        """Re-read ``owners`` (changed in the store)."""
        for owner in owners:
            self._sync_owner(view, owner)

    def forget_removed_networks(self, view: Tables) -> None:
        for nid in [n for n in self.state.networks if view.get(Network, n) is None]:
            self.state.release_network(nid)  # its holders' addresses go with it
            log.info("network %s removed: its subnets and VXLAN IDs are released", nid)

    def _sync_owner(self, view: Tables, owner: Owner) -> None:
        kind, oid = owner
        if kind == "task":
            self.sync(owner, held_by_task(view.get(Task, oid)))
        elif kind == "service":
            self.sync(owner, held_by_service(view.get(Service, oid)))
        else:
            self.sync(owner, held_by_node(view.get(Node, oid)))

    def settle(self, view: Tables) -> bool:
        """After a write (landed, conflicting or failed): each owner this pass touched re-read
        from the view. False if something this pass took did not land (retry later)."""
        landed = True
        for nid in self._attempted_networks:
            net = view.get(Network, nid)
            if net is None or not net.allocated:
                self.state.release_network(nid)
                landed = False
        self._attempted_networks.clear()
        for owner in list(self._attempted):
            wanted = self._attempted[owner]
            self._sync_owner(view, owner)
            landed = landed and wanted <= self.held(owner)
        return landed

    def _take(self, owner: Owner, nid: str) -> str:
        addr = self.state.allocate_address(nid)
        self._attempted.setdefault(owner, set()).add((nid, addr))
        return addr

    def _usable(self, net: Network | None) -> bool:
        """Allocated in the store and here: its addresses may be handed out."""
        return net is not None and net.allocated and net.id in self.state.networks

    # -- networks ----------------------------------------------------------------------------
    def allocate_networks(self, tx: Tx) -> None:
        """Subnets, gateways and VNIs for networks that have none; users' subnets first so the
        pool steps around them."""
        if not self.ready:
            return
        pending = [n for n in tx.view.all(Network) if not n.allocated and n.id not in self.state.networks]
        pending.sort(key=lambda n: (not _explicit(n), n.created_at, n.id))
        for net in pending:
            requested = net.spec.subnets()
            try:
                configs, state = self.state.allocate_network(net.id, requested)
            except (Exhausted, Conflict, InvalidArgument) as exc:
                if self._failed.get(net.id) != exc.message:
                    log.warning("network %s (%s) cannot be allocated: %s", net.spec.name, net.id,
                                exc.message)
                    self._failed[net.id] = exc.message
                continue
            self._failed.pop(net.id, None)
            self._attempted_networks.add(net.id)
            driver = (net.spec.ipam.driver if net.spec.ipam else "") or "default"
            options = net.spec.ipam.options if net.spec.ipam else None
            tx.update(msgspec.structs.replace(
                net, ipam_options=IPAM(driver=driver, options=options, config=configs),
                driver_state=state))
            log.info("network %s (%s): %s, VXLAN %s", net.spec.name, net.id,
                     ", ".join(c.subnet for c in configs), state["Options"])

    # -- services ----------------------------------------------------------------------------
    def allocate_services(self, tx: Tx) -> None:
        """One VIP per network the service needs (``vip_networks``); dropped ones go back once
        the service without them is stored (``settle``)."""
        view = tx.view
        ingress = ingress_network(view)
        for svc in view.all(Service):
            want = vip_networks(svc, ingress)
            have = {v.network_id: v.addr for v in svc.endpoint.virtual_ips or [] if v.addr}
            if sorted(have) == sorted(want):
                if svc.pending_allocation:
                    tx.update(msgspec.structs.replace(svc, pending_allocation=False))
                continue
            if not all(self._usable(view.get(Network, nid)) for nid in want):
                continue  # a network not allocated yet: the next pass
            owner = ("service", svc.id)
            try:
                vips = [VirtualIP(network_id=nid, addr=have.get(nid) or self._take(owner, nid))
                        for nid in want]
            except Exhausted as exc:
                log.warning("service %s (%s): no VIP: %s", svc.spec.name, svc.id, exc.message)
                continue  # what it took is given back by settle
            endpoint = msgspec.structs.replace(svc.endpoint, virtual_ips=vips or None)
            tx.update(msgspec.structs.replace(svc, endpoint=endpoint, pending_allocation=False))

    # -- nodes -------------------------------------------------------------------------------
    def allocate_nodes(self, tx: Tx) -> None:
        """Each node's own address on the ingress network (the routing mesh's source), written
        only when missing or on an older ingress network."""
        ingress = ingress_network(tx.view)
        if ingress is None or not self._usable(ingress):
            return
        for node in tx.view.all(Node):
            if any(nid == ingress.id for nid, _ in held_by_node(node)):
                continue
            owner = ("node", node.id)
            try:
                addr = self._take(owner, ingress.id)
            except Exhausted as exc:
                log.warning("node %s: no ingress address: %s", node.id, exc.message)
                return
            att = NetworkAttachment(network=ingress, addresses=[addr])
            tx.update(msgspec.structs.replace(node, attachments=[att]))

    # -- tasks (the voter) -------------------------------------------------------------------
    def allocate(self, task: Task, view: Tables) -> Task | None:
        """``task`` with an address on each of its networks and its service's endpoint, or None
        while a network or the service's VIPs are not allocated, or no address is free."""
        svc = view.get(Service, task.service_id) if task.service_id else None
        configs: dict[str, NetworkAttachmentConfig] = {}
        for att in task.spec.networks or []:
            configs.setdefault(att.target, att)
        if svc is not None and publishes(svc):
            ingress = ingress_network(view)
            if ingress is not None:
                configs.setdefault(ingress.id, NetworkAttachmentConfig(target=ingress.id))
            elif publishes(svc, ingress_only=True):
                log.debug("task %s: its service publishes a port but there is no ingress network",
                          task.id)
                return None
        networks: list[Network] = []
        for nid in configs:
            net = view.get(Network, nid)
            if net is None or not self._usable(net):
                return None
            networks.append(net)
        if svc is not None and sorted(v.network_id for v in svc.endpoint.virtual_ips or []) != \
                sorted(vip_networks(svc, ingress_network(view))):
            return None  # the service's VIPs first (a later pass)
        owner = ("task", task.id)
        attachments: list[NetworkAttachment] = []
        try:
            for net in networks:
                attachments.append(NetworkAttachment(
                    network=net, addresses=[self._take(owner, net.id)],
                    aliases=configs[net.id].aliases or None))
        except Exhausted as exc:
            log.warning("task %s: no address: %s", task.id, exc.message)
            return None  # settle gives back what it took
        except NotFound:
            return None
        return msgspec.structs.replace(
            task, networks_attachments=attachments or None,
            endpoint=svc.endpoint if svc is not None else task.endpoint)


def _explicit(net: Network) -> bool:
    return any(c.subnet for c in net.spec.subnets())

