"""/volumes: create, list, inspect, remove and prune this node's volumes, as dockerd serves them
(API 1.50; moby ``api/server/router/volume``, ``volume/service/convert.go`` for the filters).
Any node answers, in a swarm or not: volumes are per node. The service blocks (files, mount),
so it runs in a thread."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from shoal.api.common import engine, param, read, reply
from shoal.api.params import Filters, bool_value, filters, label_match
from shoal.api.render import volume_json
from shoal.api.server import API_VERSION_IN_USE, Router, parse_version
from shoal.errors import InvalidArgument
from shoal.model.volumes import ANONYMOUS_LABEL, Volume, VolumeCreateRequest
from shoal.volume import VolumeService

__all__ = ["register"]

_LIST_FILTERS = {"dangling", "driver", "label", "name"}
_PRUNE_FILTERS = {"label", "label!", "all"}


def _volumes(request: web.Request) -> VolumeService:
    return engine(request).volumes


def _flag(f: Filters, key: str) -> bool | None:
    """A true/false filter as moby reads it: "true"/"1", "false"/"0", else invalid."""
    values = f.get(key)
    if not values:
        return None
    if any(v in ("true", "1") for v in values):
        return True
    if any(v in ("false", "0") for v in values):
        return False
    raise InvalidArgument(f"invalid filter '{key}=[{' '.join(values)}]'")


def _name_matches(name: str, patterns: list[str]) -> bool:
    """moby filters.Match: equal, or the value as a regular expression found in the name."""
    for pattern in patterns:
        if pattern == name:
            return True
        try:
            if re.search(pattern, name):
                return True
        except re.error:
            continue
    return False


def _listed(vol: Volume, f: Filters, used: bool) -> bool:
    if "driver" in f and vol.driver not in f["driver"]:
        return False
    if "name" in f and not _name_matches(vol.name, f["name"]):
        return False
    if "label" in f and not label_match(vol.labels, f["label"]):
        return False
    dangling = _flag(f, "dangling")
    return dangling is None or dangling != used


async def list_volumes(request: web.Request) -> web.StreamResponse:
    f = filters(request, _LIST_FILTERS)
    _flag(f, "dangling")  # a bad value is refused even with no volume to filter
    service = _volumes(request)

    def found() -> list[dict[str, Any]]:
        used = service.users()
        return [volume_json(v) for v in service.list() if _listed(v, f, bool(used.get(v.name)))]

    return reply({"Volumes": await asyncio.to_thread(found), "Warnings": []})


async def create(request: web.Request) -> web.StreamResponse:
    req = await read(request, VolumeCreateRequest)
    if req.cluster_volume_spec is not None:
        raise InvalidArgument("cluster volumes are not supported: Shoal has no CSI volume plugins; "
                              "create a local volume (no ClusterVolumeSpec)")
    vol = await asyncio.to_thread(_volumes(request).create, req.name, driver=req.driver,
                                  options=req.driver_opts, labels=req.labels)
    return reply(volume_json(vol), status=201)


async def inspect(request: web.Request) -> web.StreamResponse:
    return reply(volume_json(await asyncio.to_thread(_volumes(request).get, param(request, "name"))))


async def remove(request: web.Request) -> web.StreamResponse:
    await asyncio.to_thread(_volumes(request).remove, param(request, "name"),
                            force=bool_value(request, "force"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.StreamResponse:
    f = filters(request, _PRUNE_FILTERS)
    every = _flag(f, "all")
    if parse_version(API_VERSION_IN_USE.get()) < (1, 42):
        every = True  # before 1.42 prune took named volumes too
    excluded = f.get("label!", [])

    def keep(vol: Volume) -> bool:
        labels = vol.labels or {}
        if not every and ANONYMOUS_LABEL not in labels:
            return True
        if "label" in f and not label_match(labels, f["label"]):
            return True
        return any(label_match(labels, [item]) for item in excluded)

    report = await asyncio.to_thread(_volumes(request).prune, keep=keep)
    return reply({"VolumesDeleted": report.deleted, "SpaceReclaimed": report.space})


def register(router: Router) -> None:
    router.add("GET", "/volumes", list_volumes, reads_store=False)
    router.add("POST", "/volumes/create", create)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect, reads_store=False)
    router.add("DELETE", "/volumes/{name}", remove)
