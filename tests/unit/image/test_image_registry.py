"""The registry client's answer to an auth challenge, against a small aiohttp server playing a
registry that wants a bearer token (from its realm, with basic credentials) or basic auth."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from shoal.errors import PermissionDenied
from shoal.image.reference import parse
from shoal.image.registry import Registry
from shoal.image.store import ImageStore, digest_of
from shoal.store.etcd.testing import free_port

CONFIG = b'{"config":{}}'
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"digest": digest_of(CONFIG), "size": len(CONFIG)}, "layers": []}).encode()
BASIC = "Basic " + base64.b64encode(b"alice:secret").decode()


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, str]]]:
    mode = {"scheme": "bearer"}
    port = free_port()
    addr = f"127.0.0.1:{port}"

    async def token(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != BASIC:
            return web.json_response({"errors": [{"message": "bad credentials"}]}, status=401)
        assert request.query["scope"] == "repository:team/app:pull"
        return web.json_response({"token": "t0k"})

    def allowed(request: web.Request) -> bool:
        want = "Bearer t0k" if mode["scheme"] == "bearer" else BASIC
        return request.headers.get("Authorization") == want

    def challenge() -> web.Response:
        value = (f'Bearer realm="http://{addr}/token",service="test"' if mode["scheme"] == "bearer"
                 else 'Basic realm="test"')
        return web.json_response({"errors": [{"message": "authentication required"}]}, status=401,
                                 headers={"WWW-Authenticate": value})

    async def manifest(request: web.Request) -> web.Response:
        if not allowed(request):
            return challenge()
        return web.Response(body=MANIFEST, content_type="application/vnd.oci.image.manifest.v1+json")

    async def blob(request: web.Request) -> web.Response:
        if not allowed(request):
            return challenge()
        return web.Response(body=CONFIG)

    app = web.Application()
    app.router.add_get("/token", token)
    app.router.add_get("/v2/team/app/manifests/{ref}", manifest)
    app.router.add_get("/v2/team/app/blobs/{digest}", blob)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield addr, mode
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
async def test_credentials_answer_the_challenge(server: tuple[str, dict[str, str]], tmp_path: Path,
                                                scheme: str) -> None:
    addr, mode = server
    mode["scheme"] = scheme
    registry = Registry(insecure=[addr], credentials=("alice", "secret"))
    try:
        record = await registry.pull(ImageStore(tmp_path), parse(f"{addr}/team/app:1"))
    finally:
        await registry.close()
    assert record.manifest == digest_of(MANIFEST) and record.config == digest_of(CONFIG)


@pytest.mark.parametrize(("scheme", "credentials", "message"), [
    ("bearer", ("alice", "wrong"), "token refused"),
    ("basic", None, "authentication required"),
])
async def test_refusals_are_reported(server: tuple[str, dict[str, str]], tmp_path: Path, scheme: str,
                                     credentials: tuple[str, str] | None, message: str) -> None:
    addr, mode = server
    mode["scheme"] = scheme
    registry = Registry(insecure=[addr], credentials=credentials)
    try:
        with pytest.raises(PermissionDenied, match=message):
            await registry.pull(ImageStore(tmp_path), parse(f"{addr}/team/app:1"))
    finally:
        await registry.close()
