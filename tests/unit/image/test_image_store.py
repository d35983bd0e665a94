"""The image store: blobs by verified digest, records by tag, layers extracted once."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from shoal.errors import InvalidArgument, NotFound
from shoal.image.reference import parse
from shoal.image.store import ImageRecord, ImageStore, digest_of


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_blobs_are_stored_by_their_verified_digest(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    digest = store.ingest(io.BytesIO(b"hello"))
    assert digest == digest_of(b"hello") and store.read_blob(digest) == b"hello"
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        store.put_blob(b"other", digest=digest_of(b"not this"))
    with pytest.raises(InvalidArgument, match="size mismatch"):
        store.ingest([b"abc"], digest=digest_of(b"abc"), size=4)
    assert sorted(p.name for p in (tmp_path / "blobs" / "sha256").iterdir()) == [digest.split(":")[1]]
    with pytest.raises(NotFound):
        store.read_blob(digest_of(b"absent"))
    with pytest.raises(InvalidArgument, match="malformed digest"):
        store.blob_path("sha256:../../etc/passwd")


def test_records_by_tag_and_layers_extracted_once(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    layer = store.put_blob(_tar_bytes({"bin/sh": b"#!"}))
    config = store.put_blob(b"{}")
    manifest = store.put_blob(b'{"schemaVersion":2}')
    record = ImageRecord(manifest, config, (layer,))
    store.tag(parse("busybox"), record)
    assert store.get(parse("docker.io/library/busybox:latest")) == record
    assert list(store.names()) == ["docker.io/library/busybox:latest"]
    with pytest.raises(NotFound, match="No such image: redis:latest"):
        store.get(parse("redis"))
    with pytest.raises(InvalidArgument, match="blobs missing"):
        store.tag(parse("broken"), ImageRecord(digest_of(b"x"), config, ()))
    path = store.layer_dir(layer)
    assert (path / "bin/sh").read_bytes() == b"#!"
    (path / "marker").write_text("kept")
    assert store.layer_dir(layer) == path and (path / "marker").exists()  # not extracted twice
    store.untag(parse("busybox"))
    assert store.names() == {}

