"""LocalBridges for real, in namespaces of our own: the default bridge with NAT and published
ports, a user network with its embedded DNS and ICC, ``--internal``, fixed addresses, connect
and disconnect, a restart, removal.

    node netns (shoalbrg-<pid>-node): eth0 172.18.88.1/24, the bridges, the rules
    outside netns (shoalbrg-<pid>-out): eth0 172.18.88.2/24, a client and a server
    containers: namespaces under the test's tmp dir, made by LocalBridges

Every namespace is removed by the fixture even on failure; the root netns is only read."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dnslib import QTYPE, DNSRecord
from pyroute2 import IPRoute
from underlay_ns import wire_underlay

from shoal.errors import Conflict, InvalidArgument
from shoal.model.specs import IPAM, IPAMConfig, NetworkSpec
from shoal.net import netns
from shoal.net.bridges import LocalBridges, PortWant, Want

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need CAP_SYS_ADMIN")

NODE_UL, OUTSIDE = "172.18.88.1", "172.18.88.2"
C1, C2, C3, C4 = "1" * 64, "2" * 64, "3" * 64, "4" * 64


def root_state() -> tuple[str, list[str]]:
    """The root netns's tables and links (read in a thread: pyroute2's sync API refuses a
    thread with a running event loop)."""
    def links() -> list[str]:
        with IPRoute() as ipr:
            return sorted(str(m.get_attr("IFLA_IFNAME")) for m in ipr.get_links())

    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            timeout=30, check=True).stdout
    return tables, netns._in_thread(links, "root-links")


@dataclass
class Env:
    node: str
    outside: str
    root: Path

    def bridges(self) -> LocalBridges:
        return LocalBridges(self.root / "data", self.root / "exec", kernel=True,
                            node_netns=self.node)

    def ns(self, cid: str) -> str:
        return str(self.root / "exec" / "localnet" / cid[:16])


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    before = root_state()
    prefix = f"/run/netns/shoalbrg-{os.getpid()}-"
    e = Env(prefix + "node", prefix + "out", tmp_path)
    try:
        wire_underlay(e.node, e.outside, NODE_UL, OUTSIDE)
        yield e
    finally:
        local = tmp_path / "exec" / "localnet"
        if local.is_dir():
            for p in local.iterdir():
                netns.remove(p)
        for p in (e.node, e.outside):
            netns.remove(p)
        assert root_state() == before, "the root netns changed"


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
                        ipr.get_routes(family=socket.AF_INET, table=254) if m["dst_len"] == 0]
            return addrs, defaults
    return netns.run_in(ns, f)


async def reach(src: str, dst: str, ip: str, port: int, *, via: str | None = None,
                timeout: float = 5.0) -> str | None:
    """A TCP connection from netns ``src`` to a listener in ``dst`` on ``ip:port`` (dialled
    at ``via``, a published address, if given): the peer the listener saw, or None. In a
    thread: a refused connection waits ``timeout``, which would block the test's loop."""
    return await asyncio.to_thread(_reach, src, dst, ip, port, via, timeout)


def _reach(src: str, dst: str, ip: str, port: int, via: str | None, timeout: float) -> str | None:
    def listener() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(1)
        s.settimeout(timeout)
        return s

    target = via or f"{ip}:{port}"
    host, _, p = target.rpartition(":")
    with netns.run_in(dst, listener) as server:
        try:
            client = netns.run_in(src, lambda: socket.create_connection((host, int(p)),
                                                                        timeout=timeout))
        except OSError:
            return None
        with client:
            conn, peer = server.accept()
            conn.close()
            return str(peer[0])


async def resolve(ns: str, name: str) -> list[str]:
    """An A query from inside ``ns`` to 127.0.0.11 (the loop keeps serving meanwhile)."""
    def ask() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(DNSRecord.question(name).pack(), ("127.0.0.11", 53))
            return s.recv(4096)

    reply = DNSRecord.parse(await asyncio.to_thread(netns.run_in, ns, ask))
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)


def tables(ns: str) -> str:
    return subprocess.run(["nsenter", f"--net={ns}", "nft", "list", "tables"],
                          capture_output=True, text=True, timeout=30, check=True).stdout


async def test_default_bridge_nat_and_published_ports(env: Env) -> None:
    lb = env.bridges()
    await lb.start()
    try:
        default = lb.get("bridge")
        assert default.subnet == "172.17.0.0/16"
        assert inside(env.node)[0]["shoal0"] == ["172.17.0.1/16"]
        sb = await lb.attach(C1, [], hostname="c1", ports=[PortWant(80, host_port=8080),
                                                           PortWant(81)])
        c1 = env.ns(C1)
        assert sb.netns == c1 and not lb.embedded_dns(sb)
        addrs, defaults = inside(c1)
        assert addrs["eth0"] == ["172.17.0.2/16"] and defaults == ["172.17.0.1"]
        assert sb.ports[0].host_port == 8080 and 32768 <= sb.ports[1].host_port < 61000
        # out, masqueraded as the node
        assert await reach(c1, env.outside, OUTSIDE, 9000) == NODE_UL
        # in, through the published port, from outside (the client's own address kept),
        # from the node itself on its address and on 127.0.0.1
        assert await reach(env.outside, c1, "172.17.0.2", 80, via=f"{NODE_UL}:8080") == OUTSIDE
        assert await reach(env.node, c1, "172.17.0.2", 80, via=f"{NODE_UL}:8080") is not None
        assert await reach(env.node, c1, "172.17.0.2", 80, via="127.0.0.1:8080") is not None
        ephemeral = sb.ports[1].host_port
        assert await reach(env.outside, c1, "172.17.0.2", 81, via=f"{NODE_UL}:{ephemeral}") == OUTSIDE
        # the same host port twice: dockerd's words
        with pytest.raises(Conflict, match="Bind for 0.0.0.0:8080 failed: port is already "
                                           "allocated"):
            await lb.attach(C2, [], hostname="c2", ports=[PortWant(80, host_port=8080)])
        assert lb.container(C2) is None and not Path(env.ns(C2)).exists()  # nothing left
        # a second container: ICC on the default bridge, no published port reached any more
        # once the first is released
        await lb.attach(C2, [Want("bridge")], hostname="c2")
        assert await reach(env.ns(C2), c1, "172.17.0.2", 82) == "172.17.0.3"
        # hairpin: a container on the bridge to the node's published port, masqueraded to
        # the gateway so the reply comes back through the node; and to its own port
        assert await reach(env.ns(C2), c1, "172.17.0.2", 80, via=f"{NODE_UL}:8080") == "172.17.0.1"
        assert await reach(c1, c1, "172.17.0.2", 80, via=f"{NODE_UL}:8080") == "172.17.0.1"
        await lb.release(C1)
        assert not Path(c1).exists()
        assert await reach(env.outside, env.ns(C2), "172.17.0.3", 80, via=f"{NODE_UL}:8080",
                     timeout=1.0) is None
        await lb.release(C2)
    finally:
        await lb.close()


async def test_user_networks_dns_icc_internal_fixed_ip_restart(env: Env) -> None:
    lb = env.bridges()
    await lb.start()
    try:
        front = await lb.create(NetworkSpec(name="front"))
        assert front.subnet == "172.19.0.0/16"  # 172.17 the default's, 172.18 the gateway's
        fixed = await lb.create(NetworkSpec(
            name="fixed", ipam=IPAM(config=[IPAMConfig(subnet="10.77.0.0/24")]),
            options={"com.docker.network.bridge.enable_icc": "false"}))
        back = await lb.create(NetworkSpec(name="back", internal=True))
        await lb.attach(C1, [Want("front", aliases=("web",))], hostname="c1", name="api1")
        rec3 = await lb.attach(C3, [Want("front")], hostname="c3")
        c1, c3 = env.ns(C1), env.ns(C3)
        assert lb.embedded_dns(rec3)
        assert await resolve(c3, "web") == ["172.19.0.2"]
        assert await resolve(c3, "c1") == ["172.19.0.2"]  # the hostname
        assert await resolve(c3, "API1") == ["172.19.0.2"]  # the name, any case
        assert await resolve(c3, C1[:12] + ".front") == ["172.19.0.2"]  # NAME.NETWORK
        assert await reach(c3, c1, "172.19.0.2", 80) == "172.19.0.3"  # ICC
        assert await reach(c1, env.outside, OUTSIDE, 9001) == NODE_UL
        # a fixed address: only on a network with a user subnet, once
        with pytest.raises(InvalidArgument, match="user configured subnets"):
            await lb.connect(C1, Want("bridge", ipv4_address="172.17.0.50"), hostname="c1")
        ep = await lb.connect(C1, Want("fixed", ipv4_address="10.77.0.50"), hostname="c1")
        assert (ep.ifname, ep.ip, ep.gateway_route) == ("eth1", "10.77.0.50", False)
        assert inside(c1)[0]["eth1"] == ["10.77.0.50/24"]
        with pytest.raises(Conflict, match="Address already in use"):
            await lb.connect(C3, Want("fixed", ipv4_address="10.77.0.50"), hostname="c3")
        await lb.connect(C3, Want("fixed"), hostname="c3")
        assert await reach(c3, c1, "10.77.0.50", 81, timeout=1.0) is None  # ICC off there
        # the other networks' containers are not reachable from another bridge
        await lb.attach(C2, [Want("bridge")], hostname="c2")
        assert await reach(env.ns(C2), c1, "172.19.0.2", 82, timeout=1.0) is None
        # --internal: its containers reach each other, nothing else, and have no default route
        await lb.attach(C4, [Want("back")], hostname="c4")
        assert inside(env.ns(C4))[1] == []
        assert await reach(env.ns(C4), env.outside, OUTSIDE, 9002, timeout=1.0) is None
        # disconnect: the interface goes; a restarted daemon finds the rest
        await lb.disconnect(C1, "fixed")
        assert "eth1" not in inside(c1)[0]
        await lb.close()
        lb = env.bridges()
        await lb.start()
        again = await lb.attach(C1, [Want("front", aliases=("web",))], hostname="c1")
        assert [e.ip for e in again.endpoints] == ["172.19.0.2"]
        assert await resolve(c3, "web") == ["172.19.0.2"]
        with pytest.raises(Conflict, match="network front has active endpoints"):
            await lb.remove("front")
        for cid in (C1, C2, C3, C4):
            await lb.release(cid)
        for net in (front, fixed, back):
            await lb.remove(net.name)
        node_links = inside(env.node)[0]
        assert front.bridge not in node_links and "shoal0" in node_links
        assert "shoal_br" in tables(env.node)
        assert not list((env.root / "exec" / "localnet").iterdir())
    finally:
        await lb.close()
