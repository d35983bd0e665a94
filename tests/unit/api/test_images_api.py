"""/images and /distribution in process, over a real ImageService (and a real docker-registry
on loopback for pulls): Docker's shapes, streams, and error answers."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from shoal.api import SwarmState, build_app
from shoal.errors import NotFound
from shoal.image.service import ImageService
from shoal.image.store import digest_of
from shoal.store.etcd.testing import free_port
from tests.integration.registry_helper import (
    HAVE_REGISTRY,
    docker_save_archive,
    push_image,
    registry_server,
    tar_bytes,
)


class FakeEngine:
    hostname = "apitest"
    engine_labels: dict[str, str] = {}  # noqa: RUF012
    data_root = "/nonexistent"
    store = None

    def __init__(self, images: ImageService) -> None:
        self.images = images

    def swarm_state(self) -> SwarmState:
        return SwarmState()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(build_app(FakeEngine(ImageService(tmp_path / "image")))))  # type: ignore[arg-type]
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    if not HAVE_REGISTRY:
        pytest.skip("docker-registry is not installed")
    with registry_server(tmp_path / "registry") as addr:
        yield addr


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_load_list_inspect_remove(api: TestClient) -> None:
    archive = docker_save_archive([tar_bytes({"bin/x": b"x"})], ["shoaltest/app:1"],
                                  config={"Cmd": ["x"], "Labels": {"a": "b"}})
    r = await api.post("/v1.50/images/load?quiet=1", data=archive,
                       headers={"Content-Type": "application/x-tar"})
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    assert _lines(await r.text()) == [{"stream": "Loaded image: shoaltest/app:1\n"}]
    listed = await (await api.get("/v1.50/images/json")).json()
    assert len(listed) == 1 and listed[0]["RepoTags"] == ["shoaltest/app:1"]
    assert listed[0]["Labels"] == {"a": "b"} and listed[0]["Created"] == 1714557600
    ident = listed[0]["Id"]
    r = await api.get("/v1.50/images/json", params={"filters": json.dumps({"dangling": {"true": True}})})
    assert await r.json() == []
    r = await api.get("/v1.50/images/json", params={"filters": json.dumps({"reference": ["shoaltest/app:1"]})})
    assert [i["Id"] for i in await r.json()] == [ident]
    r = await api.get("/v1.50/images/json", params={"filters": json.dumps({"bogus": ["x"]})})
    assert r.status == 400 and (await r.json())["message"] == "invalid filter 'bogus'"

    info = await (await api.get("/v1.50/images/shoaltest/app:1/json")).json()
    assert info["Id"] == ident and info["Config"]["Cmd"] == ["x"] and info["Os"] == "linux"
    assert (await (await api.get(f"/v1.50/images/{ident[7:19]}/json")).json())["Id"] == ident
    r = await api.get("/v1.50/images/shoaltest/nope:1/json")
    assert r.status == 404 and await r.json() == {"message": "No such image: shoaltest/nope:1"}

    r = await api.post("/v1.50/images/shoaltest/app:1/tag", params={"repo": "shoaltest/other", "tag": "2"})
    assert r.status == 201
    r = await api.delete(f"/v1.50/images/{ident}")
    assert r.status == 409 and "must be forced" in (await r.json())["message"]
    r = await api.delete(f"/v1.50/images/{ident}", params={"force": "1"})
    assert await r.json() == [{"Untagged": "shoaltest/app:1"}, {"Untagged": "shoaltest/other:2"},
                              {"Deleted": ident}]
    r = await api.post("/v1.50/images/load", data=b"garbage" * 10)
    assert r.status == 400 and "invalid archive" in (await r.json())["message"]


async def test_import_from_the_body(api: TestClient) -> None:
    r = await api.post("/v1.50/images/create",
                       params=[("fromSrc", "-"), ("repo", "shoaltest/imp"), ("tag", "1"),
                               ("changes", 'CMD ["sh"]'), ("changes", "ENV A=1"), ("message", "hello")],
                       data=tar_bytes({"bin/sh": b"#!"}))
    assert r.status == 200
    ident = _lines(await r.text())[-1]["status"]
    info = await (await api.get("/v1.50/images/shoaltest/imp:1/json")).json()
    assert info["Id"] == ident and info["Config"] == {"Cmd": ["sh"], "Env": ["A=1"]}
    assert info["Comment"] == "hello"
    r = await api.post("/v1.50/images/create", params={"fromSrc": "-", "changes": "RUN x"}, data=b"x")
    assert r.status == 400 and await r.json() == {"message": "run is not a valid change command"}
    r = await api.post("/v1.50/images/create", params={"fromSrc": "http://example.invalid/x.tar"})
    assert r.status == 400


async def test_pull_streams_progress_then_status(api: TestClient, registry: str) -> None:
    manifest = push_image(registry, "shoaltest/bb", "1", [tar_bytes({"bin/busybox": b"\x7fELF"})])
    r = await api.post("/v1.50/images/create", params={"fromImage": f"{registry}/shoaltest/bb", "tag": "1"})
    assert r.status == 200
    lines = _lines(await r.text())
    assert lines[0] == {"status": "Pulling from shoaltest/bb", "id": "1"}
    assert lines[-2:] == [{"status": f"Digest: {digest_of(manifest)}"},
                          {"status": f"Status: Downloaded newer image for {registry}/shoaltest/bb:1"}]
    r = await api.post("/v1.50/images/create", params={"fromImage": f"{registry}/shoaltest/bb", "tag": "nope"})
    assert r.status == 404
    assert (await r.json())["message"].startswith(f"manifest for {registry}/shoaltest/bb:nope not found")
    r = await api.post("/v1.50/images/create", params={"fromImage": "Bad Name"})
    assert r.status == 400

    d = await (await api.get(f"/v1.50/distribution/{registry}/shoaltest/bb:1/json")).json()
    assert d["Descriptor"]["digest"] == digest_of(manifest)
    assert d["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
    r = await api.get(f"/v1.50/distribution/{registry}/shoaltest/bb:nope/json")
    assert r.status == 404


async def test_an_error_after_the_stream_started_is_a_json_line(
        api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(self: ImageService, name: str, *, registry_auth: str = "",
                      progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        assert progress is not None
        progress({"status": "Pulling from shoaltest/x", "id": "1"})
        raise NotFound("blob unknown to registry")

    monkeypatch.setattr(ImageService, "pull", failing)
    r = await api.post("/v1.50/images/create", params={"fromImage": "127.0.0.1:1/shoaltest/x", "tag": "1"})
    assert r.status == 200
    assert _lines(await r.text()) == [
        {"status": "Pulling from shoaltest/x", "id": "1"},
        {"errorDetail": {"message": "blob unknown to registry"}, "error": "blob unknown to registry"}]


async def test_distribution_errors(api: TestClient) -> None:
    port = free_port()

    async def refuse(request: web.Request) -> web.Response:
        assert request.headers.get("Authorization", "").startswith("Basic ")
        return web.json_response({"errors": [{"message": "authentication required"}]}, status=401,
                                 headers={"WWW-Authenticate": 'Basic realm="t"'})

    async def challenge(request: web.Request) -> web.Response:
        if "Authorization" in request.headers:
            return await refuse(request)
        return web.json_response({"errors": [{"message": "authentication required"}]}, status=401,
                                 headers={"WWW-Authenticate": 'Basic realm="t"'})

    app = web.Application()
    app.router.add_get("/v2/shoaltest/private/manifests/{ref}", challenge)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        r = await api.get(f"/v1.50/distribution/127.0.0.1:{port}/shoaltest/private:1/json")
        assert r.status == 401 and "authentication required" in (await r.json())["message"]
        auth = base64.urlsafe_b64encode(json.dumps({"username": "u", "password": "p"}).encode()).decode()
        r = await api.get(f"/v1.50/distribution/127.0.0.1:{port}/shoaltest/private:1/json",
                          headers={"X-Registry-Auth": auth})
        assert r.status == 401 and "pull access denied" in (await r.json())["message"]
    finally:
        await runner.cleanup()
    # nothing listens there: no pinning, no error (the CLI then creates the service unpinned)
    r = await api.get(f"/v1.50/distribution/127.0.0.1:{free_port()}/shoaltest/x:1/json")
    assert await r.json() == {"Descriptor": {"mediaType": "", "digest": "", "size": 0}, "Platforms": None}
    r = await api.get("/v1.50/distribution/UPPER/case:1/json")
    assert r.status == 400
