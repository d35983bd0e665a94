"""Image archives: `docker save` and OCI image-layout archives loaded into the store (names,
records, the OCI manifest written for a `docker save` image), Docker's ``Loaded image`` lines,
and refused or broken archives that leave nothing behind."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from shoal.errors import InvalidArgument
from shoal.image.archive import load_docker_archive
from shoal.image.reference import parse
from shoal.image.service import ImageService
from shoal.image.store import ImageStore, digest_of
from tests.integration.registry_helper import (
    blob_count,
    docker_save_archive,
    oci_archive,
    tar_bytes,
)


def test_docker_save_archive_loads(tmp_path: Path) -> None:
    layer = tar_bytes({"bin/busybox": b"\x7fELF", "etc/hostname": b"x"})
    config = json.dumps({"config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers"}}).encode()
    archive = tar_bytes({
        "manifest.json": json.dumps([{"Config": "abc.json", "RepoTags": ["busybox:latest", "me/tools:1"],
                                      "Layers": ["l1/layer.tar"]}]).encode(),
        "abc.json": config,
        "l1/layer.tar": layer,
    })
    store = ImageStore(tmp_path / "images")
    loaded = load_docker_archive(store, io.BytesIO(archive))
    assert [str(ref) for ref, _ in loaded] == ["docker.io/library/busybox:latest", "docker.io/me/tools:1"]
    record = store.get(parse("me/tools:1"))
    assert record.config == digest_of(config) and record.layers == (digest_of(layer),)
    manifest = json.loads(store.read_blob(record.manifest))
    assert manifest["config"]["digest"] == record.config and manifest["layers"][0]["size"] == len(layer)
    assert (store.layer_dir(record.layers[0]) / "bin/busybox").read_bytes() == b"\x7fELF"


@pytest.mark.parametrize(("files", "message"), [
    ({"other": b"x"}, "manifest.json"),
    ({"manifest.json": b"not json"}, "manifest.json"),
    ({"manifest.json": b"[]"}, "lists no image"),
    ({"manifest.json": b'[{"Config": "gone.json", "Layers": []}]'}, "missing"),
])
def test_bad_archives_are_refused(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        load_docker_archive(ImageStore(tmp_path), io.BytesIO(tar_bytes(files)))


def test_not_a_tar_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid archive"):
        load_docker_archive(ImageStore(tmp_path), io.BytesIO(b"plain text, not a tar" * 100))


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
