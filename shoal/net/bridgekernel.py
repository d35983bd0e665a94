"""The kernel side of local bridge networks, synchronous, in the calling thread's namespace (the
node's: bridges.LocalBridges runs these in a thread there): a bridge per network with its
gateway address, a veth per endpoint (links.attach_to_bridge), the default route in a
container, the ``shoal_br`` table, and a free ephemeral host port."""

from __future__ import annotations

import ipaddress
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from shoal.net import links, netns, nft
from shoal.net.bridgeconf import BridgeNet
from shoal.net.bridgenft import TABLE
from shoal.net.errors import NetError

__all__ = ["EPHEMERAL", "default_route", "ensure_network", "free_port",
           "plug", "remove_network", "remove_rules"]

EPHEMERAL = range(32768, 61000)  # Docker's host ports for -p 80 (ip_local_port_range's)


def ensure_network(net: BridgeNet) -> None:
    """The network's bridge with its gateway address, up, and what its published ports need:
    forwarding on in this namespace, route_localnet on the bridge (127.0.0.1:PORT)."""
    prefix = ipaddress.IPv4Network(net.subnet).prefixlen
    links.ensure_bridge(net.bridge, f"{net.gateway}/{prefix}", mtu=net.mtu)
    netns.write_sysctl("net.ipv4.ip_forward", "1")
    netns.write_sysctl(f"net/ipv4/conf/{net.bridge}/route_localnet", "1")


def remove_network(net: BridgeNet) -> None:
    links.remove_link(net.bridge)


def plug(ns_path: str, net: BridgeNet, host_ifname: str, ip: str, *, ifname: str,
         gateway: bool) -> None:
    """A veth from the bridge into the container as ``ifname`` with ``ip`` (its MAC derived
    from it, 02:42:ac:11:00:02 as Docker's), in hairpin mode, and, if ``gateway``, the
    default route."""
    prefix = ipaddress.IPv4Network(net.subnet).prefixlen
    links.attach_to_bridge(ns_path, net.bridge, host_ifname, f"{ip}/{prefix}", mtu=net.mtu,
                           ifname=ifname, gateway=net.gateway if gateway else None)
    # hairpin on the port (dockerd's without its userland proxy): a container reaching its own
    # published port is DNATed back to itself by the bridge's netfilter, out the port it came in
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=host_ifname)
        if not index:
            raise NetError(f"veth {host_ifname} vanished")
        try:
            ipr.brport("set", index=index[0], mode=1)
        except NetlinkError as e:
            raise NetError(f"hairpin on {host_ifname}: {e}") from e


def default_route(ns_path: str, gateway: str | None, ifname: str) -> None:
    """Inside the container: the default route via ``gateway`` on ``ifname``, or none."""
    def inside() -> None:
        with IPRoute() as ipr:
            try:
                if gateway is None:
                    ipr.route("del", dst="0.0.0.0/0")
                    return
                index = ipr.link_lookup(ifname=ifname)
                if not index:
                    raise NetError(f"no {ifname} in {ns_path}")
                ipr.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=index[0])
            except NetlinkError as e:
                if gateway is not None or e.code != 3:  # ESRCH: no route to delete
                    raise NetError(f"default route via {gateway}: {e}") from e

    netns.run_in(ns_path, inside)


def remove_rules() -> None:
    nft.delete_table(TABLE)


def free_port(protocol: str, host_ip: str, taken: set[int]) -> int:
    """An ephemeral port nobody here listens on (a bind test) and none of ours holds."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    for port in EPHEMERAL:
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host_ip or "0.0.0.0", port))
            except OSError:
                continue
        return port
    raise NetError("no free host port left in 32768-60999")
