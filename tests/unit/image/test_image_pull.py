"""Pulls: which registries are spoken to over plain HTTP, and, from a real docker-registry on
loopback, ``docker pull``'s messages and the distribution descriptor."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.errors import NotFound
from shoal.image.pull import is_insecure_registry, is_loopback_registry
from shoal.image.service import ImageService
from shoal.image.store import digest_of
from tests.integration.registry_helper import HAVE_REGISTRY, push_image, push_index, tar_bytes

needs_registry = pytest.mark.skipif(not HAVE_REGISTRY, reason="docker-registry is not installed")


@pytest.mark.parametrize(("domain", "loopback"), [
    ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.9.9.9", True), ("[::1]:5000", True),
    ("registry.example.com", False), ("10.0.0.1:5000", False), ("docker.io", False),
])
def test_loopback_registries_are_insecure_by_default(domain: str, loopback: bool) -> None:
    assert is_loopback_registry(domain) is loopback
    assert is_insecure_registry(domain, []) is loopback


def test_named_insecure_registries() -> None:
    named = ["reg.internal:5000", "10.1.0.0/16"]
    assert is_insecure_registry("reg.internal:5000", named) and is_insecure_registry("10.1.2.3:5000", named)
    assert not is_insecure_registry("reg.internal", named) and not is_insecure_registry("10.2.0.1:5000", named)


@needs_registry
async def test_pull_messages_and_distribution(registry: str, service: ImageService) -> None:
    layer = tar_bytes({"etc/motd": b"hi"})
    amd = push_image(registry, "shoaltest/multi", "amd", [layer])
    arm = push_image(registry, "shoaltest/multi", "arm", [layer], arch="arm64")
    index = push_index(registry, "shoaltest/multi", "1", {"arm64": arm, "amd64": amd})
    events: list[dict[str, Any]] = []
    image = await service.pull(f"{registry}/shoaltest/multi:1", progress=events.append)
    statuses = [e["status"] for e in events]
    assert statuses[0] == "Pulling from shoaltest/multi" and events[0]["id"] == "1"
    assert "Pull complete" in statuses
    downloads = [e["progressDetail"] for e in events if e["status"] == "Downloading"]
    assert downloads and downloads[-1]["current"] == downloads[-1]["total"] > 0  # the whole layer
    assert statuses[-2:] == [f"Digest: {digest_of(index)}",
                             f"Status: Downloaded newer image for {registry}/shoaltest/multi:1"]
    assert image.record.manifest == digest_of(amd)
    events.clear()
    await service.pull(f"{registry}/shoaltest/multi:1", progress=events.append)
    assert events[-1]["status"] == f"Status: Image is up to date for {registry}/shoaltest/multi:1"
    assert any(e["status"] == "Already exists" for e in events)

    described = await service.distribution(f"{registry}/shoaltest/multi:1")
    assert described["Descriptor"] == {"mediaType": "application/vnd.oci.image.index.v1+json",
                                       "digest": digest_of(index), "size": len(index)}
    assert described["Platforms"] == [{"architecture": "arm64", "os": "linux"},
                                      {"architecture": "amd64", "os": "linux"}]
    single = await service.distribution(f"{registry}/shoaltest/multi:amd")
    assert single["Descriptor"]["digest"] == digest_of(amd)
    assert single["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
    with pytest.raises(NotFound, match="not found"):
        await service.distribution(f"{registry}/shoaltest/multi:nope")
    with pytest.raises(NotFound, match="manifest for .*shoaltest/multi:nope not found"):
        await service.ensure(f"{registry}/shoaltest/multi:nope")
