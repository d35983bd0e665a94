"""``network_json`` shows what the allocator gave a network (IPAM.Config, the VXLAN ID option),
and what was asked for until then, as dockerd's network inspect does."""

from __future__ import annotations

from shoal.api.render import network_json
from shoal.manager.allocator.ipam import IPAMState
from shoal.model.objects import Network
from shoal.model.specs import IPAM, IPAMConfig, NetworkSpec


def test_allocated_ipam_and_vxlan_id_are_shown() -> None:
    net = Network(id="n1", spec=NetworkSpec(name="front", driver="overlay", ipam=IPAM()))
    assert network_json(net)["IPAM"] == {"Driver": "default", "Options": {}, "Config": []}
    configs, state = IPAMState().allocate_network("n1")
    net.ipam_options, net.driver_state = IPAM(config=configs), state
    out = network_json(net)
    assert out["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]
    assert out["Options"] == {"com.docker.network.driver.overlay.vxlanid_list": "4096"}


def test_requested_ipam_is_shown_until_allocated() -> None:
    spec = NetworkSpec(name="own", ipam=IPAM(config=[IPAMConfig(subnet="192.168.7.0/24", gateway="192.168.7.254")]))
    out = network_json(Network(id="n2", spec=spec))
    assert out["IPAM"]["Config"] == [{"Subnet": "192.168.7.0/24", "Gateway": "192.168.7.254"}]
