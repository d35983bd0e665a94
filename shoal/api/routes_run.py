"""``docker run`` and what follows on any node: /containers/create, /start, /attach, DELETE,
/prune, and /networks/{id}/connect|disconnect (they need the container registry), as dockerd
serves them (moby api/server/router/container). The containers are shoal.exec.runc's
standalone ones; the image must be on the node (the CLI pulls it on a 404 "No such image")."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from shoal.api.common import engine, param, reply
from shoal.api.params import bool_value, filters, label_match
from shoal.api.routes_containers import body_json, runtime
from shoal.api.server import Router
from shoal.api.streams import MULTIPLEXED, RAW, STDERR, STDOUT, frame, hijack
from shoal.errors import InvalidArgument, NotFound
from shoal.exec.localnet import EndpointRequest, LocalNetworks
from shoal.exec.runc import logfile
from shoal.exec.runc.attach import send_stdin
from shoal.exec.runc.engine import ContainerEngine

__all__ = ["register"]

FOLLOW_POLL = 0.05


async def create(request: web.Request) -> web.StreamResponse:
    rt = runtime(request, missing="No such container")
    body = await body_json(request)
    image = str(body.get("Image") or "")
    if image:
        await asyncio.to_thread(engine(request).images.inspect, image)  # 404 No such image
    name = request.query.get("name", "")
    cid = await rt.standalone.create(body, name, body.get("NetworkingConfig"))
    return reply({"Id": cid, "Warnings": []}, status=201)


async def start(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    cid = rt.containers.resolve(param(request, "id"))
    started = await rt.standalone.start(cid)
    return web.Response(status=204 if started else 304)


async def remove(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    cid = rt.containers.resolve(param(request, "id"))
    if bool_value(request, "link"):
        raise InvalidArgument("Conflict, cannot remove the default link name of the container")
    await rt.standalone.remove(cid, force=bool_value(request, "force"))
    rt.execs.forget(cid)
    return web.Response(status=204)


async def prune(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    f = filters(request, {"label", "label!", "until"})
    deleted = []
    for cid in rt.containers.ids():
        if not rt.standalone.is_standalone(cid) or rt.containers.state(cid).running:
            continue
        labels = (rt.containers.record(cid).get("Config") or {}).get("Labels") or {}
        if "label" in f and not label_match(labels, f["label"]):
            continue
        if "label!" in f and any(label_match(labels, [x]) for x in f["label!"]):
            continue
        await rt.standalone.remove(cid, force=False)
        deleted.append(cid)
    return reply({"ContainersDeleted": deleted or None, "SpaceReclaimed": 0})


async def _stdin(conn: Any, rt: Any, cid: str, once: bool) -> None:
    """The client's bytes to the container's stdin, once it runs (docker run attaches before
    it starts: what comes first waits in the connection's queue)."""
    containers = rt.containers
    while containers.state(cid).shim is None:
        if not (containers.cfg.containers / cid).is_dir():
            return
        await asyncio.sleep(FOLLOW_POLL)
    while True:
        data = await conn.read()
        await asyncio.to_thread(send_stdin, cid, data)
        if not data:
            return


async def attach(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    containers = rt.containers
    cid = containers.resolve(param(request, "id"))
    record = containers.record(cid)
    config = record.get("Config") or {}
    tty = bool(config.get("Tty"))
    want_out, want_err = bool_value(request, "stdout"), bool_value(request, "stderr")
    want_in = bool_value(request, "stdin") and bool(config.get("OpenStdin"))
    logs, stream = bool_value(request, "logs"), bool_value(request, "stream")
    conn = await hijack(request, RAW if tty else MULTIPLEXED)
    containers.publish(cid, "attach")
    path = str(containers.log_path(cid))
    follower = logfile.Follower(path)
    feeder = (asyncio.create_task(_stdin(conn, rt, cid, bool(config.get("StdinOnce"))))
              if want_in and stream else None)

    def send(entries: list[logfile.Entry]) -> None:
        for e in entries:
            if not logfile.wanted(e, stdout=want_out, stderr=want_err):
                continue
            conn.write(e.data if tty else frame(STDERR if e.stream == "stderr" else STDOUT,
                                                e.data))

    try:
        history = [*logfile.read_entries(path, rotated_only=True), *follower.read_new()]
        if logs:
            send(history)
        if stream:
            # until it has run (attached before its start) and exited, or is removed
            while (containers.cfg.containers / cid).is_dir() and not conn.lost.is_set():
                st = containers.state(cid)
                done = st.shim is not None and not st.running
                send(follower.read_new())
                await conn.drain()
                if done:
                    break
                await asyncio.sleep(FOLLOW_POLL)
        send(follower.read_new())
        await conn.drain()
    except NotFound:
        pass
    finally:
        follower.close()
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        conn.close()
    return conn.response


async def rename(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    cid = rt.containers.resolve(param(request, "id"))
    await rt.standalone.rename(cid, request.query.get("name", ""))
    return web.Response(status=204)


async def _network_call(request: web.Request
                        ) -> tuple[ContainerEngine, dict[str, Any], str, LocalNetworks, str]:
    """What connect and disconnect share: the runtime, the body, the container, the node's
    networks (a node without any refuses) and the network named in the path."""
    rt = runtime(request)
    body = await body_json(request)
    cid = rt.containers.resolve(str(body.get("Container") or ""))
    networks = rt.standalone.networks
    network = param(request, "id")
    if networks is None:
        raise InvalidArgument(f'network "{network}": this node has no local networks')
    return rt, body, cid, networks, network


async def connect(request: web.Request) -> web.StreamResponse:
    rt, body, cid, networks, network = await _network_call(request)
    ep = body.get("EndpointConfig") or {}
    ipam = ep.get("IPAMConfig") or {}
    hostname = str((rt.containers.record(cid).get("Config") or {}).get("Hostname") or cid[:12])
    await networks.connect(cid, EndpointRequest(network, tuple(ep.get("Aliases") or ()),
                                                str(ipam.get("IPv4Address") or "")),
                           hostname=hostname)
    rt.containers.publish(cid, "connect")
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.StreamResponse:
    _rt, body, cid, networks, network = await _network_call(request)
    await networks.disconnect(cid, network, force=bool(body.get("Force")))
    return web.Response(status=200)


def register(router: Router) -> None:
    router.add("POST", "/containers/create", create)
    router.add("POST", "/containers/prune", prune)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/attach", attach)
    router.add("DELETE", "/containers/{id}", remove)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)
