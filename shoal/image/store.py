"""The node's image store under ``<data-root>/image``: content-addressed blobs, image records by
tag, and layers extracted once each (issue 4).

    blobs/sha256/<hex>      every blob (manifests, configs, layers) as fetched, named by digest
    layers/<12 hex>/        a layer blob extracted (short names: overlayfs mount data < 1 page)
    images.json             {"docker.io/library/busybox:latest": {"manifest", "config", "layers"}}

A blob is written to a temporary file while its sha256 is computed, and renamed into place only
if the digest (and size, when known) match: a store never holds a blob under a wrong name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Self

from shoal.errors import InvalidArgument, NotFound
from shoal.fsutil import write_atomic
from shoal.image.layers import extract_layer
from shoal.image.reference import Reference

__all__ = ["BlobWriter", "ImageRecord", "ImageStore", "digest_of", "json_object"]

_CHUNK = 1 << 20


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object (a manifest, a config, an index), or InvalidArgument naming ``what``."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {what}: not an object")
    return doc


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algo, _, value = digest.partition(":")
    if algo != "sha256" or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidArgument(f"unsupported or malformed digest {digest!r}")
    return value


@dataclass(frozen=True, slots=True)
class ImageRecord:
    manifest: str  # digest of the image manifest (what `docker service create` pins)
    config: str  # digest of the image config (the image ID)
    layers: tuple[str, ...]  # digests of the layer blobs, bottom first


class BlobWriter:
    """A blob being written: to a temporary file, hashed as it goes; use as a context manager
    (leaving it without ``commit()`` removes the temporary file)."""

    def __init__(self, directory: Path, digest: str | None, size: int | None) -> None:
        if digest is not None:
            _hex(digest)
        self._dir, self._digest, self._size = directory, digest, size
        fd, name = tempfile.mkstemp(dir=directory, prefix=".ingest-")
        self._tmp = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.written = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)  # gone already after a commit

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.written += len(chunk)
        if self._size is not None and self.written > self._size:
            raise InvalidArgument(f"size mismatch for {self._digest}: more than {self._size} bytes")
        self._file.write(chunk)

    def commit(self) -> str:
        actual = "sha256:" + self._hash.hexdigest()
        if self._digest is not None and actual != self._digest:
            raise InvalidArgument(f"digest mismatch: expected {self._digest}, got {actual}")
        if self._size is not None and self.written != self._size:
            raise InvalidArgument(f"size mismatch for {actual}: expected {self._size} bytes, got {self.written}")
        self._file.close()
        os.replace(self._tmp, self._dir / _hex(actual))
        return actual


def _record(entry: dict[str, object]) -> ImageRecord:
    layers = entry.get("layers")
    return ImageRecord(str(entry["manifest"]), str(entry["config"]),
                       tuple(str(x) for x in layers) if isinstance(layers, list) else ())


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs" / "sha256"
        self._layers = root / "layers"
        self._index = root / "images.json"

    # -- blobs -------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self._blobs / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the image store") from None

    def writer(self, *, digest: str | None = None, size: int | None = None) -> BlobWriter:
        """A blob written piece by piece (a download); ``commit()`` verifies and names it."""
        self._blobs.mkdir(parents=True, exist_ok=True)
        return BlobWriter(self._blobs, digest, size)

    def ingest(self, source: BinaryIO | Iterable[bytes], *, digest: str | None = None,
               size: int | None = None) -> str:
        """Store the bytes of ``source``; returns their digest. With ``digest`` (and ``size``)
        given, bytes that do not match are refused and nothing is kept."""
        chunks = iter(lambda: source.read(_CHUNK), b"") if hasattr(source, "read") else source
        with self.writer(digest=digest, size=size) as out:
            for chunk in chunks:
                out.write(chunk)
            return out.commit()

    def put_blob(self, data: bytes, *, digest: str | None = None) -> str:
        return self.ingest([data], digest=digest, size=len(data))

    def remove_blob(self, digest: str) -> None:
        """Delete a blob; one already gone is no error (a rollback may meet a half-done load)."""
        self.blob_path(digest).unlink(missing_ok=True)

    # -- layers ------------------------------------------------------------------------------
    def layer_dir(self, digest: str) -> Path:
        """The extracted layer (extracted now if it is not yet: once per node, shared by every
        container using it)."""
        path = self._layer_path(digest)
        if not path.exists():
            with open(self.blob_path(digest), "rb") as blob:
                extract_layer(blob, path)
        return path

    def remove_layer(self, digest: str) -> None:
        """Delete the extracted layer, if it was extracted."""
        shutil.rmtree(self._layer_path(digest), ignore_errors=True)

    def _layer_path(self, digest: str) -> Path:
        return self._layers / _hex(digest)[:12]

    # -- images ------------------------------------------------------------------------------
    def _load_index(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self._index.read_text())
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _save_index(self, index: dict[str, dict[str, object]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self._index, json.dumps(index, indent=1, sort_keys=True))

    def tag(self, ref: Reference, record: ImageRecord) -> None:
        """Name ``record`` by ``ref`` (its tag; a digest reference names it too)."""
        missing = [d for d in (record.manifest, record.config, *record.layers) if not self.has_blob(d)]
        if missing:
            raise InvalidArgument(f"cannot tag {ref}: blobs missing from the store: {', '.join(missing)}")
        index = self._load_index()
        index[str(ref)] = asdict(record) | {"layers": list(record.layers)}
        self._save_index(index)

    def get(self, ref: Reference) -> ImageRecord:
        entry = self._load_index().get(str(ref))
        if entry is None:
            raise NotFound(f"No such image: {ref.familiar}:{ref.tag}" if ref.tag else f"No such image: {ref}")
        return _record(entry)

    def names(self) -> dict[str, ImageRecord]:
        """Every name in the store and the image it names."""
        return {name: _record(entry) for name, entry in self._load_index().items()}

    def untag(self, ref: Reference) -> None:
        index = self._load_index()
        if index.pop(str(ref), None) is None:
            raise NotFound(f"No such image: {ref}")
        self._save_index(index)
