"""``image load``: `docker save` archives and OCI image-layout archives into the image store.

A `docker save` tar holds ``manifest.json`` (``[{"Config", "RepoTags", "Layers"}]``), the
config JSON and one tar per layer, by path (``<id>/layer.tar`` in older Docker versions,
``blobs/sha256/<hex>`` in newer ones). Each blob is ingested by digest; the store's record also
gets an OCI image manifest written for it, whose digest is the one `service create` pins.

An OCI image layout archive (``oci-layout``, ``index.json``, ``blobs/sha256/...``; what
``docker save`` with the containerd store, buildx ``--output type=oci`` and skopeo write) is
loaded manifest by manifest from ``index.json``: a nested index picks linux/amd64, and the
manifest is stored as it is (its digest is the registry's). Names come from the
``io.containerd.image.name`` annotation, else ``org.opencontainers.image.ref.name`` when that
is a full name; an image without one is loaded untagged. A load is all or nothing: a failure
removes the blobs it added. As dockerd does, ``load_archive`` unpacks the layers at load, not at
first run.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable
from functools import partial
from typing import IO, Any

from shoal.errors import InvalidArgument
from shoal.image.catalog import Catalog
from shoal.image.reference import Reference, parse
from shoal.image.store import ImageRecord, ImageStore, digest_of, json_object

__all__ = ["Loaded", "load_archive", "load_docker_archive", "oci_manifest", "read_archive"]

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"


def oci_manifest(config: tuple[str, int], layers: list[tuple[str, int]]) -> bytes:
    """The OCI manifest for a config and its layers (digest, size): canonical JSON bytes."""
    doc = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
           "config": {"mediaType": CONFIG_TYPE, "digest": config[0], "size": config[1]},
           "layers": [{"mediaType": LAYER_TYPE, "digest": d, "size": n} for d, n in layers]}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        member = tar.getmember(name.lstrip("./"))
    except KeyError:
        raise InvalidArgument(f"invalid archive: {name!r} is missing") from None
    data = tar.extractfile(member) if member.isfile() else None
    if data is None:
        raise InvalidArgument(f"invalid archive: {name!r} is not a regular file")
    return data


def _json_member(tar: tarfile.TarFile, name: str) -> Any:
    try:
        return json.load(_member(tar, name))
    except ValueError as exc:
        raise InvalidArgument(f"invalid archive: {name}: {exc}") from exc


class _Ingest:
    """Blobs written for one archive: removed again if the load fails (all or nothing)."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.new: list[str] = []

    def _track(self, digest: str, existed: bool) -> str:
        if not existed:
            self.new.append(digest)
        return digest

    def put(self, data: bytes, digest: str | None = None) -> str:
        found = digest_of(data)
        if digest is not None and digest != found:
            raise InvalidArgument(f"invalid archive: digest mismatch: expected {digest}, got {found}")
        if self.store.has_blob(found):
            return found
        return self._track(self.store.put_blob(data, digest=found), False)

    def stream(self, source: Callable[[], IO[bytes]], digest: str | None = None,
               size: int | None = None) -> str:
        """Store the bytes ``source()`` reads (hashed first when ``digest`` is not known, so a
        blob already in the store is never counted as this load's)."""
        if digest is None:
            hasher = hashlib.sha256()
            reader = source()
            for chunk in iter(lambda: reader.read(1 << 20), b""):
                hasher.update(chunk)
            digest = "sha256:" + hasher.hexdigest()
        if self.store.has_blob(digest):
            return digest
        return self._track(self.store.ingest(source(), digest=digest, size=size), False)

    def rollback(self) -> None:
        for digest in self.new:
            self.store.remove_blob(digest)
        self.new.clear()


Loaded = list[tuple[Reference | None, ImageRecord]]


def _docker_entries(tar: tarfile.TarFile, ingest: _Ingest) -> Loaded:
    entries = _json_member(tar, "manifest.json")
    if not isinstance(entries, list) or not entries:
        raise InvalidArgument("invalid archive: manifest.json lists no image")
    loaded: Loaded = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidArgument("invalid archive: a manifest.json entry has no Config")
        config_bytes = _member(tar, entry["Config"]).read()
        config = ingest.put(config_bytes)
        layers = []
        for path in entry.get("Layers") or []:
            digest = ingest.stream(partial(_member, tar, str(path)))
            layers.append((digest, ingest.store.blob_path(digest).stat().st_size))
        manifest = ingest.put(oci_manifest((config, len(config_bytes)), layers))
        record = ImageRecord(manifest, config, tuple(d for d, _ in layers))
        tags = [parse(str(tag)) for tag in entry.get("RepoTags") or []]
        loaded.extend((ref, record) for ref in tags)
        if not tags:
            loaded.append((None, record))
    return loaded


def _blob_name(digest: str) -> str:
    algo, _, value = digest.partition(":")
    return f"blobs/{algo}/{value}"


def _oci_json(tar: tarfile.TarFile, descriptor: dict[str, Any], ingest: _Ingest) -> dict[str, Any]:
    digest = str(descriptor.get("digest", ""))
    data = _member(tar, _blob_name(digest)).read()
    if digest_of(data) != digest:
        raise InvalidArgument(f"invalid archive: digest mismatch for {digest}")
    return json_object(data, f"archive: {digest}")


def _oci_name(annotations: dict[str, Any]) -> Reference | None:
    """The image's name: ``io.containerd.image.name``, else ``org.opencontainers.image.ref.name``
    when it is a full name (a bare tag such as ``latest`` names no repository)."""
    for key in ("io.containerd.image.name", REF_NAME):
        value = annotations.get(key)
        if isinstance(value, str) and value and (key != REF_NAME or any(c in value for c in ":/@")):
            return parse(value)
    return None


def _oci_manifest(tar: tarfile.TarFile, descriptor: dict[str, Any], ingest: _Ingest,
                  platform: tuple[str, str], depth: int = 0) -> ImageRecord:
    doc = _oci_json(tar, descriptor, ingest)
    if "manifests" in doc:  # a nested index (docker save of a multi-platform image)
        if depth > 2:
            raise InvalidArgument("invalid archive: indexes nested too deeply")
        entries = [m for m in doc.get("manifests") or [] if isinstance(m, dict)]
        wanted = [m for m in entries if (m.get("platform") or {}).get("os") == platform[0]
                  and (m.get("platform") or {}).get("architecture") == platform[1]]
        present = [m for m in wanted or entries
                   if _blob_name(str(m.get("digest", ""))).lstrip("./") in tar.getnames()]
        if not present:
            raise InvalidArgument(f"invalid archive: no manifest for {platform[0]}/{platform[1]}")
        return _oci_manifest(tar, present[0], ingest, platform, depth + 1)
    config = doc.get("config")
    layers = doc.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise InvalidArgument(f"invalid archive: {descriptor.get('digest')} is not an image manifest")
    config_digest = str(config.get("digest", ""))
    ingest.stream(lambda: _member(tar, _blob_name(config_digest)), config_digest, config.get("size"))
    digests = []
    for layer in layers:
        digest = str(layer.get("digest", ""))
        name = _blob_name(digest)
        digests.append(ingest.stream(partial(_member, tar, name), digest, layer.get("size")))
    raw = _member(tar, _blob_name(str(descriptor["digest"]))).read()
    manifest = ingest.put(raw, digest=str(descriptor["digest"]))
    return ImageRecord(manifest, config_digest, tuple(digests))


def _oci_entries(tar: tarfile.TarFile, ingest: _Ingest, platform: tuple[str, str]) -> Loaded:
    index = _json_member(tar, "index.json")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise InvalidArgument("invalid archive: index.json lists no image")
    loaded: Loaded = []
    for descriptor in manifests:
        if not isinstance(descriptor, dict) or not str(descriptor.get("digest", "")).startswith("sha256:"):
            raise InvalidArgument("invalid archive: an index.json entry has no digest")
        record = _oci_manifest(tar, descriptor, ingest, platform)
        loaded.append((_oci_name(descriptor.get("annotations") or {}), record))
    return loaded


def read_archive(store: ImageStore, archive: IO[bytes], *,
                 platform: tuple[str, str] = ("linux", "amd64")) -> Loaded:
    """Ingest every image of a `docker save` archive (``manifest.json``) or an OCI image layout
    archive (``index.json``); returns (name or None, record) for each, nothing tagged yet. On
    any error, the blobs this call added are removed again."""
    ingest = _Ingest(store)
    try:
        with tarfile.open(fileobj=archive, mode="r:*") as tar:
            names = {n.lstrip("./") for n in tar.getnames()}
            if "manifest.json" in names:
                return _docker_entries(tar, ingest)
            if "index.json" in names:
                return _oci_entries(tar, ingest, platform)
            raise InvalidArgument("invalid archive: 'manifest.json' is missing (neither a docker "
                                  "save archive nor an OCI image layout)")
    except tarfile.TarError as exc:
        ingest.rollback()
        raise InvalidArgument(f"invalid archive: {exc}") from exc
    except BaseException:
        ingest.rollback()
        raise


def load_docker_archive(store: ImageStore, archive: IO[bytes]) -> list[tuple[Reference, ImageRecord]]:
    """Ingest every image of a `docker save` (or OCI layout) archive and tag it; returns what
    was tagged."""
    loaded = [(ref, record) for ref, record in read_archive(store, archive) if ref is not None]
    for ref, record in loaded:
        store.tag(ref, record)
    return loaded


def load_archive(catalog: Catalog, archive: IO[bytes], *, platform: tuple[str, str],
                 extract: Callable[[str], object]) -> list[str]:
    """``docker load``: every image of the archive named (or kept dangling) and its layers
    unpacked with ``extract``; returns Docker's lines (``Loaded image: NAME`` / ``Loaded image
    ID: sha256:...``). All or nothing."""
    loaded = read_archive(catalog.store, archive, platform=platform)
    for _ref, record in loaded:
        for digest in record.layers:
            extract(digest)
    lines = []
    for ref, record in loaded:
        if ref is None:
            catalog.keep_untagged(record)
            lines.append(f"Loaded image ID: {record.config}")
        else:
            catalog.tag(ref, record)
            # not ``ref.shown``: a name with both shows its tag here
            if ref.digest and not ref.tag:
                lines.append(f"Loaded image: {ref.familiar}@{ref.digest}")
            else:
                lines.append(f"Loaded image: {ref.familiar}:{ref.tag}")
    return lines
