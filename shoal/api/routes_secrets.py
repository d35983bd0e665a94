"""/secrets and /configs: create, list, inspect, update (labels only), remove. Managers only.

A secret is never shown with its data (``render.secret_json``); a config is."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shoal.api.common import engine, param, read, reply, store
from shoal.api.params import Filters, filters
from shoal.api.render import config_json, secret_json
from shoal.api.server import Router
from shoal.errors import InvalidArgument
from shoal.manager.controlapi.config import create_config, remove_config, update_config
from shoal.manager.controlapi.secret import create_secret, remove_secret, update_secret
from shoal.model.objects import Config, Secret
from shoal.model.specs import ConfigSpec, SecretSpec

__all__ = ["register"]

# moby daemon/cluster/filters.go: configs take no "names", although the swagger lists it.
_SECRET_FILTERS = {"id", "label", "name", "names"}
_CONFIG_FILTERS = {"id", "label", "name"}


def _matches(obj: Secret | Config, f: Filters) -> bool:
    """swarmkit's List: exact names, name prefixes and ID prefixes are ORed; labels ANDed,
    ``k`` or ``k=`` meaning the key is present."""
    name, oid = obj.spec.name, obj.id
    by_name_or_id = any(k in f for k in ("names", "name", "id"))
    if by_name_or_id and not (name in f.get("names", [])
                              or any(name.startswith(p) for p in f.get("name", []))
                              or any(oid.startswith(p) for p in f.get("id", []))):
        return False
    labels = obj.spec.labels or {}
    for item in f.get("label", []):
        key, _, value = item.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    return True


def _version(request: web.Request, what: str) -> int:
    raw = request.query.get("version", "")
    if not raw.isdigit():  # strconv.ParseUint
        raise InvalidArgument(f"invalid {what} version")
    return int(raw)


async def list_secrets(request: web.Request) -> web.StreamResponse:
    f = filters(request, _SECRET_FILTERS)
    found = sorted(store(request).view().all(Secret), key=lambda s: s.spec.name)
    return reply([secret_json(s) for s in found if _matches(s, f)])


async def create_s(request: web.Request) -> web.StreamResponse:
    st = store(request)
    secret = await create_secret(st, await read(request, SecretSpec), keys=engine(request).cluster_keys())
    return reply({"ID": secret.id}, status=201)


async def inspect_s(request: web.Request) -> web.StreamResponse:
    secret = store(request).view().resolve(Secret, param(request, "id"), what="secret")
    return reply(secret_json(secret))


async def update_s(request: web.Request) -> web.StreamResponse:
    st = store(request)
    spec = await read(request, SecretSpec)
    await update_secret(st, param(request, "id"), _version(request, "secret"), spec,
                        keys=engine(request).cluster_keys())
    return reply(None)


async def remove_s(request: web.Request) -> web.StreamResponse:
    await remove_secret(store(request), param(request, "id"))
    return web.Response(status=204)


async def list_configs(request: web.Request) -> web.StreamResponse:
    f = filters(request, _CONFIG_FILTERS)
    found = sorted(store(request).view().all(Config), key=lambda c: c.spec.name)
    return reply([config_json(c) for c in found if _matches(c, f)])


async def create_c(request: web.Request) -> web.StreamResponse:
    st = store(request)
    config = await create_config(st, await read(request, ConfigSpec))
    return reply({"ID": config.id}, status=201)


async def inspect_c(request: web.Request) -> web.StreamResponse:
    config = store(request).view().resolve(Config, param(request, "id"), what="config")
    return reply(config_json(config))


async def update_c(request: web.Request) -> web.StreamResponse:
    st = store(request)
    spec = await read(request, ConfigSpec)
    await update_config(st, param(request, "id"), _version(request, "config"), spec)
    return reply(None)


async def remove_c(request: web.Request) -> web.StreamResponse:
    await remove_config(store(request), param(request, "id"))
    return web.Response(status=204)


def register(router: Router) -> None:
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/secrets", list_secrets), ("POST", "/secrets/create", create_s),
        ("GET", "/secrets/{id}", inspect_s), ("POST", "/secrets/{id}/update", update_s),
        ("DELETE", "/secrets/{id}", remove_s),
        ("GET", "/configs", list_configs), ("POST", "/configs/create", create_c),
        ("GET", "/configs/{id}", inspect_c), ("POST", "/configs/{id}/update", update_c),
        ("DELETE", "/configs/{id}", remove_c),
    ]
    for method, path, handler in routes:
        router.add(method, path, handler)
