"""/nodes: list with filters, inspect, update (labels, availability, role), remove."""

from __future__ import annotations

from aiohttp import web

from shoal.api.common import param, read, reply, store
from shoal.api.params import bool_value, filters, label_match, version_param
from shoal.api.render import node_json
from shoal.api.server import Router
from shoal.manager.controlapi.node import remove_node, update_node
from shoal.model.objects import Node
from shoal.model.specs import NodeSpec

__all__ = ["register"]

_FILTERS = {"id", "label", "membership", "name", "node.label", "role"}


def _matches(node: Node, f: dict[str, list[str]]) -> bool:
    if "id" in f and not any(node.id.startswith(v) for v in f["id"]):
        return False
    if "name" in f and not any(node.description.hostname.startswith(v) for v in f["name"]):
        return False
    if "role" in f and node.spec.role not in f["role"]:
        return False
    if "membership" in f and "accepted" not in f["membership"]:
        return False
    if "label" in f and not label_match(node.description.engine.labels, f["label"]):
        return False
    return "node.label" not in f or label_match(node.spec.labels, f["node.label"])


async def list_nodes(request: web.Request) -> web.StreamResponse:
    view = store(request).view()
    f = filters(request, _FILTERS)
    nodes = sorted(view.all(Node), key=lambda n: n.description.hostname)
    return reply([node_json(n) for n in nodes if _matches(n, f)])


async def inspect(request: web.Request) -> web.StreamResponse:
    view = store(request).view()
    return reply(node_json(view.resolve(Node, param(request, "id"))))


async def update(request: web.Request) -> web.StreamResponse:
    st = store(request)
    version = version_param(request, what="node version")
    spec = await read(request, NodeSpec)
    await update_node(st, param(request, "id"), version, spec)
    return reply(None)


async def remove(request: web.Request) -> web.StreamResponse:
    await remove_node(store(request), param(request, "id"), force=bool_value(request, "force"))
    return reply(None)


def register(router: Router) -> None:
    router.add("GET", "/nodes", list_nodes)
    router.add("GET", "/nodes/{id}", inspect)
    router.add("POST", "/nodes/{id}/update", update)
    router.add("DELETE", "/nodes/{id}", remove)
