"""Pulling from a real OCI registry (Debian's docker-registry, started on loopback by the test):
by tag and by digest, a manifest list picking linux/amd64, layers stored once and extracted, and
the registry's reason when a tag does not exist."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shoal.dev.registry import LocalRegistry, push_blob, push_manifest
from shoal.errors import NotFound
from shoal.image.reference import parse
from shoal.image.registry import Registry
from shoal.image.store import ImageRecord, ImageStore, digest_of
from shoal.store.etcd.testing import free_port

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


def _layer(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue())


def _push_image(c: httpx.Client, repo: str, tag: str, layers: list[bytes], arch: str = "amd64") -> bytes:
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": push_blob(c, repo, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": push_blob(c, repo, layer), "size": len(layer)} for layer in layers],
    }).encode()
    push_manifest(c, repo, tag, manifest)
    return manifest


def test_pull_by_tag_and_digest_and_from_a_manifest_list(registry: str, tmp_path: Path) -> None:
    base = _layer({"bin/busybox": b"\x7fELF busybox"})
    top = _layer({"www/index.html": b"<h1>hello</h1>"})
    with httpx.Client(base_url=f"http://{registry}") as c:
        manifest = _push_image(c, "shoaltest/web", "1", [base, top])
        arm = _push_image(c, "shoaltest/web", "arm", [base], arch="arm64")
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [
                                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                 "digest": digest_of(arm), "size": len(arm),
                                 "platform": {"os": "linux", "architecture": "arm64"}},
                                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                 "digest": digest_of(manifest), "size": len(manifest),
                                 "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
        r = c.put("/v2/shoaltest/web/manifests/multi", content=index,
                  headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
        assert r.status_code == 201, r.text
    store = ImageStore(tmp_path / "images")

    async def pull(name: str) -> ImageRecord:
        reg = Registry(insecure=[registry])
        try:
            return await reg.pull(store, parse(name))
        finally:
            await reg.close()

    record = asyncio.run(pull(f"{registry}/shoaltest/web:1"))
    assert record.manifest == digest_of(manifest)
    assert record.layers == (digest_of(base), digest_of(top))
    assert (store.layer_dir(digest_of(top)) / "www/index.html").read_bytes() == b"<h1>hello</h1>"
    by_digest = asyncio.run(pull(f"{registry}/shoaltest/web@{digest_of(manifest)}"))
    assert by_digest == record
    multi = asyncio.run(pull(f"{registry}/shoaltest/web:multi"))
    assert multi == record  # linux/amd64 picked from the index
    # config, two layers, the amd64 manifest: each once, whatever the number of pulls
    assert len(list((tmp_path / "images" / "blobs" / "sha256").iterdir())) == 4
    with pytest.raises(NotFound, match="manifest for .*shoaltest/web:nope not found"):
        asyncio.run(pull(f"{registry}/shoaltest/web:nope"))
