"""Autolock through the Engine API: a locked manager's 503 on every swarm call and ``locked`` in
/info; /swarm/unlock's refusals and success; /swarm/unlockkey and rotateManagerUnlockKey."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.api import SwarmState, build_app
from shoal.errors import Conflict
from shoal.manager.bootstrap import new_swarm
from shoal.manager.deks import ClusterKeys
from shoal.model.requests import InitRequest, JoinRequest
from shoal.pki.unlockkey import LOCKED, InvalidUnlockKey, UnlockKey
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store


class NoImages:
    def __init__(self) -> None:
        self.insecure_registries: list[str] = []
        self.registry_mirrors: list[str] = []


class LockableEngine:
    """A manager that starts locked; ``unlock`` with its key brings its store."""

    images = NoImages()
    hostname = "locktest"
    data_root = "/nonexistent"

    def __init__(self, store: Store, keys: ClusterKeys, key: UnlockKey) -> None:
        self.engine_labels: dict[str, str] = {}
        self._store, self._keys, self._key = store, keys, key
        self.locked = True
        self.rewraps = 0

    def swarm_state(self) -> SwarmState:
        if self.locked:
            return SwarmState(local_node_state="locked", node_addr="127.0.0.1", error=LOCKED)
        return SwarmState(local_node_state="active", node_id="n1", control_available=True, role="manager")

    @property
    def store(self) -> Store | None:
        return None if self.locked else self._store

    def cluster_keys(self) -> ClusterKeys:
        return self._keys

    async def unlock(self, key: str) -> None:
        if not self.locked:
            raise Conflict("swarm is not locked")
        if not UnlockKey.parse(key).same_as(self._key):
            raise InvalidUnlockKey()
        self.locked = False

    async def rewrap_local_keys(self) -> None:
        self.rewraps += 1

    async def init(self, req: InitRequest) -> str:
        raise NotImplementedError

    async def join(self, req: JoinRequest) -> None:
        raise NotImplementedError

    async def leave(self, force: bool) -> None:
        raise NotImplementedError

    def logs(self) -> None:
        return None


@pytest.fixture
async def locked() -> AsyncIterator[tuple[TestClient, LockableEngine]]:
    swarm = await new_swarm(InitRequest(auto_lock_managers=True), hostname="h", advertise_ip="127.0.0.1",
                      manager_addr="127.0.0.1:2377")
    assert swarm.unlock_key is not None
    store = Store(MemoryBackend())
    await store.start()
    await store.update(swarm.write)
    engine = LockableEngine(store, ClusterKeys(swarm.dek), swarm.unlock_key)
    client = TestClient(TestServer(build_app(engine)))  # type: ignore[arg-type]
    await client.start_server()
    try:
        yield client, engine
    finally:
        await client.close()
        await store.close()


async def test_locked_then_unlocked(locked: tuple[TestClient, LockableEngine]) -> None:
    client, engine = locked
    for path in ("/v1.50/nodes", "/v1.50/swarm", "/v1.50/secrets", "/v1.50/swarm/unlockkey"):
        r = await client.get(path)
        assert r.status == 503 and (await r.json())["message"] == LOCKED, path
    info = await (await client.get("/info")).json()
    assert info["Swarm"]["LocalNodeState"] == "locked"
    assert (await client.get("/_ping")).headers["Swarm"] == "locked"

    r = await client.post("/v1.50/swarm/unlock", json={"UnlockKey": "nonsense"})
    assert r.status == 400 and (await r.json())["message"] == "invalid key string"
    r = await client.post("/v1.50/swarm/unlock", json={"UnlockKey": UnlockKey.generate().text})
    assert r.status == 401
    assert (await r.json())["message"] == "swarm could not be unlocked: invalid key provided"
    r = await client.post("/v1.50/swarm/unlock", json={"UnlockKey": engine._key.text})
    assert r.status == 200
    r = await client.post("/v1.50/swarm/unlock", json={"UnlockKey": engine._key.text})
    assert r.status == 409 and (await r.json())["message"] == "swarm is not locked"
    assert (await client.get("/v1.50/nodes")).status == 200


async def test_unlock_key_shown_and_rotated(locked: tuple[TestClient, LockableEngine]) -> None:
    client, engine = locked
    engine.locked = False
    shown = (await (await client.get("/v1.50/swarm/unlockkey")).json())["UnlockKey"]
    assert shown == engine._key.text
    swarm = await (await client.get("/v1.50/swarm")).json()
    assert "UnlockKey" not in swarm and swarm["Spec"]["EncryptionConfig"]["AutoLockManagers"] is True
    query = {"version": str(swarm["Version"]["Index"]), "rotateManagerUnlockKey": "true",
             "rotateWorkerToken": "false", "rotateManagerToken": "false"}
    r = await client.post("/v1.50/swarm/update", params=query, json=swarm["Spec"])
    assert r.status == 200 and engine.rewraps == 1
    rotated = (await (await client.get("/v1.50/swarm/unlockkey")).json())["UnlockKey"]
    assert rotated.startswith("SWMKEY-1-") and rotated != shown

    swarm = await (await client.get("/v1.50/swarm")).json()
    swarm["Spec"]["EncryptionConfig"]["AutoLockManagers"] = False
    query["version"] = str(swarm["Version"]["Index"])
    r = await client.post("/v1.50/swarm/update", params=query, json=swarm["Spec"])
    assert r.status == 200
    assert (await (await client.get("/v1.50/swarm/unlockkey")).json())["UnlockKey"] == ""
