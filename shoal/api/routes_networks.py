"""/networks: the engine's network API for swarm-scoped overlay networks plus the local ones."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shoal.api.common import engine, param, read, reply, store
from shoal.api.params import filters, label_match
from shoal.api.render import local_networks, network_json
from shoal.api.server import Router
from shoal.errors import NotFound
from shoal.manager.controlapi.network import create_network, remove_network
from shoal.model.objects import Network
from shoal.model.specs import NetworkSpec

__all__ = ["register"]

_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}


def _all(request: web.Request) -> list[dict[str, Any]]:
    out = local_networks()
    st = engine(request).store
    if st is not None:
        out += [network_json(n) for n in sorted(st.view().all(Network), key=lambda n: n.spec.name)]
    return out


def _matches(net: dict[str, Any], f: dict[str, list[str]]) -> bool:
    if "id" in f and not any(net["Id"].startswith(v) for v in f["id"]):
        return False
    if "name" in f and not any(v in net["Name"] for v in f["name"]):
        return False
    if "driver" in f and net["Driver"] not in f["driver"]:
        return False
    if "scope" in f and net["Scope"] not in f["scope"]:
        return False
    if "type" in f and not any((v == "builtin") == (net["Scope"] == "local") for v in f["type"]):
        return False
    return "label" not in f or label_match(net["Labels"], f["label"])


async def list_networks(request: web.Request) -> web.StreamResponse:
    f = filters(request, _FILTERS)
    return reply([n for n in _all(request) if _matches(n, f)])


async def inspect(request: web.Request) -> web.StreamResponse:
    ref = param(request, "id")
    scope = request.query.get("scope", "")
    st = engine(request).store
    if st is not None and scope in ("", "swarm"):
        try:
            return reply(network_json(st.view().resolve(Network, ref, what="network")))
        except NotFound:
            if scope == "swarm":
                raise
    if scope in ("", "local"):
        for net in local_networks():
            if ref in (net["Name"], net["Id"]) or net["Id"].startswith(ref):
                return reply(net)
    raise NotFound(f"network {ref} not found")


async def create(request: web.Request) -> web.StreamResponse:
    spec = await read(request, NetworkSpec)
    net = await create_network(store(request), spec)
    return reply({"Id": net.id, "Warning": ""}, status=201)


async def remove(request: web.Request) -> web.StreamResponse:
    await remove_network(store(request), param(request, "id"))
    return web.Response(status=204)


def register(router: Router) -> None:
    router.add("GET", "/networks", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
