"""The Engine API in process: version prefixes, headers, error bodies, filters in both encodings,
the 503s of a node outside a swarm. A real Store over the in-memory backend stands behind it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.api import SwarmState, build_app
from shoal.api.server import STALE_READ_HEADER
from shoal.errors import Unavailable
from shoal.model.objects import Cluster, Node
from shoal.model.requests import InitRequest, JoinRequest
from shoal.model.specs import NodeSpec
from shoal.net.bridges import LocalBridges
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store


class NoRegistry:
    """The node's images, with no registry reachable (no traffic leaves the test)."""

    def __init__(self) -> None:
        self.insecure_registries = ["10.9.0.0/16", "reg.internal:5000"]
        self.registry_mirrors = ["http://mirror.internal:5000/"]

    async def distribution(self, name: str, registry_auth: str = "") -> dict[str, object]:
        raise Unavailable(f"cannot reach the registry of {name}")


class FakeEngine:
    """The daemon side of the API: a swarm state and (on a manager) a store."""

    images = NoRegistry()

    hostname = "apitest"
    data_root = "/nonexistent"

    def __init__(self, store: Store | None, bridges: LocalBridges | None = None) -> None:
        self._store = store
        self.engine_labels = {"k": "v"}
        # the node's local networks, records only (no kernel); not started: none on disk
        self.bridge_networks = bridges or LocalBridges(Path("/nonexistent"), Path("/nonexistent"),
                                                       kernel=False)

    def swarm_state(self) -> SwarmState:
        if self._store is None:
            return SwarmState()
        return SwarmState(local_node_state="active", node_id="n1", control_available=True)

    @property
    def store(self) -> Store | None:
        return self._store

    async def init(self, req: InitRequest) -> str:
        raise NotImplementedError

    async def join(self, req: JoinRequest) -> None:
        raise NotImplementedError

    async def leave(self, force: bool) -> None:
        raise NotImplementedError


@pytest.fixture
async def manager() -> AsyncIterator[TestClient]:
    store = Store(MemoryBackend())
    await store.start()

    def seed(tx):  # type: ignore[no-untyped-def]
        tx.create(Cluster(id="c1"))
        tx.create(Node(id="n1", spec=NodeSpec(role="manager", availability="active")))
        tx.create(Node(id="n2", spec=NodeSpec(role="worker", availability="active", labels={"zone": "a"})))

    await store.update(seed)
    client = TestClient(TestServer(build_app(FakeEngine(store))))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await store.close()


async def test_ping_headers_and_version_prefixes(manager: TestClient) -> None:
    r = await manager.head("/_ping")
    assert r.status == 200 and r.headers["Api-Version"] == "1.50" and r.headers["Swarm"] == "active/manager"
    assert (await manager.get("/v1.24/version")).status == 200
    r = await manager.get("/v1.51/version")
    assert r.status == 400 and r.headers["Content-Type"] == "application/json"
    assert "is too new" in (await r.json())["message"]
    r = await manager.get("/v1.12/version")
    assert r.status == 400 and "too old" in (await r.json())["message"]


async def test_errors_are_docker_shaped(manager: TestClient) -> None:
    r = await manager.get("/v1.50/services/nosuch")
    assert r.status == 404 and r.headers["Content-Type"] == "application/json"
    assert await r.json() == {"message": "service nosuch not found"}
    r = await manager.get("/v1.50/nodes", params={"filters": json.dumps({"bogus": {"x": True}})})
    assert r.status == 400 and (await r.json())["message"] == "invalid filter 'bogus'"
    r = await manager.post("/v1.50/services/create", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400


async def test_filters_in_both_encodings(manager: TestClient) -> None:
    cli = await manager.get("/nodes", params={"filters": json.dumps({"role": {"worker": True}})})
    py = await manager.get("/nodes", params={"filters": json.dumps({"role": ["worker"]})})
    assert [n["ID"] for n in await cli.json()] == [n["ID"] for n in await py.json()] == ["n2"]
    labelled = await manager.get("/nodes", params={"filters": json.dumps({"node.label": ["zone=a"]})})
    assert [n["ID"] for n in await labelled.json()] == ["n2"]


async def test_service_create_normalises_and_stale_update_is_refused(manager: TestClient) -> None:
    body = {"name": "web", "TaskTemplate": {"ContainerSpec": {"image": "x", "Command": None}},
            "Mode": {"replicated": {}}}
    r = await manager.post("/v1.50/services/create", json=body)
    assert r.status == 201
    svc = await (await manager.get("/v1.50/services/web")).json()
    assert svc["Spec"]["Mode"]["Replicated"]["Replicas"] == 1 and "Global" not in svc["Spec"]["Mode"]
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"] == {"Image": "x"}
    version = svc["Version"]["Index"]
    spec = svc["Spec"]
    spec["Labels"] = {"a": "b"}
    r = await manager.post(f"/v1.50/services/{svc['ID'][:5]}/update", params={"version": str(version)}, json=spec)
    assert r.status == 200
    r = await manager.post(f"/v1.50/services/{svc['ID']}/update", params={"version": str(version)}, json=spec)
    assert r.status == 500 and "update out of sequence" in (await r.json())["message"]
    spec["Mode"] = {"Global": {}}
    latest = (await (await manager.get("/v1.50/services/web")).json())["Version"]["Index"]
    r = await manager.post("/v1.50/services/web/update", params={"version": str(latest)}, json=spec)
    assert r.status == 501 and (await r.json())["message"] == "service mode change is not allowed"
    listed = await (await manager.get("/v1.50/services", params={"status": "true"})).json()
    assert listed[0]["ServiceStatus"] == {"RunningTasks": 0, "DesiredTasks": 1, "CompletedTasks": 0}


async def test_not_in_a_swarm_gets_503(tmp_path: Path) -> None:
    bridges = LocalBridges(tmp_path, tmp_path, kernel=False)
    await bridges.start()
    client = TestClient(TestServer(build_app(FakeEngine(None, bridges))))
    await client.start_server()
    try:
        r = await client.get("/v1.50/services")
        assert r.status == 503 and "not a swarm manager" in (await r.json())["message"]
        assert (await client.get("/_ping")).headers["Swarm"] == "inactive"
        info = await (await client.get("/info")).json()
        assert info["Swarm"]["LocalNodeState"] == "inactive" and "k=v" in info["Labels"]
        registries = info["RegistryConfig"]  # what `docker info` prints its registry lines from
        assert registries["Mirrors"] == ["http://mirror.internal:5000/"]
        assert registries["IndexConfigs"]["docker.io"]["Mirrors"] == registries["Mirrors"]
        assert registries["InsecureRegistryCIDRs"] == ["::1/128", "127.0.0.0/8", "10.9.0.0/16"]
        assert registries["IndexConfigs"]["reg.internal:5000"]["Secure"] is False
        networks = await (await client.get("/networks")).json()
        assert {n["Name"] for n in networks} == {"bridge", "host", "none"}
    finally:
        await client.close()


@pytest.mark.parametrize(("spec", "status", "message"), [
    ({"Name": "bad name!"}, 400, "valid as a DNS name"),
    ({"Name": "c", "TaskTemplate": {"Placement": {"Constraints": ["node.role=manager"]}}}, 400, "invalid constraint"),
    ({"Name": "c", "TaskTemplate": {"Placement": {"Constraints": ["foo.bar==x"]}}}, 400, "unknown key"),
    ({"Name": "c", "Mode": {"Replicated": {"Replicas": -2}}}, 400,  # dockerd: Go refuses it
     "json: cannot unmarshal number -2 into Go struct field ReplicatedService.Mode.Replicated.Replicas of type uint64"),
    # Issue 16: 2^63-1 replicas used to answer 201, then the orchestrator filled the manager.
    ({"Name": "c", "Mode": {"Replicated": {"Replicas": 2**63 - 1}}}, 400,
     "replicas must be at most 10000 (Shoal's limit of tasks per service)"),
    ({"Name": "c", "Mode": {"Replicated": {"Replicas": 10_001}}}, 400, "at most 10000"),
    ({"Name": "c", "Mode": {"ReplicatedJob": {"TotalCompletions": 2**64 - 1}}}, 400,
     "Total completed jobs must be at most 10000"),
    ({"Name": "c", "Mode": {"ReplicatedJob": {"MaxConcurrent": 2**63}}}, 400,
     "Maximum concurrent jobs must be at most 10000"),
    ({"Name": "c", "TaskTemplate": {"Placement": {"MaxReplicas": 2**63 - 1}}}, 400,
     "max replicas must be at most 10000"),
    ({"Name": "c", "TaskTemplate": {"Resources": {"Limits": {"MemoryBytes": 1024}}}}, 400, "4MiB"),
    ({"Name": "c", "TaskTemplate": {"Networks": [{"Target": "nosuchnet"}]}}, 404, "network nosuchnet not found"),
    ({"Name": "c", "EndpointSpec": {"Mode": "dnsrr", "Ports": [{"TargetPort": 80, "PublishedPort": 80}]}}, 400,
     "can't be used with dnsrr"),
])
async def test_bad_service_specs_are_refused_and_nothing_is_written(
    manager: TestClient, spec: dict, status: int, message: str  # type: ignore[type-arg]
) -> None:
    spec = {"TaskTemplate": {}, **spec}
    spec["TaskTemplate"].setdefault("ContainerSpec", {"Image": "x"})
    r = await manager.post("/v1.50/services/create", json=spec)
    assert r.status == status and message in (await r.json())["message"]
    assert await (await manager.get("/v1.50/services")).json() == []


async def test_published_port_conflict(manager: TestClient) -> None:
    spec = {"Name": "a", "TaskTemplate": {"ContainerSpec": {"Image": "x"}},
            "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}}
    assert (await manager.post("/v1.50/services/create", json=spec)).status == 201
    r = await manager.post("/v1.50/services/create", json={**spec, "Name": "b"})
    assert r.status == 400 and "port '8080' is already in use by service 'a'" in (await r.json())["message"]
    dynamic = {**spec, "Name": "d", "EndpointSpec": {"Ports": [{"TargetPort": 80}]}}
    assert (await manager.post("/v1.50/services/create", json=dynamic)).status == 201
    ports = (await (await manager.get("/v1.50/services/d")).json())["Endpoint"]["Ports"]
    assert 30000 <= ports[0]["PublishedPort"] <= 32767


async def test_distribution_takes_image_names_with_slashes(manager: TestClient) -> None:
    r = await manager.get("/v1.50/distribution/prom/prometheus:latest/json")
    assert r.status == 200 and (await r.json())["Descriptor"]["digest"] == ""


async def test_resources_leave_zero_fields_out_as_docker(manager: TestClient) -> None:
    """Docker's Limit and Resources are all ``omitempty``: no ``"Pids": 0`` for docker-py to diff."""
    body = {"Name": "lim", "TaskTemplate": {"ContainerSpec": {"Image": "x"},
                                            "Resources": {"Limits": {"MemoryBytes": 8 << 20},
                                                          "Reservations": {"NanoCPUs": 10**8}}}}
    assert (await manager.post("/v1.50/services/create", json=body)).status == 201
    svc = await (await manager.get("/v1.50/services/lim")).json()
    assert svc["Spec"]["TaskTemplate"]["Resources"] == {"Limits": {"MemoryBytes": 8 << 20},
                                                        "Reservations": {"NanoCPUs": 10**8}}


async def test_an_update_to_absurd_replicas_is_refused(manager: TestClient) -> None:
    """Issue 16: `service update --replicas` and `service scale` (an update) are bounded too."""
    body = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "x"}},
            "Mode": {"Replicated": {"Replicas": 2}}}
    assert (await manager.post("/v1.50/services/create", json=body)).status == 201
    svc = await (await manager.get("/v1.50/services/web")).json()
    spec = svc["Spec"]
    spec["Mode"]["Replicated"]["Replicas"] = 9223372036854775807
    r = await manager.post("/v1.50/services/web/update",
                           params={"version": str(svc["Version"]["Index"])}, json=spec)
    assert r.status == 400 and "replicas must be at most 10000" in (await r.json())["message"]
    again = await (await manager.get("/v1.50/services/web")).json()
    assert again["Spec"]["Mode"]["Replicated"]["Replicas"] == 2


class NoQuorumBackend(MemoryBackend):
    """etcd cut off from its peers: no linearizable read, so no read barrier."""

    quorum = True

    async def revision(self) -> int:
        if not self.quorum:
            raise Unavailable("etcdserver: request timed out")
        return await super().revision()


async def test_a_read_without_the_barrier_says_it_may_be_stale() -> None:
    backend = NoQuorumBackend()
    store = Store(backend)
    await store.start()
    client = TestClient(TestServer(build_app(FakeEngine(store))))
    await client.start_server()
    try:
        fresh = await client.get("/v1.50/nodes")
        assert fresh.status == 200 and STALE_READ_HEADER not in fresh.headers
        backend.quorum = False
        stale = await client.get("/v1.50/nodes")
        assert stale.status == 200  # served from the cache, as the design chose ...
        assert stale.headers[STALE_READ_HEADER] == "no read barrier: etcdserver: request timed out"
        assert STALE_READ_HEADER not in (await client.post("/v1.50/services/create", json={})).headers
    finally:
        await client.close()
        await store.close()
