"""A local bridge network's configuration: what ``docker network create -d bridge`` asks,
checked option by option, and the subnet it gets (libnetwork's bridge driver and default IPAM).

Pure: `configure` turns a NetworkSpec into a `BridgeNet` (or refuses with the option's name:
nothing is accepted and then ignored); `choose_pool` picks the first of Docker's local default
pools (172.17-172.31/16, then 192.168.0.0/16 in /20s) that overlaps nothing in use. The kernel
side is bridges.py; the records are kept by localstore.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network

import msgspec

from shoal.errors import Conflict, InvalidArgument
from shoal.model.specs import NetworkSpec
from shoal.net.errors import NetError

__all__ = ["DEFAULT_BRIDGE", "NO_POOL", "POOL_OVERLAP", "BridgeNet", "choose_pool", "configure",
           "pools"]

DEFAULT_BRIDGE = "shoal0"  # docker0's role; a name of our own beside a dockerd's
NO_POOL = ("could not find an available, non-overlapping IPv4 address pool among the defaults "
           "to assign to the network")  # libnetwork's words
POOL_OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"

_OPT = "com.docker.network.bridge."
_BOOL_OPTS = {_OPT + "enable_icc": "icc", _OPT + "enable_ip_masquerade": "masquerade"}
# Options Docker's bridge driver knows that Shoal refuses, with the reason.
_REFUSED = {
    _OPT + "gateway_mode_ipv4": "only the default (nat) gateway mode is supported",
    _OPT + "gateway_mode_ipv6": "IPv6 is not supported",
    _OPT + "inhibit_ipv4": "the bridge always holds its gateway address",
    _OPT + "trusted_host_interfaces": "not supported",
    _OPT + "default_bridge": "only the predefined bridge network is the default one",
    "com.docker.network.enable_ipv6": "IPv6 is not supported",
    "com.docker.network.container_iface_prefix": "containers' interfaces are eth<N>",
}
_IFNAME = re.compile(r"[A-Za-z0-9_.\-]{1,15}")


class BridgeNet(msgspec.Struct, kw_only=True):
    """One local bridge network, as kept on disk and shown by inspect."""

    id: str
    name: str
    created: str  # RFC 3339
    bridge: str  # the Linux bridge's name
    subnet: str
    gateway: str
    ip_range: str = ""
    aux: dict[str, str] = msgspec.field(default_factory=dict)
    user_subnet: bool = False  # --subnet given: fixed addresses allowed
    internal: bool = False
    attachable: bool = False
    icc: bool = True
    masquerade: bool = True
    host_ip: str = ""  # host_binding_ipv4: the default address of published ports
    mtu: int = 1500
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    options: dict[str, str] = msgspec.field(default_factory=dict)  # as given, shown by inspect
    predefined: bool = False  # the default "bridge" network

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(self.subnet)

    def reserved(self) -> set[IPv4Address]:
        """Addresses no endpoint gets: the gateway and the aux addresses."""
        out = {IPv4Address(self.gateway)}
        out.update(IPv4Address(a) for a in self.aux.values())
        return out

    def allocate(self, used: Iterable[str]) -> IPv4Address:
        """The lowest free address of the range (the subnet without one)."""
        taken = self.reserved() | {IPv4Address(a) for a in used}
        span = IPv4Network(self.ip_range or self.subnet)
        net = self.network
        for addr in span:
            if addr in (net.network_address, net.broadcast_address) or addr in taken:
                continue
            return addr
        raise Conflict(f"no available IPv4 addresses on this network's address pools: "
                       f"{self.name} ({self.id})")

    def check_fixed(self, ip: str, used: Iterable[str]) -> IPv4Address:
        """A user's IPv4Address for an endpoint: a user-set subnet, inside it, free."""
        if not self.user_subnet:
            raise InvalidArgument("user specified IP address is supported only when "
                                  "connecting to networks with user configured subnets")
        try:
            addr = IPv4Address(ip)
        except ValueError as e:
            raise InvalidArgument(f"invalid IPv4 address: {ip}") from e
        net = self.network
        if addr not in net or addr in (net.network_address, net.broadcast_address):
            raise InvalidArgument(f"no configured subnet or ip-range contain the IP address "
                                  f"{ip}")
        if addr in self.reserved() or ip in set(used):
            raise Conflict(f"Address already in use: {ip}")
        return addr


def pools() -> Iterator[IPv4Network]:
    """Docker's local default address pools, in order."""
    for second in range(17, 32):
        yield IPv4Network(f"172.{second}.0.0/16")
    yield from IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


def choose_pool(taken: Iterable[IPv4Network]) -> IPv4Network:
    busy = [n for n in taken if n.prefixlen > 0]  # a default route overlaps everything
    for subnet in pools():
        if not any(subnet.overlaps(n) for n in busy):
            return subnet
    raise NetError(NO_POOL)


def _bool(key: str, value: str) -> bool:
    if value.lower() in ("1", "t", "true"):
        return True
    if value.lower() in ("0", "f", "false"):
        return False
    raise InvalidArgument(f"failed to parse {key} value {value!r}: invalid syntax")


def _subnet(text: str, what: str) -> IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise InvalidArgument(f"invalid {what}: {text}") from e
    if not isinstance(net, IPv4Network):
        raise InvalidArgument(f"invalid {what} {text}: IPv6 is not supported on bridge networks")
    return net


def _options(net: BridgeNet, options: dict[str, str]) -> None:
    for key, value in options.items():
        if key in _BOOL_OPTS:
            setattr(net, _BOOL_OPTS[key], _bool(key, value))
        elif key == _OPT + "name":
            if not _IFNAME.fullmatch(value):
                raise InvalidArgument(f"invalid bridge name {value!r} ({key})")
            net.bridge = value
        elif key == _OPT + "host_binding_ipv4":
            try:
                net.host_ip = IPv4Address(value).compressed
            except ValueError as e:
                raise InvalidArgument(f"invalid {key} value {value!r}") from e
        elif key in (_OPT + "mtu", "com.docker.network.driver.mtu"):
            try:
                net.mtu = int(value)
            except ValueError as e:
                raise InvalidArgument(f"invalid {key} value {value!r}") from e
            if not 68 <= net.mtu <= 65535:
                raise InvalidArgument(f"invalid {key} value {value!r}: 68 to 65535")
        elif key in _REFUSED:
            raise InvalidArgument(f"network option {key!r} is not supported: {_REFUSED[key]}")
        else:
            raise InvalidArgument(f"network option {key!r} is not supported by the bridge "
                                  "driver")


def configure(spec: NetworkSpec, *, net_id: str, created: str,
              taken: Iterable[IPv4Network]) -> BridgeNet:
    """A new user bridge network from the create request; ``taken``: what its subnet must not
    overlap (the node's routes and addresses, the other local networks)."""
    if spec.enable_ipv6:
        raise InvalidArgument("IPv6 is not supported on bridge networks (--ipv6)")
    if spec.enable_ipv4 is False:
        raise InvalidArgument("a bridge network needs IPv4 (--ipv4=false)")
    if spec.ingress:
        raise InvalidArgument("only an overlay network can be the ingress network")
    if spec.config_only or spec.config_from:
        raise InvalidArgument("--config-only and --config-from are not supported")
    ipam = spec.ipam
    if ipam is not None and ipam.driver not in ("", "default"):
        raise InvalidArgument(f"IPAM driver {ipam.driver!r} is not supported: only default")
    if ipam is not None and ipam.options:
        raise InvalidArgument(f"IPAM option {next(iter(ipam.options))!r} is not supported")
    configs = spec.subnets()
    if len(configs) > 1:
        raise InvalidArgument("only one IPv4 subnet per bridge network is supported")
    cfg = configs[0] if configs else None
    busy = list(taken)
    if cfg is not None and cfg.subnet:
        subnet = _subnet(cfg.subnet, "subnet")
        if any(subnet.overlaps(n) for n in busy):
            raise Conflict(POOL_OVERLAP)
    elif cfg is not None and (cfg.gateway or cfg.ip_range or cfg.aux_address):
        raise InvalidArgument("invalid IPAM config: a gateway, ip-range or aux-address needs a "
                              "subnet")
    else:
        subnet = choose_pool(busy)
    gateway = subnet.network_address + 1
    net = BridgeNet(id=net_id, name=spec.name, created=created, bridge="br-" + net_id[:12],
                    subnet=subnet.with_prefixlen, gateway=str(gateway),
                    user_subnet=bool(cfg and cfg.subnet), internal=spec.internal,
                    attachable=spec.attachable, labels=dict(spec.labels or {}),
                    options=dict(spec.options or {}))
    if cfg is not None:
        _addresses(net, subnet, cfg.gateway, cfg.ip_range, cfg.aux_address or {})
    _options(net, net.options)
    return net


def _addresses(net: BridgeNet, subnet: IPv4Network, gateway: str, ip_range: str,
               aux: dict[str, str]) -> None:
    def inside(text: str, what: str) -> IPv4Address:
        try:
            addr = IPv4Address(text)
        except ValueError as e:
            raise InvalidArgument(f"invalid {what}: {text}") from e
        if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
            raise InvalidArgument(f"{what} {text} is not a host address of subnet {subnet}")
        return addr

    if gateway:
        net.gateway = str(inside(gateway, "gateway"))
    if ip_range:
        span = _subnet(ip_range, "ip-range")
        if not span.subnet_of(subnet):
            raise InvalidArgument(f"ip-range {ip_range} is not in subnet {subnet}")
        net.ip_range = span.with_prefixlen
    for name, text in aux.items():
        addr = inside(text, f"aux-address {name}")
        if str(addr) == net.gateway:
            raise InvalidArgument(f"aux-address {name}={text} is the gateway's address")
        net.aux[name] = str(addr)
