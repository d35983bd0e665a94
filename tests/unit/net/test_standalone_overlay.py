"""A standalone container's namespace joined to an overlay by the NetworkAgent (``join``'s
kernel half, `_plumb_join`): the next free ``ethN`` with the attachment's address, the gateway
bridge when it has no other way out, the overlay reached from it, and all of it taken back; and
the embedded DNS over local networks and the overlays' directory at once (ChainedRecords).

    node netns: eth0 172.18.77.1/24 (underlay) -- outside netns: eth0 172.18.77.2/24
      task container T: eth0 on overlay 4343 (10.0.43.2/24), eth1 on the gateway
      standalone S (<tmp>/localnet/<cid16>): a dummy eth0 of a local network already, then
      eth1 on overlay 4343 (10.0.43.3/24), eth2 on the gateway

Namespaces are /run/netns/shoalatt-<pid>-* and the test's tmp dir, removed even on failure;
the root netns is only read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyroute2 import IPRoute
from underlay_ns import wire_underlay

from shoal.daemon.overlays import Holder, Joined, _endpoint
from shoal.model.objects import Network, NetworkAttachment, Task
from shoal.model.specs import NetworkSpec
from shoal.net import gateway, links, netns
from shoal.net.dns import ChainedRecords
from shoal.net.localrecords import LocalRecords
from shoal.net.netagent import NetworkAgent
from shoal.net.records import Directory, Endpoint, encode_endpoint
from shoal.net.tasknets import Net
from tests.unit.net.test_gateway import inside, reach, root_state

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need CAP_SYS_ADMIN")

VNI = 4343
NODE_UL, OUTSIDE = "172.18.77.1", "172.18.77.2"
T_ADDR, S_ADDR = "10.0.43.2/24", "10.0.43.3/24"
CID_T, CID_S = "7" * 64, "5" * 64


@dataclass
class Env:
    node: str
    outside: str
    tmp: Path

    def agent(self) -> NetworkAgent:
        return NetworkAgent(node_id="n1", advertise_ip=NODE_UL, netns_dir=self.tmp / "netns")

    def task_ns(self) -> Path:
        return self.tmp / "netns" / CID_T[:16]

    def standalone_ns(self) -> str:
        return str(self.tmp / "localnet" / CID_S[:16])


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    before = root_state()
    prefix = f"/run/netns/shoalatt-{os.getpid()}-"
    e = Env(prefix + "node", prefix + "out", tmp_path)
    try:
        wire_underlay(e.node, e.outside, NODE_UL, OUTSIDE)
        yield e
    finally:
        for d in (tmp_path / "netns", tmp_path / "localnet"):
            if d.is_dir():
                for p in d.iterdir():
                    netns.remove(p)
        for p in (e.node, e.outside):
            netns.remove(p)
        assert root_state() == before, "the root netns changed"


def _dummy_eth0() -> None:
    with IPRoute() as ipr:
        ipr.link("add", ifname="eth0", kind="veth", peer="xpeer0")


@root_only
def test_a_standalone_namespace_joins_the_overlay_and_leaves_it(env: Env) -> None:
    agent = env.agent()
    net = Net("net1", "att", VNI, S_ADDR, ("db",), False)
    task_net = Net("net1", "att", VNI, T_ADDR, (), False)
    netns.run_in(env.node, lambda: agent._plumb([task_net], True, CID_T, env.task_ns()))
    s = env.standalone_ns()
    Path(s).parent.mkdir(parents=True, exist_ok=True)
    netns.create(s)
    netns.run_in(s, _dummy_eth0)  # a local network's endpoint holds eth0
    n = netns.run_in(env.node, lambda: agent._plumb_join(CID_S, s, net, None, True))
    assert n == 1
    addrs, defaults = inside(s)
    assert addrs["eth1"] == [S_ADDR] and addrs["eth2"] == ["172.19.0.3/16"]
    assert defaults == ["172.19.0.1"]
    # again with the same interface (a restarted daemon re-adopting it): nothing changes
    assert netns.run_in(env.node, lambda: agent._plumb_join(CID_S, s, net, 1, False)) == 1
    assert inside(s) == (addrs, defaults)
    # the task is reached over the overlay, and the outside through the gateway bridge
    assert reach(s, str(env.task_ns()), T_ADDR.split("/")[0], 8090) == S_ADDR.split("/")[0]
    assert reach(str(env.task_ns()), s, S_ADDR.split("/")[0], 8091) == T_ADDR.split("/")[0]
    assert reach(s, env.outside, OUTSIDE, 8092) == NODE_UL

    def leave() -> None:
        links.detach(links.host_ifname(CID_S, n))
        agent._drop_gateway(CID_S, s)

    netns.run_in(env.node, leave)
    addrs, defaults = inside(s)
    assert set(addrs) == {"lo"} and defaults == []  # eth0 (the local one) has no address
    node_addrs, _ = inside(env.node)
    assert gateway.BRIDGE in node_addrs  # the task still holds it
    netns.run_in(env.node, lambda: agent._unplumb(CID_T, 1, env.task_ns()))
    node_addrs, _ = inside(env.node)
    assert gateway.BRIDGE not in node_addrs  # the last one gone: the bridge too


def test_the_embedded_dns_answers_overlay_and_local_names() -> None:
    # a service's task (VIP 10.0.43.100) and the standalone container itself on the overlay
    svc = Endpoint(ip="10.0.43.2", vtep="172.18.77.9", node="n2", task="t1",
                   name="web.1.t1", service="web", service_id="s1", vip="10.0.43.100")
    me = Endpoint(ip="10.0.43.3", vtep=NODE_UL, node="n1", task="t2", name="client",
                  aliases=("db", CID_S[:12]))
    d = Directory.build({"net1": {"t1": encode_endpoint(svc), "t2": encode_endpoint(me)}},
                        {CID_S: {"net1": "att"}})
    chained = ChainedRecords(LocalRecords, lambda: d)
    assert chained.networks(CID_S) == {"net1": "att"}
    nets = chained.networks(CID_S).keys()
    assert chained.lookup_service("web", nets) == ["10.0.43.100"]
    assert chained.lookup_tasks("web", nets) == ["10.0.43.2"]
    assert chained.lookup_task_name("client", nets) == ["10.0.43.3"]
    assert chained.lookup_service("db", nets) == ["10.0.43.3"]  # an alias of the container
    assert chained.lookup_address("10.0.43.3", nets) == "client"
    assert chained.lookup_service("nope", nets) == ()


def test_the_endpoint_shown_in_inspect() -> None:
    net = Network(id="net1", spec=NetworkSpec(name="att", driver="overlay", attachable=True))
    task = Task(id="t2", networks_attachments=[NetworkAttachment(network=net,
                                                                 addresses=[S_ADDR])])
    h = Holder(container_id=CID_S, netns="/x", name="client", aliases=[CID_S[:12], "h"])
    ep = _endpoint(h, Joined(network_id="net1", network_name="att", task=task, ifnum=1,
                             aliases=["db"]))
    assert (ep.ip_address, ep.prefix_len, ep.mac_address, ep.endpoint_id) == (
        "10.0.43.3", 24, links.mac_for("10.0.43.3"), "t2")
    assert ep.dns_names == ("client", "db", CID_S[:12], "h")
