"""What dockerd refuses before any handler runs: bodies that are not application/json, methods a
path does not take (405 with Allow); and every answer carries a Content-Type."""

from __future__ import annotations

import io

from aiohttp.test_utils import TestClient

from tests.unit.api.test_api_server import manager

__all__ = ["manager"]  # the fixture, from the API server's tests


async def test_a_body_must_be_json(manager: TestClient) -> None:
    r = await manager.post("/v1.50/services/create", data=b'{"Name": "x"}', headers={"Content-Type": "text/plain"})
    assert r.status == 400 and r.headers["Content-Type"] == "application/json"
    assert (await r.json())["message"] == "unsupported Content-Type header (text/plain): must be 'application/json'"
    r = await manager.post("/v1.50/swarm/update?version=1", data=b"{}", headers={"Content-Type": ""})
    assert r.status == 400 and "malformed Content-Type header" in (await r.json())["message"]
    r = await manager.post("/v1.50/networks/create", data=b'{"Name": "n"}',
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 201  # parameters are fine, as mime.ParseMediaType takes them
    assert await (await manager.get("/v1.50/services")).json() == []


async def test_wrong_method_is_405_with_allow(manager: TestClient) -> None:
    r = await manager.get("/v1.50/swarm/init")
    assert r.status == 405 and r.headers["Content-Type"] == "application/json"
    assert r.headers["Allow"] == "POST"
    r = await manager.put("/v1.50/services/abc")
    assert r.status == 405 and r.headers["Allow"] == "DELETE, GET, HEAD"


async def test_every_answer_has_a_content_type(manager: TestClient) -> None:
    nodes = await (await manager.get("/v1.50/nodes")).json()
    node = next(n for n in nodes if n["ID"] == "n2")
    r = await manager.post(f"/v1.50/nodes/n2/update?version={node['Version']['Index']}",
                           json={"Role": "worker", "Availability": "drain"})
    assert r.status == 200 and await r.read() == b"" and r.headers["Content-Type"] == "application/json"
    r = await manager.post("/v1.50/nodes/n2/update?version=-1", json={})
    assert r.status == 400
    assert (await r.json())["message"] == (
        "invalid node version '-1': strconv.ParseUint: parsing \"-1\": invalid syntax")
    r = await manager.get("/v1.50/services/a\nb")  # a path aiohttp's router itself refuses
    assert r.status == 404 and r.headers["Content-Type"] == "application/json"


async def test_a_body_too_large_is_refused_not_a_500(manager: TestClient) -> None:
    r = await manager.post("/v1.50/services/create", data=io.BytesIO(b" " * (16 * 1024 * 1024 + 1)),
                           headers={"Content-Type": "application/json"})
    assert r.status == 413 and r.headers["Content-Type"] == "application/json"
    assert "Maximum request body size" in (await r.json())["message"]
