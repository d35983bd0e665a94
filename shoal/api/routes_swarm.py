"""/swarm: init, join, leave, inspect, update, unlock key."""

from __future__ import annotations

from aiohttp import web

from shoal.api.common import engine, read, reply, store
from shoal.api.params import bool_value, parse_bool, version_param
from shoal.api.render import swarm_json
from shoal.api.server import Router
from shoal.errors import Unavailable
from shoal.manager.controlapi.cluster import update_cluster
from shoal.model.requests import InitRequest, JoinRequest
from shoal.model.specs import ClusterSpec

__all__ = ["register"]


async def init(request: web.Request) -> web.StreamResponse:
    req = await read(request, InitRequest)
    node_id = await engine(request).init(req)
    return reply(node_id)


async def join(request: web.Request) -> web.StreamResponse:
    req = await read(request, JoinRequest)
    await engine(request).join(req)
    return reply(None)


async def leave(request: web.Request) -> web.StreamResponse:
    await engine(request).leave(bool_value(request, "force"))
    return reply(None)


async def inspect(request: web.Request) -> web.StreamResponse:
    cluster = store(request).view().cluster()
    if cluster is None:
        raise Unavailable("This node is not a swarm manager.")
    return reply(swarm_json(cluster))


async def update(request: web.Request) -> web.StreamResponse:
    st = store(request)
    version = version_param(request, what="swarm version")
    spec = await read(request, ClusterSpec)
    await update_cluster(
        st, version, spec,
        rotate_worker=parse_bool(request, "rotateWorkerToken"),
        rotate_manager=parse_bool(request, "rotateManagerToken"),
        keys=engine(request).cluster_keys(),
    )
    return reply(None)


async def unlockkey(request: web.Request) -> web.StreamResponse:
    store(request)
    return reply({"UnlockKey": ""})


def register(router: Router) -> None:
    router.add("POST", "/swarm/init", init)
    router.add("POST", "/swarm/join", join)
    router.add("POST", "/swarm/leave", leave)
    router.add("GET", "/swarm", inspect)
    router.add("POST", "/swarm/update", update)
    router.add("GET", "/swarm/unlockkey", unlockkey)
