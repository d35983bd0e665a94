"""/secrets and /configs over HTTP, as the docker CLI and docker-py use them: create 201, list
with filters, inspect by ID, name or prefix (a secret never with its data), labels-only update,
remove 204 or refused while in use, workers refused."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import docker
import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.api import SwarmState, build_app
from shoal.manager.controlapi import service
from shoal.manager.deks import ClusterKeys, StoreDEK
from shoal.manager.secretbox import new_key
from shoal.model.objects import Cluster
from shoal.model.requests import InitRequest, JoinRequest
from shoal.store.store import Store, Tx

PLAIN = b"s3cr3t-value"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

KEYS = ClusterKeys(StoreDEK.generate())


class FakeEngine:
    images: Any = None
    hostname = "apitest"
    data_root = "/nonexistent"

    def __init__(self, store: Store | None, state: SwarmState) -> None:
        self._store, self._state = store, state
        self.engine_labels: dict[str, str] = {}

    def swarm_state(self) -> SwarmState:
        return self._state

    @property
    def store(self) -> Store | None:
        return self._store

    def cluster_keys(self) -> ClusterKeys:
        return KEYS

    async def init(self, req: InitRequest) -> str:
        raise NotImplementedError

    async def join(self, req: JoinRequest) -> None:
        raise NotImplementedError

    async def leave(self, force: bool) -> None:
        raise NotImplementedError


@pytest.fixture
async def api(store: Store) -> AsyncIterator[TestClient]:
    def seed(tx: Tx) -> None:
        tx.create(Cluster(id="c1", secrets_key=KEYS.seal("c1", "secrets key", new_key())))

    await store.update(seed)
    state = SwarmState(local_node_state="active", node_id="n1", control_available=True, role="manager")
    client = TestClient(TestServer(build_app(FakeEngine(store, state))))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def _create(api: TestClient, kind: str, name: str, data: bytes, **extra: Any) -> str:
    # docker-py's body: Labels may be null, Templating null for configs.
    r = await api.post(f"/v1.50/{kind}/create", json={"Name": name, "Data": b64(data), "Labels": None, **extra})
    assert r.status == 201, await r.text()
    body = await r.json()
    assert list(body) == ["ID"]
    return str(body["ID"])


async def test_secret_inspect_and_list_never_show_the_data(api: TestClient, store: Store) -> None:
    sid = await _create(api, "secrets", "db_pw", PLAIN)
    for ref in (sid, "db_pw", sid[:5]):
        r = await api.get(f"/v1.50/secrets/{ref}")
        assert r.status == 200
        body = await r.json()
        assert body["ID"] == sid and body["Version"]["Index"] > 0
        assert body["CreatedAt"] and body["UpdatedAt"]
        assert body["Spec"] == {"Name": "db_pw", "Labels": {}}
        raw = await r.read()
        assert PLAIN not in raw and b64(PLAIN).encode() not in raw and b"Sealed" not in raw
    listed = await api.get("/v1.50/secrets")
    raw = await listed.read()
    assert [s["ID"] for s in json.loads(raw)] == [sid]
    assert PLAIN not in raw and b64(PLAIN).encode() not in raw and b"Sealed" not in raw
    _, kvs = await store.backend.list("/")
    stored = b"".join(kv.value for kv in kvs)
    assert PLAIN not in stored and b64(PLAIN).encode() not in stored


async def test_config_shows_its_data(api: TestClient) -> None:
    cid = await _create(api, "configs", "conf", b"k=v\n", Templating=None)
    body = await (await api.get("/v1.50/configs/conf")).json()
    assert body["ID"] == cid and body["Spec"] == {"Name": "conf", "Labels": {}, "Data": b64(b"k=v\n")}


async def test_golang_templating_is_accepted(api: TestClient) -> None:
    tmpl = {"Name": "golang"}
    await _create(api, "configs", "tconf", b"{{.Service.Name}}", Templating=tmpl)
    await _create(api, "secrets", "tsec", b"{{env \"X\"}}", Templating=tmpl)
    body = await (await api.get("/v1.50/configs/tconf")).json()
    assert body["Spec"]["Templating"]["Name"] == "golang"
    assert body["Spec"]["Data"] == b64(b"{{.Service.Name}}")  # stored as sent, expanded on nodes
    body = await (await api.get("/v1.50/secrets/tsec")).json()
    assert body["Spec"]["Templating"]["Name"] == "golang" and "Data" not in body["Spec"]


async def test_not_found_ambiguous_and_conflict(api: TestClient) -> None:
    r = await api.get("/v1.50/secrets/nosuch")
    assert r.status == 404 and await r.json() == {"message": "secret nosuch not found"}
    r = await api.delete("/v1.50/configs/nosuch")
    assert r.status == 404 and await r.json() == {"message": "config nosuch not found"}
    await _create(api, "secrets", "a", b"x")
    r = await api.post("/v1.50/secrets/create", json={"Name": "a", "Data": b64(b"y")})
    assert r.status == 409
    assert await r.json() == {"message": "rpc error: code = AlreadyExists desc = secret a already exists"}


@pytest.mark.parametrize(("kind", "body", "message"), [
    ("secrets", {"Name": "bad name", "Data": "eA=="}, "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed"),
    ("secrets", {"Name": "s"}, "secret data must be larger than 0 and less than 512000 bytes"),
    ("secrets", {"Name": "s", "Data": b64(b"x" * 512000)}, "less than 512000 bytes"),
    ("secrets", {"Name": "s", "Data": "eA==", "Driver": {"Name": "vault"}}, "secret driver 'vault' is not supported"),
    ("secrets", {"Name": "s", "Data": "eA==", "Templating": {"Name": "jinja"}}, "template driver 'jinja'"),
    ("configs", {"Name": "c", "Data": b64(b"x" * 1024000)}, "config data must be larger than 0 and less than 1024000"),
    ("configs", {"Name": "c", "Data": "eA==", "Templating": {"Name": "jinja"}},
     "template driver 'jinja' is not supported: the only template driver is 'golang'"),
])
async def test_create_refusals(api: TestClient, kind: str, body: dict[str, Any], message: str) -> None:
    payload = io.BytesIO(json.dumps(body).encode())  # large bodies as a stream (aiohttp's advice)
    r = await api.post(f"/v1.50/{kind}/create", data=payload, headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert message in (await r.json())["message"]
    assert await (await api.get(f"/v1.50/{kind}")).json() == []


async def test_filters(api: TestClient) -> None:
    ids = {name: await _create(api, "secrets", name, b"x", Labels=labels) for name, labels in
           (("app_db", {"com.docker.stack.namespace": "app"}), ("app_web", {"tier": "front"}), ("other", {}))}

    async def names(kind: str, f: dict[str, Any]) -> list[str]:
        r = await api.get(f"/v1.50/{kind}", params={"filters": json.dumps(f)})
        assert r.status == 200, await r.text()
        return [s["Spec"]["Name"] for s in await r.json()]

    assert await names("secrets", {"name": {"app": True}}) == ["app_db", "app_web"]  # the CLI's form
    assert await names("secrets", {"names": ["app"]}) == []  # docker-py's form; exact
    assert await names("secrets", {"names": ["app_db"]}) == ["app_db"]
    assert await names("secrets", {"id": [ids["other"][:6]]}) == ["other"]
    # names, name prefixes and ID prefixes are ORed (swarmkit's ListSecrets); labels ANDed
    assert await names("secrets", {"names": ["app_db"], "id": [ids["other"]]}) == ["app_db", "other"]
    assert await names("secrets", {"label": ["com.docker.stack.namespace=app"]}) == ["app_db"]
    assert await names("secrets", {"label": ["tier"]}) == ["app_web"]
    assert await names("secrets", {"label": ["tier", "com.docker.stack.namespace"]}) == []
    r = await api.get("/v1.50/secrets", params={"filters": json.dumps({"bogus": ["x"]})})
    assert r.status == 400 and await r.json() == {"message": "invalid filter 'bogus'"}
    await _create(api, "configs", "app_conf", b"x", Labels={"a": "b"})
    assert await names("configs", {"name": ["app"], "label": ["a=b"]}) == ["app_conf"]
    r = await api.get("/v1.50/configs", params={"filters": json.dumps({"names": ["app_conf"]})})
    assert r.status == 400 and await r.json() == {"message": "invalid filter 'names'"}


async def test_update_labels_only(api: TestClient) -> None:
    sid = await _create(api, "secrets", "s", PLAIN)
    version = (await (await api.get(f"/v1.50/secrets/{sid}")).json())["Version"]["Index"]
    # A stack re-deploy: the same data again, new labels.
    r = await api.post(f"/v1.50/secrets/{sid}/update", params={"version": str(version)},
                       json={"Name": "s", "Labels": {"k": "v"}, "Data": b64(PLAIN)})
    assert r.status == 200 and await r.read() == b""
    body = await (await api.get("/v1.50/secrets/s")).json()
    assert body["Spec"]["Labels"] == {"k": "v"} and body["Version"]["Index"] > version
    r = await api.post(f"/v1.50/secrets/{sid}/update", params={"version": str(body["Version"]["Index"])},
                       json={"Name": "s", "Data": b64(b"changed")})
    assert r.status == 400
    assert await r.json() == {"message": "rpc error: code = InvalidArgument desc = only updates to Labels are allowed"}
    r = await api.post(f"/v1.50/secrets/{sid}/update", params={"version": str(version)}, json={"Name": "s"})
    assert r.status == 500 and "update out of sequence" in (await r.json())["message"]
    r = await api.post(f"/v1.50/secrets/{sid}/update", params={"version": "x"}, json={"Name": "s"})
    assert r.status == 400 and await r.json() == {"message": "invalid secret version"}
    cid = await _create(api, "configs", "c", b"x")
    r = await api.post(f"/v1.50/configs/{cid}/update", json={"Name": "c"})
    assert r.status == 400 and await r.json() == {"message": "invalid config version"}


async def test_remove_refused_while_in_use(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def allocated(store: object, service_id: str) -> None:
        return None

    monkeypatch.setattr(service, "_await_allocation", allocated)  # no allocator here
    sid = await _create(api, "secrets", "db", b"x")
    cid = await _create(api, "configs", "conf", b"x")
    spec = {"Name": "web", "TaskTemplate": {"ContainerSpec": {
        "Image": "busybox",
        "Secrets": [{"File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292}, "SecretID": sid, "SecretName": "db"}],
        "Configs": [{"File": {"Name": "/conf", "UID": "0", "GID": "0", "Mode": 292}, "ConfigID": cid,
                     "ConfigName": "conf"}]}}}
    r = await api.post("/v1.50/services/create", json=spec)
    assert r.status == 201, await r.text()
    r = await api.delete("/v1.50/secrets/db")
    assert r.status == 400
    assert await r.json() == {"message": "rpc error: code = InvalidArgument desc = secret 'db' is in use by "
                                         "the following service: web"}
    r = await api.delete(f"/v1.50/configs/{cid}")
    assert r.status == 400 and "config 'conf' is in use by the following service: web" in (await r.json())["message"]
    assert (await api.delete("/v1.50/services/web")).status == 200
    assert (await api.delete(f"/v1.50/secrets/{sid[:6]}")).status == 204
    assert (await api.delete("/v1.50/configs/conf")).status == 204
    assert await (await api.get("/v1.50/secrets")).json() == []
    # A service naming a secret that does not exist is refused.
    spec["TaskTemplate"]["ContainerSpec"].pop("Configs")  # type: ignore[attr-defined]
    r = await api.post("/v1.50/services/create", json=spec)
    assert r.status == 400
    assert await r.json() == {"message": "rpc error: code = InvalidArgument desc = secret not found: db"}


async def test_workers_are_refused() -> None:
    state = SwarmState(local_node_state="active", node_id="n2", role="worker")
    client = TestClient(TestServer(build_app(FakeEngine(None, state))))
    await client.start_server()
    try:
        for method, path in (("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/configs/x"),
                             ("DELETE", "/configs/x")):
            r = await client.request(method, f"/v1.50{path}", json={"Name": "a", "Data": "eA=="})
            assert r.status == 503
            assert "Worker nodes can't be used to view or modify cluster state" in (await r.json())["message"]
    finally:
        await client.close()


def _docker_py_round_trip(base_url: str) -> None:
    client = docker.DockerClient(base_url=base_url, version="1.50")
    try:
        secret = client.secrets.create(name="pysecret", data=b"abc", labels={"k": "v"})
        assert secret.name == "pysecret"
        got = client.secrets.get(secret.id)
        assert got.name == "pysecret" and "Data" not in got.attrs["Spec"]
        assert [s.id for s in client.secrets.list(filters={"names": ["pysecret"]})] == [secret.id]
        assert [s.id for s in client.secrets.list(filters={"label": "k=v"})] == [secret.id]
        config = client.configs.create(name="pyconfig", data="cfg")
        assert client.configs.get(config.id).attrs["Spec"]["Data"] == b64(b"cfg")
        assert [c.name for c in client.configs.list(filters={"name": "py"})] == ["pyconfig"]
        secret.remove()
        config.remove()
        assert client.secrets.list() == [] and client.configs.list() == []
        try:
            client.secrets.get("pysecret")
        except docker.errors.NotFound as exc:
            assert "secret pysecret not found" in str(exc)
        else:
            raise AssertionError("a removed secret was found")
    finally:
        client.close()


async def test_docker_py(api: TestClient) -> None:
    await asyncio.to_thread(_docker_py_round_trip, f"tcp://127.0.0.1:{api.port}")
