"""shoal.net.links on the real kernel: linux.md 3's topology built with our functions.

    switch netns: bridge br-ul
      hA (eth0 192.168.77.1)                hB (eth0 192.168.77.2)      the "nodes"
        shbr4097 + shvx4097                   shbr4097 + shvx4097
          cA (eth0 10.0.1.2)                    cB (eth0 10.0.1.3)      the "containers"

Every namespace is /run/netns/shoaltest-dp<pid>-*, removed by the fixture even on failure."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from pyroute2 import IPRoute

from shoal.errors import InvalidArgument
from shoal.net import links, netns, nft
from shoal.net.errors import NetError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need CAP_SYS_ADMIN")

T = TypeVar("T")
VNI = 4097
A_UL, B_UL = "192.168.77.1", "192.168.77.2"
A_IP, B_IP = "10.0.1.2", "10.0.1.3"


@dataclass
class Topo:
    sw: str
    hA: str
    hB: str
    cA: str
    cB: str

    def on(self, ns: str, fn: Callable[[], T]) -> T:
        return netns.run_in(ns, fn)


def _index(ipr: IPRoute, name: str) -> int:
    found: list[int] = ipr.link_lookup(ifname=name)
    assert found, f"no link {name}"
    return found[0]


@pytest.fixture
def topo() -> Iterator[Topo]:
    prefix = f"/run/netns/shoaltest-dp{os.getpid()}-"
    t = Topo(*(prefix + n for n in ("sw", "hA", "hB", "cA", "cB")))
    paths = [t.sw, t.hA, t.hB, t.cA, t.cB]
    try:
        for p in paths:
            netns.create(p)

        def switch() -> None:
            with IPRoute() as ipr:
                ipr.link("add", ifname="br-ul", kind="bridge")
                br = _index(ipr, "br-ul")
                ipr.link("set", index=br, state="up")
                for name, host in (("ulA", t.hA), ("ulB", t.hB)):
                    ipr.link("add", ifname=name, kind="veth",
                             peer={"ifname": "eth0", "net_ns_fd": host})
                    ipr.link("set", index=_index(ipr, name), master=br, state="up")

        def underlay(ip: str) -> Callable[[], None]:
            def f() -> None:
                with IPRoute() as ipr:
                    eth0 = _index(ipr, "eth0")
                    ipr.addr("add", index=eth0, address=ip, prefixlen=24)
                    ipr.link("set", index=eth0, state="up")
            return f

        t.on(t.sw, switch)
        t.on(t.hA, underlay(A_UL))
        t.on(t.hB, underlay(B_UL))
        yield t
    finally:
        for p in paths:
            netns.remove(p)


def connected(t: Topo) -> None:
    """Both overlays, both containers, the endpoints both ways: each call made twice, since
    the second must change nothing."""
    for _ in range(2):
        t.on(t.hA, lambda: links.ensure_overlay(links.Overlay(VNI, A_UL)))
        t.on(t.hB, lambda: links.ensure_overlay(links.Overlay(VNI, B_UL)))
        t.on(t.hA, lambda: links.attach(t.cA, VNI, "shvA0", f"{A_IP}/24"))
        t.on(t.hB, lambda: links.attach(t.cB, VNI, "shvB0", f"{B_IP}/24"))
        t.on(t.hA, lambda: links.set_remote_endpoints(VNI, {B_IP: B_UL}))
        t.on(t.hB, lambda: links.set_remote_endpoints(VNI, {A_IP: A_UL}))


def ping(ns: str, ip: str, tries: int = 3) -> bool:
    """busybox ping from ``ns``; a few tries for the first ARP answer, each bounded to 1 s."""
    for _ in range(tries):
        done = subprocess.run(["nsenter", f"--net={ns}", "busybox", "ping", "-c1", "-W1", ip],
                              capture_output=True, timeout=10, check=False)
        if done.returncode == 0:
            return True
    return False


def tcp_echo(t: Topo, src: str, dst: str, dst_ip: str, port: int = 5000) -> bytes:
    """A TCP connection from ``src`` to a listener made in ``dst``; the bytes that came back."""
    def listener() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((dst_ip, port))
        s.listen(1)
        s.settimeout(5)
        return s

    with ExitStack() as stack:
        server = stack.enter_context(t.on(dst, listener))
        client = stack.enter_context(
            t.on(src, lambda: socket.create_connection((dst_ip, port), timeout=5)))
        conn = stack.enter_context(server.accept()[0])
        client.sendall(b"hello over vxlan")
        conn.sendall(conn.recv(100))
        return client.recv(100)


def dump(ns: str, what: str, **kwargs: Any) -> list[tuple[str, str | None]]:
    """(lladdr, dst) of our permanent fdb entries, or (dst, lladdr) of neighbours, on the vxlan."""
    def f() -> list[tuple[str, str | None]]:
        with IPRoute() as ipr:
            vx = _index(ipr, links.vxlan_name(VNI))
            if what == "fdb":
                return sorted((str(m.get("NDA_LLADDR")), m.get("NDA_DST"))
                              for m in ipr.fdb("dump", ifindex=vx)
                              if m["flags"] & links.NTF_SELF and m.get("NDA_DST"))
            return sorted((str(m.get("NDA_DST")), m.get("NDA_LLADDR"))
                          for m in ipr.neigh("dump", ifindex=vx, family=socket.AF_INET)
                          if m["ifindex"] == vx and m["state"] & links.NUD_PERMANENT)
    return netns.run_in(ns, f)


def link_info(ns: str, name: str) -> dict[str, Any] | None:
    def f() -> dict[str, Any] | None:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                return None
            link = ipr.link("get", index=found[0])[0]
            addrs = [f"{a.get('IFA_LOCAL')}/{a['prefixlen']}"
                     for a in ipr.get_addr(family=socket.AF_INET, index=found[0])]
            return {"mac": link.get("address"), "mtu": link.get("mtu"), "addrs": addrs,
                    "up": bool(link["flags"] & 1), "master": link.get("master"),
                    "index": found[0]}
    return netns.run_in(ns, f)


def test_names() -> None:
    assert links.mac_for("10.0.1.2") == "02:42:0a:00:01:02"
    assert links.mac_for("192.168.255.254") == "02:42:c0:a8:ff:fe"
    with pytest.raises(InvalidArgument):
        links.mac_for("fd00::1")
    assert links.bridge_name(4097) == "shbr4097" and links.vxlan_name(16777215) == "shvx16777215"
    cid = "0123456789abcdef" * 4
    names = {links.host_ifname(cid, i) for i in range(10)} | {links.host_ifname("f" + cid, 0)}
    assert len(names) == 11 and all(len(n) <= 15 for n in names)
    with pytest.raises(InvalidArgument):
        links.host_ifname(cid, 100)


def test_overlay_ping_and_tcp(topo: Topo) -> None:
    connected(topo)
    vx = link_info(topo.hA, links.vxlan_name(VNI))
    br = link_info(topo.hA, links.bridge_name(VNI))
    assert vx is not None and br is not None and vx["up"] and br["up"] and vx["mtu"] == 1450
    eth0 = link_info(topo.cA, "eth0")
    assert eth0 is not None
    del eth0["index"]
    assert eth0 == {"mac": links.mac_for(A_IP), "mtu": 1450, "addrs": [f"{A_IP}/24"],
                    "up": True, "master": None}
    assert dump(topo.hA, "fdb") == [(links.mac_for(B_IP), B_UL)]
    assert dump(topo.hA, "neigh") == [(B_IP, links.mac_for(B_IP))]
    assert ping(topo.cA, B_IP) and ping(topo.cB, A_IP)
    assert tcp_echo(topo, topo.cA, topo.cB, B_IP) == b"hello over vxlan"
    assert tcp_echo(topo, topo.cB, topo.cA, A_IP) == b"hello over vxlan"


def test_reconcile_removes_and_replaces(topo: Topo) -> None:
    connected(topo)

    def foreign() -> None:                          # someone else's permanent neighbour
        with IPRoute() as ipr:
            ipr.neigh("add", dst="10.0.1.77", lladdr="00:11:22:33:44:55",
                      ifindex=_index(ipr, links.vxlan_name(VNI)), state=links.NUD_PERMANENT)

    topo.on(topo.hA, foreign)
    # A VTEP change replaces the entry: no reply through the wrong node.
    topo.on(topo.hA, lambda: links.set_remote_endpoints(VNI, {B_IP: "192.168.77.9"}))
    assert dump(topo.hA, "fdb") == [(links.mac_for(B_IP), "192.168.77.9")]
    assert not ping(topo.cA, B_IP, tries=1)
    topo.on(topo.hA, lambda: links.set_remote_endpoints(VNI, {B_IP: B_UL, "10.0.1.9": B_UL}))
    assert ping(topo.cA, B_IP)
    assert dump(topo.hA, "fdb") == sorted([(links.mac_for(B_IP), B_UL),
                                           (links.mac_for("10.0.1.9"), B_UL)])
    # Gone from the set: its entries go, the foreign one stays, the peer is unreachable.
    topo.on(topo.hA, lambda: links.set_remote_endpoints(VNI, {}))
    assert dump(topo.hA, "fdb") == []
    assert dump(topo.hA, "neigh") == [("10.0.1.77", "00:11:22:33:44:55")]
    assert not ping(topo.cA, B_IP, tries=1)


def test_detach_reattach_and_remove(topo: Topo) -> None:
    connected(topo)
    topo.on(topo.hA, lambda: links.detach("shvA0"))
    assert link_info(topo.hA, "shvA0") is None and link_info(topo.cA, "eth0") is None
    topo.on(topo.hA, lambda: links.detach("shvA0"))              # idempotent
    topo.on(topo.hA, lambda: links.attach(topo.cA, VNI, "shvA0", f"{A_IP}/24"))
    assert ping(topo.cA, B_IP)
    topo.on(topo.hA, lambda: links.remove_overlay(VNI))
    assert link_info(topo.hA, links.vxlan_name(VNI)) is None
    assert link_info(topo.hA, links.bridge_name(VNI)) is None
    topo.on(topo.hA, lambda: links.remove_overlay(VNI))           # idempotent
    # Rebuilt, the container's veth (left detached) is enslaved again by attach.
    topo.on(topo.hA, lambda: links.ensure_overlay(links.Overlay(VNI, A_UL)))
    topo.on(topo.hA, lambda: links.set_remote_endpoints(VNI, {B_IP: B_UL}))
    topo.on(topo.hA, lambda: links.attach(topo.cA, VNI, "shvA0", f"{A_IP}/24"))
    assert ping(topo.cA, B_IP)


def test_devices_are_brought_to_spec(topo: Topo) -> None:
    def stale() -> None:                            # learning on, no proxy, another MTU
        with IPRoute() as ipr:
            ipr.link("add", ifname=links.vxlan_name(VNI), kind="vxlan", vxlan_id=VNI,
                     vxlan_port=4789, vxlan_local=A_UL, vxlan_learning=1, mtu=1400)

    def vxlan_data() -> dict[str, Any]:
        with IPRoute() as ipr:
            link = ipr.link("get", index=_index(ipr, links.vxlan_name(VNI)))[0]
            data = link.get(("linkinfo", "data"))
            return {k: data.get(k) for k in ("vxlan_learning", "vxlan_proxy", "vxlan_id")}

    topo.on(topo.hA, stale)
    topo.on(topo.hA, lambda: links.ensure_overlay(links.Overlay(VNI, A_UL, mtu=1400)))
    topo.on(topo.hA, lambda: links.ensure_overlay(links.Overlay(VNI, A_UL)))
    assert topo.on(topo.hA, vxlan_data) == {"vxlan_learning": 0, "vxlan_proxy": 1,
                                            "vxlan_id": VNI}
    vx = link_info(topo.hA, links.vxlan_name(VNI))
    br = link_info(topo.hA, links.bridge_name(VNI))
    assert vx is not None and br is not None
    assert vx["mtu"] == br["mtu"] == 1450 and vx["master"] is not None and vx["up"]
    # Once to spec, it is kept as it is: same device, its entries still there.
    topo.on(topo.hA, lambda: links.set_remote_endpoints(VNI, {B_IP: B_UL}))
    index = link_info(topo.hA, links.vxlan_name(VNI))
    topo.on(topo.hA, lambda: links.ensure_overlay(links.Overlay(VNI, A_UL)))
    assert link_info(topo.hA, links.vxlan_name(VNI)) == index
    assert dump(topo.hA, "fdb") == [(links.mac_for(B_IP), B_UL)]


def test_the_swarms_data_path_port(topo: Topo) -> None:
    """VXLAN on the swarm's DataPathPort on both ends; a device on another port is recreated."""
    def vxlan_port() -> int:
        with IPRoute() as ipr:
            link = ipr.link("get", index=_index(ipr, links.vxlan_name(VNI)))[0]
            return int(link.get(("linkinfo", "data")).get("vxlan_port"))

    connected(topo)  # on 4789 first, as a daemon before its first session
    for ns, ul in ((topo.hA, A_UL), (topo.hB, B_UL)):
        topo.on(ns, lambda ul=ul: links.ensure_overlay(links.Overlay(VNI, ul, port=7789)))
        assert topo.on(ns, vxlan_port) == 7789
    topo.on(topo.hA, lambda: links.attach(topo.cA, VNI, "shvA0", f"{A_IP}/24"))
    topo.on(topo.hB, lambda: links.attach(topo.cB, VNI, "shvB0", f"{B_IP}/24"))
    topo.on(topo.hA, lambda: links.set_remote_endpoints(VNI, {B_IP: B_UL}))
    topo.on(topo.hB, lambda: links.set_remote_endpoints(VNI, {A_IP: A_UL}))
    assert ping(topo.cA, B_IP) and ping(topo.cB, A_IP)
    # One end on another port: the two no longer meet.
    topo.on(topo.hB, lambda: links.ensure_overlay(links.Overlay(VNI, B_UL, port=7790)))
    topo.on(topo.hB, lambda: links.attach(topo.cB, VNI, "shvB0", f"{B_IP}/24"))
    topo.on(topo.hB, lambda: links.set_remote_endpoints(VNI, {A_IP: A_UL}))
    assert not ping(topo.cA, B_IP, tries=1)


def test_errors_carry_the_reason(topo: Topo) -> None:
    with pytest.raises(NetError, match="no device .* 192.168.77.50"):
        topo.on(topo.hA, lambda: links.ensure_overlay(links.Overlay(VNI, "192.168.77.50")))
    with pytest.raises(NetError, match="ensure_overlay first"):
        topo.on(topo.hA, lambda: links.set_remote_endpoints(VNI, {B_IP: B_UL}))
    with pytest.raises(NetError, match="ensure_overlay first"):
        topo.on(topo.hA, lambda: links.attach(topo.cA, VNI, "shvA0", f"{A_IP}/24"))
    topo.on(topo.hA, lambda: links.ensure_overlay(links.Overlay(VNI, A_UL)))
    with pytest.raises(InvalidArgument):
        topo.on(topo.hA, lambda: links.attach(topo.cA, VNI, "shvA0", A_IP))
    with pytest.raises(NetError, match="open netns"):
        topo.on(topo.hA, lambda: links.attach(topo.cA + "-missing", VNI, "shvA0", f"{A_IP}/24"))
    # The container already has an eth0 of its own: the kernel's "File exists" comes back,
    # and the half-made veth is not left behind.
    def own_eth0() -> None:
        with IPRoute() as ipr:
            ipr.link("add", ifname="eth0", kind="bridge")

    topo.on(topo.cA, own_eth0)
    with pytest.raises(NetError, match="exists"):
        topo.on(topo.hA, lambda: links.attach(topo.cA, VNI, "shvA0", f"{A_IP}/24"))
    assert link_info(topo.hA, "shvA0") is None


def test_routing_mesh_across_the_overlay(topo: Topo) -> None:
    """The node's own ingress address (bridge MAC = mac_for) is an endpoint like a task: a
    published port on hA reaches cB on hB, and cB's replies come back over the vxlan."""
    ingress = "10.0.1.254"
    connected(topo)
    topo.on(topo.hA, lambda: links.ensure_overlay(
        links.Overlay(VNI, A_UL, address=f"{ingress}/24")))
    br = link_info(topo.hA, links.bridge_name(VNI))
    assert br is not None
    assert (br["mac"], br["addrs"], br["up"]) == (links.mac_for(ingress), [f"{ingress}/24"], True)
    topo.on(topo.hB, lambda: links.set_remote_endpoints(VNI, {A_IP: A_UL, ingress: A_UL}))
    nft.apply(nft.mesh_table([nft.MeshPort("tcp", 8080, 5000, (B_IP,))],
                             ingress_bridge=links.bridge_name(VNI), snat_address=ingress),
              topo.hA)

    def listener() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((B_IP, 5000))
        s.listen(1)
        s.settimeout(5)
        return s

    with ExitStack() as stack:
        server = stack.enter_context(topo.on(topo.cB, listener))
        client = stack.enter_context(
            topo.on(topo.hA, lambda: socket.create_connection((A_UL, 8080), timeout=5)))
        conn, peer = server.accept()
        stack.enter_context(conn)
        assert peer[0] == ingress                   # SNATed to hA's ingress address
        conn.sendall(b"from the mesh")
        assert client.recv(100) == b"from the mesh"
