"""The IP address manager: subnets from the pool, addresses per subnet, VXLAN IDs, and the rebuild
a new leader does from the store's objects."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from shoal.errors import Conflict, InvalidArgument, NotFound
from shoal.manager.allocator.ipam import (
    ADDRESS_IN_USE,
    NO_ADDRESSES,
    NO_MORE_SUBNETS,
    POOL_OVERLAP,
    AddressPool,
    Exhausted,
    IPAMState,
    NetworkIPAM,
    VXLANIDs,
    parse_subnet,
    rebuild,
)
from shoal.model.objects import (
    Endpoint,
    Network,
    NetworkAttachment,
    Service,
    Task,
    VirtualIP,
    overlay_driver_state,
    vxlan_ids_of,
)
from shoal.model.specs import IPAM, IPAMConfig, NetworkSpec


def net(nid: str, *configs: IPAMConfig, vnis: tuple[int, ...] = (),
        state: dict[str, Any] | None = None) -> Network:
    """An allocated Network (its IPAM options and driver state set)."""
    return Network(id=nid, ipam_options=IPAM(config=list(configs)),
                   driver_state=overlay_driver_state(vnis) if vnis else state)


# --- subnets ---------------------------------------------------------------------------------


def test_subnets_come_from_the_pool_in_order() -> None:
    pool = AddressPool()
    assert [str(pool.allocate_subnet()) for _ in range(3)] == [
        "10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]


def test_pool_skips_user_subnets_of_any_size() -> None:
    pool = AddressPool()
    pool.reserve_subnet("10.0.0.0/24")  # ingress at init
    pool.reserve_subnet("10.0.2.0/23")  # a user's --subnet spanning two /24s
    pool.reserve_subnet("192.168.5.0/24")  # outside the pool: fine
    assert [str(pool.allocate_subnet()) for _ in range(3)] == [
        "10.0.1.0/24", "10.0.4.0/24", "10.0.5.0/24"]


def test_pool_skips_a_larger_reserved_block_in_one_jump() -> None:
    pool = AddressPool(size=24)
    pool.reserve_subnet("10.0.0.0/9")
    assert str(pool.allocate_subnet()) == "10.128.0.0/24"


def test_a_released_subnet_is_the_next_one_handed_out() -> None:
    pool = AddressPool()
    got = [pool.allocate_subnet() for _ in range(300)]
    pool.release_subnet(got[7])
    pool.release_subnet(got[200])
    assert [str(pool.allocate_subnet()) for _ in range(3)] == [
        "10.0.7.0/24", "10.0.200.0/24", "10.1.44.0/24"]


def test_overlapping_subnets_are_refused() -> None:
    pool = AddressPool()
    first = pool.allocate_subnet()
    for clash in ("10.0.0.0/16", "10.0.0.128/25", str(first)):
        with pytest.raises(Conflict) as exc:
            pool.reserve_subnet(clash)
        assert exc.value.message == POOL_OVERLAP
    pool.release_subnet(first)
    assert pool.reserve_subnet("10.0.0.0/16") == IPv4Network("10.0.0.0/16")
    assert str(pool.allocate_subnet()) == "10.1.0.0/24"


def test_several_pools_and_their_exhaustion() -> None:
    pool = AddressPool(["10.10.0.0/23", "172.30.0.0/24"], size=24)
    got = [str(pool.allocate_subnet()) for _ in range(3)]
    assert got == ["10.10.0.0/24", "10.10.1.0/24", "172.30.0.0/24"]
    with pytest.raises(Exhausted) as exc:
        pool.allocate_subnet()
    assert exc.value.message == NO_MORE_SUBNETS
    pool.release_subnet("10.10.1.0/24")
    assert str(pool.allocate_subnet()) == "10.10.1.0/24"


@pytest.mark.parametrize("text", ["10.0.0.1/24", "10.0.0.0", "10.0.0.0/33", "fd00::/64", "nope"])
def test_invalid_subnets(text: str) -> None:
    with pytest.raises(InvalidArgument, match=f"invalid subnet {text}"):
        parse_subnet(text)


def test_invalid_pool_size() -> None:
    with pytest.raises(InvalidArgument, match="invalid subnet size 4"):
        AddressPool("10.0.0.0/8", size=4)


# --- addresses -------------------------------------------------------------------------------


def test_gateway_is_the_first_host_and_addresses_follow() -> None:
    ipam = NetworkIPAM("10.0.1.0/24")
    assert ipam.gateway == IPv4Address("10.0.1.1")
    assert [str(ipam.allocate()) for _ in range(2)] == ["10.0.1.2", "10.0.1.3"]
    assert ipam.interface(IPv4Address("10.0.1.2")) == "10.0.1.2/24"
    assert ipam.config() == IPAMConfig(subnet="10.0.1.0/24", gateway="10.0.1.1")


def test_user_gateway_and_ip_range_are_honoured() -> None:
    ipam = NetworkIPAM("10.5.0.0/16", gateway="10.5.0.254", ip_range="10.5.7.0/30")
    assert "10.5.0.254" in ipam and "10.5.0.1" not in ipam
    got = [str(ipam.allocate()) for _ in range(4)]  # the range's own ends are usable hosts
    assert got == ["10.5.7.0", "10.5.7.1", "10.5.7.2", "10.5.7.3"]
    with pytest.raises(Exhausted):
        ipam.allocate()
    assert str(ipam.allocate("10.5.9.9")) == "10.5.9.9"  # preferred: anywhere in the subnet


def test_gateway_and_range_outside_the_subnet_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway 10.6.0.1"):
        NetworkIPAM("10.5.0.0/16", gateway="10.6.0.1")
    with pytest.raises(InvalidArgument, match="no matching subnet for range 10.6.0.0/24"):
        NetworkIPAM("10.5.0.0/16", ip_range="10.6.0.0/24")
    with pytest.raises(InvalidArgument, match="network or broadcast"):
        NetworkIPAM("10.5.0.0/16", gateway="10.5.255.255")


def test_network_broadcast_and_gateway_are_never_handed_out() -> None:
    ipam = NetworkIPAM("10.0.9.0/29")
    got = {str(ipam.allocate()) for _ in range(5)}
    assert got == {f"10.0.9.{i}" for i in range(2, 7)}
    with pytest.raises(Exhausted) as exc:
        ipam.allocate()
    assert exc.value.message == NO_ADDRESSES
    for fixed in ("10.0.9.0", "10.0.9.1", "10.0.9.7"):
        with pytest.raises(Conflict, match=ADDRESS_IN_USE):
            ipam.allocate(fixed)
        with pytest.raises(InvalidArgument):
            ipam.release(fixed)


def test_preferred_reserved_and_out_of_range() -> None:
    ipam = NetworkIPAM("10.0.1.0/24")
    assert str(ipam.allocate("10.0.1.2")) == "10.0.1.2"
    with pytest.raises(Conflict, match=ADDRESS_IN_USE):
        ipam.reserve("10.0.1.2")
    with pytest.raises(InvalidArgument, match="requested address is out of range"):
        ipam.allocate("10.0.2.5")
    assert str(ipam.allocate()) == "10.0.1.3"  # skips the taken one


def test_serial_allocation_does_not_reuse_a_released_address_at_once() -> None:
    ipam = NetworkIPAM("10.0.1.0/29")  # hosts .2 to .6 after the gateway
    a, b = ipam.allocate(), ipam.allocate()
    ipam.release(a)
    ipam.release(a)  # idempotent
    assert str(ipam.allocate()) == "10.0.1.4"  # after b, not a
    assert [str(ipam.allocate()) for _ in range(3)] == ["10.0.1.5", "10.0.1.6", "10.0.1.2"]
    assert ipam.in_use == 5 and b in ipam
    with pytest.raises(Exhausted):
        ipam.allocate()


def test_lowest_free_allocation_reuses_at_once() -> None:
    ipam = NetworkIPAM("10.0.1.0/24", serial=False)
    a, _ = ipam.allocate(), ipam.allocate()
    ipam.release(a)
    assert ipam.allocate() == a
    assert str(ipam.allocate()) == "10.0.1.4"


def test_small_subnets() -> None:
    p31 = NetworkIPAM("10.0.0.0/31")  # RFC 3021: both addresses are hosts
    assert str(p31.gateway) == "10.0.0.0" and str(p31.allocate()) == "10.0.0.1"
    p30 = NetworkIPAM("10.0.0.0/30")
    assert str(p30.allocate()) == "10.0.0.2"
    with pytest.raises(Exhausted):
        p30.allocate()
    p32 = NetworkIPAM("10.0.0.9/32")  # the gateway only
    assert str(p32.gateway) == "10.0.0.9"
    with pytest.raises(Exhausted):
        p32.allocate()


# --- VXLAN IDs -------------------------------------------------------------------------------


def test_vxlan_ids_start_at_4096() -> None:
    ids = VXLANIDs()
    assert [ids.allocate() for _ in range(3)] == [4096, 4097, 4098]
    ids.release(4097)
    assert ids.allocate() == 4099  # serial
    ids.reserve(4200)
    with pytest.raises(Conflict):
        ids.reserve(4200)
    with pytest.raises(InvalidArgument):
        ids.reserve(100)
    small = VXLANIDs(4096, 4097, serial=False)
    assert [small.allocate(), small.allocate()] == [4096, 4097]
    with pytest.raises(Exhausted):
        small.allocate()
    small.release(4096)
    assert small.allocate() == 4096


# --- the whole state -------------------------------------------------------------------------


def test_networks_get_subnets_gateways_and_vnis() -> None:
    s = IPAMState()
    ingress, state = s.allocate_network("ingress", [IPAMConfig(subnet="10.0.0.0/24",
                                                               gateway="10.0.0.1")])
    assert ingress == [IPAMConfig(subnet="10.0.0.0/24", gateway="10.0.0.1")]
    assert vxlan_ids_of(state) == [4096]
    web, state = s.allocate_network("web")
    assert web == [IPAMConfig(subnet="10.0.1.0/24", gateway="10.0.1.1")]
    assert vxlan_ids_of(state) == [4097]
    assert s.allocate_address("web") == "10.0.1.2/24"
    assert s.allocate_address("web", "10.0.1.77") == "10.0.1.77/24"
    s.release_address("web", "10.0.1.2/24")
    s.release_address("gone", "10.9.9.9/24")  # a removed network: nothing to do
    with pytest.raises(NotFound):
        s.allocate_address("gone")
    with pytest.raises(Conflict, match="already allocated"):
        s.allocate_network("web")


def test_a_failed_network_allocation_takes_nothing() -> None:
    s = IPAMState()
    s.allocate_network("a", [IPAMConfig(subnet="10.0.5.0/24")])
    with pytest.raises(Conflict, match="Pool overlaps"):
        s.allocate_network("b", [IPAMConfig(subnet="10.0.6.0/24"), IPAMConfig(subnet="10.0.5.0/25")])
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway"):
        s.allocate_network("c", [IPAMConfig(subnet="10.0.6.0/24", gateway="10.0.7.1")])
    assert [str(n) for n in s.pool.subnets] == ["10.0.5.0/24"]
    assert s.allocate_network("d")[0][0].subnet == "10.0.0.0/24"
    assert vxlan_ids_of(s.allocate_network("e", [IPAMConfig(subnet="10.0.6.0/24")])[1]) == [4098]
    s.release_network("a")
    s.release_network("a")
    assert s.allocate_network("f", [IPAMConfig(subnet="10.0.5.0/25")])[0][0].gateway == "10.0.5.1"


def test_a_network_with_two_subnets_fills_the_first_then_the_second() -> None:
    s = IPAMState()
    _, state = s.allocate_network("n", [IPAMConfig(subnet="10.1.0.0/30"),
                                        IPAMConfig(subnet="10.2.0.0/30")])
    assert vxlan_ids_of(state) == [4096, 4097]
    assert [s.allocate_address("n") for _ in range(2)] == ["10.1.0.2/30", "10.2.0.2/30"]
    with pytest.raises(Exhausted):
        s.allocate_address("n")


def _task(tid: str, *atts: tuple[str, list[str]]) -> Task:
    return Task(id=tid, networks_attachments=[
        NetworkAttachment(network=Network(id=nid), addresses=addrs) for nid, addrs in atts])


def test_rebuild_from_objects_then_no_double_allocation() -> None:
    networks = [
        net("ing", IPAMConfig(subnet="10.0.0.0/24", gateway="10.0.0.1"), vnis=(4096,)),
        net("web", IPAMConfig(subnet="10.0.1.0/24", gateway="10.0.1.1"), vnis=(4097,)),
        net("big", IPAMConfig(subnet="10.0.4.0/22", gateway="10.0.4.1",
                              ip_range="10.0.6.0/24"), vnis=(4099,)),
    ]
    services = [Service(id="s1", endpoint=Endpoint(virtual_ips=[
        VirtualIP(network_id="ing", addr="10.0.0.2/24"),
        VirtualIP(network_id="web", addr="10.0.1.2/24")]))]
    tasks = [_task("t1", ("ing", ["10.0.0.3/24"]), ("web", ["10.0.1.3/24"])),
             _task("t2", ("web", ["10.0.1.5/24"]), ("big", ["10.0.6.0/22"]))]
    s, problems = rebuild(networks, services, tasks, extra=[("web", "10.0.1.9/24")])
    assert problems == []
    # Serial: after the highest address held, so neither a held one nor a just-released one.
    assert s.allocate_address("web") == "10.0.1.10/24"
    assert s.allocate_address("ing") == "10.0.0.4/24"
    assert s.allocate_address("big") == "10.0.6.1/22"
    for held in ("10.0.1.2", "10.0.1.3", "10.0.1.5", "10.0.1.9"):
        with pytest.raises(Conflict):
            s.allocate_address("web", held)
    new, state = s.allocate_network("next")
    assert new[0].subnet == "10.0.2.0/24" and vxlan_ids_of(state) == [4100]
    assert s.allocate_network("after")[0][0].subnet == "10.0.3.0/24"
    assert s.allocate_network("then")[0][0].subnet == "10.0.8.0/24"


def test_rebuild_lowest_free_mode_fills_holes() -> None:
    networks = [net("web", IPAMConfig(subnet="10.0.1.0/24", gateway="10.0.1.1"), vnis=(4097,))]
    tasks = [_task("t", ("web", ["10.0.1.2/24", "10.0.1.4/24"]))]
    s, _ = rebuild(networks, (), tasks, serial=False)
    assert [s.allocate_address("web") for _ in range(2)] == ["10.0.1.3/24", "10.0.1.5/24"]
    assert vxlan_ids_of(s.allocate_network("x")[1]) == [4098]


def test_rebuild_reports_what_does_not_fit() -> None:
    networks = [
        net("a", IPAMConfig(subnet="10.0.1.0/24", gateway="10.0.1.1"), vnis=(4097,)),
        net("b", IPAMConfig(subnet="10.0.1.0/25"), vnis=(4097,)),  # corrupt: overlaps a
        Network(id="unallocated", spec=NetworkSpec(ipam=IPAM(config=[IPAMConfig(subnet="10.0.3.0/24")]))),
    ]
    tasks = [_task("t1", ("a", ["10.0.1.2/24"])), _task("t2", ("a", ["10.0.1.2/24"])),
             _task("t3", ("zz", ["10.0.9.2/24"])), _task("t4", ("a", ["10.0.2.2/24"]))]
    s, problems = rebuild(networks, (), tasks)
    assert problems == [
        f"network b: subnet 10.0.1.0/25: {POOL_OVERLAP}",
        "network b: VXLAN ID 4097 is already in use",
        f"task t2: address 10.0.1.2/24 on network a: {ADDRESS_IN_USE}",
        "task t3: address 10.0.9.2/24 on unknown network zz",
        "task t4: address 10.0.2.2/24 on network a: requested address is out of range",
    ]
    assert set(s.networks) == {"a"}
    assert s.allocate_address("a") == "10.0.1.3/24"


# --- property: nothing is handed out twice ---------------------------------------------------


@pytest.mark.parametrize("serial", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_random_allocate_release_never_hands_out_an_address_twice(seed: int, serial: bool) -> None:
    rng = random.Random(seed)
    ipam = NetworkIPAM("10.0.3.0/26", ip_range="10.0.3.0/27" if seed % 2 else None, serial=serial)
    allowed = ipam.ip_range or ipam.subnet
    fixed = {ipam.subnet.network_address, ipam.subnet.broadcast_address, ipam.gateway}
    capacity = len([a for a in allowed if a not in fixed])
    held: set[IPv4Address] = set()
    for _ in range(2000):
        if held and (rng.random() < 0.45 or len(held) == capacity):
            addr = rng.choice(sorted(held))
            ipam.release(addr)
            held.discard(addr)
            continue
        if len(held) == capacity:
            with pytest.raises(Exhausted):
                ipam.allocate()
            continue
        addr = ipam.allocate()
        assert addr not in held and addr not in fixed and addr in allowed
        held.add(addr)
        assert ipam.in_use == len(held)
    assert all(a in ipam for a in held)


@pytest.mark.parametrize("seed", range(4))
def test_random_state_with_rebuilds_never_double_allocates(seed: int) -> None:
    """Networks, VIPs and tasks come and go; now and then a new leader rebuilds from what the
    objects hold; no address, subnet or VNI is ever held twice."""
    rng = random.Random(seed)
    s = IPAMState(pool=AddressPool("10.0.0.0/20", size=26))
    nets: dict[str, tuple[list[IPAMConfig], dict[str, Any]]] = {}
    addrs: dict[str, set[str]] = {}
    for step in range(600):
        roll = rng.random()
        if roll < 0.08 or not nets:
            nid = f"n{step}"
            try:
                nets[nid] = s.allocate_network(nid)
            except Exhausted:
                continue
            addrs[nid] = set()
        elif roll < 0.12:
            nid = rng.choice(sorted(nets))
            s.release_network(nid)
            del nets[nid], addrs[nid]
        elif roll < 0.70:
            nid = rng.choice(sorted(nets))
            try:
                a = s.allocate_address(nid)
            except Exhausted:
                continue
            assert a not in addrs[nid]
            addrs[nid].add(a)
        elif roll < 0.95:
            nid = rng.choice(sorted(nets))
            if addrs[nid]:
                a = rng.choice(sorted(addrs[nid]))
                s.release_address(nid, a)
                addrs[nid].discard(a)
        else:
            objs = [net(nid, *cfgs, state=st) for nid, (cfgs, st) in nets.items()]
            tasks = [_task(f"t-{nid}", (nid, sorted(held))) for nid, held in addrs.items()]
            s, problems = rebuild(objs, (), tasks, pool="10.0.0.0/20", size=26)
            assert problems == []
        subnets = [IPv4Network(c.subnet) for cfgs, _ in nets.values() for c in cfgs]
        assert all(not x.overlaps(y) for i, x in enumerate(subnets) for y in subnets[i + 1:])
        vnis = [v for _, st in nets.values() for v in vxlan_ids_of(st)]
        assert len(vnis) == len(set(vnis))
