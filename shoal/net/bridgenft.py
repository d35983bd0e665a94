"""The local bridges' rules in the node's namespace: one nft table, ``shoal_br``, rendered whole
from every local bridge network and every published port (nft.py's atomic replace).

Docker's bridge driver in nftables form (../shared/reference/swarm-features.md 5.3):
- forward: into a bridge only replies and what a published port DNATed; within a bridge,
  container to container, as its ICC says; out of a bridge to the other interfaces unless the
  network is ``--internal`` (whose containers reach only each other);
- postrouting: the subnet masqueraded on its way out (``enable_ip_masquerade``, not internal);
  a published port reached from the bridge itself (hairpin) or from the node's loopback
  masqueraded too, so the reply comes back through the node;
- prerouting and output: a published port on the node's addresses (or the one it was bound
  to) DNATed to the container, from outside and from the node itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from shoal.net.bridgeconf import BridgeNet

__all__ = ["TABLE", "Published", "bridge_table"]

TABLE = "shoal_br"


@dataclass(frozen=True, slots=True)
class Published:
    """One published port: ``host_ip`` ("" = any of the node's) ``host_port``/``protocol`` goes
    to ``container_ip``:``container_port``."""

    protocol: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


def _forward(nets: Sequence[BridgeNet]) -> list[str]:
    """Within each bridge first, then everything into any bridge (so one network's way out
    is never another's way in), then what leaves each."""
    out = [f'\t\tiifname "{n.bridge}" oifname "{n.bridge}" {"accept" if n.icc else "drop"}'
           for n in nets]
    for n in nets:
        out += [f'\t\toifname "{n.bridge}" ct state established,related accept',
                f'\t\toifname "{n.bridge}" ct status dnat accept',
                f'\t\toifname "{n.bridge}" drop']
    out += [f'\t\tiifname "{n.bridge}" {"drop" if n.internal else "accept"}' for n in nets]
    return out


def _dnat(p: Published) -> str:
    ipaddress.IPv4Address(p.container_ip)  # checked: the text goes into nft
    match = f"ip daddr {ipaddress.IPv4Address(p.host_ip)}" if p.host_ip else \
        "fib daddr type local"
    return (f"\t\t{match} {p.protocol} dport {int(p.host_port)} "
            f"dnat ip to {p.container_ip}:{int(p.container_port)}")


def bridge_table(nets: Sequence[BridgeNet], ports: Sequence[Published]) -> str:
    """The `nft -f` text replacing table ``ip shoal_br``. The caller sets
    net.ipv4.ip_forward=1 and each bridge's route_localnet=1 in that namespace."""
    body = ["\tchain forward {", "\t\ttype filter hook forward priority 0; policy accept;"]
    body += [*_forward(nets), "\t}"]
    dnats = [_dnat(p) for p in sorted(ports, key=lambda p: (p.protocol, p.host_port, p.host_ip))
             if p.protocol in ("tcp", "udp")]
    body += ["\tchain prerouting {", "\t\ttype nat hook prerouting priority -100; policy accept;",
             *dnats, "\t}"]
    body += ["\tchain output {", "\t\ttype nat hook output priority -100; policy accept;",
             *dnats, "\t}"]
    body += ["\tchain postrouting {", "\t\ttype nat hook postrouting priority 100; policy accept;"]
    for net in nets:
        subnet = ipaddress.IPv4Network(net.subnet).with_prefixlen
        br = net.bridge
        body.append(f'\t\toifname "{br}" ct status dnat ip saddr {{ {subnet}, 127.0.0.0/8 }} '
                    "masquerade")
        if net.masquerade and not net.internal:
            body.append(f'\t\tip saddr {subnet} oifname != "{br}" masquerade')
    body += ["\t}"]
    lines = [f"table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{", *body, "}"]
    return "\n".join(lines) + "\n"
