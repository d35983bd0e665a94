"""Test helpers for images: a real registry (Debian's docker-registry) on loopback, a minimal
push over the distribution API, and tiny images built from /bin/busybox (busybox-static)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shoal.dev.local import wait_for
from shoal.image.store import digest_of
from shoal.store.etcd.testing import free_port

HAVE_REGISTRY = shutil.which("docker-registry") is not None
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "ls", "cat", "echo", "true", "sleep", "wget")


@contextmanager
def registry_server(root: Path) -> Iterator[str]:
    """A docker-registry on 127.0.0.1:<free port> storing under ``root``; yields host:port."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "registry.yml"
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": f"127.0.0.1:{port}"}}))
    with open(root / "registry.log", "wb") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out, stderr=out)
    addr = f"127.0.0.1:{port}"
    try:
        wait_for("the registry", lambda: httpx.get(f"http://{addr}/v2/", timeout=1).status_code == 200,
                 timeout=20)
        yield addr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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


def push_blob(c: httpx.Client, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    if c.head(f"/v2/{repo}/blobs/{digest}").status_code == 200:
        return digest
    start = c.post(f"/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    sep = "&" if "?" in location else "?"
    done = c.put(f"{location}{sep}digest={digest}", content=data,
                 headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


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
        r = c.put(f"/v2/{repo}/manifests/{tag}", content=manifest,
                  headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 201, r.text
    return manifest


def push_index(addr: str, repo: str, tag: str, manifests: dict[str, bytes]) -> bytes:
    """Push an OCI index over already pushed manifests ({arch: manifest bytes})."""
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                       "digest": digest_of(m), "size": len(m),
                                       "platform": {"os": "linux", "architecture": arch}}
                                      for arch, m in manifests.items()]}).encode()
    with httpx.Client(base_url=f"http://{addr}") as c:
        r = c.put(f"/v2/{repo}/manifests/{tag}", content=index,
                  headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
        assert r.status_code == 201, r.text
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
