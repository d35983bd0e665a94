"""A pull that reports its progress as Docker's JSON messages, and the registry's descriptor of a
manifest (``GET /distribution/{name}/json``): the Registry client's steps, one by one.

Messages (what dockerd streams on ``POST /images/create``, and the docker CLI prints)::

    {"status": "Pulling from shoaltest/bb", "id": "1"}
    {"status": "Pulling fs layer" | "Already exists", "progressDetail": {}, "id": "<12 hex>"}
    {"status": "Download complete", "progressDetail": {}, "id": "<12 hex>"}
    {"status": "Pull complete", "progressDetail": {}, "id": "<12 hex>"}   (after extraction)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shoal.errors import InvalidArgument
from shoal.image.reference import Reference
from shoal.image.registry import DOCKER_LIST, OCI_INDEX, Registry
from shoal.image.store import ImageRecord, ImageStore

__all__ = ["Descriptor", "Event", "ProgressRegistry", "PullResult"]

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platforms: list[dict[str, Any]]

    def docker(self) -> dict[str, Any]:
        return {"Descriptor": {"mediaType": self.media_type, "digest": self.digest, "size": self.size},
                "Platforms": self.platforms}


@dataclass(frozen=True, slots=True)
class PullResult:
    record: ImageRecord
    digest: str  # the digest the registry knows the image by (the index's, for a manifest list)


def _doc(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {what}: not an object")
    return doc


def _platform(value: Any) -> dict[str, Any]:
    value = value if isinstance(value, dict) else {}
    keys = ("architecture", "os", "os.version", "os.features", "variant")
    return {k: value[k] for k in keys if value.get(k)}


class ProgressRegistry(Registry):
    """The registry client, with a pull that reports its steps and a descriptor lookup."""

    async def describe(self, ref: Reference) -> Descriptor:
        data, media, digest = await self._manifest(ref, ref.digest or ref.tag)
        doc = _doc(data, "manifest")
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
            platforms = [_platform(m.get("platform")) for m in doc.get("manifests") or []
                         if isinstance(m, dict) and m.get("platform")]
        else:
            config = doc.get("config") or {}
            response = await self._get(ref, f"blobs/{config.get('digest', '')}")
            try:
                blob = await response.aread()
            finally:
                await response.aclose()
            platforms = [_platform(_doc(blob, "image config"))]
        return Descriptor(media or str(doc.get("mediaType", "")), digest, len(data), platforms)

    async def pull_with_progress(self, store: ImageStore, ref: Reference,
                                 emit: Callable[[Event], None],
                                 extract: Callable[[str], Awaitable[None]]) -> PullResult:
        """Fetch ``ref``'s manifest, config and layers into ``store`` (nothing is tagged);
        ``extract(layer digest)`` runs after each layer is in."""
        data, media, top = await self._manifest(ref, ref.digest or ref.tag)
        doc = _doc(data, "manifest")
        digest = top
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
            data, media, digest = await self._manifest(ref, self._pick(doc, ref))
            doc = _doc(data, "manifest")
        # only now (a missing tag or a refusal is an error answer, not a stream, as in dockerd)
        emit({"status": f"Pulling from {ref.path}", "id": ref.tag or ref.digest})
        config = doc.get("config") or {}
        layers = doc.get("layers") or []
        if not isinstance(config, dict) or "digest" not in config or not isinstance(layers, list):
            raise InvalidArgument(f"{ref.familiar}: unsupported manifest ({media or 'no media type'})")
        digests = [str(layer["digest"]) for layer in layers]
        present = {d for d in digests if store.has_blob(d)}
        for d in digests:
            short = d.split(":", 1)[1][:12]
            emit({"status": "Already exists" if d in present else "Pulling fs layer",
                  "progressDetail": {}, "id": short})
        await self._blob(store, ref, str(config["digest"]), config.get("size"))
        for layer, d in zip(layers, digests, strict=True):
            short = d.split(":", 1)[1][:12]
            if d in present:
                await extract(d)
                continue
            await self._blob(store, ref, d, layer.get("size"))
            emit({"status": "Download complete", "progressDetail": {}, "id": short})
            await extract(d)
            emit({"status": "Pull complete", "progressDetail": {}, "id": short})
        store.put_blob(data, digest=digest)
        return PullResult(ImageRecord(digest, str(config["digest"]), tuple(digests)), top)
