"""Helpers every handler uses: the manager's store (or Docker's 503), JSON in and out."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web

from shoal.api.engine import ENGINE, Engine
from shoal.api.server import PATH_PARAMS
from shoal.errors import InvalidArgument, Unavailable
from shoal.model.codec import decode, encode
from shoal.pki.unlockkey import LOCKED
from shoal.store.store import NO_LEADER, Store

__all__ = ["NOT_MANAGER", "WORKER", "check_json", "engine", "param", "read", "reply", "store"]

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


def check_json(request: web.Request, body: bytes) -> None:
    """moby's CheckForJSON: a body (or a Content-Type) must say application/json."""
    ct = request.headers.get("Content-Type", "")
    if not ct and not body:
        return
    media = ct.partition(";")[0].strip().lower()
    if not media:
        raise InvalidArgument(f"malformed Content-Type header ({ct}): mime: no media type")
    if media != "application/json":
        raise InvalidArgument(f"unsupported Content-Type header ({ct}): must be 'application/json'")


async def read(request: web.Request, type_: type[T]) -> T:
    """moby's ReadJSON: the Content-Type checked, then the body decoded as Go's types would
    take it (``codec.decode``); no body is the zero value."""
    body = await request.read()
    check_json(request, body)
    return decode(body or b"{}", type_)
