"""nftables for service load balancing (this machine has no IPVS): the VIP table inside each
container's netns and the routing mesh inside the node's netns; and the gateway bridge's NAT
(its subnet masqueraded on the way out), in the node's netns too.

Each table is rendered whole and applied in one `nft -f` transaction that declares, deletes and
redefines it (../shared/reference/linux.md 4.1), so a change is atomic: a connection sees the
old rules or the new ones, never none. NAT is decided once per connection (conntrack), so a
replaced table moves only new connections. Backends are chosen at random (`numgen random`);
health is the caller's business (only healthy tasks are listed). A VIP or published port with
no backend rejects (TCP reset, ICMP port unreachable otherwise) so clients fail at once
instead of waiting for a timeout.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shoal import metrics
from shoal.errors import InvalidArgument
from shoal.net.errors import NetError

__all__ = ["MeshPort", "NetError", "apply", "delete_table", "gateway_table", "mesh_table",
           "vip_table"]

NFT_TIMEOUT = 30.0              # seconds; nft -f of a few thousand elements takes well under 1 s
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_IFNAME = re.compile(r"[A-Za-z0-9_.\-]{1,15}")
_PROTOCOLS = ("tcp", "udp")
_OVERLAY_BRIDGES = "shbr*"  # links.bridge_name's


@dataclass(frozen=True, slots=True)
class MeshPort:
    """A published port: ``protocol`` ("tcp" | "udp") port ``published`` on any of the node's
    addresses goes to ``target`` on one of ``backends`` (task addresses without prefix length:
    the ingress network's, or the local tasks' for host mode)."""

    protocol: str
    published: int
    target: int
    backends: tuple[str, ...]


def _ipv4(address: str) -> str:
    try:
        return ipaddress.IPv4Address(address).compressed
    except ValueError as e:
        raise InvalidArgument(f"not an IPv4 address: {address!r}") from e


def _sorted_ips(addresses: Sequence[str]) -> list[str]:
    """Canonical and deduplicated, in address order: the same state renders the same text."""
    return sorted({_ipv4(a) for a in addresses}, key=ipaddress.IPv4Address)


def _table_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidArgument(f"not a valid nft table name: {name!r}")
    return name


def _port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise InvalidArgument(f"port out of range: {port}")
    return port


def _replace(name: str, body: list[str]) -> str:
    # "table" declares it (a no-op if present) so that "delete" cannot fail on a first apply;
    # all three run in one transaction.
    lines = [f"table ip {name}", f"delete table ip {name}", f"table ip {name} {{", *body, "}"]
    return "\n".join(lines) + "\n"


def _pick(targets: list[str], l4: str | None = None) -> str:
    """A dnat statement to one of ``targets`` (addresses, or "addr . port" with ``l4``)."""
    prefix = f"meta l4proto {l4} " if l4 else ""
    if len(targets) == 1:
        return f"{prefix}dnat ip to {targets[0].replace(' . ', ':')}"
    choices = ", ".join(f"{i} : {t}" for i, t in enumerate(targets))
    return f"{prefix}dnat ip to numgen random mod {len(targets)} map {{ {choices} }}"


_REJECT = ["\tchain refuse {", "\t\tmeta l4proto tcp reject with tcp reset", "\t\treject", "\t}"]


def vip_table(vips: Mapping[str, Sequence[str]], *, name: str = "shoal_lb") -> str:
    """The `nft -f` text that replaces table ``ip <name>``: traffic to a VIP (any protocol and
    port) is DNATed to one of its backends, addresses only (ports unchanged); a VIP without
    backends is refused. One map keyed by VIP, so a lookup costs the same for any count.
    For a container's netns; the VIPs must be routable there (inside its subnet)."""
    name = _table_name(name)
    if not vips:
        return _replace(name, [])
    body: list[str] = []
    elements: list[str] = []
    canonical: dict[str, list[str]] = {}
    for vip, addresses in vips.items():
        canonical.setdefault(_ipv4(vip), []).extend(addresses)
    for vip in sorted(canonical, key=ipaddress.IPv4Address):
        backends = _sorted_ips(canonical[vip])
        if not backends:
            elements.append(f"{vip} : goto refuse")
            continue
        chain = "vip_" + vip.replace(".", "_")
        body += [f"\tchain {chain} {{", f"\t\t{_pick(backends)}", "\t}"]
        elements.append(f"{vip} : goto {chain}")
    body += _REJECT
    body += ["\tmap vips {", "\t\ttype ipv4_addr : verdict",
             f"\t\telements = {{ {', '.join(elements)} }}", "\t}"]
    body += ["\tchain output {", "\t\ttype nat hook output priority -100; policy accept;",
             "\t\tip daddr vmap @vips", "\t}"]
    return _replace(name, body)


def mesh_table(ports: Sequence[MeshPort], *, ingress_bridge: str | None,
               snat_address: str | None, name: str = "shoal_mesh") -> str:
    """The `nft -f` text that replaces table ``ip <name>``, the routing mesh in a node's netns
    (linux.md 4.3): a connection to a published port on any local address, from outside
    (prerouting) or from the node itself (output), is DNATed to a random backend's target
    port; a port without backends is refused. Replies must come back through this node, so
    DNATed traffic leaving on ``ingress_bridge`` is SNATed to ``snat_address`` (the node's own
    ingress address) and on any other overlay bridge masqueraded; DNATed only, so traffic
    between containers is left alone. The caller sets net.ipv4.ip_forward=1 in that netns."""
    name = _table_name(name)
    seen: set[tuple[str, int]] = set()
    body: list[str] = []
    open_ports: list[str] = []
    closed: list[str] = []
    for port in sorted(ports, key=lambda p: (p.protocol, p.published)):
        if port.protocol not in _PROTOCOLS:
            raise InvalidArgument(f"unsupported protocol: {port.protocol!r}")
        key = (port.protocol, _port(port.published))
        if key in seen:
            raise InvalidArgument(f"port {port.published}/{port.protocol} published twice")
        seen.add(key)
        element = f"{port.protocol} . {port.published}"
        backends = _sorted_ips(port.backends)
        if not backends:
            closed.append(element)
            continue
        chain = f"port_{port.protocol}_{port.published}"
        targets = [f"{b} . {_port(port.target)}" for b in backends]
        body += [f"\tchain {chain} {{", f"\t\t{_pick(targets, port.protocol)}", "\t}"]
        open_ports.append(f"{element} : goto {chain}")
    body += ["\tmap ports {", "\t\ttype inet_proto . inet_service : verdict",
             *([f"\t\telements = {{ {', '.join(open_ports)} }}"] if open_ports else []), "\t}"]
    body += ["\tset closed {", "\t\ttype inet_proto . inet_service",
             *([f"\t\telements = {{ {', '.join(closed)} }}"] if closed else []), "\t}"]
    for hook in ("prerouting", "output"):
        body += [f"\tchain {hook} {{", f"\t\ttype nat hook {hook} priority -100; policy accept;",
                 "\t\tfib daddr type local meta l4proto . th dport vmap @ports", "\t}"]
    # reject is not allowed in prerouting: a refused port's packets are delivered locally and
    # refused on input (from outside and from the node itself alike).
    body += ["\tchain input {", "\t\ttype filter hook input priority 0; policy accept;",
             "\t\tmeta l4proto . th dport @closed meta l4proto tcp reject with tcp reset",
             "\t\tmeta l4proto . th dport @closed reject", "\t}"]
    body += ["\tchain postrouting {", "\t\ttype nat hook postrouting priority 100; policy accept;"]
    if ingress_bridge is not None and snat_address is not None:
        body.append(f'\t\toifname "{_ifname(ingress_bridge)}" ct status dnat '
                    f"snat ip to {_ipv4(snat_address)}")
    body += [f'\t\tct status dnat oifname "{_OVERLAY_BRIDGES}" masquerade', "\t}"]
    return _replace(name, body)


def _ifname(name: str) -> str:
    if not _IFNAME.fullmatch(name):
        raise InvalidArgument(f"not a valid interface name: {name!r}")
    return name


def gateway_table(subnet: str, bridge: str, *, name: str = "shoal_gw") -> str:
    """The `nft -f` text that replaces table ``ip <name>``, docker_gwbridge's rules with ICC off
    and masquerade on (swarm-features.md 5.3): what leaves ``bridge``'s ``subnet`` for any other
    interface is masqueraded; into the bridge only replies are forwarded, so neither another
    host routing to the subnet nor one container to another's gateway address gets in
    (host-mode published ports come in on the ingress network, not here). Nor does it lead
    into the overlays' bridges (the node holds an address on ingress's, which Docker's host
    does not), except as the routing mesh DNATs a published port: refused at once, as a
    node without a route to an overlay's subnet refuses. The caller sets
    net.ipv4.ip_forward=1 in that netns."""
    name = _table_name(name)
    bridge = _ifname(bridge)
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as e:
        raise InvalidArgument(f"not an IPv4 subnet: {subnet!r}") from e
    into_overlays = f'iifname "{bridge}" oifname "{_OVERLAY_BRIDGES}"'
    body = ["\tchain forward {", "\t\ttype filter hook forward priority 0; policy accept;",
            f'\t\toifname "{bridge}" ct state established,related accept',
            f'\t\toifname "{bridge}" drop',
            f"\t\t{into_overlays} ct status dnat accept",
            f"\t\t{into_overlays} reject with icmp type admin-prohibited", "\t}",
            "\tchain postrouting {", "\t\ttype nat hook postrouting priority 100; policy accept;",
            f'\t\tip saddr {net.with_prefixlen} oifname != "{bridge}" masquerade', "\t}"]
    return _replace(name, body)


_TABLE = re.compile(r"^table ip (\S+)", re.MULTILINE)  # the rule set's table, the updates' label


def _nft(text: str, netns_path: str | None) -> None:
    cmd = ["nft", "-f", "-"]
    if netns_path is not None:
        cmd = ["nsenter", f"--net={netns_path}", *cmd]
    try:
        proc = subprocess.run(cmd, input=text, capture_output=True, text=True,
                              timeout=NFT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetError(f"nft: {e}") from e
    if proc.returncode != 0:
        raise NetError(f"nft: {proc.stderr.strip() or f'exit status {proc.returncode}'}")


def apply(text: str, netns_path: str | None = None) -> None:
    """Run ``text`` through `nft -f -` in the netns at ``netns_path`` (through nsenter), or
    else in the calling thread's (a child process starts in its parent thread's netns)."""
    match = _TABLE.search(text)
    with metrics.timed(metrics.NFT_SECONDS):
        _nft(text, netns_path)
    metrics.NFT_UPDATES.labels(match.group(1) if match else "").inc()


def delete_table(name: str, netns_path: str | None = None) -> None:
    """Delete table ``ip <name>``; a missing one is fine."""
    name = _table_name(name)
    _nft(f"table ip {name}\ndelete table ip {name}\n", netns_path)
