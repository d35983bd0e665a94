"""Test helpers for images: a real registry (Debian's docker-registry) on loopback, a minimal
push over the distribution API, and tiny images built from /bin/busybox (busybox-static)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shoal.dev.registry import LocalRegistry, push_blob, push_manifest
from shoal.image.store import digest_of
from shoal.store.etcd.testing import free_port

HAVE_REGISTRY = shutil.which("docker-registry") is not None
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "ls", "cat", "echo", "true", "sleep", "wget")


@contextmanager
def registry_server(root: Path) -> Iterator[str]:
    """A docker-registry on 127.0.0.1:<free port> storing under ``root``; yields host:port."""
    registry = LocalRegistry(root, f"127.0.0.1:{free_port()}")
    registry.start()
    try:
        yield registry.addr
    finally:
        registry.stop()


def tar_bytes(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        dirs = sorted({str(Path(n).parent) for n in [*files, *(symlinks or {})]} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def busybox_rootfs() -> bytes:
    """A plain rootfs tar: bin/busybox and a few applet symlinks."""
    return tar_bytes({"bin/busybox": BUSYBOX.read_bytes()}, {f"bin/{a}": "busybox" for a in APPLETS})


def push_image(addr: str, repo: str, tag: str, layers: list[bytes], *, arch: str = "amd64",
               config: dict[str, object] | None = None) -> bytes:
    """Push an image of (uncompressed) layer tars, gzipped on the way; returns the manifest."""
    gz = [gzip.compress(layer, mtime=0) for layer in layers]
    doc = {"architecture": arch, "os": "linux", "created": "2024-05-01T10:00:00.123456789Z",
           "config": config if config is not None else {"Cmd": ["sh"]},
           "rootfs": {"type": "layers", "diff_ids": [digest_of(layer) for layer in layers]}}
    config_bytes = json.dumps(doc).encode()
    with httpx.Client(base_url=f"http://{addr}") as c:
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": push_blob(c, repo, config_bytes), "size": len(config_bytes)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": push_blob(c, repo, layer), "size": len(layer)} for layer in gz],
        }).encode()
        push_manifest(c, repo, tag, manifest)
    return manifest


def push_index(addr: str, repo: str, tag: str, manifests: dict[str, bytes]) -> bytes:
    """Push an OCI index over already pushed manifests ({arch: manifest bytes})."""
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                       "digest": digest_of(m), "size": len(m),
                                       "platform": {"os": "linux", "architecture": arch}}
                                      for arch, m in manifests.items()]}).encode()
    with httpx.Client(base_url=f"http://{addr}") as c:
        push_manifest(c, repo, tag, index, media_type="application/vnd.oci.image.index.v1+json")
    return index


def docker_save_archive(layers: list[bytes], tags: list[str],
                        config: dict[str, object] | None = None) -> bytes:
    """A `docker save` archive (Docker 25+ layout: blobs/sha256/...) of one image."""
    doc = {"architecture": "amd64", "os": "linux", "created": "2024-05-01T10:00:00Z",
           "config": config if config is not None else {"Cmd": ["sh"]},
           "rootfs": {"type": "layers", "diff_ids": [digest_of(layer) for layer in layers]}}
    config_bytes = json.dumps(doc).encode()
    files = {f"blobs/sha256/{digest_of(config_bytes)[7:]}": config_bytes}
    for layer in layers:
        files[f"blobs/sha256/{digest_of(layer)[7:]}"] = layer
    files["manifest.json"] = json.dumps([{
        "Config": f"blobs/sha256/{digest_of(config_bytes)[7:]}", "RepoTags": tags,
        "Layers": [f"blobs/sha256/{digest_of(layer)[7:]}" for layer in layers]}]).encode()
    return tar_bytes(files)


def oci_archive(layers: list[bytes], annotations: dict[str, str],
                config: dict[str, object] | None = None) -> tuple[bytes, str]:
    """An OCI image-layout archive of one image (gzipped layers); returns it and the manifest
    digest."""
    doc = {"architecture": "amd64", "os": "linux", "created": "2024-05-01T10:00:00Z",
           "config": config if config is not None else {"Cmd": ["sh"]},
           "rootfs": {"type": "layers", "diff_ids": [digest_of(layer) for layer in layers]}}
    config_bytes = json.dumps(doc).encode()
    gz = [gzip.compress(layer, mtime=0) for layer in layers]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest_of(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest_of(layer), "size": len(layer)} for layer in gz]}).encode()
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
             "index.json": json.dumps({"schemaVersion": 2, "manifests": [{
                 "mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": digest_of(manifest), "size": len(manifest),
                 "annotations": annotations}]}).encode()}
    for blob in [config_bytes, manifest, *gz]:
        files[f"blobs/sha256/{digest_of(blob)[7:]}"] = blob
    return tar_bytes(files), digest_of(manifest)


def blob_count(root: Path) -> int:
    path = root / "blobs" / "sha256"
    return len(os.listdir(path)) if path.exists() else 0
