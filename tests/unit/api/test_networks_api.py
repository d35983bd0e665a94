"""/networks with local bridge networks (records only: no kernel) beside a manager's swarm
networks (a real Store over the in-memory backend): what stays on the node, what goes to the
managers, dockerd's refusals, inspect's Containers, filters and prune."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.api import SwarmState, build_app
from shoal.model.objects import Cluster, Network, Node
from shoal.model.specs import NetworkSpec, NodeSpec
from shoal.net.bridges import LocalBridges, Want
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store

CID = "c" * 64


class FakeEngine:
    hostname = "apitest"
    data_root = "/nonexistent"
    engine_labels: dict[str, str] = {}  # noqa: RUF012

    def __init__(self, store: Store, bridges: LocalBridges) -> None:
        self.store = store
        self.bridge_networks = bridges

    def swarm_state(self) -> SwarmState:
        return SwarmState(local_node_state="active", node_id="n1", control_available=True)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[TestClient, LocalBridges]]:
    store = Store(MemoryBackend())
    await store.start()

    def seed(tx):  # type: ignore[no-untyped-def]
        tx.create(Cluster(id="c1"))
        tx.create(Node(id="n1", spec=NodeSpec(role="manager", availability="active")))
        tx.create(Network(id="ingressid", spec=NetworkSpec(name="ingress", driver="overlay",
                                                            ingress=True)))

    await store.update(seed)
    bridges = LocalBridges(tmp_path, tmp_path, kernel=False)
    await bridges.start()
    client = TestClient(TestServer(build_app(FakeEngine(store, bridges))))  # type: ignore[arg-type]
    await client.start_server()
    try:
        yield client, bridges
    finally:
        await client.close()
        await store.close()


async def names(client: TestClient, **filters: list[str]) -> list[str]:
    query = {"filters": json.dumps(filters)} if filters else {}
    r = await client.get("/v1.50/networks", params=query)
    assert r.status == 200, await r.text()
    return sorted(n["Name"] for n in await r.json())


async def test_create_inspect_remove_and_refusals(
        api: tuple[TestClient, LocalBridges]) -> None:
    client, bridges = api
    # dockerd on a swarm manager lists these
    assert await names(client) == ["bridge", "docker_gwbridge", "host", "ingress", "none"]
    r = await client.post("/v1.50/networks/create", json={"Name": "front", "Labels": {"a": "b"}})
    assert r.status == 201, await r.text()
    front_id = (await r.json())["Id"]
    r = await client.post("/v1.50/networks/create", json={"Name": "ov", "Driver": "overlay",
                                                          "Attachable": True})
    assert r.status == 201, await r.text()
    local = await (await client.get("/v1.50/networks/front")).json()
    assert (local["Id"], local["Scope"], local["Driver"]) == (front_id, "local", "bridge")
    assert local["IPAM"]["Config"] == [{"Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1"}]
    assert local["Labels"] == {"a": "b"} and local["Containers"] == {}
    assert (await (await client.get("/v1.50/networks/ov")).json())["Scope"] == "swarm"
    default = await (await client.get("/v1.50/networks/bridge")).json()
    assert default["Options"]["com.docker.network.bridge.name"] == "shoal0"
    assert default["IPAM"]["Config"][0]["Subnet"] == "172.17.0.0/16"
    await bridges.attach(CID, [Want("front", aliases=("web",))], hostname="h1")
    local = await (await client.get(f"/v1.50/networks/{front_id[:8]}")).json()
    entry = local["Containers"][CID]
    assert entry["IPv4Address"] == "172.19.0.2/16" and entry["MacAddress"] == "02:42:ac:13:00:02"
    for body, status, words in [
        ({"Name": "front"}, 409, "network with name front already exists"),
        ({"Name": "ov"}, 409, "network with name ov already exists"),
        ({"Name": "host"}, 409, "network with name host already exists"),
        ({"Name": "x", "Driver": "macvlan"}, 400, "macvlan"),
        ({"Name": "x", "Driver": "weave"}, 404, 'plugin "weave" not found'),
        ({"Name": "x", "Driver": "host"}, 403, 'only one instance of "host" network'),
        ({"Name": "x", "Options": {"com.docker.network.bridge.gateway_mode_ipv4": "routed"}},
         400, "gateway_mode_ipv4"),
        ({"Name": "x", "IPAM": {"Config": [{"Subnet": "172.19.5.0/24"}]}}, 409, "Pool overlaps"),
    ]:
        r = await client.post("/v1.50/networks/create", json=body)
        assert r.status == status and words in (await r.json())["message"], (body, await r.text())
    for ref, status, words in [
        ("front", 409, "network front has active endpoints"),
        ("bridge", 403, "bridge is a pre-defined network and cannot be removed"),
        ("none", 403, "none is a pre-defined network"),
        ("nope", 404, "network nope not found"),
    ]:
        r = await client.delete(f"/v1.50/networks/{ref}")
        assert r.status == status and words in (await r.json())["message"], (ref, await r.text())
    await bridges.release(CID)
    assert (await client.delete("/v1.50/networks/front")).status == 204
    assert (await client.delete("/v1.50/networks/ov")).status == 204
    assert "front" not in await names(client)


async def test_filters_and_prune(api: tuple[TestClient, LocalBridges]) -> None:
    client, bridges = api
    for body in ({"Name": "used"}, {"Name": "idle", "Labels": {"keep": "no"}},
                 {"Name": "kept", "Labels": {"keep": "yes"}},
                 {"Name": "ov", "Driver": "overlay"}):
        assert (await client.post("/v1.50/networks/create", json=body)).status == 201
    await bridges.attach(CID, [Want("used")], hostname="h1")
    assert await names(client, type=["custom"]) == ["idle", "ingress", "kept", "ov", "used"]
    assert await names(client, type=["builtin"]) == ["bridge", "docker_gwbridge", "host", "none"]
    assert await names(client, driver=["bridge"], dangling=["true"]) == ["idle", "kept"]
    assert await names(client, scope=["swarm"]) == ["ingress", "ov"]
    assert await names(client, label=["keep=yes"]) == ["kept"]
    r = await client.post("/v1.50/networks/prune",
                          params={"filters": json.dumps({"label!": ["keep=yes"]})})
    assert r.status == 200
    assert sorted((await r.json())["NetworksDeleted"]) == ["idle", "ov"]
    assert await names(client) == ["bridge", "docker_gwbridge", "host", "ingress", "kept", "none",
                                   "used"]
    r = await client.post("/v1.50/networks/prune")
    assert (await r.json())["NetworksDeleted"] == ["kept"]
