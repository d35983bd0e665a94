"""The Docker API's JSON for images (issue 4): ``GET /images/json`` (``image.Summary``, with its
filters) and ``GET /images/{name}/json`` (``image.InspectResponse``), read from the catalog and
each image's config blob. Keys and their order are dockerd's, since clients print them as given.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from shoal.errors import InvalidArgument, NotFound
from shoal.image.catalog import Catalog
from shoal.image.reference import Reference
from shoal.image.store import ImageRecord, ImageStore

__all__ = ["ZERO_TIME", "image_labels", "inspect_image", "list_images", "reference_matches"]

ZERO_TIME = "0001-01-01T00:00:00Z"


def _unix(created: str) -> int:
    if not created or created.startswith("0001-"):
        return 0
    text = created.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Go writes up to 9 fractional digits; fromisoformat takes 6
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0


def _label(labels: dict[str, str], item: str) -> bool:
    key, eq, value = item.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` do not cross ``/``."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                return False
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.fullmatch("".join(out), name) is not None
    except re.error:
        return False


def reference_matches(pattern: str, refs: list[Reference]) -> bool:
    """Docker's ``reference`` filter (``FamiliarMatch``): the pattern against each name's
    familiar name and its familiar ``name:tag`` / ``name@digest``."""
    return any(_path_match(pattern, ref.familiar) or _path_match(pattern, ref.shown) for ref in refs)


def _config(store: ImageStore, record: ImageRecord) -> dict[str, Any]:
    try:
        doc = json.loads(store.read_blob(record.config))
    except (NotFound, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def image_labels(store: ImageStore, record: ImageRecord) -> dict[str, str]:
    """The image's ``Config.Labels`` (what its events carry), {} if it has none."""
    labels = (_config(store, record).get("config") or {}).get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _size(store: ImageStore, record: ImageRecord) -> int:
    total = 0
    for digest in record.layers:
        try:
            total += store.blob_path(digest).stat().st_size
        except FileNotFoundError:
            pass
    return total


def _tags_and_digests(refs: list[Reference]) -> tuple[list[str], list[str]]:
    tags = [f"{r.familiar}:{r.tag}" for r in refs if r.tag and not r.digest]
    digests = [f"{r.familiar}@{r.digest}" for r in refs if r.digest]
    return tags, digests


def _descriptor(store: ImageStore, record: ImageRecord) -> dict[str, Any]:
    try:
        size = store.blob_path(record.manifest).stat().st_size
    except FileNotFoundError:
        size = 0
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": record.manifest,
            "size": size}


def list_images(catalog: Catalog, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """``GET /images/json``: every image, newest first (Docker's ``image.Summary``);
    ``filters``: ``reference`` (patterns, ORed), ``dangling`` (true/false), ``label``
    (``key`` or ``key=value``, ANDed)."""
    store = catalog.store
    filters = filters or {}
    dangling = filters.get("dangling") or []
    for value in dangling:
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={value}'")
    out: list[dict[str, Any]] = []
    for ident, (record, refs) in catalog.images().items():
        config = _config(store, record)
        tags, digests = _tags_and_digests(refs)
        labels = (config.get("config") or {}).get("Labels") or {}
        if dangling and (dangling[-1].lower() in ("true", "1")) != (not tags):
            continue
        if filters.get("reference") and not any(reference_matches(p, refs) for p in filters["reference"]):
            continue
        if not all(_label(labels, item) for item in filters.get("label") or []):
            continue
        out.append({"Id": ident, "ParentId": "", "RepoTags": tags, "RepoDigests": digests,
                    "Created": _unix(str(config.get("created") or "")), "Size": _size(store, record),
                    "SharedSize": -1, "Labels": labels, "Containers": -1,
                    "Descriptor": _descriptor(store, record)})
    out.sort(key=lambda item: (-int(item["Created"]), str(item["Id"])))
    return out


def inspect_image(catalog: Catalog, name: str) -> dict[str, Any]:
    """``GET /images/{name}/json`` (Docker's ``image.InspectResponse``)."""
    store = catalog.store
    ident, record, refs, _ = catalog.find(name)
    config = _config(store, record)
    tags, digests = _tags_and_digests(refs)
    rootfs = config.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") or list(record.layers)
    return {
        "Id": ident, "RepoTags": tags, "RepoDigests": digests, "Parent": "",
        "Comment": str(config.get("comment") or ""), "Created": str(config.get("created") or ZERO_TIME),
        "DockerVersion": str(config.get("docker_version") or ""), "Author": str(config.get("author") or ""),
        "Config": config.get("config") or {}, "Architecture": str(config.get("architecture") or ""),
        "Variant": config.get("variant") or None, "Os": str(config.get("os") or ""),
        "Size": _size(store, record),
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "RootFS": {"Type": str(rootfs.get("type") or "layers"), "Layers": diff_ids},
        "Metadata": {"LastTagTime": ZERO_TIME},
        "Descriptor": _descriptor(store, record),
    }
