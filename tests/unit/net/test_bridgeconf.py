"""Local bridge networks without the kernel: the create request checked option by option, the
pools, the addresses, the rules' text, and LocalBridges in records-only mode (the sim
executor's: networks and addresses, nothing made in the kernel)."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from shoal.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from shoal.events import EventLog
from shoal.model.specs import IPAM, IPAMConfig, NetworkSpec
from shoal.net.bridgeconf import BridgeNet, choose_pool, configure, pools
from shoal.net.bridgenft import Published, bridge_table
from shoal.net.bridges import LocalBridges, PortWant, Want
from shoal.net.errors import NetError

N = IPv4Network


def make(spec: NetworkSpec, taken: list[IPv4Network] | None = None) -> BridgeNet:
    return configure(spec, net_id="f" * 64, created="2026-12-07T00:00:00Z", taken=taken or [])


def test_pools_are_dockers() -> None:
    listed = list(pools())
    assert listed[0] == N("172.17.0.0/16") and listed[14] == N("172.31.0.0/16")
    assert listed[15] == N("192.168.0.0/20") and len(listed) == 15 + 16
    assert choose_pool([N("0.0.0.0/0"), N("172.17.0.0/16"), N("172.18.0.0/16")]) == \
        N("172.19.0.0/16")
    assert choose_pool([N("172.16.0.0/12")]) == N("192.168.0.0/20")
    with pytest.raises(NetError, match="non-overlapping IPv4 address pool"):
        choose_pool([N("172.16.0.0/12"), N("192.168.0.0/16")])


def test_configure_defaults_and_options() -> None:
    net = make(NetworkSpec(name="front"), [N("172.17.0.0/16")])
    assert (net.subnet, net.gateway, net.bridge) == ("172.18.0.0/16", "172.18.0.1", "br-ffffffffffff")
    assert net.icc and net.masquerade and not net.internal and not net.user_subnet
    spec = NetworkSpec(name="x", internal=True, attachable=True, labels={"a": "b"},
                       ipam=IPAM(config=[IPAMConfig(subnet="10.77.0.0/24", gateway="10.77.0.254",
                                                    ip_range="10.77.0.128/25",
                                                    aux_address={"router": "10.77.0.129"})]),
                       options={"com.docker.network.bridge.name": "brx",
                                "com.docker.network.bridge.enable_icc": "false",
                                "com.docker.network.bridge.enable_ip_masquerade": "false",
                                "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
                                "com.docker.network.driver.mtu": "1400"})
    net = make(spec)
    assert (net.subnet, net.gateway, net.ip_range, net.aux) == (
        "10.77.0.0/24", "10.77.0.254", "10.77.0.128/25", {"router": "10.77.0.129"})
    assert (net.bridge, net.icc, net.masquerade, net.host_ip, net.mtu) == (
        "brx", False, False, "127.0.0.1", 1400)
    assert net.internal and net.attachable and net.user_subnet and net.labels == {"a": "b"}
    assert str(net.allocate([])) == "10.77.0.128"  # the range's first
    assert str(net.allocate(["10.77.0.128"])) == "10.77.0.130"  # past the aux address
    assert str(net.check_fixed("10.77.0.5", [])) == "10.77.0.5"  # outside the range is fine
    with pytest.raises(Conflict, match="Address already in use"):
        net.check_fixed("10.77.0.254", [])
    with pytest.raises(InvalidArgument, match="no configured subnet"):
        net.check_fixed("10.78.0.5", [])
    with pytest.raises(InvalidArgument, match="user configured subnets"):
        make(NetworkSpec(name="y")).check_fixed("172.17.0.9", [])


@pytest.mark.parametrize(("spec", "words"), [
    (NetworkSpec(name="x", options={"com.docker.network.bridge.gateway_mode_ipv4": "routed"}),
     "gateway_mode_ipv4"),
    (NetworkSpec(name="x", options={"foo": "bar"}), "'foo' is not supported"),
    (NetworkSpec(name="x", options={"com.docker.network.bridge.enable_icc": "maybe"}),
     "enable_icc"),
    (NetworkSpec(name="x", enable_ipv6=True), "IPv6"),
    (NetworkSpec(name="x", ipam=IPAM(driver="other")), "IPAM driver"),
    (NetworkSpec(name="x", ipam=IPAM(config=[IPAMConfig(gateway="10.0.0.1")])), "needs a subnet"),
    (NetworkSpec(name="x", ipam=IPAM(config=[IPAMConfig(subnet="10.0.0.0/24",
                                                        gateway="10.0.1.1")])), "gateway"),
    (NetworkSpec(name="x", ipam=IPAM(config=[IPAMConfig(subnet="10.0.0.0/24",
                                                        ip_range="10.0.1.0/25")])), "ip-range"),
    (NetworkSpec(name="x", ipam=IPAM(config=[IPAMConfig(subnet="fd00::/64")])), "IPv6"),
])
def test_refused_with_the_options_name(spec: NetworkSpec, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        make(spec)


def test_overlapping_subnet_refused() -> None:
    with pytest.raises(Conflict, match="Pool overlaps"):
        make(NetworkSpec(name="x", ipam=IPAM(config=[IPAMConfig(subnet="172.17.3.0/24")])),
             [N("172.17.0.0/16")])


def test_rules_text() -> None:
    net = make(NetworkSpec(name="front"))
    internal = make(NetworkSpec(name="back", internal=True,
                                options={"com.docker.network.bridge.name": "brb",
                                         "com.docker.network.bridge.enable_icc": "false"}))
    text = bridge_table([net, internal], [Published("tcp", "", 8080, "172.17.0.2", 80),
                                          Published("udp", "127.0.0.1", 53, "172.17.0.2", 53)])
    lines = [line.strip() for line in text.splitlines()]
    assert lines[:3] == ["table ip shoal_br", "delete table ip shoal_br", "table ip shoal_br {"]
    br = net.bridge
    assert f'iifname "{br}" oifname "{br}" accept' in lines
    assert 'iifname "brb" oifname "brb" drop' in lines  # ICC off
    assert f'iifname "{br}" accept' in lines and 'iifname "brb" drop' in lines  # internal
    assert f'ip saddr 172.17.0.0/16 oifname != "{br}" masquerade' in lines
    assert not any("10.0.0.0" in line or "brb\" masquerade" in line for line in lines)
    assert lines.count("fib daddr type local tcp dport 8080 dnat ip to 172.17.0.2:80") == 2
    assert lines.count("ip daddr 127.0.0.1 udp dport 53 dnat ip to 172.17.0.2:53") == 2


async def test_records_only_mode(tmp_path: Path) -> None:
    events = EventLog()
    sub = events.subscribe()
    lb = LocalBridges(tmp_path / "data", tmp_path / "exec", kernel=False, events=events)
    await lb.start()
    default = lb.get("bridge")
    assert default.predefined and default.subnet == "172.17.0.0/16" and default.bridge == "shoal0"
    net = await lb.create(NetworkSpec(name="front", labels={"k": "v"}))
    assert net.subnet == "172.19.0.0/16"  # 172.18 left to the gateway bridge
    front2 = await lb.create(NetworkSpec(name="front2", ipam=IPAM(config=[
        IPAMConfig(subnet="10.5.0.0/24", gateway="10.5.0.1")])))
    with pytest.raises(Conflict, match="network with name front already exists"):
        await lb.create(NetworkSpec(name="front"))
    with pytest.raises(Conflict, match="network with name bridge already exists"):
        await lb.create(NetworkSpec(name="bridge"))
    rec = await lb.attach("c" * 64, [Want("front", aliases=("web",))], hostname="h1",
                          ports=[PortWant(80)])
    assert [e.ip for e in rec.endpoints] == ["172.19.0.2"]
    assert rec.ports[0].host_port >= 32768 and lb.embedded_dns(rec)
    with pytest.raises(Conflict, match="Address already in use"):  # all or nothing again
        await lb.attach("c" * 64, [Want("front"), Want("bridge"),
                                   Want("front2", ipv4_address="10.5.0.1")], hostname="h1")
    kept_now = lb.container("c" * 64)
    assert kept_now is not None and [e.ip for e in kept_now.endpoints] == ["172.19.0.2"]
    for bad in (PortWant(80, host_ip="::"), PortWant(80, protocol="sctp"), PortWant(0)):
        with pytest.raises(InvalidArgument):
            await lb.attach("d" * 64, [], hostname="h2", ports=[bad])
    assert lb.container("d" * 64) is None
    ep = await lb.connect("c" * 64, Want("bridge"), hostname="h1")
    assert ep.ip == "172.17.0.2" and not ep.gateway_route
    with pytest.raises(Conflict, match="has active endpoints"):
        await lb.remove("front")
    with pytest.raises(PermissionDenied, match="pre-defined network"):
        await lb.remove("bridge")
    # a restart keeps it all
    again = LocalBridges(tmp_path / "data", tmp_path / "exec", kernel=False)
    await again.start()
    assert again.get(net.id[:6]).name == "front" and again.get("bridge").id == default.id
    kept = again.container("c" * 64)
    assert kept is not None and [e.ip for e in kept.endpoints] == ["172.19.0.2", "172.17.0.2"]
    await lb.disconnect("c" * 64, "bridge")
    await lb.release("c" * 64)
    await lb.release("c" * 64)  # again: nothing
    await lb.remove(net.id)
    await lb.remove(front2.id)
    with pytest.raises(NotFound, match="network front not found"):
        lb.get("front")
    seen = []
    while (e := sub._queue.get_nowait() if not sub._queue.empty() else None) is not None:
        seen.append((e.action, e.attributes.get("name"), e.attributes.get("container", "")))
    assert seen == [("create", "front", ""), ("create", "front2", ""),
                    ("connect", "front", "c" * 64),
                    ("connect", "bridge", "c" * 64), ("disconnect", "bridge", "c" * 64),
                    ("disconnect", "front", "c" * 64), ("destroy", "front", ""),
                    ("destroy", "front2", "")]


async def test_bridge_none_disables(tmp_path: Path) -> None:
    lb = LocalBridges(tmp_path / "data", tmp_path / "exec", kernel=True, enabled=False)
    await lb.start()
    assert lb.networks() == []
    with pytest.raises(InvalidArgument, match="--bridge none"):
        await lb.create(NetworkSpec(name="front"))
    with pytest.raises(NotFound, match="network bridge not found"):
        await lb.attach("c" * 64, [], hostname="h")
