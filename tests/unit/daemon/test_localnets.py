"""StandaloneNetworks: LocalBridges (records only) behind shoal.exec.localnet's contract: the
Sandbox and Endpoint shapes the container side reads, host and none, and swarm overlays
refused with dockerd's words (attachable ones: test_overlays.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.daemon.localnets import StandaloneNetworks
from shoal.errors import InvalidArgument, NotFound, PermissionDenied
from shoal.exec.localnet import EndpointRequest, LocalNetworks, PortBinding
from shoal.model.objects import Network
from shoal.model.specs import NetworkSpec
from shoal.net.bridges import LocalBridges

CID, CID2 = "a" * 64, "b" * 64


@pytest.fixture
async def nets(tmp_path: Path) -> StandaloneNetworks:
    swarm = {"closed": Network(id="o1", spec=NetworkSpec(name="closed", driver="overlay")),
             "open": Network(id="o2", spec=NetworkSpec(name="open", driver="overlay",
                                                        attachable=True))}
    bridges = LocalBridges(tmp_path, tmp_path, kernel=False)
    await bridges.start()
    await bridges.create(NetworkSpec(name="front"))
    return StandaloneNetworks(bridges, swarm_network=swarm.get,
                              name_of={CID: "/web"}.get)


async def test_sandbox_and_endpoints(nets: StandaloneNetworks) -> None:
    contract: LocalNetworks = nets
    sb = await contract.attach(CID, [], hostname="web1", ports=[PortBinding(80, host_port=8080)])
    assert sb.path is not None and sb.path.endswith("a" * 16) and not sb.embedded_dns
    (ep,) = sb.endpoints
    assert (ep.network_name, ep.ip_address, ep.prefix_len, ep.gateway, ep.mac_address) == (
        "bridge", "172.17.0.2", 16, "172.17.0.1", "02:42:ac:11:00:02")
    assert ep.dns_names == () and sb.ports == (PortBinding(80, "tcp", "", 8080),)
    ep2 = await contract.connect(CID, EndpointRequest("front", aliases=("api",)), hostname="web1")
    assert ep2.ip_address == "172.19.0.2" and ep2.aliases == ("api",)
    assert ep2.dns_names == ("web", "api", CID[:12], "web1")
    got = contract.sandbox(CID)
    assert got is not None and got.embedded_dns and len(got.endpoints) == 2
    await contract.disconnect(CID, "front")
    await contract.disconnect(CID, "front", force=True)  # not connected: fine when forced
    with pytest.raises(InvalidArgument, match="is not connected to network front"):
        await contract.disconnect(CID, "front")
    await contract.release(CID)
    assert contract.sandbox(CID) is None


async def test_host_none_and_overlays(nets: StandaloneNetworks) -> None:
    sb = await nets.attach(CID, [EndpointRequest("host")], hostname="h")
    assert sb.path is None and [e.network_name for e in sb.endpoints] == ["host"]
    sb = await nets.attach(CID2, [EndpointRequest("none")], hostname="h")
    assert sb.path is not None and [(e.network_name, e.ip_address) for e in sb.endpoints] == [
        ("none", "")]
    with pytest.raises(InvalidArgument, match="host"):
        await nets.connect(CID, EndpointRequest("front"), hostname="h")
    with pytest.raises(InvalidArgument, match="at once"):
        await nets.attach("c" * 64, [EndpointRequest("host"), EndpointRequest("front")],
                          hostname="h")
    with pytest.raises(InvalidArgument, match="private \\(none\\) mode"):
        await nets.connect(CID2, EndpointRequest("front"), hostname="h")
    with pytest.raises(PermissionDenied, match="network closed not manually attachable"):
        await nets.attach("c" * 64, [EndpointRequest("closed")], hostname="h")
    with pytest.raises(NotFound, match="network open not found"):  # no swarm side here
        await nets.connect(CID2, EndpointRequest("open"), hostname="h")
    with pytest.raises(NotFound, match="network nope not found"):
        await nets.attach("c" * 64, [EndpointRequest("nope")], hostname="h")
    assert nets.sandbox("c" * 64) is None
