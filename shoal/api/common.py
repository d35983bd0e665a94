"""Helpers every handler uses: the manager's store (or Docker's 503), JSON in and out."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web

from shoal.api.engine import ENGINE, Engine
from shoal.api.server import PATH_PARAMS
from shoal.errors import Unavailable
from shoal.model.codec import decode, encode
from shoal.pki.unlockkey import LOCKED
from shoal.store.store import NO_LEADER, Store

__all__ = ["NOT_MANAGER", "WORKER", "engine", "param", "read", "reply", "store"]

T = TypeVar("T")

NOT_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
    "this node to swarm and try again."
)
WORKER = (
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. "
    "Please run this command on a manager node or promote the current node to a manager."
)


def engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


def store(request: web.Request) -> Store:
    eng = engine(request)
    st = eng.store
    if st is None:
        state = eng.swarm_state()
        if state.local_node_state == "locked":
            raise Unavailable(LOCKED)
        if state.local_node_state == "active" and state.role == "manager":
            raise Unavailable(state.error or NO_LEADER)
        raise Unavailable(WORKER if state.local_node_state == "active" else NOT_MANAGER)
    return st


def param(request: web.Request, name: str) -> str:
    return PATH_PARAMS.get()[name]


def reply(data: Any, status: int = 200) -> web.Response:
    if data is None:
        return web.Response(status=status)
    return web.Response(status=status, body=encode(data), content_type="application/json")


async def read(request: web.Request, type_: type[T]) -> T:
    body = await request.read()
    return decode(body or b"{}", type_)
