"""The gateway bridge (shoal.net.gateway, nft.gateway_table, the NetworkAgent's plumbing): the
subnet's choice, the addresses, the rules' text; then the real thing in namespaces of our own.

    node netns: eth0 172.18.88.1/24 (so the gateway subnet must skip 172.18.0.0/16), and an
      address of its own on the overlay's bridge (as on ingress's): 10.0.42.1/24
      cA: eth0 on overlay 4242 (10.0.42.2/24), eth1 on the gateway    cB: eth0 on the gateway
    outside netns: eth0 172.18.88.2/24, the server a container reaches

Every namespace is /run/netns/shoalegr-<pid>-* (the containers' under the test's tmp dir),
removed by the fixture even on failure; the root netns is only read."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from pyroute2 import IPRoute
from underlay_ns import wire_underlay

from shoal.errors import InvalidArgument
from shoal.net import gateway, links, netns
from shoal.net.errors import NetError
from shoal.net.gateway import AddressBook, candidates, choose_subnet, wants_gateway
from shoal.net.netagent import GATEWAY_TABLE, NetworkAgent
from shoal.net.nft import MeshPort, apply, gateway_table, mesh_table
from shoal.net.records import Directory
from shoal.net.tasknets import Net as _Net

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need CAP_SYS_ADMIN")

N = IPv4Network


# -- the subnet, the addresses, who gets one ------------------------------------------------


def test_the_default_is_dockers_and_overlaps_move_it_on() -> None:
    assert choose_subnet([]) == gateway.DEFAULT_SUBNET == N("172.18.0.0/16")
    # a default route overlaps everything: no reason to skip
    assert choose_subnet([N("0.0.0.0/0"), N("127.0.0.0/8")]) == N("172.18.0.0/16")
    # an underlay inside 172.18 (the simulated hosts' kind of address), a route to 172.19
    assert choose_subnet([N("172.18.88.0/24"), N("172.19.0.0/16")]) == N("172.20.0.0/16")
    # a wide route covering 172.16/12 leaves the 192.168 /20s; with those gone, 172.17
    assert choose_subnet([N("172.16.0.0/12")]) == N("192.168.0.0/20")
    taken = [N("172.18.0.0/15"), N("172.20.0.0/14"), N("172.24.0.0/13"), N("192.168.0.0/16")]
    assert choose_subnet(taken) == N("172.17.0.0/16")
    with pytest.raises(NetError, match="non-overlapping IPv4 address pool"):
        choose_subnet([*taken, N("172.17.5.0/24")])
    listed = list(candidates())
    assert listed[0] == N("172.18.0.0/16") and listed[13] == N("172.31.0.0/16")
    assert listed[14] == N("192.168.0.0/20") and listed[-1] == N("172.17.0.0/16")
    assert len(listed) == 14 + 16 + 1


def test_who_gets_the_gateway() -> None:
    assert wants_gateway([False], default_bridge=True)
    assert wants_gateway([True, False], default_bridge=False)  # one non-internal is enough
    assert not wants_gateway([True], default_bridge=True)  # --internal only: no way out
    assert not wants_gateway([True, True], default_bridge=True)
    assert wants_gateway([], default_bridge=True)  # no network: Docker's default bridge's role
    assert not wants_gateway([], default_bridge=False)  # shoald --bridge none


def test_addresses_lowest_free_kept_and_adopted() -> None:
    book = AddressBook(N("172.18.0.0/16"))
    assert str(book.gateway) == "172.18.0.1/16"
    assert str(book.allocate("a")) == "172.18.0.2/16"
    assert str(book.allocate("b")) == "172.18.0.3/16"
    assert str(book.allocate("a")) == "172.18.0.2/16"  # the same key, the same address
    book.release("a")
    assert book.get("a") is None and len(book) == 1
    assert str(book.allocate("c")) == "172.18.0.2/16"  # the lowest free again
    # a running container's address, found after a restart
    assert book.adopt("d", "172.18.0.9") and str(book.get("d")) == "172.18.0.9/16"
    assert not book.adopt("e", "172.18.0.9")  # another key's
    assert not book.adopt("e", "172.18.0.1")  # the gateway's
    assert not book.adopt("e", "10.0.0.5")  # not on the subnet
    assert not book.adopt("e", IPv4Address("172.18.255.255"))  # broadcast
    small = AddressBook(N("192.168.7.0/30"))  # one container address: .2
    assert str(small.allocate("a")) == "192.168.7.2/30"
    with pytest.raises(NetError, match="no free address"):
        small.allocate("b")
    with pytest.raises(NetError, match="too small"):
        AddressBook(N("192.168.7.0/31"))


def test_gateway_table_text() -> None:
    text = gateway_table("172.18.0.0/16", "shoal_gwbridge")
    lines = [line.strip() for line in text.splitlines()]
    assert lines[:3] == ["table ip shoal_gw", "delete table ip shoal_gw", "table ip shoal_gw {"]
    assert "type filter hook forward priority 0; policy accept;" in lines
    assert 'oifname "shoal_gwbridge" ct state established,related accept' in lines
    assert 'oifname "shoal_gwbridge" drop' in lines  # ICC off, nothing new comes in
    # not into the overlays through the node, but to a published port the mesh DNATs
    assert lines.index('iifname "shoal_gwbridge" oifname "shbr*" ct status dnat accept') \
        < lines.index('iifname "shoal_gwbridge" oifname "shbr*" '
                      "reject with icmp type admin-prohibited")
    assert "type nat hook postrouting priority 100; policy accept;" in lines
    assert 'ip saddr 172.18.0.0/16 oifname != "shoal_gwbridge" masquerade' in lines
    assert gateway_table("172.18.0.0/16", "shoal_gwbridge") == text  # same state, same text
    for bad in (lambda: gateway_table("172.18.0.1/16", "br"),
                lambda: gateway_table("nope", "br"),
                lambda: gateway_table("172.18.0.0/16", 'x" accept'),
                lambda: gateway_table("172.18.0.0/16", "br", name="bad name")):
        with pytest.raises(InvalidArgument):
            bad()


def test_names() -> None:
    cid = "0123456789abcdef" * 4
    name = links.gateway_ifname(cid)
    assert name == "shgw0123456789a" and len(name) <= 15
    assert name not in {links.host_ifname(cid, i) for i in range(10)}
    assert len(gateway.BRIDGE) <= 15


# -- applied --------------------------------------------------------------------------------

OVERLAY_VNI = 4242
NODE_UL, OUTSIDE = "172.18.88.1", "172.18.88.2"
A_OVERLAY = "10.0.42.2/24"
NODE_OVERLAY = "10.0.42.1/24"
CID_A, CID_B, CID_C = "a" * 64, "b" * 64, "c" * 64


def root_state() -> tuple[str, bool]:
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            timeout=30, check=True).stdout
    with IPRoute() as ipr:
        bridge = bool(ipr.link_lookup(ifname=gateway.BRIDGE))
    return tables, bridge


@dataclass
class Env:
    node: str
    outside: str
    netns_dir: Path

    def agent(self) -> NetworkAgent:
        return NetworkAgent(node_id="n1", advertise_ip=NODE_UL, netns_dir=self.netns_dir)

    def container(self, cid: str) -> str:
        return str(self.netns_dir / cid[:16])


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    before = root_state()
    prefix = f"/run/netns/shoalegr-{os.getpid()}-"
    e = Env(prefix + "node", prefix + "out", tmp_path / "netns")
    try:
        wire_underlay(e.node, e.outside, NODE_UL, OUTSIDE)
        yield e
    finally:
        if e.netns_dir.is_dir():
            for p in e.netns_dir.iterdir():
                netns.remove(p)
        for p in (e.node, e.outside):
            netns.remove(p)
        assert root_state() == before, "the root netns changed"


def plumb(e: Env, agent: NetworkAgent, cid: str, nets: list[_Net]) -> None:
    path = Path(e.container(cid))
    netns.run_in(e.node, lambda: agent._plumb(nets, True, cid, path))


def unplumb(e: Env, agent: NetworkAgent, cid: str, count: int) -> None:
    path = Path(e.container(cid))
    netns.run_in(e.node, lambda: agent._unplumb(cid, count, path))


def inside(ns: str) -> tuple[dict[str, list[str]], list[str]]:
    """The namespace's IPv4 addresses by link name, and its default routes' gateways."""
    def f() -> tuple[dict[str, list[str]], list[str]]:
        with IPRoute() as ipr:
            names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
            addrs: dict[str, list[str]] = {}
            for m in ipr.get_addr(family=socket.AF_INET):
                addrs.setdefault(names[m["index"]], []).append(
                    f"{m.get_attr('IFA_LOCAL')}/{m['prefixlen']}")
            defaults = [str(m.get_attr("RTA_GATEWAY")) for m in
                        ipr.get_routes(family=socket.AF_INET, table=254)
                        if m["dst_len"] == 0]
            return addrs, defaults
    return netns.run_in(ns, f)


def tables(ns: str) -> str:
    return subprocess.run(["nsenter", f"--net={ns}", "nft", "list", "tables"],
                          capture_output=True, text=True, timeout=30, check=True).stdout


def reach(src: str, dst: str, ip: str, port: int, timeout: float = 5.0,
          via: str | None = None) -> str | None:
    """A TCP connection from ``src`` to a listener in ``dst`` on ``ip:port`` (made to ``via``,
    a published address, if given): the source address the listener saw, or None if it never
    arrived (within ``timeout``)."""
    def listener() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(1)
        s.settimeout(timeout)
        return s

    with netns.run_in(dst, listener) as server:
        try:
            client = netns.run_in(src, lambda: socket.create_connection((via or ip, port),
                                                                        timeout=timeout))
        except OSError:
            return None
        with client:
            conn, peer = server.accept()
            conn.close()
            return str(peer[0])


@root_only
def test_containers_get_out_masqueraded_and_nothing_gets_in(env: Env) -> None:
    agent = env.agent()
    overlay = _Net("net1", "net1", OVERLAY_VNI, A_OVERLAY, (), False)
    plumb(env, agent, CID_A, [overlay])
    plumb(env, agent, CID_B, [])
    plumb(env, agent, CID_B, [])  # again (a restarted daemon's attach): nothing changes
    a, b = env.container(CID_A), env.container(CID_B)
    # 172.18.0.0/16 overlaps the node's underlay: the next one
    a_addrs, a_default = inside(a)
    assert a_addrs["eth0"] == [A_OVERLAY] and a_addrs["eth1"] == ["172.19.0.2/16"]
    assert a_default == ["172.19.0.1"]
    b_addrs, b_default = inside(b)
    assert b_addrs["eth0"] == ["172.19.0.3/16"] and b_default == ["172.19.0.1"]
    node_addrs, _ = inside(env.node)
    assert node_addrs[gateway.BRIDGE] == ["172.19.0.1/16"]
    assert GATEWAY_TABLE in tables(env.node)
    # out, seen as the node
    assert reach(a, env.outside, OUTSIDE, 8080) == NODE_UL
    assert reach(b, env.outside, OUTSIDE, 8081) == NODE_UL
    # in: neither from another container (ICC off) nor from a host routing to the subnet
    assert reach(a, b, "172.19.0.3", 8082, timeout=1.0) is None

    def route_via_node() -> None:
        with IPRoute() as ipr:
            ipr.route("add", dst="172.19.0.0/16", gateway=NODE_UL)

    netns.run_in(env.outside, route_via_node)
    assert reach(env.outside, b, "172.19.0.3", 8083, timeout=1.0) is None
    # the node holds an overlay address (as on ingress): B does not get onto the overlay
    # through it, but does reach a port the routing mesh publishes there
    netns.run_in(env.node, lambda: links.ensure_overlay(
        links.Overlay(OVERLAY_VNI, NODE_UL, address=NODE_OVERLAY)))
    assert reach(b, a, A_OVERLAY.split("/")[0], 8084) is None  # refused, not timed out
    apply(mesh_table([MeshPort("tcp", 9000, 9000, (A_OVERLAY.split("/")[0],))],
                     ingress_bridge=links.bridge_name(OVERLAY_VNI),
                     snat_address=NODE_OVERLAY.split("/")[0]), env.node)
    assert reach(b, a, A_OVERLAY.split("/")[0], 9000, via=NODE_UL) == NODE_OVERLAY.split("/")[0]
    # a restarted daemon keeps the subnet and hands out no address twice
    again = env.agent()
    plumb(env, again, CID_C, [])
    assert inside(env.container(CID_C))[0]["eth0"] == ["172.19.0.4/16"]
    plumb(env, again, CID_A, [overlay])
    assert inside(a)[0]["eth1"] == ["172.19.0.2/16"]
    # the bridge and its table go with the last container on it
    unplumb(env, again, CID_A, 1)
    unplumb(env, again, CID_B, 0)
    assert gateway.BRIDGE in inside(env.node)[0]
    unplumb(env, again, CID_C, 0)
    assert gateway.BRIDGE not in inside(env.node)[0]
    assert GATEWAY_TABLE not in tables(env.node)
    assert not list(env.netns_dir.iterdir())
    netns.run_in(env.node, lambda: links.remove_overlay(OVERLAY_VNI))


@root_only
def test_a_restarted_agent_removes_the_last_runs_overlays_once_unused(env: Env) -> None:
    old = env.agent()  # the last run: two overlays, a container on each
    on_x = _Net("x", "x", OVERLAY_VNI, A_OVERLAY, (), False)
    on_y = _Net("y", "y", OVERLAY_VNI + 1, "10.0.43.2/24", (), False)
    plumb(env, old, CID_A, [on_x])
    plumb(env, old, CID_B, [on_y])
    names = {links.bridge_name(OVERLAY_VNI), links.vxlan_name(OVERLAY_VNI),
             links.bridge_name(OVERLAY_VNI + 1), links.vxlan_name(OVERLAY_VNI + 1)}
    netns.remove(Path(env.container(CID_A)))  # its container went while shoald was down

    new = env.agent()  # nothing of the last run in memory; B not attached again yet
    netns.run_in(env.node, lambda: new._apply(Directory(), []))
    left = netns.run_in(env.node, links.link_names) & names
    assert left == {links.bridge_name(OVERLAY_VNI + 1), links.vxlan_name(OVERLAY_VNI + 1)}

    unplumb(env, old, CID_B, 1)  # B goes too: its overlay follows at the next pass
    netns.run_in(env.node, lambda: new._apply(Directory(), []))
    assert not netns.run_in(env.node, links.link_names) & names
