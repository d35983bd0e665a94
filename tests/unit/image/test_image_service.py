"""The image service as the executors use it: ``ensure`` finds an image by name, digest or ID,
or pulls it once (from a real docker-registry on loopback) however many tasks ask at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal.image.registry import Registry
from shoal.image.service import ImageService
from shoal.image.store import digest_of
from tests.integration.registry_helper import HAVE_REGISTRY, busybox_rootfs, push_image, tar_bytes

needs_registry = pytest.mark.skipif(not HAVE_REGISTRY, reason="docker-registry is not installed")


@needs_registry
async def test_ensure_pulls_once_reports_progress_and_then_runs_locally(
        registry: str, service: ImageService, monkeypatch: pytest.MonkeyPatch) -> None:
    base = busybox_rootfs()
    top = tar_bytes({"www/index.html": b"<h1>shoaltest</h1>"})
    manifest = push_image(registry, "shoaltest/web", "1", [base, top],
                          config={"Cmd": ["httpd"], "Env": ["A=1"]})
    calls = 0
    original = Registry.fetch

    async def counting(self: Registry, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Registry, "fetch", counting)
    seen: list[str] = []
    name = f"{registry}/shoaltest/web:1"
    first, second = await asyncio.gather(service.ensure(name, progress=seen.append),
                                         service.ensure(name))
    assert calls == 1 and first.id == second.id
    assert first.config == {"Cmd": ["httpd"], "Env": ["A=1"]}
    assert (first.layer_dirs[0] / "bin/busybox").is_file()
    assert (first.layer_dirs[1] / "www/index.html").read_bytes() == b"<h1>shoaltest</h1>"
    assert seen[-1] == f"pulling image {name}: 2/2 layers"
    # by digest and by ID: local, no new pull
    again = await service.ensure(f"{registry}/shoaltest/web@{digest_of(manifest)}")
    by_id = await service.ensure(first.id)
    assert again.id == by_id.id == first.id and calls == 1
    assert service.inspect(name)["RepoDigests"] == [f"{registry}/shoaltest/web@{digest_of(manifest)}"]
