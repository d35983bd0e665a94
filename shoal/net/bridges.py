"""LocalBridges: a node's local networks for standalone containers (dockerd's bridge driver).

The default ``bridge`` network (docker0's role, Linux bridge ``shoal0``, the first free local
pool: 172.17.0.0/16 usually), user bridge networks (``docker network create -d bridge``), the
predefined ``host`` and ``none``; each container's namespace with an endpoint per network,
its published ports, and its embedded DNS server on user networks. The daemon wraps it as
shoal.exec.localnet.LocalNetworks (the runc executor's standalone containers) and the API
serves its networks beside the swarm's.

Three modes: ``kernel`` (runc daemons in their own namespace: real bridges, veths and nft);
records only (the sim executor: networks are created, listed and removed, and endpoints get
addresses, but nothing is made in the kernel, as sim tasks run no process); and ``disabled``
(shoald ``--bridge none``: no default bridge, ``-d bridge`` refused). State is on disk
(localstore.py): a restart keeps the networks and the running containers' endpoints.
Errors carry dockerd's words. Kernel work runs in a thread inside the node's namespace
(``node_netns``: tests give one; shoald runs in its own already).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, TypeVar

from shoal.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from shoal.events import EventLog
from shoal.model.specs import NetworkSpec
from shoal.net import bridgekernel as kernel
from shoal.net import links, localstore, netns, nft
from shoal.net.bridgeconf import DEFAULT_BRIDGE, BridgeNet, choose_pool, configure
from shoal.net.bridgenft import Published, bridge_table
from shoal.net.dns import ChainedRecords, DNSServer, Records, Resolver, sockets_in_netns
from shoal.net.errors import NetError
from shoal.net.gateway import DEFAULT_SUBNET as GW_SUBNET
from shoal.net.localrecords import LocalRecords
from shoal.net.localstore import ContainerRec, EndpointRec, LocalState, PortRec

__all__ = ["PREDEFINED", "LocalBridges", "PortWant", "Want"]

log = logging.getLogger(__name__)
T = TypeVar("T")

PREDEFINED = ("bridge", "host", "none")
DISABLED = ("bridge networks are disabled on this node (shoald --bridge none): "
            "only overlay networks can be created")


@dataclass(frozen=True, slots=True)
class Want:
    """One network a container asks for (exec.localnet.EndpointRequest's content)."""

    network: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str = ""


@dataclass(frozen=True, slots=True)
class PortWant:
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class LocalBridges:
    def __init__(self, data_root: Path, exec_root: Path, *, kernel: bool, enabled: bool = True,
                 node_netns: str | None = None, upstreams: Sequence[tuple[str, int]] = (),
                 search: Sequence[str] = (), events: EventLog | None = None) -> None:
        self._file = Path(data_root) / "network" / "local.json"
        self._ns_dir = Path(exec_root) / "localnet"
        self.kernel = kernel and enabled
        self.enabled = enabled
        self._node_ns = node_netns
        self._events = events
        self._state = LocalState()
        self._records = LocalRecords()
        self._resolver = Resolver(self._records, upstreams, search=search)
        self._dns: dict[str, DNSServer] = {}
        # whether a container already has a default route from elsewhere (the gateway bridge
        # of its overlay attachments): the daemon wires it (localnets.py)
        self.has_way_out: Callable[[str], bool] = lambda container_id: False
        self._rules = ""
        self._lock = asyncio.Lock()

    # -- in the node's namespace -----------------------------------------------------------

    async def _k(self, fn: Callable[..., T], *args: Any) -> T:
        call = functools.partial(fn, *args)
        ns = self._node_ns
        if ns:
            return await asyncio.to_thread(netns.run_in, ns, call)
        return await asyncio.to_thread(call)

    def _save(self) -> None:
        localstore.save(self._file, self._state)
        self._records.rebuild(self._state.networks, self._state.containers.values())

    async def _apply(self) -> None:
        if not self.kernel:
            return
        nets = list(self._state.networks.values())
        ports = [Published(p.protocol, p.host_ip, p.host_port, e.ip, p.container_port)
                 for c in self._state.containers.values() for p in c.ports
                 for e in c.endpoints if e.network_id == p.network_id and e.ip]
        text = bridge_table(nets, ports)
        if text != self._rules:
            await self._k(nft.apply, text)
            self._rules = text

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Networks and endpoints from disk; the default bridge made if missing; the bridges
        and rules made again; containers whose namespace is gone are forgotten."""
        async with self._lock:
            self._state = localstore.load(self._file)
            st = self._state
            if not self.enabled:
                st.networks = {k: n for k, n in st.networks.items() if not n.predefined}
            elif not any(n.predefined for n in st.networks.values()):
                taken = await self._taken(default=True)
                net_id = secrets.token_hex(32)
                st.networks[net_id] = BridgeNet(
                    id=net_id, name="bridge", created=_now(), bridge=DEFAULT_BRIDGE,
                    subnet=choose_pool(taken).with_prefixlen, gateway="", predefined=True,
                    options={"com.docker.network.bridge.default_bridge": "true",
                             "com.docker.network.bridge.enable_icc": "true",
                             "com.docker.network.bridge.enable_ip_masquerade": "true",
                             "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                             "com.docker.network.bridge.name": DEFAULT_BRIDGE,
                             "com.docker.network.driver.mtu": "1500"})
                st.networks[net_id].gateway = str(IPv4Network(st.networks[net_id].subnet)[1])
            if self.kernel:
                for net in list(st.networks.values()):
                    try:  # one network the kernel refuses does not keep the daemon down
                        await self._k(kernel.ensure_network, net)
                    except NetError as exc:
                        log.error("network %s: bridge %s: %s", net.name, net.bridge, exc)
                for c in list(st.containers.values()):
                    if c.netns is not None and not netns.exists(c.netns):
                        del st.containers[c.id]
                await self._apply()
                self._records.rebuild(st.networks, st.containers.values())
                for c in st.containers.values():  # their DNS, before they are attached again
                    try:
                        await self._serve_dns(c)
                    except OSError as exc:
                        log.error("DNS for container %s: %s", c.id[:12], exc)
            self._save()

    async def close(self) -> None:
        """Stop serving DNS; the kernel state stays for the running containers."""
        for server in self._dns.values():
            await server.close()
        self._dns.clear()

    async def _taken(self, *, default: bool = False) -> list[IPv4Network]:
        out = [IPv4Network(n.subnet) for n in self._state.networks.values()]
        if self.kernel:
            out += await self._k(links.ipv4_networks)
        if default:
            # left to the gateway bridge (made lazily, with the first task): on a swarm node
            # docker_gwbridge holds it too, and user networks start at 172.19
            out.append(GW_SUBNET)
        return out

    # -- networks --------------------------------------------------------------------------

    def networks(self) -> list[BridgeNet]:
        return sorted(self._state.networks.values(), key=lambda n: (not n.predefined, n.name))

    def get(self, ref: str) -> BridgeNet:
        """By full name, full ID, or ID prefix (dockerd's order)."""
        nets = self._state.networks.values()
        for found in ([n for n in nets if n.name == ref], [n for n in nets if n.id == ref],
                      [n for n in nets if n.id.startswith(ref)]):
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(found)} matches found "
                                      "on name)")
        raise NotFound(f"network {ref} not found")

    def users(self, net_id: str) -> list[tuple[ContainerRec, EndpointRec]]:
        return [(c, e) for c in self._state.containers.values() for e in c.endpoints
                if e.network_id == net_id]

    async def create(self, spec: NetworkSpec) -> BridgeNet:
        if not self.enabled:
            raise InvalidArgument(DISABLED)
        if not spec.name:
            raise InvalidArgument("network name must not be empty")
        async with self._lock:
            if spec.name in PREDEFINED or any(n.name == spec.name
                                              for n in self._state.networks.values()):
                raise Conflict(f"network with name {spec.name} already exists")
            net = configure(spec, net_id=secrets.token_hex(32), created=_now(),
                            taken=await self._taken(default=True))
            if any(n.bridge == net.bridge for n in self._state.networks.values()):
                raise Conflict(f"bridge name {net.bridge} is already used by another network")
            if self.kernel:
                try:
                    await self._k(kernel.ensure_network, net)
                    self._state.networks[net.id] = net
                    await self._apply()
                except BaseException:
                    self._state.networks.pop(net.id, None)
                    await self._k(kernel.remove_network, net)
                    raise
            self._state.networks[net.id] = net
            self._save()
        self._event("create", net)
        return net

    async def remove(self, ref: str) -> None:
        net = self.get(ref)
        if net.predefined:
            raise PermissionDenied(f"{net.name} is a pre-defined network and cannot be removed")
        async with self._lock:
            users = self.users(net.id)
            if users:
                listed = " ".join(f'(name:"{c.hostname}" id:"{c.id[:12]}")' for c, _ in users)
                raise Conflict(f"error while removing network: network {net.name} has active "
                               f"endpoints {listed}")
            del self._state.networks[net.id]
            self._save()
            if self.kernel:
                await self._apply()
                await self._k(kernel.remove_network, net)
        self._event("destroy", net)

    def _event(self, action: str, net: BridgeNet, container: str = "") -> None:
        if self._events is None:
            return
        attrs = {"name": net.name, "type": "bridge"}
        if container:
            attrs["container"] = container
        self._events.publish("network", action, net.id, attrs)

    # -- endpoints (bridgeeps.py does the containers' side) --------------------------------

    @property
    def data_dir(self) -> Path:
        """``<data-root>/network``: where the node's network records are kept."""
        return self._file.parent

    def ns_path(self, container_id: str) -> str:
        """Where a standalone container's namespace lives (``<exec-root>/localnet/<cid16>``)."""
        return str(self._ns_dir / container_id[:16])

    def container(self, container_id: str) -> ContainerRec | None:
        return self._state.containers.get(container_id)

    @property
    def state(self) -> LocalState:
        return self._state

    def _find(self, ref: str) -> BridgeNet | str:
        """A bridge network, or "host" / "none"."""
        if ref in ("host", "none") or ref in (static_id("host"), static_id("none")):
            return "host" if ref in ("host", static_id("host")) else "none"
        if ref == "bridge" and not self.enabled:
            raise NotFound("network bridge not found")
        return self.get(ref)

    async def attach(self, container_id: str, wants: Sequence[Want], *, hostname: str,
                     ports: Sequence[PortWant] = (), name: str = "") -> ContainerRec:
        """The container's namespace, an endpoint per network (``bridge`` if none is named),
        its ports published. All or nothing; again for a known container: only what is
        missing is added (a daemon restart, or a created container that was connected)."""
        wants = list(wants) or [Want("bridge")]
        found = [(w, self._find(w.network)) for w in wants]
        special = [f for _, f in found if isinstance(f, str)]
        if special and len(found) > 1:
            raise InvalidArgument(f"container cannot be connected to network {special[0]} and "
                                  "to other networks at once")
        async with self._lock:
            rec = self._state.containers.get(container_id)
            fresh = rec is None
            before = {e.network_id for e in rec.endpoints} if rec is not None else set()
            if rec is None:
                path = None if special == ["host"] else str(self._ns_dir / container_id[:16])
                rec = ContainerRec(id=container_id, hostname=hostname, name=name, netns=path)
            try:
                if fresh and rec.netns is not None and self.kernel and not netns.exists(rec.netns):
                    await asyncio.to_thread(netns.create, rec.netns)
                for want, net in found:
                    if isinstance(net, str):
                        if fresh:
                            rec.endpoints.append(EndpointRec(
                                network_id=static_id(net), endpoint_id=secrets.token_hex(32),
                                ifname="", host_ifname="", ip=""))
                    elif rec.endpoint(net.id) is None:
                        await self._join(rec, net, want)
                if not rec.ports and not special:
                    rec.ports = await self._bind(rec, ports)
                self._state.containers[container_id] = rec
                await self._apply()
                await self._serve_dns(rec)
            except BaseException:
                if fresh:
                    await self._drop(rec)
                else:  # a known container keeps what it had, and only that
                    await self._unjoin(rec, [e for e in rec.endpoints
                                             if e.network_id not in before])
                raise
            self._save()
        for ep in rec.endpoints:  # the new ones only (not again after a restart)
            net_ = self._state.networks.get(ep.network_id)
            if net_ is not None and ep.network_id not in before:
                self._event("connect", net_, container_id)
        return rec

    async def connect(self, container_id: str, want: Want, *, hostname: str,
                      name: str = "") -> EndpointRec:
        net = self._find(want.network)
        rec = self._state.containers.get(container_id)
        if isinstance(net, str) or (rec is not None and rec.netns is None):
            raise InvalidArgument("container cannot be disconnected from host network or "
                                  "connected to host network")
        if rec is not None and rec.endpoint(static_id("none")) is not None:
            raise InvalidArgument("container cannot be connected to multiple networks with one "
                                  "of the networks in private (none) mode")
        if rec is None:
            rec = await self.attach(container_id, [want], hostname=hostname, name=name)
        else:
            async with self._lock:
                if rec.endpoint(net.id) is not None:
                    raise PermissionDenied(f"endpoint with name {rec.hostname} already exists "
                                           f"in network {net.name}")
                await self._join(rec, net, want)
                await self._apply()
                await self._serve_dns(rec)
                self._save()
            self._event("connect", net, container_id)
        ep = rec.endpoint(net.id)
        assert ep is not None
        return ep

    async def _join(self, rec: ContainerRec, net: BridgeNet, want: Want) -> None:
        if net.predefined and want.aliases:
            raise InvalidArgument("network-scoped alias is supported only for containers in "
                                  "user defined networks")
        used = self._state.used(net.id)
        ip = (net.check_fixed(want.ipv4_address, used) if want.ipv4_address
              else net.allocate(used))
        gateway = (not net.internal and not any(e.gateway_route for e in rec.endpoints)
                   and not self.has_way_out(rec.id))
        index = rec.next_index
        if self.kernel and rec.netns is not None:  # an overlay's endpoint may hold ethN
            index = await asyncio.to_thread(links.free_eth, rec.netns, index)
        ep = EndpointRec(network_id=net.id, endpoint_id=secrets.token_hex(32),
                         ifname=f"eth{index}", host_ifname=f"shl{rec.id[:10]}{index:02d}",
                         ip=str(ip), aliases=list(want.aliases), gateway_route=gateway)
        if self.kernel and rec.netns is not None:
            ns = rec.netns
            try:
                await self._k(functools.partial(kernel.plug, ifname=ep.ifname, gateway=gateway),
                              ns, net, ep.host_ifname, ep.ip)
            except BaseException:
                await self._k(links.detach, ep.host_ifname)  # no half-made endpoint left
                raise
        rec.endpoints.append(ep)
        rec.next_index = index + 1

    async def _bind(self, rec: ContainerRec, ports: Sequence[PortWant]) -> list[PortRec]:
        """Host ports for the container's first network with an address: explicit ones must be
        free among ours (dockerd's words), 0 takes a free ephemeral one."""
        if not ports:
            return []
        ep = next((e for e in rec.endpoints if e.ip and e.network_id in self._state.networks
                   and not self._state.networks[e.network_id].internal), None)
        if ep is None:
            return []  # --internal or none: nothing to publish to, as Docker's
        net = self._state.networks[ep.network_id]
        held = {(p.protocol, p.host_ip, p.host_port)
                for c in self._state.containers.values() for p in c.ports}
        out: list[PortRec] = []
        for want in ports:
            if want.protocol not in ("tcp", "udp"):
                raise InvalidArgument(f"invalid proto: {want.protocol}")
            if not 1 <= want.container_port <= 65535 or not 0 <= want.host_port <= 65535:
                raise InvalidArgument(f"invalid port specification: "
                                      f"{want.host_port}:{want.container_port}")
            host_ip = want.host_ip or net.host_ip
            try:
                host_ip = str(IPv4Address(host_ip)) if host_ip else ""
            except ValueError as e:
                raise InvalidArgument(f"invalid IP address {host_ip!r} to publish a port on: "
                                      "IPv4 only") from e
            if host_ip == "0.0.0.0":
                host_ip = ""
            port = want.host_port
            clash = {(want.protocol, h, p) for h, p in ((host_ip, port), ("", port))}
            if port and (clash & held or (not host_ip and any(
                    (want.protocol, port) == (pr, po) for pr, _, po in held))):
                raise Conflict(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is "
                               "already allocated")
            if not port:
                taken = {po for pr, _, po in held if pr == want.protocol}
                port = (await self._k(kernel.free_port, want.protocol, host_ip, taken)
                        if self.kernel else next(p for p in kernel.EPHEMERAL if p not in taken))
            rec_ = PortRec(container_port=want.container_port, protocol=want.protocol,
                           host_ip=host_ip, host_port=port, network_id=net.id)
            held.add((want.protocol, host_ip, port))
            out.append(rec_)
        return out

    async def _serve_dns(self, rec: ContainerRec) -> None:
        """Its DNS server on 127.0.0.11 once it is on a user network (kernel mode)."""
        if not self.kernel or rec.netns is None or rec.id in self._dns:
            return
        if not any((n := self._state.networks.get(e.network_id)) and not n.predefined
                   for e in rec.endpoints):
            return
        udp, tcp = await asyncio.to_thread(sockets_in_netns, rec.netns)
        server = DNSServer(self._resolver, rec.id, udp=udp, tcp=tcp)
        await server.start()
        self._dns[rec.id] = server

    def chain_records(self, extra: Callable[[], Records]) -> None:
        """Answer from ``extra`` too (the overlays' directory), after the local networks'."""
        local = self._records
        self._resolver.records = ChainedRecords(lambda: local, extra)

    async def serve_dns(self, container_id: str, path: str) -> None:
        """A DNS server on 127.0.0.11 in the namespace at ``path`` (a container on overlays
        only); it goes with ``release``."""
        if not self.kernel or container_id in self._dns:
            return
        udp, tcp = await asyncio.to_thread(sockets_in_netns, path)
        server = DNSServer(self._resolver, container_id, udp=udp, tcp=tcp)
        await server.start()
        self._dns[container_id] = server

    async def stop_dns(self, container_id: str) -> None:
        server = self._dns.pop(container_id, None)
        if server is not None:
            await server.close()

    def embedded_dns(self, rec: ContainerRec) -> bool:
        return any((n := self._state.networks.get(e.network_id)) is not None and not n.predefined
                   for e in rec.endpoints)

    async def disconnect(self, container_id: str, ref: str, *, force: bool = False) -> None:
        rec = self._state.containers.get(container_id)
        net = self._find(ref)
        if isinstance(net, str):
            raise InvalidArgument("container cannot be disconnected from host network or "
                                  "connected to host network")
        ep = rec.endpoint(net.id) if rec is not None else None
        if rec is None or ep is None:
            if force:
                return
            raise InvalidArgument(f"container {container_id} is not connected to network "
                                  f"{net.name}")
        async with self._lock:
            if self.kernel and rec.netns is not None:
                await self._k(links.detach, ep.host_ifname)
            rec.endpoints.remove(ep)
            rec.ports = [p for p in rec.ports if p.network_id != net.id]
            if ep.gateway_route:
                await self._move_gateway(rec)
            await self._apply()
            self._save()
        self._event("disconnect", net, container_id)

    async def _unjoin(self, rec: ContainerRec, eps: Sequence[EndpointRec]) -> None:
        """Take back endpoints a failed attach made (errors logged: the first one is raised)."""
        for ep in eps:
            rec.endpoints.remove(ep)
            rec.ports = [p for p in rec.ports if p.network_id != ep.network_id]
            try:
                if self.kernel and rec.netns is not None:
                    await self._k(links.detach, ep.host_ifname)
            except NetError as exc:
                log.error("taking back %s of %s: %s", ep.host_ifname, rec.id[:12], exc)
        try:
            await self._apply()
        except NetError as exc:
            log.error("local network rules: %s", exc)

    async def _move_gateway(self, rec: ContainerRec) -> None:
        for e in rec.endpoints:
            n = self._state.networks.get(e.network_id)
            if n is not None and not n.internal and e.ip:
                e.gateway_route = True
                if self.kernel and rec.netns is not None:
                    await self._k(kernel.default_route, rec.netns, n.gateway, e.ifname)
                return

    async def release(self, container_id: str) -> None:
        async with self._lock:
            rec = self._state.containers.get(container_id)
            if rec is None:
                await self.stop_dns(container_id)  # one on overlays only
                return
            await self._drop(rec)
            try:
                self._save()
            except OSError as exc:  # release always succeeds; the next save writes it
                log.error("saving local networks after releasing %s: %s", rec.id[:12], exc)
        for ep in rec.endpoints:
            net = self._state.networks.get(ep.network_id)
            if net is not None:
                self._event("disconnect", net, container_id)

    async def _drop(self, rec: ContainerRec) -> None:
        """Everything of the container's gone; errors logged, never raised (release)."""
        server = self._dns.pop(rec.id, None)
        if server is not None:
            await server.close()
        self._state.containers.pop(rec.id, None)
        try:
            if self.kernel and rec.netns is not None:
                names = [e.host_ifname for e in rec.endpoints if e.host_ifname]
                ns = rec.netns

                def clean() -> None:
                    for name in names:
                        links.detach(name)
                    netns.remove(ns)

                await self._k(clean)
            await self._apply()
        except Exception as exc:  # noqa: BLE001 - release always succeeds; the log says why
            log.error("releasing container %s's networks: %s", rec.id[:12], exc)


def static_id(name: str) -> str:
    """The IDs of the predefined ``host`` and ``none`` networks (fixed, as they hold nothing)."""
    return (name.encode().hex() * 16)[:64]
