"""The gateway bridge: a task container's way out (libnetwork's docker_gwbridge).

Overlay endpoints never carry a default route, so libnetwork gives every sandbox that has a
non-internal endpoint one more, on a node-local bridge with NAT (../shared/reference/
swarm-features.md 5.3). Shoal does the same with ``shoal_gwbridge``: the container's last
interface, its default route via the bridge's address, the bridge's subnet masqueraded out of
the node's other interfaces (nft.gateway_table). Which containers get one is `wants_gateway`;
the subnet is `choose_subnet`; the addresses on it are `AddressBook`'s. Pure: the kernel side is
in links.py and the NetworkAgent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from shoal.net.errors import NetError

__all__ = ["BRIDGE", "DEFAULT_SUBNET", "MTU", "AddressBook", "candidates", "choose_subnet",
           "wants_gateway"]

BRIDGE = "shoal_gwbridge"  # docker_gwbridge's role; a name of our own beside a dockerd's
MTU = 1500  # docker_gwbridge's: a plain bridge, no encapsulation
DEFAULT_SUBNET = IPv4Network("172.18.0.0/16")  # where docker_gwbridge usually lands

NO_POOL = ("could not find an available, non-overlapping IPv4 address pool among the defaults "
           "to assign to the network")  # libnetwork's words, for the same failure


def candidates() -> Iterator[IPv4Network]:
    """libnetwork's local default pools in the order tried: 172.18-172.31/16 (172.17 is
    docker0's on a machine that also runs Docker, so it comes last), then 192.168.0.0/16 in
    /20s, then 172.17.0.0/16."""
    for second in range(18, 32):
        yield IPv4Network(f"172.{second}.0.0/16")
    yield from IPv4Network("192.168.0.0/16").subnets(new_prefix=20)
    yield IPv4Network("172.17.0.0/16")


def choose_subnet(taken: Iterable[IPv4Network]) -> IPv4Network:
    """The first candidate that overlaps none of ``taken`` (the node's addresses and routes);
    a default route (0.0.0.0/0) overlaps everything and so is no reason to skip one."""
    busy = [n for n in taken if n.prefixlen > 0]
    for subnet in candidates():
        if not any(subnet.overlaps(n) for n in busy):
            return subnet
    raise NetError(NO_POOL)


def wants_gateway(internal: Iterable[bool], *, default_bridge: bool) -> bool:
    """Whether a container with networks whose ``internal`` flags are given gets the gateway:
    with any non-internal network, yes (the overlays give it no way out); on `--internal`
    networks only, no (nor a default route). With no network at all, Docker puts a swarm task
    on its default bridge, which gives it a way out; here the gateway bridge does, unless the
    daemon runs with ``--bridge none`` (dockerd's: such containers get loopback only)."""
    flags = list(internal)
    if not flags:
        return default_bridge
    return not all(flags)


class AddressBook:
    """The gateway subnet's addresses: the first is the bridge's (the containers' gateway),
    the others go one per container, the lowest free first (libnetwork's bridge IPAM). Keyed
    by whatever names a container (its namespace's name)."""

    def __init__(self, subnet: IPv4Network) -> None:
        if subnet.num_addresses < 4:
            raise NetError(f"gateway subnet {subnet} is too small")
        self.subnet = subnet
        self.gateway = IPv4Interface(f"{subnet.network_address + 1}/{subnet.prefixlen}")
        self._by_key: dict[str, IPv4Address] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> IPv4Interface | None:
        ip = self._by_key.get(key)
        return IPv4Interface(f"{ip}/{self.subnet.prefixlen}") if ip is not None else None

    def adopt(self, key: str, ip: str | IPv4Address) -> bool:
        """Record an address a container already has (found in the kernel after a restart);
        False, recording nothing, if it is not a container address of this subnet or is
        another key's."""
        addr = ipaddress.IPv4Address(ip)
        if (addr not in self.subnet or addr in (self.subnet.network_address,
                                                 self.subnet.broadcast_address,
                                                 self.gateway.ip)):
            return False
        if addr in self._by_key.values() and self._by_key.get(key) != addr:
            return False
        self._by_key[key] = addr
        return True

    def allocate(self, key: str) -> IPv4Interface:
        """``key``'s address, a new one if it has none: the lowest free."""
        found = self.get(key)
        if found is not None:
            return found
        used = set(self._by_key.values())
        for addr in self.subnet.hosts():
            if addr != self.gateway.ip and addr not in used:
                self._by_key[key] = addr
                return IPv4Interface(f"{addr}/{self.subnet.prefixlen}")
        raise NetError(f"no free address left on the gateway subnet {self.subnet}")

    def release(self, key: str) -> None:
        self._by_key.pop(key, None)
