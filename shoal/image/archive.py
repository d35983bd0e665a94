"""``image load``: `docker save` archives into the image store (issue 4).

A `docker save` tar holds ``manifest.json`` (``[{"Config", "RepoTags", "Layers"}]``), the
config JSON and one tar per layer, by path (``<id>/layer.tar`` in older Docker versions,
``blobs/sha256/<hex>`` in newer ones). Each blob is ingested by digest; the store's record also
gets an OCI image manifest written for it, whose digest is the one `service create` pins.
"""

from __future__ import annotations

import json
import tarfile
from typing import IO, Any

from shoal.errors import InvalidArgument
from shoal.image.reference import Reference, parse
from shoal.image.store import ImageRecord, ImageStore

__all__ = ["load_docker_archive", "oci_manifest"]

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


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


def load_docker_archive(store: ImageStore, archive: IO[bytes]) -> list[tuple[Reference, ImageRecord]]:
    """Ingest every image of a `docker save` archive and tag it; returns what was loaded."""
    try:
        with tarfile.open(fileobj=archive, mode="r:*") as tar:
            try:
                entries: Any = json.load(_member(tar, "manifest.json"))
            except ValueError as exc:
                raise InvalidArgument(f"invalid archive: manifest.json: {exc}") from exc
            if not isinstance(entries, list) or not entries:
                raise InvalidArgument("invalid archive: manifest.json lists no image")
            loaded = []
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                    raise InvalidArgument("invalid archive: a manifest.json entry has no Config")
                config_bytes = _member(tar, entry["Config"]).read()
                config = store.put_blob(config_bytes)
                layers = []
                for path in entry.get("Layers") or []:
                    digest = store.ingest(_member(tar, str(path)))
                    layers.append((digest, store.blob_path(digest).stat().st_size))
                manifest = store.put_blob(oci_manifest((config, len(config_bytes)), layers))
                record = ImageRecord(manifest, config, tuple(d for d, _ in layers))
                for tag in entry.get("RepoTags") or []:
                    ref = parse(str(tag))
                    store.tag(ref, record)
                    loaded.append((ref, record))
            return loaded
    except tarfile.TarError as exc:
        raise InvalidArgument(f"invalid archive: {exc}") from exc
