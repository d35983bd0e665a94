"""Overlay links in the calling thread's network namespace: per network a bridge and a VXLAN
device, the static forwarding entries for the peers, and each container's veth; and plain
bridges (the gateway bridge, gateway.py) with the node-side facts choosing its subnet.

Docker swarm's data path without flooding (../shared/reference/linux.md section 3): a task's MAC
is derived from its overlay address (`mac_for`), so a node knows, from the gossip tables alone,
the fdb entry (MAC -> remote VTEP) and the neighbour entry (IP -> MAC) for every remote task, and
the vxlan device answers ARP from its neighbour table (proxy on). Learning is off, so nothing
but these entries decides where a frame goes.

Everything is synchronous, idempotent, and uses a plain pyroute2 IPRoute opened by the calling
thread, so it acts in that thread's netns (see `shoal.net.netns.run_in`; pyroute2's own netns=
argument forks). Kernel refusals come back as `NetError` with the kernel's message.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from shoal.errors import InvalidArgument
from shoal.net import netns
from shoal.net.errors import NetError

__all__ = [
    "NetError",
    "Overlay",
    "addresses_in",
    "attach",
    "attach_to_bridge",
    "bridge_name",
    "bridge_state",
    "detach",
    "ensure_bridge",
    "ensure_overlay",
    "gateway_ifname",
    "host_ifname",
    "ipv4_networks",
    "mac_for",
    "overlay_unused",
    "overlay_vnis",
    "remove_link",
    "remove_overlay",
    "set_remote_endpoints",
    "vxlan_name",
]

T = TypeVar("T")

VXLAN_PORT = 4789  # IANA's, Docker's default; a swarm's own is its DataPathPort (swarm init)
MAC_PREFIX = "02:42"            # docker's locally administered prefix; marks our entries
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF = 0x02


def mac_for(ip: str) -> str:
    """The MAC of the task holding IPv4 ``ip`` on an overlay: "10.0.1.2" -> "02:42:0a:00:01:02"."""
    try:
        packed = ipaddress.IPv4Address(ip).packed
    except ValueError as e:
        raise InvalidArgument(f"not an IPv4 address: {ip!r}") from e
    return MAC_PREFIX + "".join(f":{b:02x}" for b in packed)


def bridge_name(vni: int) -> str:
    return f"shbr{vni}"


def vxlan_name(vni: int) -> str:
    return f"shvx{vni}"


def host_ifname(container_id: str, index: int) -> str:
    """The host end of a container's ``index``-th veth: unique per (container, index), and
    within IFNAMSIZ (15)."""
    if not 0 <= index < 100:
        raise InvalidArgument(f"attachment index out of range: {index}")
    return "shv" + container_id[:10].ljust(10, "0") + str(index)


def gateway_ifname(container_id: str) -> str:
    """The host end of a container's veth on the gateway bridge (IFNAMSIZ: 15)."""
    return "shgw" + container_id[:11].ljust(11, "0")


@dataclass(frozen=True, slots=True)
class Overlay:
    """One overlay network on this node. ``local_ip`` is the node's underlay address (the VTEP;
    the underlay device is the one holding it); ``address`` ("10.0.0.3/24") is the node's own
    address on the bridge, for the ingress network's routing mesh only. ``port`` is the UDP port
    VXLAN sends to and listens on: the swarm's DataPathPort, the same on every node."""

    vni: int
    local_ip: str
    mtu: int = 1450
    address: str | None = None
    port: int = VXLAN_PORT


@contextmanager
def _netlink(what: str, gone: tuple[int, ...] = ()) -> Iterator[None]:
    """Netlink errors as NetError with the kernel's message; the errnos in ``gone`` (the
    kernel's "already gone" answers to a delete) mean nothing was left to do."""
    try:
        yield
    except NetlinkError as e:
        if e.code in gone:
            return
        detail = e.args[1] if len(e.args) > 1 and e.args[1] else os.strerror(e.code)
        raise NetError(f"{what}: {detail}") from e


def _index(ipr: IPRoute, name: str) -> int | None:
    found: list[int] = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _link(ipr: IPRoute, index: int) -> Any:
    with _netlink(f"get link {index}"):
        return ipr.link("get", index=index)[0]


def _underlay_index(ipr: IPRoute, local_ip: str) -> int:
    for msg in ipr.get_addr(family=socket.AF_INET):
        if local_ip in (msg.get("IFA_LOCAL"), msg.get("IFA_ADDRESS")):
            return int(msg["index"])
    raise NetError(f"no device in this namespace has the underlay address {local_ip}")


def _vxlan_matches(link: Any, ov: Overlay, underlay: int) -> bool:
    data = link.get(("linkinfo", "data"))
    return (link.get(("linkinfo", "kind")) == "vxlan" and data is not None
            and data.get("vxlan_id") == ov.vni and data.get("vxlan_local") == ov.local_ip
            and data.get("vxlan_link") == underlay and data.get("vxlan_port") == ov.port
            and data.get("vxlan_learning") == 0 and data.get("vxlan_proxy") == 1)


def _interface(cidr: str) -> ipaddress.IPv4Interface:
    if "/" not in cidr:
        raise InvalidArgument(f"address needs a prefix length: {cidr!r}")
    try:
        return ipaddress.IPv4Interface(cidr)
    except ValueError as e:
        raise InvalidArgument(f"not an IPv4 address with prefix length: {cidr!r}") from e


def _ensure_address(ipr: IPRoute, index: int, cidr: str, what: str) -> None:
    iface = _interface(cidr)
    for msg in ipr.get_addr(family=socket.AF_INET, index=index):
        if msg.get("IFA_LOCAL") == str(iface.ip) and msg["prefixlen"] == iface.network.prefixlen:
            return
    with _netlink(f"add address {cidr} to {what}"):
        ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)


def ensure_overlay(ov: Overlay) -> None:
    """The network's bridge (``shbr<vni>``) with its vxlan (``shvx<vni>``: VNI, UDP ``ov.port``, local
    VTEP, no learning, ARP answered from the neighbour table) as a port, both up, and
    ``ov.address`` on the bridge if given. A vxlan with other settings is recreated."""
    br_name, vx_name = bridge_name(ov.vni), vxlan_name(ov.vni)
    with IPRoute() as ipr:
        underlay = _underlay_index(ipr, ov.local_ip)
        br = _index(ipr, br_name)
        if br is None:
            with _netlink(f"add bridge {br_name}"):
                ipr.link("add", ifname=br_name, kind="bridge", mtu=ov.mtu)
            br = _index(ipr, br_name)
            assert br is not None
        elif _link(ipr, br).get(("linkinfo", "kind")) != "bridge":
            raise NetError(f"{br_name} exists and is not a bridge")
        vx = _index(ipr, vx_name)
        if vx is not None and not _vxlan_matches(_link(ipr, vx), ov, underlay):
            with _netlink(f"delete mismatched {vx_name}"):
                ipr.link("del", index=vx)
            vx = None
        if vx is None:
            with _netlink(f"add vxlan {vx_name}"):
                ipr.link("add", ifname=vx_name, kind="vxlan", vxlan_id=ov.vni,
                         vxlan_port=ov.port, vxlan_local=ov.local_ip, vxlan_link=underlay,
                         vxlan_learning=0, vxlan_proxy=1, mtu=ov.mtu)
            vx = _index(ipr, vx_name)
            assert vx is not None
        with _netlink(f"set up {vx_name}"):
            ipr.link("set", index=vx, master=br, mtu=ov.mtu, state="up")
        with _netlink(f"set up {br_name}"):
            ipr.link("set", index=br, mtu=ov.mtu, state="up")
        if ov.address is not None:
            # The node's address is an endpoint like a task's: other nodes reach it (the
            # routing mesh's replies come back to it) through fdb/neighbour entries built
            # from mac_for, so the bridge must carry that MAC.
            mac = mac_for(_interface(ov.address).ip.compressed)
            if str(_link(ipr, br).get("address")) != mac:
                with _netlink(f"set {br_name} address {mac}"):
                    ipr.link("set", index=br, address=mac)
            _ensure_address(ipr, br, ov.address, br_name)


def remove_overlay(vni: int) -> None:
    """Delete the network's vxlan and bridge; missing ones are fine. Container veths still on
    the bridge are left, detached (`detach` removes them)."""
    with IPRoute() as ipr:
        for name in (vxlan_name(vni), bridge_name(vni)):
            index = _index(ipr, name)
            if index is not None:
                with _netlink(f"delete {name}", gone=(errno.ENODEV,)):
                    ipr.link("del", index=index)


def overlay_vnis(local_ip: str) -> set[int]:
    """The VNIs of the overlays in this namespace whose vxlan has ``local_ip`` as its VTEP
    (this node's, an earlier run's included)."""
    with IPRoute() as ipr:
        found = set()
        for link in ipr.get_links():
            name = str(link.get_attr("IFLA_IFNAME"))
            data = link.get(("linkinfo", "data"))
            if (name.startswith("shvx") and name[4:].isdigit() and data is not None
                    and data.get("vxlan_local") == local_ip):
                found.add(int(name[4:]))
        return found


def overlay_unused(vni: int) -> bool:
    """No container's veth is on the network's bridge (its vxlan is its only port)."""
    state = bridge_state(bridge_name(vni))
    return state is None or state[1] <= 1


def set_remote_endpoints(vni: int, endpoints: Mapping[str, str]) -> None:
    """Make the vxlan's static entries exactly ``endpoints`` (overlay IP -> VTEP, the underlay
    address of the node holding that IP): per IP an fdb entry (its MAC via the VTEP) and a
    permanent neighbour (IP -> MAC). Only our entries (permanent, MAC 02:42:...) are removed;
    an entry whose VTEP changed is replaced."""
    want_fdb: dict[str, str] = {}
    want_neigh: dict[str, str] = {}
    for ip, vtep in endpoints.items():
        try:
            ipaddress.IPv4Address(vtep)
        except ValueError as e:
            raise InvalidArgument(f"not an IPv4 VTEP address: {vtep!r}") from e
        mac = mac_for(ip)
        want_fdb[mac] = vtep
        want_neigh[str(ipaddress.IPv4Address(ip))] = mac
    name = vxlan_name(vni)
    with IPRoute() as ipr:
        vx = _index(ipr, name)
        if vx is None:
            raise NetError(f"no vxlan device {name}: ensure_overlay first")
        have_fdb: dict[str, str | None] = {}
        with _netlink(f"dump fdb of {name}"):
            for msg in ipr.fdb("dump", ifindex=vx):
                mac = str(msg.get("NDA_LLADDR") or "")
                if (msg["ifindex"] == vx and msg["flags"] & NTF_SELF
                        and msg["state"] & NUD_PERMANENT and mac.startswith(MAC_PREFIX)):
                    have_fdb[mac] = msg.get("NDA_DST")
        have_neigh: dict[str, str] = {}
        with _netlink(f"dump neighbours of {name}"):
            for msg in ipr.neigh("dump", ifindex=vx, family=socket.AF_INET):
                mac = str(msg.get("NDA_LLADDR") or "")
                if (msg["ifindex"] == vx and msg["state"] & NUD_PERMANENT
                        and mac.startswith(MAC_PREFIX)):
                    have_neigh[str(msg.get("NDA_DST"))] = mac
        for mac in have_fdb.keys() - want_fdb.keys():
            with _netlink(f"delete fdb {mac} on {name}", gone=(errno.ENOENT,)):
                ipr.fdb("del", ifindex=vx, lladdr=mac)
        for ip in have_neigh.keys() - want_neigh.keys():
            with _netlink(f"delete neighbour {ip} on {name}", gone=(errno.ENOENT,)):
                ipr.neigh("del", ifindex=vx, dst=ip)
        for mac, vtep in want_fdb.items():
            if have_fdb.get(mac) != vtep:
                with _netlink(f"fdb {mac} dst {vtep} on {name}"):
                    ipr.fdb("replace", ifindex=vx, lladdr=mac, dst=vtep,
                            state=NUD_PERMANENT | NUD_NOARP, flags=NTF_SELF)
        for ip, mac in want_neigh.items():
            if have_neigh.get(ip) != mac:
                with _netlink(f"neighbour {ip} lladdr {mac} on {name}"):
                    ipr.neigh("replace", ifindex=vx, dst=ip, lladdr=mac, state=NUD_PERMANENT)


def _configure_inside(ifname: str, mac: str, address: str, gateway: str | None,
                      must_exist: bool) -> bool:
    """In the container's netns: ``ifname`` with ``mac`` gets ``address``, comes up, and gets
    the default route via ``gateway``. False (doing nothing) if there is no such link yet."""
    with IPRoute() as ipr:
        index = _index(ipr, ifname)
        if index is None or str(_link(ipr, index).get("address")) != mac:
            if must_exist:
                raise NetError(f"{ifname} with MAC {mac} did not appear in the container")
            return False
        _ensure_address(ipr, index, address, ifname)
        with _netlink(f"set up {ifname}"):
            ipr.link("set", index=index, state="up")
        lo = _index(ipr, "lo")
        if lo is not None:
            with _netlink("set up lo"):
                ipr.link("set", index=lo, state="up")
        if gateway is not None:
            with _netlink(f"default route via {gateway}"):
                ipr.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=index)
        return True


def attach(netns_path: str, vni: int, host_ifname: str, address: str, *, mtu: int = 1450,
           ifname: str = "eth0", gateway: str | None = None) -> None:
    """Connect the container netns at ``netns_path`` to the network's bridge: a veth whose
    host end ``host_ifname`` is a bridge port and whose peer is born inside the container as
    ``ifname`` with MAC `mac_for` its address, ``address`` (CIDR), ``mtu``, up; and, if
    ``gateway`` is given, the container's default route through it. Already attached: only
    makes sure of the settings."""
    _attach(netns_path, bridge_name(vni), "ensure_overlay", host_ifname, address, mtu=mtu,
            ifname=ifname, gateway=gateway)


def attach_to_bridge(netns_path: str, br_name: str, host_ifname: str, address: str, *,
                     mtu: int, ifname: str, gateway: str | None = None) -> None:
    """`attach` to the plain bridge named ``br_name`` (`ensure_bridge`: the gateway bridge)."""
    _attach(netns_path, br_name, "ensure_bridge", host_ifname, address, mtu=mtu, ifname=ifname,
            gateway=gateway)


def _attach(netns_path: str, br_name: str, maker: str, host_ifname: str, address: str, *,
            mtu: int, ifname: str, gateway: str | None) -> None:
    mac = mac_for(_interface(address).ip.compressed)

    def inside(must_exist: bool) -> Callable[[], bool]:
        return lambda: _configure_inside(ifname, mac, address, gateway, must_exist)

    with IPRoute() as ipr:
        br = _index(ipr, br_name)
        if br is None:
            raise NetError(f"no bridge {br_name}: {maker} first")
        host = _index(ipr, host_ifname)
        if host is not None and not netns.run_in(netns_path, inside(False)):
            # A host end without its peer in that container (a half-done attach, or a
            # different container's): start over.
            with _netlink(f"delete stale {host_ifname}"):
                ipr.link("del", index=host)
            host = None
        if host is None:
            try:
                fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise NetError(f"open netns {netns_path}: {e.strerror}") from e
            try:
                with _netlink(f"add veth {host_ifname} -> {ifname} in {netns_path}"):
                    ipr.link("add", ifname=host_ifname, kind="veth", mtu=mtu,
                             peer={"ifname": ifname, "net_ns_fd": fd, "address": mac,
                                   "mtu": mtu})
            finally:
                os.close(fd)
            host = _index(ipr, host_ifname)
            if host is None:
                raise NetError(f"veth {host_ifname} vanished after creation")
            try:
                netns.run_in(netns_path, inside(True))
            except BaseException:
                with _netlink(f"delete {host_ifname}", gone=(errno.ENODEV,)):
                    ipr.link("del", index=host)
                raise
        with _netlink(f"enslave {host_ifname} to {br_name}"):
            ipr.link("set", index=host, master=br, mtu=mtu, state="up")


def detach(host_ifname: str) -> None:
    """Delete a container's veth by its host end (the peer in the container goes with it);
    a missing one is fine."""
    with IPRoute() as ipr:
        index = _index(ipr, host_ifname)
        if index is not None:
            with _netlink(f"delete {host_ifname}", gone=(errno.ENODEV,)):
                ipr.link("del", index=index)


# -- plain bridges (the gateway bridge) --------------------------------------------------------


def ensure_bridge(name: str, address: str, *, mtu: int = 1500) -> None:
    """A bridge ``name`` holding ``address`` (CIDR), up, its MAC `mac_for` that address (so it
    does not change as ports come and go). Made if missing; an existing one is only completed."""
    iface = _interface(address)
    mac = mac_for(iface.ip.compressed)
    with IPRoute() as ipr:
        br = _index(ipr, name)
        if br is None:
            with _netlink(f"add bridge {name}"):
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            br = _index(ipr, name)
            if br is None:
                raise NetError(f"bridge {name} vanished after creation")
        elif _link(ipr, br).get(("linkinfo", "kind")) != "bridge":
            raise NetError(f"{name} exists and is not a bridge")
        if str(_link(ipr, br).get("address")) != mac:
            with _netlink(f"set {name} address {mac}"):
                ipr.link("set", index=br, address=mac)
        _ensure_address(ipr, br, address, name)
        with _netlink(f"set up {name}"):
            ipr.link("set", index=br, state="up")


def bridge_state(name: str) -> tuple[str | None, int] | None:
    """The bridge ``name``'s first IPv4 address ("172.18.0.1/16", or None) and its number of
    ports; None if there is no such link."""
    with IPRoute() as ipr:
        br = _index(ipr, name)
        if br is None:
            return None
        address = None
        for msg in ipr.get_addr(family=socket.AF_INET, index=br):
            if msg.get("IFA_LOCAL"):
                address = f"{msg.get('IFA_LOCAL')}/{msg['prefixlen']}"
                break
        with _netlink(f"list ports of {name}"):
            ports = len(ipr.get_links(master=br))
        return address, ports


def remove_link(name: str) -> None:
    """Delete the link ``name``; a missing one is fine."""
    with IPRoute() as ipr:
        index = _index(ipr, name)
        if index is not None:
            with _netlink(f"delete {name}", gone=(errno.ENODEV,)):
                ipr.link("del", index=index)


def ipv4_networks(*, skip: str | None = None) -> list[ipaddress.IPv4Network]:
    """What this namespace's IPv4 addresses and main-table routes cover (a subnet chosen here
    must overlap none), leaving out those on the link ``skip``."""
    out: set[ipaddress.IPv4Network] = set()
    with IPRoute() as ipr:
        skipped = _index(ipr, skip) if skip else None
        for msg in ipr.get_addr(family=socket.AF_INET):
            if msg["index"] != skipped and msg.get("IFA_LOCAL"):
                out.add(ipaddress.IPv4Network(f"{msg.get('IFA_LOCAL')}/{msg['prefixlen']}",
                                              strict=False))
        for msg in ipr.get_routes(family=socket.AF_INET, table=254):
            if skipped is not None and msg.get("RTA_OIF") == skipped:
                continue
            dst = msg.get("RTA_DST") or "0.0.0.0"
            out.add(ipaddress.IPv4Network(f"{dst}/{msg['dst_len']}", strict=False))
    return sorted(out)


def addresses_in(network: str) -> list[str]:
    """This namespace's IPv4 addresses inside ``network`` ("172.18.0.0/16"): a container's own
    address on the gateway bridge, found again after a daemon restart."""
    net = ipaddress.IPv4Network(network)
    with IPRoute() as ipr:
        found = [str(msg.get("IFA_LOCAL")) for msg in ipr.get_addr(family=socket.AF_INET)
                 if msg.get("IFA_LOCAL")]
    return sorted(a for a in found if ipaddress.IPv4Address(a) in net)


def link_names() -> set[str]:
    """This namespace's interface names (run inside a container's with `netns.run_in`: the
    ``ethN`` it has, so a new endpoint takes a free one)."""
    with IPRoute() as ipr:
        return {str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()}


def free_eth(netns_path: str, start: int = 0) -> int:
    """The lowest N >= ``start`` with no ``ethN`` in the namespace at ``netns_path``."""
    names = netns.run_in(netns_path, link_names)
    n = start
    while f"eth{n}" in names:
        n += 1
    return n
