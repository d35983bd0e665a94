"""/system/df (``docker system df``, docker-py's ``df()``): what this node's images and volumes
take, as dockerd answers it (moby ``api/server/router/system``: ``type`` picks the parts since
API 1.42; a part not asked for is null). Volumes carry ``UsageData`` (their size and how many
containers use them), the only place the API shows it. Shoal has no container API and no
builder: those parts are empty."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from shoal.api.common import engine, reply
from shoal.api.render import volume_json
from shoal.api.server import API_VERSION_IN_USE, Router, parse_version
from shoal.errors import InvalidArgument

__all__ = ["register"]

_TYPES = ("container", "image", "volume", "build-cache")


def _wanted(request: web.Request) -> set[str]:
    asked = request.query.getall("type", [])
    if not asked or parse_version(API_VERSION_IN_USE.get()) < (1, 42):
        return set(_TYPES)
    for kind in asked:
        if kind not in _TYPES:
            raise InvalidArgument(f"unknown object type: {kind}")
    return set(asked)


async def disk_usage(request: web.Request) -> web.StreamResponse:
    wanted = _wanted(request)
    eng = engine(request)
    out: dict[str, Any] = {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [],
                           "BuildCache": []}
    if "image" in wanted:
        images = await asyncio.to_thread(eng.images.list, {})
        out["Images"] = images
        out["LayersSize"] = sum(int(i.get("Size") or 0) for i in images)
    if "container" in wanted:
        out["Containers"] = []
    if "volume" in wanted:
        usage = await asyncio.to_thread(eng.volumes.usage)
        out["Volumes"] = [{**volume_json(vol), "UsageData": {"Size": size, "RefCount": refs}}
                          for vol, size, refs in usage]
    if "build-cache" in wanted:
        out["BuildCache"] = []
    return reply(out)


def register(router: Router) -> None:
    router.add("GET", "/system/df", disk_usage, reads_store=False)
