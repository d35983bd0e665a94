"""A node's namespace and a host outside it, joined by a veth pair (eth0 in each) on one /24:
the underlay the data-path tests of the gateway bridge, the local bridges and standalone
overlays run on. The caller removes both namespaces (by its own prefix) when done."""

from __future__ import annotations

from pyroute2 import IPRoute

from shoal.net import netns


def wire_underlay(node: str, outside: str, node_ip: str, outside_ip: str) -> None:
    for path in (node, outside):
        netns.create(path)

    def in_node() -> None:
        with IPRoute() as ipr:
            ipr.link("add", ifname="eth0", kind="veth", peer={"ifname": "eth0", "net_ns_fd": outside})
            eth0 = ipr.link_lookup(ifname="eth0")[0]
            ipr.addr("add", index=eth0, address=node_ip, prefixlen=24)
            ipr.link("set", index=eth0, state="up")

    def in_outside() -> None:
        with IPRoute() as ipr:
            eth0 = ipr.link_lookup(ifname="eth0")[0]
            ipr.addr("add", index=eth0, address=outside_ip, prefixlen=24)
            ipr.link("set", index=eth0, state="up")

    netns.run_in(node, in_node)
    netns.run_in(outside, in_outside)
