"""IP address management for overlay networks: subnets, addresses and VXLAN IDs, in memory.

The allocator owns these numbers (swarmkit's CNM allocator over libnetwork's default IPAM and the
manager-side overlay driver): a subnet per network from the default address pool (10.0.0.0/8 in
/24s, or the user's ``--subnet``, never overlapping another network's), a gateway per subnet (the
first host address unless given), one address per service VIP and per task attachment, and a
VXLAN ID (VNI) per subnet from 4096. The store keeps the results on the objects (Network IPAM
configs and driver state, ``Endpoint.VirtualIPs``, ``Task.NetworksAttachments[].Addresses``);
this module keeps the free/used sets so allocation is fast, and :func:`rebuild` restores them from
the store when a manager becomes leader, so nothing is handed out twice.

Addresses are taken serially by default, as libnetwork does in swarm mode: the search starts
after the last address handed out and wraps, so a released address is not reused at once (stale
ARP, forwarding and conntrack entries elsewhere would otherwise reach the new owner).

Pure and deterministic: no I/O, no clock, no randomness; IPv4 only (stdlib ``ipaddress``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address, ip_interface, ip_network
from typing import Any

from shoal.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from shoal.model.objects import Network, Service, Task, overlay_driver_state
from shoal.model.specs import IPAMConfig

__all__ = [
    "ADDRESS_IN_USE",
    "DEFAULT_POOL",
    "DEFAULT_SUBNET_SIZE",
    "NO_ADDRESSES",
    "NO_MORE_SUBNETS",
    "POOL_OVERLAP",
    "VXLAN_ID_START",
    "AddressPool",
    "Exhausted",
    "IPAMState",
    "NetworkIPAM",
    "VXLANIDs",
    "parse_subnet",
    "rebuild",
]

DEFAULT_POOL = "10.0.0.0/8"
DEFAULT_SUBNET_SIZE = 24
VXLAN_ID_START = 4096
VXLAN_ID_END = (1 << 24) - 1

# libnetwork's messages (ipamapi errors), as Docker users see them.
POOL_OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"
NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"
NO_ADDRESSES = "no available addresses on this pool"
ADDRESS_IN_USE = "Address already in use"
OUT_OF_RANGE = "requested address is out of range"


class Exhausted(FailedPrecondition):
    """No subnet, address or VXLAN ID is free: the request may succeed once something is released
    (the allocator leaves the task NEW and retries, as swarmkit's ``unallocated*`` maps)."""


def parse_subnet(text: str | IPv4Network, what: str = "subnet") -> IPv4Network:
    """An IPv4 network in CIDR form with no host bits set, or InvalidArgument."""
    if isinstance(text, IPv4Network):
        return text
    try:
        net = ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what} {text}: {exc}") from None
    if not isinstance(net, IPv4Network):
        raise InvalidArgument(f"invalid {what} {text}: only IPv4 is supported")
    if "/" not in text:
        raise InvalidArgument(f"invalid {what} {text}: it must be in CIDR format")
    if net.network_address != ip_interface(text).ip:
        raise InvalidArgument(f"invalid {what} {text}: it should be {net}")
    return net


def _parse_address(text: str | IPv4Address, what: str = "address") -> IPv4Address:
    if isinstance(text, IPv4Address):
        return text
    try:
        addr = ip_address(text.split("/", 1)[0])
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what} {text}: {exc}") from None
    if not isinstance(addr, IPv4Address):
        raise InvalidArgument(f"invalid {what} {text}: only IPv4 is supported")
    return addr


def _parse_interface(text: str) -> IPv4Interface:
    """``"10.0.1.5/24"`` as stored on VIPs and attachments."""
    try:
        iface = ip_interface(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid address {text}: {exc}") from None
    if not isinstance(iface, IPv4Interface):
        raise InvalidArgument(f"invalid address {text}: only IPv4 is supported")
    return iface


class _Bitmap:
    """Which integers of [lo, hi] are taken; the next free one found serially or lowest-first.

    A Python int is the bit set (bit n = integer lo + n), so the first free bit from a position
    is one shift and one two's-complement trick, done in C even for a /8.
    """

    def __init__(self, lo: int, hi: int, *, serial: bool) -> None:
        self.lo, self.hi, self.serial = lo, hi, serial
        self._bits = 0
        self._count = 0
        self._cursor = 0  # serial: where the next search starts; else the lowest maybe-free bit

    def __contains__(self, n: int) -> bool:
        return self.lo <= n <= self.hi and bool(self._bits >> (n - self.lo) & 1)

    def __len__(self) -> int:
        return self._count

    def _first_free(self, start: int, end: int) -> int | None:
        """The first free bit in [start, end] (bit positions), or None."""
        if start > end:
            return None
        free = ~(self._bits >> start)  # negative: the infinite ones above hi are "free" too
        pos = start + (free & -free).bit_length() - 1
        return pos if pos <= end else None

    def take_any(self, first: int | None = None, last: int | None = None) -> int | None:
        """Take a free integer within [first, last] (default: all), or None when all are taken."""
        start = (self.lo if first is None else first) - self.lo
        end = (self.hi if last is None else last) - self.lo
        cursor = min(max(self._cursor, start), end + 1)
        pos = self._first_free(cursor, end)
        if pos is None:
            pos = self._first_free(start, cursor - 1)
        if pos is None:
            return None
        self._set(pos)
        if self.serial:
            self._cursor = pos + 1
        elif first is None:
            self._cursor = pos + 1  # every bit below is taken
        return self.lo + pos

    def take(self, n: int) -> bool:
        """Take ``n``; False if it was taken already."""
        if n in self:
            return False
        self._set(n - self.lo)
        return True

    def free(self, n: int) -> None:
        if n not in self:
            return
        self._bits &= ~(1 << (n - self.lo))
        self._count -= 1
        if not self.serial:
            self._cursor = min(self._cursor, n - self.lo)

    def seek_after(self, n: int) -> None:
        """Serial: continue after ``n`` (a new leader does not reuse the newest addresses)."""
        if self.serial:
            self._cursor = max(self._cursor, n - self.lo + 1)

    def _set(self, pos: int) -> None:
        self._bits |= 1 << pos
        self._count += 1


class AddressPool:
    """Subnets for networks: user-given ones reserved as they are, others carved in order from
    the default pools (``swarm init --default-addr-pool``, ``--default-addr-pool-mask-length``).
    No two reserved subnets overlap, whether they came from a pool or from a user."""

    def __init__(
        self, base: str | Sequence[str] = DEFAULT_POOL, size: int = DEFAULT_SUBNET_SIZE
    ) -> None:
        bases = [base] if isinstance(base, str) else base
        self.bases = [parse_subnet(b, "address pool") for b in bases]
        for b in self.bases:
            if not b.prefixlen <= size <= 30:
                raise InvalidArgument(
                    f"invalid subnet size {size} for address pool {b}: it must be between "
                    f"{b.prefixlen} and 30"
                )
        self.size = size
        self._starts: list[int] = []  # reserved subnets, sorted, disjoint
        self._ends: list[int] = []
        # Per base: every block below is known taken, so a search need not walk them again.
        self._hints = [int(b.network_address) for b in self.bases]

    @property
    def subnets(self) -> list[IPv4Network]:
        return [
            IPv4Network((IPv4Address(s), 32 - (e - s + 1).bit_length() + 1))
            for s, e in zip(self._starts, self._ends, strict=True)
        ]

    def _overlapping(self, start: int, end: int) -> int | None:
        """The index of a reserved subnet overlapping [start, end], if any."""
        i = bisect.bisect_right(self._starts, end) - 1
        return i if i >= 0 and self._ends[i] >= start else None

    def _insert(self, net: IPv4Network) -> None:
        start = int(net.network_address)
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, int(net.broadcast_address))

    def reserve_subnet(self, subnet: str | IPv4Network) -> IPv4Network:
        """Reserve a user-given (or restored) subnet; Conflict if it overlaps one reserved."""
        net = parse_subnet(subnet)
        if self._overlapping(int(net.network_address), int(net.broadcast_address)) is not None:
            raise Conflict(POOL_OVERLAP)
        self._insert(net)
        return net

    def allocate_subnet(self) -> IPv4Network:
        """The first subnet of the pools' size that overlaps none reserved."""
        block = 1 << (32 - self.size)
        for b, base in enumerate(self.bases):
            start, last = self._hints[b], int(base.broadcast_address)
            while start + block - 1 <= last:
                i = self._overlapping(start, start + block - 1)
                if i is None:
                    net = IPv4Network((IPv4Address(start), self.size))
                    self._insert(net)
                    self._hints[b] = start + block
                    return net
                start = -(-(self._ends[i] + 1) // block) * block  # next aligned block after it
            self._hints[b] = start
        raise Exhausted(NO_MORE_SUBNETS)

    def release_subnet(self, subnet: str | IPv4Network) -> None:
        """Forget a subnet (idempotent)."""
        net = parse_subnet(subnet)
        i = bisect.bisect_left(self._starts, int(net.network_address))
        start, end = int(net.network_address), int(net.broadcast_address)
        if i < len(self._starts) and (self._starts[i], self._ends[i]) == (start, end):
            del self._starts[i], self._ends[i]
            block = 1 << (32 - self.size)
            for b, base in enumerate(self.bases):
                if net.overlaps(base):
                    aligned = max(start, int(base.network_address)) // block * block
                    self._hints[b] = min(self._hints[b], aligned)


class NetworkIPAM:
    """The addresses of one subnet: the gateway fixed, others handed out from ``ip_range`` (the
    whole subnet by default), never the network or broadcast address."""

    def __init__(
        self,
        subnet: str | IPv4Network,
        gateway: str | IPv4Address | None = None,
        ip_range: str | IPv4Network | None = None,
        *,
        serial: bool = True,
    ) -> None:
        self.subnet = parse_subnet(subnet)
        self.ip_range = parse_subnet(ip_range, "ip-range") if ip_range else None
        if self.ip_range is not None and not self.ip_range.subnet_of(self.subnet):
            raise InvalidArgument(f"no matching subnet for range {self.ip_range}")
        lo, hi = int(self.subnet.network_address), int(self.subnet.broadcast_address)
        self._fixed: set[int] = set()
        if self.subnet.prefixlen <= 30:  # /31 and /32 have no network or broadcast address
            self._fixed |= {lo, hi}
            lo, hi = lo + 1, hi - 1
        # Only the hosts are in the bit set, so it grows with the addresses in use, not the subnet.
        self._bitmap = _Bitmap(lo, hi, serial=serial)
        gw = _parse_address(gateway, "gateway") if gateway else next(iter(self.subnet.hosts()), None)
        if gw is None or gw not in self.subnet:
            raise InvalidArgument(f"no matching subnet for gateway {gateway}")
        if int(gw) in self._fixed:
            raise InvalidArgument(
                f"invalid gateway {gw}: it is the network or broadcast address of {self.subnet}"
            )
        self.gateway: IPv4Address = gw
        self._fixed.add(int(gw))
        self._bitmap.take(int(gw))

    def config(self) -> IPAMConfig:
        """As stored on the network (Docker's IPAM.Config entry)."""
        return IPAMConfig(
            subnet=str(self.subnet),
            gateway=str(self.gateway),
            ip_range=str(self.ip_range) if self.ip_range else "",
        )

    @property
    def in_use(self) -> int:
        """Addresses handed out (not counting network, broadcast and gateway)."""
        return len(self._bitmap) - 1

    def __contains__(self, addr: str | IPv4Address) -> bool:
        """Whether ``addr`` is taken (gateway, network and broadcast included)."""
        n = int(_parse_address(addr))
        return n in self._fixed or n in self._bitmap

    def interface(self, addr: IPv4Address) -> str:
        """``addr`` with the subnet's prefix, as on VIPs and attachments: "10.0.1.5/24"."""
        return f"{addr}/{self.subnet.prefixlen}"

    def allocate(self, preferred: str | IPv4Address | None = None) -> IPv4Address:
        """``preferred`` (anywhere in the subnet) or the next free address of the range."""
        if preferred is not None:
            addr = _parse_address(preferred)
            self.reserve(addr)
            return addr
        first = last = None
        if self.ip_range is not None:
            first = max(int(self.ip_range.network_address), self._bitmap.lo)
            last = min(int(self.ip_range.broadcast_address), self._bitmap.hi)
        n = self._bitmap.take_any(first, last)
        if n is None:
            raise Exhausted(NO_ADDRESSES)
        return IPv4Address(n)

    def reserve(self, addr: str | IPv4Address) -> None:
        """Take a given address (a user's ``--ip``, or one restored from the store)."""
        a = _parse_address(addr)
        if a not in self.subnet:
            raise InvalidArgument(OUT_OF_RANGE)
        if int(a) in self._fixed or not self._bitmap.take(int(a)):
            raise Conflict(ADDRESS_IN_USE)

    def release(self, addr: str | IPv4Address) -> None:
        """Give an address back (idempotent); the gateway, network and broadcast never go."""
        a = _parse_address(addr)
        if a not in self.subnet:
            raise InvalidArgument(OUT_OF_RANGE)
        if int(a) in self._fixed:
            raise InvalidArgument(f"address {a} is reserved in {self.subnet}")
        self._bitmap.free(int(a))

    def seek_after(self, addr: IPv4Address) -> None:
        """Serial allocation continues after ``addr``."""
        self._bitmap.seek_after(int(addr))


class VXLANIDs:
    """VXLAN network identifiers, one per overlay subnet, from 4096 to 2^24-1."""

    def __init__(
        self, start: int = VXLAN_ID_START, end: int = VXLAN_ID_END, *, serial: bool = True
    ) -> None:
        if not 1 <= start <= end <= VXLAN_ID_END:
            raise InvalidArgument(f"invalid VXLAN ID range {start}-{end}")
        self._bitmap = _Bitmap(start, end, serial=serial)

    def __contains__(self, vni: int) -> bool:
        return vni in self._bitmap

    def allocate(self) -> int:
        n = self._bitmap.take_any()
        if n is None:
            raise Exhausted("no available VXLAN IDs")
        return n

    def reserve(self, vni: int) -> None:
        if not self._bitmap.lo <= vni <= self._bitmap.hi:
            raise InvalidArgument(f"VXLAN ID {vni} is out of range")
        if not self._bitmap.take(vni):
            raise Conflict(f"VXLAN ID {vni} is already in use")

    def release(self, vni: int) -> None:
        self._bitmap.free(vni)

    def seek_after(self, vni: int) -> None:
        self._bitmap.seek_after(vni)


@dataclass
class IPAMState:
    """Everything allocated: subnets, the addresses of each network's subnets, VNIs."""

    pool: AddressPool = field(default_factory=AddressPool)
    vxlan: VXLANIDs = field(default_factory=VXLANIDs)
    networks: dict[str, list[NetworkIPAM]] = field(default_factory=dict)
    vnis: dict[str, list[int]] = field(default_factory=dict)
    serial: bool = True

    def allocate_network(
        self, network_id: str, requested: Sequence[IPAMConfig] = ()
    ) -> tuple[list[IPAMConfig], dict[str, Any]]:
        """Subnets (the user's, or one from the pool), gateways and a VNI per subnet for a new
        network: its IPAM configs and driver state. All or nothing."""
        if network_id in self.networks:
            raise Conflict(f"network {network_id} is already allocated")
        subnets: list[NetworkIPAM] = []
        vnis: list[int] = []
        try:
            for cfg in requested or [IPAMConfig()]:
                if cfg.subnet:
                    net = self.pool.reserve_subnet(cfg.subnet)
                else:
                    if cfg.gateway or cfg.ip_range:
                        raise InvalidArgument("a gateway or ip-range needs a subnet")
                    net = self.pool.allocate_subnet()
                try:
                    ipam = NetworkIPAM(net, cfg.gateway or None, cfg.ip_range or None,
                                       serial=self.serial)
                except Exception:
                    self.pool.release_subnet(net)
                    raise
                subnets.append(ipam)
            vnis.extend(self.vxlan.allocate() for _ in subnets)  # once the subnets are sure
        except Exception:
            for ipam in subnets:
                self.pool.release_subnet(ipam.subnet)
            for vni in vnis:
                self.vxlan.release(vni)
            raise
        self.networks[network_id], self.vnis[network_id] = subnets, vnis
        return [s.config() for s in subnets], overlay_driver_state(vnis)

    def release_network(self, network_id: str) -> None:
        """Free a removed network's subnets and VNIs (idempotent)."""
        for ipam in self.networks.pop(network_id, []):
            self.pool.release_subnet(ipam.subnet)
        for vni in self.vnis.pop(network_id, []):
            self.vxlan.release(vni)

    def _subnets(self, network_id: str) -> list[NetworkIPAM]:
        try:
            return self.networks[network_id]
        except KeyError:
            raise NotFound(f"network {network_id} is not allocated") from None

    def allocate_address(self, network_id: str, preferred: str | None = None) -> str:
        """An address on the network for a VIP or a task attachment, as "10.0.1.5/24"."""
        subnets = self._subnets(network_id)
        if preferred:
            addr = _parse_address(preferred)
            for ipam in subnets:
                if addr in ipam.subnet:
                    return ipam.interface(ipam.allocate(addr))
            raise InvalidArgument(OUT_OF_RANGE)
        for ipam in subnets:
            try:
                return ipam.interface(ipam.allocate())
            except Exhausted:
                continue
        raise Exhausted(NO_ADDRESSES)

    def reserve_address(self, network_id: str, addr: str) -> NetworkIPAM:
        """Take an address already held by a VIP or attachment ("10.0.1.5/24"); its subnet."""
        a = _parse_interface(addr).ip
        for ipam in self._subnets(network_id):
            if a in ipam.subnet:
                ipam.reserve(a)
                return ipam
        raise InvalidArgument(OUT_OF_RANGE)

    def release_address(self, network_id: str, addr: str) -> None:
        """Give back a VIP's or attachment's address; nothing if the network is gone."""
        a = _parse_interface(addr).ip
        for ipam in self.networks.get(network_id, []):
            if a in ipam.subnet:
                ipam.release(a)
                return


def rebuild(
    networks: Iterable[Network],
    services: Iterable[Service] = (),
    tasks: Iterable[Task] = (),
    *,
    extra: Iterable[tuple[str, str]] = (),
    pool: str | Sequence[str] = DEFAULT_POOL,
    size: int = DEFAULT_SUBNET_SIZE,
    serial: bool = True,
) -> tuple[IPAMState, list[str]]:
    """The allocation state held by the store's objects, for a new leader, and the problems met
    (overlapping subnets, addresses held twice, addresses on unknown networks) for its log.

    Pass only the networks that are allocated (their ``ipam_options`` set) and the tasks that
    still hold their addresses (not yet deallocated); ``extra`` is (network ID, "addr/len") pairs
    held elsewhere, such as nodes' load-balancer addresses. Serial allocation then continues
    after the highest address and VNI in use.
    """
    state = IPAMState(pool=AddressPool(pool, size), serial=serial)
    problems: list[str] = []
    for net in networks:
        subnets: list[NetworkIPAM] = []
        for cfg in net.subnets() if net.allocated else ():  # not the requested ones
            try:
                subnet = state.pool.reserve_subnet(cfg.subnet)
                subnets.append(NetworkIPAM(subnet, cfg.gateway or None, cfg.ip_range or None,
                                           serial=serial))
            except (InvalidArgument, Conflict) as exc:
                problems.append(f"network {net.id}: subnet {cfg.subnet}: {exc.message}")
        vnis: list[int] = []
        for vni in net.vxlan_ids():
            try:
                state.vxlan.reserve(vni)
                state.vxlan.seek_after(vni)
                vnis.append(vni)
            except (InvalidArgument, Conflict) as exc:
                problems.append(f"network {net.id}: {exc.message}")
        if subnets:
            state.networks[net.id], state.vnis[net.id] = subnets, vnis

    held: list[tuple[str, str, str]] = [(nid, addr, "extra") for nid, addr in extra]
    for svc in services:
        held += [(v.network_id, v.addr, f"service {svc.id}")
                 for v in svc.endpoint.virtual_ips or [] if v.addr]
    for task in tasks:
        for att in task.networks_attachments or []:
            nid = att.network.id
            held += [(nid, a, f"task {task.id}") for a in att.addresses or []]
    for nid, addr, owner in held:
        if nid not in state.networks:
            problems.append(f"{owner}: address {addr} on unknown network {nid}")
            continue
        try:
            state.reserve_address(nid, addr).seek_after(_parse_interface(addr).ip)
        except (InvalidArgument, Conflict) as exc:
            problems.append(f"{owner}: address {addr} on network {nid}: {exc.message}")
    return state, problems
