"""/volumes in process, as the docker CLI and docker-py call it: Docker's shapes, filters,
refusals and messages. A real VolumeService on a temporary directory (no mounts: the options
that mount are exercised by the runc executor's tests); who uses a volume is a fake's answer."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.api import SwarmState, build_app
from shoal.model.volumes import ANONYMOUS_LABEL
from shoal.volume import VolumeService


class NoImages:
    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        return [{"Id": "sha256:" + "1" * 64, "Size": 500}]


class Engine:
    """A node outside any swarm: volumes work there too."""

    images = NoImages()

    hostname = "voltest"
    data_root = "/nonexistent"
    store = None

    def __init__(self, volumes: VolumeService) -> None:
        self.volumes = volumes
        self.engine_labels: dict[str, str] = {}

    def swarm_state(self) -> SwarmState:
        return SwarmState()


@pytest.fixture
def used() -> dict[str, list[str]]:
    return {}


@pytest.fixture
async def api(tmp_path: Path, used: dict[str, list[str]]) -> AsyncIterator[TestClient]:
    volumes = VolumeService(tmp_path / "volumes", users=lambda: used)
    client = TestClient(TestServer(build_app(Engine(volumes))))  # type: ignore[arg-type]
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def _create(api: TestClient, **body: Any) -> dict[str, Any]:
    r = await api.post("/v1.50/volumes/create", json=body)
    assert r.status == 201, await r.text()
    return await r.json()  # type: ignore[no-any-return]


async def _names(api: TestClient, **f: list[str]) -> list[str]:
    r = await api.get("/v1.50/volumes", params={"filters": json.dumps(f)} if f else None)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["Warnings"] == []  # the schema's array, not null
    return sorted(v["Name"] for v in body["Volumes"])


async def test_create_inspect_list_remove(api: TestClient, tmp_path: Path) -> None:
    vol = await _create(api, Name="shoaltest-a", Labels={"tier": "db"}, DriverOpts={})
    assert set(vol) == {"Name", "Driver", "Mountpoint", "CreatedAt", "Labels", "Scope", "Options"}
    assert vol["Driver"] == "local" and vol["Scope"] == "local" and vol["Labels"] == {"tier": "db"}
    assert vol["Options"] == {} and vol["Mountpoint"] == str(tmp_path / "volumes/shoaltest-a/_data")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", vol["CreatedAt"])
    assert Path(vol["Mountpoint"]).is_dir()
    # docker-py sends no labels or options: null, as dockerd keeps them
    bare = await _create(api, Name="shoaltest-b")
    assert bare["Labels"] == {} and bare["Options"] == {}  # objects, as the schema
    # creating an existing one returns it unchanged
    again = await _create(api, Name="shoaltest-a", Labels={"other": "x"})
    assert again == vol
    assert await (await api.get("/v1.50/volumes/shoaltest-a")).json() == vol
    assert await _names(api) == ["shoaltest-a", "shoaltest-b"]
    r = await api.delete("/v1.50/volumes/shoaltest-a")
    assert r.status == 204
    r = await api.get("/v1.50/volumes/shoaltest-a")
    assert r.status == 404 and (await r.json())["message"] == "get shoaltest-a: no such volume"
    r = await api.delete("/v1.50/volumes/shoaltest-a")
    assert r.status == 404 and (await r.json())["message"] == "get shoaltest-a: no such volume"
    assert (await api.delete("/v1.50/volumes/shoaltest-a", params={"force": "1"})).status == 204
    long = "x" * 300  # longer than a file name may be (the fuzz tier found a 500 here)
    for r in (await api.get(f"/v1.50/volumes/{long}"), await api.delete(f"/v1.50/volumes/{long}")):
        assert r.status == 404 and (await r.json())["message"] == f"get {long}: no such volume"


async def test_anonymous_volume(api: TestClient) -> None:
    vol = await _create(api)
    assert re.fullmatch(r"[0-9a-f]{64}", vol["Name"]) and vol["Labels"] == {ANONYMOUS_LABEL: ""}


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"Name": "a"}, 400,
     "create a: volume name is too short, names should be at least two alphanumeric characters"),
    ({"Name": "a/b"}, 400,
     ('create a/b: "a/b" includes invalid characters for a local volume name, only '
      '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')),
    ({"Name": "vv", "DriverOpts": {"bogus": "1"}}, 400, 'create vv: invalid option: "bogus"'),
    ({"Name": "vv", "DriverOpts": {"type": "tmpfs"}}, 400, 'create vv: missing required option: "device"'),
    ({"Name": "vv", "DriverOpts": {"o": "size=1m", "device": "tmpfs"}}, 400,
     'create vv: missing required option: "type"'),
    ({"Name": "vv", "DriverOpts": {"size": "10m"}}, 400, "create vv: quota size requested but no quota support"),
    ({"Name": "vv", "Driver": "nfsplugin"}, 404,
     'create vv: error looking up volume plugin nfsplugin: plugin "nfsplugin" not found'),
    ({"Name": "vv", "ClusterVolumeSpec": {"Group": "g"}}, 400, "cluster volumes are not supported"),
])
async def test_refused_creates_make_nothing(api: TestClient, body: dict[str, Any], status: int,
                                            message: str) -> None:
    r = await api.post("/v1.50/volumes/create", json=body)
    assert r.status == status
    assert message in (await r.json())["message"]
    assert await _names(api) == []


async def test_options_are_stored_as_given(api: TestClient) -> None:
    opts = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}
    vol = await _create(api, Name="shoaltest-tmp", DriverOpts=opts)
    assert vol["Options"] == opts


async def test_an_existing_name_with_another_driver_conflicts(api: TestClient) -> None:
    await _create(api, Name="shoaltest-a")
    r = await api.post("/v1.50/volumes/create", json={"Name": "shoaltest-a", "Driver": "other"})
    assert r.status == 409
    assert (await r.json())["message"] == ("create shoaltest-a: driver 'local' already has volume "
                                           "'shoaltest-a': volume name must be unique")


async def test_remove_is_refused_while_a_container_uses_it(api: TestClient,
                                                           used: dict[str, list[str]]) -> None:
    await _create(api, Name="shoaltest-a")
    used["shoaltest-a"] = ["c1" * 32, "c2" * 32]
    for params in (None, {"force": "true"}):
        r = await api.delete("/v1.50/volumes/shoaltest-a", params=params)
        assert r.status == 409
        assert (await r.json())["message"] == \
            f"remove shoaltest-a: volume is in use - [{'c1' * 32}, {'c2' * 32}]"
    used.clear()
    assert (await api.delete("/v1.50/volumes/shoaltest-a")).status == 204


async def test_filters(api: TestClient, used: dict[str, list[str]]) -> None:
    await _create(api, Name="shoaltest-web", Labels={"tier": "front", "env": "prod"})
    await _create(api, Name="shoaltest-db", Labels={"tier": "back"})
    await _create(api, Name="other")
    used["shoaltest-db"] = ["c" * 64]
    assert await _names(api, name=["shoaltest"]) == ["shoaltest-db", "shoaltest-web"]
    assert await _names(api, name=["^o"]) == ["other"]
    assert await _names(api, label=["tier"]) == ["shoaltest-db", "shoaltest-web"]
    assert await _names(api, label=["tier=front", "env=prod"]) == ["shoaltest-web"]
    assert await _names(api, dangling=["true"]) == ["other", "shoaltest-web"]
    assert await _names(api, dangling=["0"]) == ["shoaltest-db"]
    assert await _names(api, driver=["local"]) == ["other", "shoaltest-db", "shoaltest-web"]
    assert await _names(api, driver=["nfs"]) == []
    # the CLI's encoding too
    r = await api.get("/volumes", params={"filters": json.dumps({"dangling": {"false": True}})})
    assert [v["Name"] for v in (await r.json())["Volumes"]] == ["shoaltest-db"]
    r = await api.get("/volumes", params={"filters": json.dumps({"dangling": ["maybe"]})})
    assert r.status == 400 and (await r.json())["message"] == "invalid filter 'dangling=[maybe]'"
    r = await api.get("/volumes", params={"filters": json.dumps({"id": ["x"]})})
    assert r.status == 400 and (await r.json())["message"] == "invalid filter 'id'"


async def test_prune(api: TestClient, used: dict[str, list[str]]) -> None:
    anon = (await _create(api))["Name"]
    used_anon = (await _create(api))["Name"]
    used[used_anon] = ["c" * 64]
    await _create(api, Name="shoaltest-keep", Labels={"keep": "yes"})
    await _create(api, Name="shoaltest-named")
    # by default (API 1.42+) only anonymous volumes no container uses
    r = await api.post("/v1.50/volumes/prune")
    assert await r.json() == {"VolumesDeleted": [anon], "SpaceReclaimed": 0}
    r = await api.post("/v1.50/volumes/prune", params={"filters": json.dumps({"all": ["true"], "label!": ["keep"]})})
    assert (await r.json())["VolumesDeleted"] == ["shoaltest-named"]
    assert await _names(api) == sorted([used_anon, "shoaltest-keep"])
    r = await api.post("/v1.50/volumes/prune")
    assert await r.json() == {"VolumesDeleted": [], "SpaceReclaimed": 0}
    # before 1.42 every unused volume went
    r = await api.post("/v1.41/volumes/prune", params={"filters": json.dumps({"label": ["keep=yes"]})})
    assert (await r.json())["VolumesDeleted"] == ["shoaltest-keep"]
    r = await api.post("/v1.50/volumes/prune", params={"filters": json.dumps({"dangling": ["true"]})})
    assert r.status == 400 and (await r.json())["message"] == "invalid filter 'dangling'"


async def test_space_reclaimed_counts_the_data(api: TestClient) -> None:
    vol = await _create(api, Name="shoaltest-data")
    (Path(vol["Mountpoint"]) / "f").write_bytes(b"x" * 1000)
    r = await api.post("/v1.50/volumes/prune", params={"filters": json.dumps({"all": {"true": True}})})
    assert await r.json() == {"VolumesDeleted": ["shoaltest-data"], "SpaceReclaimed": 1000}


async def test_system_df_shows_the_volumes_usage(api: TestClient, used: dict[str, list[str]]) -> None:
    vol = await _create(api, Name="shoaltest-df")
    (Path(vol["Mountpoint"]) / "f").write_bytes(b"x" * 10)
    used["shoaltest-df"] = ["c" * 64]
    r = await api.get("/v1.50/system/df", params={"type": "volume"})
    body = await r.json()
    assert body["Images"] == [] and body["Containers"] == [] and body["BuildCache"] == []
    assert body["Volumes"] == [{**vol, "UsageData": {"Size": 10, "RefCount": 1}}]
    everything = await (await api.get("/v1.50/system/df")).json()
    assert everything["LayersSize"] == 500 and len(everything["Images"]) == 1
    assert everything["Containers"] == [] and everything["Volumes"] == body["Volumes"]
    r = await api.get("/v1.50/system/df", params={"type": "nope"})
    assert r.status == 400 and (await r.json())["message"] == "unknown object type: nope"
