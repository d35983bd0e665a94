"""Pulling from a real OCI registry (Debian's docker-registry, started on loopback by the test):
by tag and by digest, a manifest list picking linux/amd64, layers stored once and extracted, and
the registry's reason when a tag does not exist."""

from __future__ import annotations

import asyncio
import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.dev.registry import LocalRegistry
from shoal.errors import NotFound
from shoal.image.reference import parse
from shoal.image.registry import Registry
from shoal.image.store import ImageRecord, ImageStore, digest_of
from shoal.store.etcd.testing import free_port
from tests.integration.registry_helper import push_image, push_index, tar_bytes

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None,
                                reason="docker-registry is not installed (scripts/setup installs it)")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    reg = LocalRegistry(tmp_path / "registry", f"127.0.0.1:{free_port()}")
    reg.start()
    try:
        yield reg.addr
    finally:
        reg.stop()


def _gz_digest(layer: bytes) -> str:
    return digest_of(gzip.compress(layer, mtime=0))  # as push_image compresses it


def test_pull_by_tag_and_digest_and_from_a_manifest_list(registry: str, tmp_path: Path) -> None:
    base = tar_bytes({"bin/busybox": b"\x7fELF busybox"})
    top = tar_bytes({"www/index.html": b"<h1>hello</h1>"})
    manifest = push_image(registry, "shoaltest/web", "1", [base, top])
    arm = push_image(registry, "shoaltest/web", "arm", [base], arch="arm64")
    push_index(registry, "shoaltest/web", "multi", {"arm64": arm, "amd64": manifest})
    store = ImageStore(tmp_path / "images")

    async def pull(name: str) -> ImageRecord:
        reg = Registry(insecure=[registry])
        try:
            return await reg.pull(store, parse(name))
        finally:
            await reg.close()

    record = asyncio.run(pull(f"{registry}/shoaltest/web:1"))
    assert record.manifest == digest_of(manifest)
    assert record.layers == (_gz_digest(base), _gz_digest(top))
    assert (store.layer_dir(_gz_digest(top)) / "www/index.html").read_bytes() == b"<h1>hello</h1>"
    by_digest = asyncio.run(pull(f"{registry}/shoaltest/web@{digest_of(manifest)}"))
    assert by_digest == record
    multi = asyncio.run(pull(f"{registry}/shoaltest/web:multi"))
    assert multi == record  # linux/amd64 picked from the index
    # config, two layers, the amd64 manifest: each once, whatever the number of pulls
    assert len(list((tmp_path / "images" / "blobs" / "sha256").iterdir())) == 4
    with pytest.raises(NotFound, match="manifest for .*shoaltest/web:nope not found"):
        asyncio.run(pull(f"{registry}/shoaltest/web:nope"))
