"""shoal.net.nft: the rendered text, then the tables applied in namespaces of our own.

    node netns: bridge shbr7 10.0.7.1/24 (the ingress address), veth to "outside" 192.168.88.1
      c1 10.0.7.2 (a client)   b1 10.0.7.3, b2 10.0.7.4 (backends)   outside 192.168.88.2

The root netns is only read: every test checks its `nft list tables` is unchanged."""

from __future__ import annotations

import os
import select
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from pyroute2 import IPRoute

from shoal.errors import InvalidArgument
from shoal.net import links, netns
from shoal.net.errors import NetError
from shoal.net.nft import MeshPort, apply, delete_table, mesh_table, vip_table

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need CAP_SYS_ADMIN")

VNI = 7
NODE_IP, C1, B1, B2 = "10.0.7.1", "10.0.7.2", "10.0.7.3", "10.0.7.4"
VIP, DEAD_VIP = "10.0.7.100", "10.0.7.101"
OUT_NODE, OUT_CLIENT = "192.168.88.1", "192.168.88.2"


# -- rendering ------------------------------------------------------------------------------


def test_vip_table_text() -> None:
    text = vip_table({VIP: [B2, B1, B1], DEAD_VIP: [], "10.0.7.102": [B1]})
    lines = [line.strip() for line in text.splitlines()]
    assert lines[:3] == ["table ip shoal_lb", "delete table ip shoal_lb", "table ip shoal_lb {"]
    assert f"dnat ip to numgen random mod 2 map {{ 0 : {B1}, 1 : {B2} }}" in lines
    assert f"dnat ip to {B1}" in lines
    assert ("elements = { 10.0.7.100 : goto vip_10_0_7_100, 10.0.7.101 : goto refuse, "
            "10.0.7.102 : goto vip_10_0_7_102 }") in lines
    assert "meta l4proto tcp reject with tcp reset" in lines
    assert "type nat hook output priority -100; policy accept;" in lines
    # Same state, same text, whatever the order it came in.
    assert text == vip_table({"10.0.7.102": [B1], DEAD_VIP: [], VIP: [B1, B2]})
    assert vip_table({}, name="x") == "table ip x\ndelete table ip x\ntable ip x {\n}\n"


def test_mesh_table_text() -> None:
    text = mesh_table([MeshPort("tcp", 8080, 80, (B1, B2)), MeshPort("udp", 53, 5353, ()),
                       MeshPort("udp", 9000, 90, (B1,))],
                      ingress_bridge="shbr4096", snat_address="10.0.0.2")
    lines = [line.strip() for line in text.splitlines()]
    assert (f"meta l4proto tcp dnat ip to numgen random mod 2 map "
            f"{{ 0 : {B1} . 80, 1 : {B2} . 80 }}") in lines
    assert f"meta l4proto udp dnat ip to {B1}:90" in lines
    assert "elements = { tcp . 8080 : goto port_tcp_8080, udp . 9000 : goto port_udp_9000 }" \
        in lines
    assert "elements = { udp . 53 }" in lines
    assert lines.count("fib daddr type local meta l4proto . th dport vmap @ports") == 2
    assert 'oifname "shbr4096" ct status dnat snat ip to 10.0.0.2' in lines
    assert 'ct status dnat oifname "shbr*" masquerade' in lines
    bare = mesh_table([], ingress_bridge=None, snat_address=None)
    assert "snat" not in bare and "elements" not in bare


@pytest.mark.parametrize("bad", [
    lambda: vip_table({"10.0.7.300": []}),
    lambda: vip_table({VIP: ["nope"]}),
    lambda: vip_table({}, name="bad name; flush ruleset"),
    lambda: mesh_table([MeshPort("sctp", 1, 1, ())], ingress_bridge=None, snat_address=None),
    lambda: mesh_table([MeshPort("tcp", 0, 1, ())], ingress_bridge=None, snat_address=None),
    lambda: mesh_table([MeshPort("tcp", 80, 70000, (B1,))], ingress_bridge=None,
                       snat_address=None),
    lambda: mesh_table([MeshPort("tcp", 80, 80, ()), MeshPort("tcp", 80, 81, ())],
                       ingress_bridge=None, snat_address=None),
    lambda: mesh_table([], ingress_bridge='x" accept', snat_address=NODE_IP),
])
def test_bad_input_is_refused(bad: object) -> None:
    assert callable(bad)
    with pytest.raises(InvalidArgument):
        bad()


# -- applied --------------------------------------------------------------------------------


def root_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                          timeout=30, check=True).stdout


@pytest.fixture
def root_unchanged() -> Iterator[None]:
    before = root_tables()
    yield
    assert root_tables() == before, "the root netns's nft tables changed"


@dataclass
class Net:
    node: str
    c1: str
    b1: str
    b2: str
    outside: str


@pytest.fixture
def net(root_unchanged: None) -> Iterator[Net]:
    prefix = f"/run/netns/shoaltest-nft{os.getpid()}-"
    n = Net(*(prefix + x for x in ("node", "c1", "b1", "b2", "out")))
    paths = [n.node, n.c1, n.b1, n.b2, n.outside]
    try:
        for p in paths:
            netns.create(p)

        def node() -> None:
            with IPRoute() as ipr:
                ipr.link("add", ifname=links.bridge_name(VNI), kind="bridge", mtu=1450)
                br = ipr.link_lookup(ifname=links.bridge_name(VNI))[0]
                ipr.addr("add", index=br, address=NODE_IP, prefixlen=24)
                ipr.link("set", index=br, state="up")
                ipr.link("add", ifname="up0", kind="veth",
                         peer={"ifname": "eth0", "net_ns_fd": n.outside})
                up0 = ipr.link_lookup(ifname="up0")[0]
                ipr.addr("add", index=up0, address=OUT_NODE, prefixlen=24)
                ipr.link("set", index=up0, state="up")
            netns.write_sysctl("net.ipv4.ip_forward", "1")
            for name, path, ip in (("shvc1", n.c1, C1), ("shvb1", n.b1, B1),
                                   ("shvb2", n.b2, B2)):
                links.attach(path, VNI, name, f"{ip}/24")

        def outside() -> None:
            with IPRoute() as ipr:
                eth0 = ipr.link_lookup(ifname="eth0")[0]
                ipr.addr("add", index=eth0, address=OUT_CLIENT, prefixlen=24)
                ipr.link("set", index=eth0, state="up")

        netns.run_in(n.node, node)
        netns.run_in(n.outside, outside)
        yield n
    finally:
        for p in paths:
            netns.remove(p)


def listen(ns: str, ip: str, port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        if kind == socket.SOCK_STREAM:
            s.listen(16)
        return s
    return netns.run_in(ns, make)


def connect(ns: str, ip: str, port: int) -> socket.socket:
    return netns.run_in(ns, lambda: socket.create_connection((ip, port), timeout=5))


def accept(listeners: dict[str, socket.socket],
           stack: ExitStack) -> tuple[str, str, socket.socket]:
    """Which listener got the pending connection, the peer address it saw, the connection."""
    ready, _, _ = select.select(list(listeners.values()), [], [], 5)
    assert ready, "no backend got the connection"
    conn, peer = ready[0].accept()
    stack.enter_context(conn)
    conn.settimeout(5)
    return next(k for k, s in listeners.items() if s is ready[0]), peer[0], conn


def served_by(listeners: dict[str, socket.socket], stack: ExitStack) -> tuple[str, str]:
    name, peer, _ = accept(listeners, stack)
    return name, peer


@root_only
def test_vip_spreads_replaces_and_refuses(net: Net) -> None:
    with ExitStack() as stack:
        backends = {"b1": stack.enter_context(listen(net.b1, B1, 80)),
                    "b2": stack.enter_context(listen(net.b2, B2, 80))}
        apply(vip_table({VIP: [B1, B2], DEAD_VIP: []}), net.c1)
        seen = []
        for _ in range(20):                         # both chosen: all on one is 2 in 2**20
            client = stack.enter_context(connect(net.c1, VIP, 80))
            seen.append(served_by(backends, stack))
            client.close()
        assert {b for b, _ in seen} == {"b1", "b2"}
        assert {peer for _, peer in seen} == {C1}   # DNAT only, no source NAT

        # A connection made before a replace keeps its backend; new ones follow the new table.
        kept = stack.enter_context(connect(net.c1, VIP, 80))
        _, _, kept_conn = accept(backends, stack)
        apply(vip_table({VIP: [B2], DEAD_VIP: []}), net.c1)
        kept.sendall(b"still here")
        assert kept_conn.recv(100) == b"still here"
        for _ in range(5):
            stack.enter_context(connect(net.c1, VIP, 80))
            assert served_by(backends, stack)[0] == "b2"

        # No backends: refused at once, TCP and UDP alike.
        with pytest.raises(ConnectionRefusedError):
            connect(net.c1, DEAD_VIP, 80).close()
        udp = stack.enter_context(netns.run_in(
            net.c1, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)))
        udp.settimeout(5)
        udp.connect((DEAD_VIP, 53))
        # The rejected datagram fails the send itself (EPERM), or the ICMP error the next recv.
        with pytest.raises((PermissionError, ConnectionRefusedError)):
            udp.send(b"query")
            udp.recv(100)

        # An empty table, and a deleted one (twice): the VIP is no longer translated.
        apply(vip_table({}), net.c1)
        delete_table("shoal_lb", net.c1)
        delete_table("shoal_lb", net.c1)
        listed = subprocess.run(["nsenter", f"--net={net.c1}", "nft", "list", "tables"],
                                capture_output=True, text=True, timeout=30, check=True)
        assert "shoal_lb" not in listed.stdout


@root_only
def test_mesh_reaches_backends_from_outside(net: Net) -> None:
    ports = [MeshPort("tcp", 8080, 80, (B1, B2)), MeshPort("tcp", 8081, 80, ())]
    apply(mesh_table(ports, ingress_bridge=links.bridge_name(VNI), snat_address=NODE_IP),
          net.node)
    with ExitStack() as stack:
        backends = {"b1": stack.enter_context(listen(net.b1, B1, 80)),
                    "b2": stack.enter_context(listen(net.b2, B2, 80))}
        seen = set()
        for _ in range(20):
            client = stack.enter_context(connect(net.outside, OUT_NODE, 8080))
            backend, peer = served_by(backends, stack)
            assert peer == NODE_IP                  # SNATed: the reply must come back here
            seen.add(backend)
            client.close()
        assert seen == {"b1", "b2"}
        # From the node itself (output hook), to its own address.
        stack.enter_context(connect(net.node, OUT_NODE, 8080))
        served_by(backends, stack)
        # A published port without backends is refused, from outside and from the node.
        with pytest.raises(ConnectionRefusedError):
            connect(net.outside, OUT_NODE, 8081).close()
        with pytest.raises(ConnectionRefusedError):
            connect(net.node, OUT_NODE, 8081).close()
        # Traffic between containers is not NATed by the mesh (ct status dnat only).
        stack.enter_context(connect(net.c1, B1, 80))
        assert served_by(backends, stack) == ("b1", C1)


@root_only
def test_apply_reports_nft_errors(net: Net) -> None:
    with pytest.raises(NetError, match="syntax error"):
        apply("table ip shoal_bad { chain c { bogus } }", net.node)
    with pytest.raises(NetError, match="nft"):
        apply(vip_table({}), net.node + "-missing")
    # Without a path, nft runs in the calling thread's netns.
    netns.run_in(net.node, lambda: apply(vip_table({VIP: [B1]}, name="shoal_thread")))
    listed = subprocess.run(["nsenter", f"--net={net.node}", "nft", "list", "tables"],
                            capture_output=True, text=True, timeout=30, check=True)
    assert "shoal_thread" in listed.stdout
    netns.run_in(net.node, lambda: delete_table("shoal_thread"))
