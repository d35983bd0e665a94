"""The image service: pulls from a real docker-registry on loopback (ensure, progress, shared
pulls, the distribution descriptor), docker-save and OCI archives, rootfs imports with changes,
list/inspect/remove as Docker shapes them, and X-Registry-Auth decoding."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.errors import Conflict, InvalidArgument, NotFound
from shoal.image.auth import decode_registry_auth
from shoal.image.registry import Registry
from shoal.image.service import ImageService, is_loopback_registry
from shoal.image.store import digest_of
from tests.integration.registry_helper import (
    HAVE_REGISTRY,
    blob_count,
    busybox_rootfs,
    docker_save_archive,
    oci_archive,
    push_image,
    push_index,
    registry_server,
    tar_bytes,
)

needs_registry = pytest.mark.skipif(not HAVE_REGISTRY, reason="docker-registry is not installed")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    with registry_server(tmp_path / "registry") as addr:
        yield addr


@pytest.fixture
def service(tmp_path: Path) -> ImageService:
    return ImageService(tmp_path / "image")


# -- X-Registry-Auth and insecure registries ------------------------------------------------

def _header(doc: dict[str, str], *, pad: bool = True) -> str:
    value = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    return value if pad else value.rstrip("=")


def test_registry_auth_is_decoded_leniently() -> None:
    auth = decode_registry_auth(_header({"username": "alice", "password": "s3cr=t/+",
                                         "serveraddress": "127.0.0.1:5000"}, pad=False))
    assert auth.credentials == ("alice", "s3cr=t/+") and auth.server_address == "127.0.0.1:5000"
    assert decode_registry_auth("").credentials is None
    assert decode_registry_auth("e30=").credentials is None and decode_registry_auth("e30").credentials is None
    legacy = decode_registry_auth(_header({"auth": base64.b64encode(b"bob:pw").decode()}))
    assert legacy.credentials == ("bob", "pw")
    assert decode_registry_auth(_header({"identitytoken": "tok"})).credentials == ("<token>", "tok")
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        decode_registry_auth("!!!not base64 json")


@pytest.mark.parametrize(("domain", "loopback"), [
    ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.9.9.9", True), ("[::1]:5000", True),
    ("registry.example.com", False), ("10.0.0.1:5000", False), ("docker.io", False),
])
def test_loopback_registries_are_insecure_by_default(domain: str, loopback: bool) -> None:
    assert is_loopback_registry(domain) is loopback


def test_named_insecure_registries(tmp_path: Path) -> None:
    service = ImageService(tmp_path, insecure_registries=["reg.internal:5000", "10.1.0.0/16"])
    assert service._insecure("reg.internal:5000") and service._insecure("10.1.2.3:5000")
    assert not service._insecure("reg.internal") and not service._insecure("10.2.0.1:5000")


# -- pulls --------------------------------------------------------------------------------

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


# -- load and import ----------------------------------------------------------------------

def test_load_docker_save_and_oci_archives(service: ImageService) -> None:
    layer = tar_bytes({"bin/tool": b"\x7fELF"})
    lines = service.load(io.BytesIO(docker_save_archive([layer], ["shoaltest/saved:1", "shoaltest/other:2"])))
    assert lines == ["Loaded image: shoaltest/saved:1", "Loaded image: shoaltest/other:2"]
    archive, manifest = oci_archive([layer], {"io.containerd.image.name": "docker.io/shoaltest/oci:3",
                                              "org.opencontainers.image.ref.name": "3"})
    assert service.load(io.BytesIO(archive)) == ["Loaded image: shoaltest/oci:3"]
    inspected = service.inspect("shoaltest/oci:3")
    assert inspected["Descriptor"]["digest"] == manifest and inspected["RootFS"]["Layers"] == [digest_of(layer)]
    bare, _ = oci_archive([layer], {"org.opencontainers.image.ref.name": "latest"}, config={"Cmd": ["x"]})
    loaded = service.load(io.BytesIO(bare))
    assert loaded[0].startswith("Loaded image ID: sha256:")
    assert [i["RepoTags"] for i in service.list({"dangling": ["true"]})] == [[]]
    named, _ = oci_archive([layer], {"org.opencontainers.image.ref.name": "shoaltest/ref:9"})
    assert service.load(io.BytesIO(named)) == ["Loaded image: shoaltest/ref:9"]


def test_a_failed_load_leaves_nothing(service: ImageService) -> None:
    service.load(io.BytesIO(docker_save_archive([tar_bytes({"a": b"1"})], ["shoaltest/keep:1"])))
    before = blob_count(service.root)
    good = tar_bytes({"b": b"2"})
    archive = docker_save_archive([good], ["shoaltest/broken:1"])
    # a manifest that names one layer more than the archive has
    with tarfile.open(fileobj=io.BytesIO(archive)) as src:
        files = {m.name: src.extractfile(m).read() for m in src.getmembers() if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(files["manifest.json"])
    manifest[0]["Layers"].append("blobs/sha256/" + "0" * 64)
    files["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(InvalidArgument, match="missing"):
        service.load(io.BytesIO(tar_bytes(files)))
    assert blob_count(service.root) == before
    assert not service.exists("shoaltest/broken:1")
    with pytest.raises(InvalidArgument, match="invalid archive"):
        service.load(io.BytesIO(b"not an archive at all" * 50))


def test_import_rootfs_with_changes(service: ImageService) -> None:
    rootfs = gzip.compress(busybox_rootfs())
    ident = service.import_rootfs(io.BytesIO(rootfs), "shoaltest/imp:1",
                                  ['CMD ["sh"]', "ENV A=1", "WORKDIR /srv", "EXPOSE 80",
                                   "HEALTHCHECK --interval=5s CMD true"], "from a test")
    info = service.inspect("shoaltest/imp:1")
    assert info["Id"] == ident and info["Comment"] == "from a test" and info["RepoTags"] == ["shoaltest/imp:1"]
    assert info["Config"] == {"Cmd": ["sh"], "Env": ["A=1"], "WorkingDir": "/srv",
                              "ExposedPorts": {"80/tcp": {}},
                              "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}}
    assert info["RootFS"]["Layers"] == [digest_of(busybox_rootfs())]  # stored uncompressed
    assert info["Os"] == "linux" and info["Architecture"]
    image = asyncio.run(service.ensure("shoaltest/imp:1"))
    assert (image.layer_dirs[0] / "bin/sh").is_symlink()
    untagged = service.import_rootfs(io.BytesIO(tar_bytes({"x": b"y"})))
    assert [i["Id"] for i in service.list({"dangling": ["true"]})] == [untagged]


def test_a_failed_import_leaves_nothing(service: ImageService) -> None:
    with pytest.raises(InvalidArgument, match="run is not a valid change command"):
        service.import_rootfs(io.BytesIO(tar_bytes({"a": b"1"})), "shoaltest/x:1", ["RUN true"])
    with pytest.raises(InvalidArgument, match="invalid tar header"):
        service.import_rootfs(io.BytesIO(b"this is not a tar" * 100), "shoaltest/x:1")
    assert blob_count(service.root) == 0 and service.list() == []


# -- list, inspect, tag, remove -----------------------------------------------------------

def test_list_filters_and_remove_as_docker(service: ImageService) -> None:
    shared = tar_bytes({"bin/busybox": b"\x7fELF"})
    service.load(io.BytesIO(docker_save_archive([shared], ["shoaltest/a:1", "shoaltest/a:2"],
                                                config={"Labels": {"tier": "web"}})))
    service.load(io.BytesIO(docker_save_archive([shared, tar_bytes({"b": b"only b"})], ["shoaltest/b:1"])))
    listed = service.list()
    assert sorted(tuple(i["RepoTags"]) for i in listed) == [("shoaltest/a:1", "shoaltest/a:2"), ("shoaltest/b:1",)]
    assert {i["Containers"] for i in listed} == {-1} and all(isinstance(i["Created"], int) for i in listed)
    assert [i["RepoTags"] for i in service.list({"reference": ["shoaltest/b"]})] == [["shoaltest/b:1"]]
    assert len(service.list({"reference": ["shoaltest/*:2"]})) == 1
    assert len(service.list({"reference": ["*"]})) == 0  # * does not cross the /
    assert [i["RepoTags"][0] for i in service.list({"label": ["tier=web"]})] == ["shoaltest/a:1"]
    with pytest.raises(NotFound, match="No such image: shoaltest/zzz"):
        service.inspect("shoaltest/zzz")

    service.tag("shoaltest/a:1", "shoaltest/c:1")  # now in two repositories
    a_id = service.inspect("shoaltest/a:1")["Id"]
    assert service.remove("shoaltest/a:2") == [{"Untagged": "shoaltest/a:2"}]
    with pytest.raises(Conflict, match=f"unable to delete {a_id[7:19]} \\(must be forced\\)"):
        service.remove(a_id)
    blobs = blob_count(service.root)
    answer = service.remove(a_id[7:19], force=True)
    assert answer == [{"Untagged": "shoaltest/a:1"}, {"Untagged": "shoaltest/c:1"}, {"Deleted": a_id}]
    assert blob_count(service.root) == blobs - 2  # its config and manifest; the shared layer stays
    b = asyncio.run(service.ensure("shoaltest/b:1"))
    assert all(d.exists() for d in b.layer_dirs)
    assert service.remove("shoaltest/b:1")[-1] == {"Deleted": b.id}
    assert blob_count(service.root) == 0 and not any(d.exists() for d in b.layer_dirs)
    assert service.list() == []


def test_a_moved_tag_leaves_the_old_image_dangling(service: ImageService) -> None:
    service.load(io.BytesIO(docker_save_archive([tar_bytes({"v": b"1"})], ["shoaltest/m:1"])))
    old = service.inspect("shoaltest/m:1")["Id"]
    service.load(io.BytesIO(docker_save_archive([tar_bytes({"v": b"2"})], ["shoaltest/m:1"])))
    assert service.inspect("shoaltest/m:1")["Id"] != old
    assert [i["Id"] for i in service.list({"dangling": ["true"]})] == [old]
    assert service.remove(old) == [{"Deleted": old}]
