"""NetworkAgent: one node's side of the overlay networks (libnetwork's role in dockerd).

It owns, on this node:
- the gossip node (started once the managers' keys arrive over the session), where this node
  publishes an `Endpoint` for each of its serving tasks per network and one for its own
  ingress address, and learns everyone else's;
- per overlay network in use here: a bridge and a vxlan device, with a forwarding entry and a
  neighbour entry for every endpoint another node holds (links.py);
- per container: a network namespace with a veth per network, its embedded DNS server
  (dns.py) and its VIP load-balancing table (nft.py, inside the container's namespace);
- the gateway bridge (gateway.py): the containers' way out, a veth each after their overlay
  ones, NATed by one nft table in the node's namespace; made for the first container that
  needs it, removed with the last;
- the routing mesh: one nft table in the node's namespace DNATing each published port to the
  service's tasks, once some service publishes a port.

The runc controllers call attach / announce / withdraw / detach (shoal.exec's
NetworkAttacher); everything else follows from the gossip tables in `_reconcile`, which runs
after each batch of changes and rewrites only what changed. Kernel state outlives the daemon
(containers keep running); after a restart the controllers attach again, which rebuilds the
in-memory part, and the last run's overlays go once no container is on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.aio import Backoff, cancel_and_wait
from shoal.model.dispatch import NetworkUpdate
from shoal.model.objects import NetworkAttachment, Task
from shoal.net import gateway, links, netns, nft, tasknets
from shoal.net.dns import DNSServer, Resolver, sockets_in_netns
from shoal.net.gossip import GossipConfig, GossipError, GossipNode
from shoal.net.records import (
    TABLE_PREFIX,
    Directory,
    Endpoint,
    PublishedPort,
    encode_endpoint,
    table_name,
)
from shoal.net.tasknets import gossip_keys

__all__ = ["GOSSIP_PORT", "NetworkAgent", "gossip_keys"]

log = logging.getLogger(__name__)

GOSSIP_PORT = 7946
MESH_TABLE = "shoal_mesh"
GATEWAY_TABLE = "shoal_gw"
_RETRY = Backoff(initial=1.0, cap=1.0)  # a failed reconcile is tried again this often (fixed)
REJOIN_INTERVAL = 5.0  # while alone in the gossip, try the managers again this often


@dataclass
class _Container:
    id: str
    task: Task
    netns: str
    nets: list[tasknets.Net]
    dns: DNSServer | None = None
    rules: str = ""  # the nft text applied last
    # a standalone container (`join`): its interface number per overlay, and whether this
    # agent gave it the gateway bridge
    ifnums: dict[str, int] = field(default_factory=dict)
    gateway: bool = False


@dataclass
class _Settings:
    node_id: str
    advertise_ip: str
    netns_dir: Path
    gossip_port: int = GOSSIP_PORT
    spread_delay: float = 0.3  # after a withdraw, time for the gossip to reach the others
    data_path_port: int = links.VXLAN_PORT  # the swarm's VXLAN port: the managers say it
    gossip_overrides: dict[str, Any] = field(default_factory=dict)
    default_bridge: bool = True  # False (shoald --bridge none): no network, loopback only


class NetworkAgent:
    """Implements shoal.exec.executor.NetworkAttacher."""

    def __init__(self, *, node_id: str, advertise_ip: str, netns_dir: Path,
                 gossip_port: int = GOSSIP_PORT, upstreams: Sequence[tuple[str, int]] = (),
                 search: Sequence[str] = (), spread_delay: float = 0.3,
                 data_path_port: int = links.VXLAN_PORT, default_bridge: bool = True,
                 **gossip_overrides: Any) -> None:
        """``data_path_port``: the one last heard from the managers (a restarted daemon
        re-attaches its running containers before its session says it again)."""
        self._s = _Settings(node_id, advertise_ip, Path(netns_dir), gossip_port, spread_delay,
                            data_path_port, dict(gossip_overrides), default_bridge)
        self.directory = Directory()
        self._resolver = Resolver(self.directory, upstreams, search=search)
        self._containers: dict[str, _Container] = {}
        self._published: dict[tuple[str, str], bytes] = {}  # (table, key) -> value, ours
        self._withdrawn: dict[str, float] = {}  # task ID -> when its endpoints were deleted
        self._ingress: NetworkAttachment | None = None  # this node's own ingress address
        self._gossip: GossipNode | None = None
        self._seeds: list[tuple[str, int]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # what was last written to the kernel, so a pass rewrites only what changed
        self._overlays: dict[int, links.Overlay] = {}
        self._remote: dict[int, dict[str, str]] = {}
        self._stale: set[int] | None = None  # an earlier run's overlays, removed once unused
        self._mesh = ""
        self._gw_book: gateway.AddressBook | None = None  # None: no gateway bridge made yet
        self._gw_rules = ""
        self._sysctls_done: set[str] = set()
        self._lock = asyncio.Lock()  # one kernel writer at a time
        self._updating = asyncio.Lock()

    # -- from the daemon -------------------------------------------------------------------

    def set_managers(self, addrs: Sequence[str]) -> None:
        """The managers' swarm addresses ("host:port"): gossip joins through them."""
        self._seeds = [(a.rsplit(":", 1)[0], self._s.gossip_port) for a in addrs if a]

    async def update(self, msg: NetworkUpdate) -> None:
        """New gossip keys or node attachments from the managers (one at a time)."""
        async with self._updating:
            try:
                await self._update(msg)
            except (OSError, GossipError) as exc:  # the next update, or a restart, tries again
                log.error("network update failed: %s", exc)

    async def _update(self, msg: NetworkUpdate) -> None:
        if msg.data_path_port != self._s.data_path_port:
            log.info("data path port %d -> %d", self._s.data_path_port, msg.data_path_port)
            self._s.data_path_port = msg.data_path_port
            async with self._lock:  # the overlays made meanwhile move to it
                await asyncio.to_thread(self._move_overlays)
            self._wake.set()  # their forwarding entries went with the old devices
        keys = gossip_keys(msg.keys)
        ingress = next((a for a in msg.attachments if a.network.spec.ingress), None)
        if ingress is not None and ingress.addresses:
            self._ingress = ingress
            self._publish_node()
        if not keys:
            return
        if self._gossip is None:
            await self._start_gossip(keys)
        else:
            self._gossip.set_keys(keys)
        self._wake.set()

    async def close(self) -> None:
        """Leave the gossip and stop serving DNS; kernel state stays for the containers."""
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        if self._gossip is not None:
            with contextlib.suppress(OSError, GossipError):
                await self._gossip.leave()
            await self._gossip.close()
            self._gossip = None
        for c in self._containers.values():
            if c.dns is not None:
                await c.dns.close()
                c.dns = None

    async def cleanup_all(self) -> None:
        """Remove everything this agent made in the kernel (``swarm leave``): containers'
        namespaces, the overlays, the mesh table, the gateway bridge and its table."""
        await self.close()
        standalone = [c for c in self._containers.values() if c.ifnums]
        self._containers.clear()

        def clean() -> None:
            for c in standalone:  # their namespaces are the daemon's: only our veths go
                for n in c.ifnums.values():
                    links.detach(links.host_ifname(c.id, n))
                links.detach(links.gateway_ifname(c.id))
            if self._s.netns_dir.is_dir():
                for path in self._s.netns_dir.iterdir():
                    netns.remove(path)
            for vni in set(self._overlays) | links.overlay_vnis(self._s.advertise_ip):
                links.remove_overlay(vni)
            nft.delete_table(MESH_TABLE)
            self._gateway_gc(force=True)

        await asyncio.to_thread(clean)
        self._overlays.clear()
        self._remote.clear()
        self._mesh = ""

    # -- gossip ----------------------------------------------------------------------------

    async def _start_gossip(self, keys: list[bytes]) -> None:
        s = self._s
        # a new member name per start (as libnetwork's): a restarted daemon's tables start
        # empty, so what its previous run published must go with that run's member, when the
        # others find it dead, rather than stay as entries nobody owns any more
        member = f"{s.node_id}-{secrets.token_hex(4)}"
        cfg = GossipConfig(member, bind_host=s.advertise_ip, bind_port=s.gossip_port,
                           advertise_host=s.advertise_ip, **tasknets.gossip_defaults(s.gossip_overrides))
        node = GossipNode(cfg, keys)
        await node.start()
        self._gossip = node
        for (table, key), value in self._published.items():
            node.set(table, key, value)
        self._tasks = [asyncio.create_task(self._watch(node), name="net-watch"),
                       asyncio.create_task(self._join_loop(node), name="net-join"),
                       asyncio.create_task(self._reconcile_loop(), name="net-reconcile")]
        log.info("gossip started on %s:%d", s.advertise_ip, s.gossip_port)

    async def _join_loop(self, node: GossipNode) -> None:
        while True:
            if len(node.live()) <= 1 and self._seeds:
                with contextlib.suppress(GossipError):
                    await node.join(self._seeds)
            await asyncio.sleep(REJOIN_INTERVAL)

    async def _watch(self, node: GossipNode) -> None:
        async for _ in node.subscribe():
            self._wake.set()

    def _set(self, table: str, key: str, value: bytes) -> bool:
        if self._published.get((table, key)) == value:
            return False
        self._published[(table, key)] = value
        if self._gossip is not None:
            self._gossip.set(table, key, value)
        self._wake.set()
        return True

    def _delete(self, table: str, key: str) -> bool:
        if self._published.pop((table, key), None) is None:
            return False
        if self._gossip is not None:
            self._gossip.delete(table, key)
        self._wake.set()
        return True

    def _publish_node(self) -> None:
        att = self._ingress
        if att is None or not att.addresses:
            return
        ep = Endpoint(ip=att.addresses[0].split("/")[0], vtep=self._s.advertise_ip,
                      node=self._s.node_id, kind="node")
        self._set(table_name(att.network.id), "node/" + self._s.node_id,
                  encode_endpoint(ep))

    # -- NetworkAttacher -------------------------------------------------------------------

    def _netns_path(self, container_id: str) -> Path:
        return self._s.netns_dir / container_id[:16]

    async def attach(self, task: Task, container_id: str) -> str | None:
        nets = tasknets.networks(task)
        gw = gateway.wants_gateway((n.internal for n in nets),
                                   default_bridge=self._s.default_bridge)
        if not nets and not gw:
            return None  # runc makes the namespace: loopback only
        path = self._netns_path(container_id)
        known = self._containers.get(container_id)
        if known is not None:
            return known.netns
        async with self._lock:
            fresh = not netns.exists(path)  # else a running container's, after a restart
            try:
                await asyncio.to_thread(self._plumb, nets, gw, container_id, path)
                dns = None
                if nets:  # with no network, the node's resolv.conf, as Docker's default bridge
                    udp, tcp = await asyncio.to_thread(sockets_in_netns, str(path))
                    dns = DNSServer(self._resolver, container_id, udp=udp, tcp=tcp,
                                    upstreams=tasknets.dns_servers(task))
                    await dns.start()
            except BaseException:
                if fresh:  # all or nothing; never cut a running container off
                    await asyncio.to_thread(self._unplumb, container_id, len(nets), path)
                raise
            self._containers[container_id] = _Container(container_id, task, str(path), nets, dns)
        if nets and not any((table_name(n.id), task.id) in self._published for n in nets):
            self._publish(task, serving=False)  # reachable from the other nodes from now on
        self._wake.set()
        return str(path)

    def _plumb(self, nets: list[tasknets.Net], gw: bool, container_id: str, path: Path) -> None:
        if not netns.exists(path):
            netns.create(path)
        for i, net in enumerate(nets):
            self._ensure_overlay(net.vni, net.ingress)
            links.attach(str(path), net.vni, links.host_ifname(container_id, i), net.address,
                         ifname=f"eth{i}")
        if gw:
            # after the overlays, as Docker orders a task's interfaces: eth1 beside one network
            book = self._ensure_gateway()
            address = book.allocate(path.name)
            links.attach_to_bridge(str(path), gateway.BRIDGE, links.gateway_ifname(container_id),
                                   address.with_prefixlen, mtu=gateway.MTU,
                                   ifname=f"eth{len(nets)}", gateway=str(book.gateway.ip))

    def _unplumb(self, container_id: str, count: int, path: Path) -> None:
        for i in range(count):
            links.detach(links.host_ifname(container_id, i))
        links.detach(links.gateway_ifname(container_id))  # none is fine
        netns.remove(path)
        if self._gw_book is not None:
            self._gw_book.release(path.name)
        self._gateway_gc()

    # -- the gateway bridge (in the node's namespace, under self._lock) --------------------

    def _ensure_gateway(self) -> gateway.AddressBook:
        """The gateway bridge, its NAT table and forwarding, made if missing; its addresses."""
        book = self._gw_book
        if book is None:
            state = links.bridge_state(gateway.BRIDGE)
            if state is not None and state[0] is not None:
                # an earlier run's, whose containers may still run: keep its subnet
                subnet = ipaddress.IPv4Interface(state[0]).network
            else:
                subnet = gateway.choose_subnet(links.ipv4_networks(skip=gateway.BRIDGE))
            book = gateway.AddressBook(subnet)
            self._adopt_addresses(book)
            log.info("gateway bridge %s on %s", gateway.BRIDGE, subnet)
        links.ensure_bridge(gateway.BRIDGE, book.gateway.with_prefixlen, mtu=gateway.MTU)
        self._gw_book = book
        key = "net.ipv4.ip_forward"  # the node's own namespace: this thread's
        if key not in self._sysctls_done:
            netns.write_sysctl(key, "1")
            self._sysctls_done.add(key)
        text = nft.gateway_table(str(book.subnet), gateway.BRIDGE, name=GATEWAY_TABLE)
        if text != self._gw_rules:
            nft.apply(text)
            self._gw_rules = text
        return book

    def _adopt_addresses(self, book: gateway.AddressBook) -> None:
        """The addresses that running containers (an earlier run's) hold on the subnet, so
        none is handed out twice: read from inside each namespace of ours (about 1 ms each)."""
        subnet = str(book.subnet)
        dirs = [self._s.netns_dir, self._s.netns_dir.parent / "localnet"]  # tasks', standalone
        for path in sorted(p for d in dirs if d.is_dir() for p in d.iterdir()):
            if not netns.exists(path):
                continue
            for ip in netns.run_in(path, lambda: links.addresses_in(subnet)):
                book.adopt(path.name, ip)

    def _gateway_gc(self, *, force: bool = False) -> None:
        """The gateway bridge and its table go once no container is on it any more (counted
        in the kernel: a container not attached again yet after a restart still counts), or
        at once with ``force``. Nothing is touched where there is neither (a node whose
        containers never needed one)."""
        state = links.bridge_state(gateway.BRIDGE)
        if state is None and not self._gw_rules:
            return
        if state is not None and state[1] > 0 and not force:
            return
        links.remove_link(gateway.BRIDGE)
        nft.delete_table(GATEWAY_TABLE)
        self._gw_book = None
        self._gw_rules = ""

    def _move_overlays(self) -> None:
        for vni, ov in list(self._overlays.items()):
            self._ensure_overlay(vni, ov.address is not None)

    def _ensure_overlay(self, vni: int, ingress: bool) -> None:
        address = None
        if ingress and self._ingress is not None and self._ingress.addresses:
            address = self._ingress.addresses[0]
        ov = links.Overlay(vni, self._s.advertise_ip, address=address, port=self._s.data_path_port)
        if self._overlays.get(vni) != ov:
            links.ensure_overlay(ov)  # may recreate the vxlan, and lose its entries with it
            self._overlays[vni] = ov
            self._remote.pop(vni, None)

    def _publish(self, task: Task, *, serving: bool) -> bool:
        """The task's endpoints in the gossip; True when that changed something. An attached
        task that does not serve is still published: the others keep their forwarding entries
        for it, so a connection opened just before it stopped serving is not cut off."""
        vips = {v.network_id: v.addr.split("/")[0]
                for v in (task.endpoint.virtual_ips if task.endpoint else None) or []}
        ports = tuple(PublishedPort(p.protocol, p.published_port, p.target_port, p.publish_mode)
                      for p in (task.endpoint.ports if task.endpoint else None) or []
                      if p.published_port)
        changed = False
        for net in tasknets.networks(task):
            ep = Endpoint(ip=net.ip, vtep=self._s.advertise_ip, node=self._s.node_id,
                          task=task.id, name=task.full_name,
                          service=task.service_name or task.service_id,
                          service_id=task.service_id, vip=vips.get(net.id, ""),
                          aliases=net.aliases, ports=ports if net.ingress else (),
                          serving=serving)
            changed |= self._set(table_name(net.id), task.id, encode_endpoint(ep))
        return changed

    async def announce(self, task: Task) -> None:
        if self._publish(task, serving=True):
            log.info("task %s serves: announced on %d networks", task.id,
                     len(task.networks_attachments or []))

    async def withdraw(self, task: Task) -> None:
        loop = asyncio.get_running_loop()
        if self._publish(task, serving=False):
            log.info("task %s withdrawn from the backends", task.id)
            self._withdrawn[task.id] = loop.time()
            await self._reconcile()  # this node's rules at once
        # the other nodes' once the gossip reached them: every caller waits for that, also one
        # that comes right after another (a cancelled wait() withdrew, then shutdown())
        since = self._withdrawn.get(task.id)
        if since is not None:
            await asyncio.sleep(max(0.0, since + self._s.spread_delay - loop.time()))

    async def detach(self, task: Task, container_id: str) -> None:
        self._withdrawn.pop(task.id, None)
        for att in task.networks_attachments or []:
            self._delete(table_name(att.network.id), task.id)
        c = self._containers.pop(container_id, None)
        if c is not None and c.dns is not None:
            await c.dns.close()
        count = len(c.nets) if c else len(task.networks_attachments or [])
        path = self._netns_path(container_id)
        async with self._lock:
            await asyncio.to_thread(self._unplumb, container_id, count, path)
        self._wake.set()

    # -- standalone containers on attachable overlays (the daemon's localnets.py) ----------

    async def join(self, container_id: str, task: Task, path: str, *, name: str,
                   aliases: Sequence[str] = (), way_out: bool = True, ifnum: int | None = None
                   ) -> int:
        """A standalone container's namespace (``path``, made by the daemon) joins the
        overlay of its attachment ``task`` with the task's address, as ``eth<N>`` (the first
        free one, or ``ifnum`` again after a restart); without ``way_out`` (no other default
        route) it gets the gateway bridge too. Its endpoint is published, serving, under
        ``name`` and ``aliases``. Returns N. All or nothing."""
        net = tasknets.networks(task)[0]
        async with self._lock:
            c = self._containers.get(container_id)
            if c is not None and net.id in c.ifnums:
                return c.ifnums[net.id]
            gw = not way_out and not (c is not None and c.gateway)
            n = await asyncio.to_thread(self._plumb_join, container_id, path, net, ifnum, gw)
            if c is None:
                c = self._containers[container_id] = _Container(container_id, task, path, [])
            c.nets.append(net)
            c.ifnums[net.id] = n
            c.gateway |= gw
        ep = Endpoint(ip=net.ip, vtep=self._s.advertise_ip, node=self._s.node_id, task=task.id,
                      name=name, aliases=tuple(dict.fromkeys([*net.aliases, *aliases])))
        self._set(table_name(net.id), task.id, encode_endpoint(ep))
        log.info("container %s joined %s as %s", container_id[:12], net.name, net.address)
        return n

    def _plumb_join(self, container_id: str, path: str, net: tasknets.Net, ifnum: int | None,
                    gw: bool) -> int:
        self._ensure_overlay(net.vni, False)
        n = ifnum if ifnum is not None else links.free_eth(path)
        host = links.host_ifname(container_id, n)
        try:
            links.attach(path, net.vni, host, net.address, ifname=f"eth{n}")
            if gw:
                book = self._ensure_gateway()
                address = book.allocate(Path(path).name)
                links.attach_to_bridge(path, gateway.BRIDGE, links.gateway_ifname(container_id),
                                       address.with_prefixlen, mtu=gateway.MTU,
                                       ifname=f"eth{links.free_eth(path)}",
                                       gateway=str(book.gateway.ip))
        except BaseException:
            links.detach(host)
            self._drop_gateway(container_id, path)
            raise
        return n

    def _drop_gateway(self, container_id: str, path: str) -> None:
        links.detach(links.gateway_ifname(container_id))  # none is fine
        if self._gw_book is not None:
            self._gw_book.release(Path(path).name)
        self._gateway_gc()

    async def leave(self, container_id: str, task: Task) -> None:
        """The container leaves the attachment's overlay (endpoint withdrawn, veth gone); with
        its last overlay, the gateway bridge this agent gave it. Never raises for what is
        already gone."""
        nid = next((a.network.id for a in task.networks_attachments or []), "")
        self._delete(table_name(nid), task.id)
        async with self._lock:
            c = self._containers.get(container_id)
            if c is None or nid not in c.ifnums:
                return
            n = c.ifnums.pop(nid)
            c.nets = [x for x in c.nets if x.id != nid]
            last = not c.ifnums
            if last:
                self._containers.pop(container_id, None)

            def unplumb() -> None:
                links.detach(links.host_ifname(container_id, n))
                if last and c.gateway:
                    self._drop_gateway(container_id, c.netns)

            await asyncio.to_thread(unplumb)
        self._wake.set()

    # -- reconciliation --------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(0.01)  # let a burst of gossip changes land together
            self._wake.clear()
            try:
                await self._reconcile()
            except Exception:
                log.exception("network reconcile failed; retrying")
                await _RETRY.sleep()
                self._wake.set()

    def _tables(self) -> dict[str, dict[str, bytes]]:
        node = self._gossip
        if node is None:  # not joined yet: our own entries only
            out: dict[str, dict[str, bytes]] = {}
            for (table, key), value in self._published.items():
                out.setdefault(table[len(TABLE_PREFIX):], {})[key] = value
            return out
        return {t[len(TABLE_PREFIX):]: node.table(t) for t in node.tables()
                if t.startswith(TABLE_PREFIX)}

    async def _reconcile(self) -> None:
        # the ingress network carries the routing mesh only: no names, no VIPs (as docker's)
        d = Directory.build(self._tables(), {
            c.id: {n.id: n.name for n in c.nets if not n.ingress}
            for c in self._containers.values()})
        async with self._lock:
            # taken under the lock, on the loop: a container attached while this pass waited
            # is in it, so its network's bridge is never taken for unused and removed
            containers = list(self._containers.values())
            await asyncio.to_thread(self._apply, d, containers)
        # only now: a name must not resolve before the rules that make its VIP answer are in
        self.directory = self._resolver.records = d

    def _apply(self, d: Directory, containers: list[_Container]) -> None:
        me = self._s.node_id
        in_use: dict[int, tuple[str, bool]] = {}
        for c in containers:
            for n in c.nets:
                in_use[n.vni] = (n.id, n.ingress)
        mesh_ports, ingress = tasknets.mesh_ports(d, self._ingress, self._s.node_id)
        if ingress is not None and mesh_ports:
            in_use[ingress[1]] = (ingress[0], True)
        for vni, (net_id, is_ingress) in in_use.items():
            self._ensure_overlay(vni, is_ingress)
            remote = d.remote(net_id, me)
            if self._remote.get(vni) != remote:
                links.set_remote_endpoints(vni, remote)
                self._remote[vni] = remote
        for vni in [v for v in self._overlays if v not in in_use]:
            links.remove_overlay(vni)
            self._overlays.pop(vni, None)
            self._remote.pop(vni, None)
        if self._stale is None:
            self._stale = links.overlay_vnis(self._s.advertise_ip) - set(self._overlays)
        for vni in [v for v in self._stale if v in in_use or links.overlay_unused(v)]:
            if vni not in in_use:  # no container of this run, nor of the last, is on it
                links.remove_overlay(vni)
            self._stale.discard(vni)
        for c in containers:
            if not c.nets:
                continue  # the gateway bridge alone: no VIPs
            vips: dict[str, list[str]] = {}
            for n in c.nets:
                if not n.ingress:
                    vips.update(d.vip_backends(n.id))
            text = nft.vip_table(vips)
            if text != c.rules:
                nft.apply(text, c.netns)
                c.rules = text
        self._apply_mesh(mesh_ports, ingress)

    def _apply_mesh(self, ports: list[nft.MeshPort], ingress: tuple[str, int] | None) -> None:
        if not ports or ingress is None or self._ingress is None:
            if self._mesh:
                nft.delete_table(MESH_TABLE)
                self._mesh = ""
            return
        bridge = links.bridge_name(ingress[1])
        for key in ("net.ipv4.ip_forward", f"net.ipv4.conf.{bridge}.route_localnet"):
            if key not in self._sysctls_done:
                netns.write_sysctl(key, "1")
                self._sysctls_done.add(key)
        addresses = self._ingress.addresses or []
        text = nft.mesh_table(ports, ingress_bridge=bridge,
                              snat_address=addresses[0].split("/")[0] if addresses else None,
                              name=MESH_TABLE)
        if text != self._mesh:
            nft.apply(text)
            self._mesh = text
