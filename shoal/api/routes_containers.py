"""/containers on any node: this node's containers (the runc executor's task containers) as
dockerd serves them (moby api/server/router/container): list, inspect, logs, top, stats, kill,
stop, restart, wait, resize. A node without the runc executor has no containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import web

from shoal.api.common import check_json, engine, param, reply
from shoal.api.params import bool_value, filters
from shoal.api.render_containers import LIST_FILTERS, check_filters, inspect, listed, summary
from shoal.api.server import API_VERSION_IN_USE, Router, parse_version
from shoal.api.streams import MULTIPLEXED, RAW, STDERR, STDOUT, frame
from shoal.errors import Conflict, InvalidArgument, NotFound
from shoal.exec.localnet import Sandbox
from shoal.exec.runc import attach, logfile, stats
from shoal.exec.runc.containers import Containers, parse_signal, since_param
from shoal.exec.runc.engine import ContainerEngine

__all__ = ["body_json", "register", "runtime"]

FOLLOW_POLL = 0.1
STATS_INTERVAL = 1.0  # seconds between samples of a stream, as dockerd's collector


def runtime(request: web.Request, *, missing: str = "No such container") -> ContainerEngine:
    """The node's runc executor; a node without one has no container (nor exec)."""
    rt = engine(request).container_runtime()
    if rt is None:
        raise NotFound(f"{missing}: {param(request, 'id')}")
    return rt


async def body_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    check_json(request, raw)  # moby's CheckForJSON, as every other body
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: expected an object")
    return body


def _found(request: web.Request) -> tuple[Containers, str]:
    containers = runtime(request).containers
    return containers, containers.resolve(param(request, "id"))


async def list_containers(request: web.Request) -> web.StreamResponse:
    f = filters(request, LIST_FILTERS)
    check_filters(f)
    rt = engine(request).container_runtime()
    if rt is None:
        return reply([])
    containers = rt.containers
    show_all = bool_value(request, "all")
    try:
        limit = int(request.query.get("limit", "-1") or -1)
    except ValueError:
        raise InvalidArgument("invalid limit") from None
    out = []
    for cid in containers.ids():
        try:
            record = containers.record(cid)
        except NotFound:
            continue  # removed while listed
        st = containers.state(cid)
        if not show_all and not st.running and not (limit > 0 or "status" in f or
                                                    "exited" in f):
            continue
        if listed(cid, record, st, f):
            out.append(summary(cid, record, st, _sandbox(rt, cid)))
    out.sort(key=lambda c: -int(c["Created"]))
    return reply(out[:limit] if limit > 0 else out)


def _sandbox(rt: ContainerEngine, cid: str) -> Sandbox | None:
    """A standalone container's networks as they are now (None: a task's, or none)."""
    networks = rt.standalone.networks
    return networks.sandbox(cid) if networks is not None else None


async def inspect_container(request: web.Request) -> web.StreamResponse:
    containers, cid = _found(request)
    out = inspect(cid, containers.record(cid), containers.state(cid),
                  _sandbox(runtime(request), cid))
    if bool_value(request, "size"):
        out["SizeRw"], out["SizeRootFs"] = 0, 0
    return reply(out)


async def logs(request: web.Request) -> web.StreamResponse:
    containers, cid = _found(request)
    q = request.query
    out_, err_ = bool_value(request, "stdout"), bool_value(request, "stderr")
    if not out_ and not err_:
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    record = containers.record(cid)
    if (record.get("HostConfig") or {}).get("LogConfig", {}).get("Type") == "none":
        raise InvalidArgument("configured logging driver does not support reading")
    since, until = since_param(q.get("since", "")), since_param(q.get("until", ""))
    tail_raw = q.get("tail", "all") or "all"
    try:
        tail = None if tail_raw == "all" else int(tail_raw)
    except ValueError:
        tail = None  # dockerd reads an invalid tail as "all"
    follow, stamps = bool_value(request, "follow"), bool_value(request, "timestamps")
    tty = bool((record.get("Config") or {}).get("Tty"))
    # non-TTY output is always framed; before 1.42 its type was called raw-stream
    framed = parse_version(API_VERSION_IN_USE.get()) >= (1, 42)
    response = web.StreamResponse(headers={"Content-Type": MULTIPLEXED if framed and not tty
                                           else RAW})
    await response.prepare(request)

    async def send(entry: logfile.Entry) -> None:
        data = entry.data
        if stamps:
            data = logfile.format_time(entry.time).encode() + b" " + data
        stream = STDERR if entry.stream == "stderr" else STDOUT
        await response.write(data if tty else frame(stream, data))

    path = str(containers.log_path(cid))
    follower = logfile.Follower(path)
    try:
        history = [*logfile.read_entries(path, rotated_only=True), *follower.read_new()]
        for e in logfile.select(history, since=since, until=until, stdout=out_, stderr=err_,
                                tail=tail):
            await send(e)
        while follow and not (until and time.time_ns() > until):
            done = not containers.state(cid).running
            for e in follower.read_new():
                if logfile.wanted(e, since=since, until=until, stdout=out_, stderr=err_):
                    await send(e)
            if done:
                break
            await asyncio.sleep(FOLLOW_POLL)
    except ConnectionError:
        pass
    finally:
        follower.close()
    return response


async def top(request: web.Request) -> web.StreamResponse:
    containers, cid = _found(request)
    if not containers.state(cid).running:
        raise Conflict(f"container {cid} is not running")
    cg = containers.cfg.cgroups_path(cid)
    return reply(await asyncio.to_thread(stats.top, cg, request.query.get("ps_args", "")))


async def container_stats(request: web.Request) -> web.StreamResponse:
    containers, cid = _found(request)
    stream = request.query.get("stream", "true").lower() not in ("0", "false")
    one_shot = bool_value(request, "one-shot")
    name = str(containers.record(cid).get("Name", ""))
    cg = containers.cfg.cgroups_path(cid)

    def take() -> dict[str, Any]:
        return stats.sample(cg, containers.state(cid).pid, cid=cid, name=name)

    pre = await asyncio.to_thread(take)
    if not stream:
        if one_shot:
            return reply({**pre, "preread": "0001-01-01T00:00:00Z", "precpu_stats": {}})
        await asyncio.sleep(STATS_INTERVAL)  # dockerd: two samples, for the CPU's delta
        now = await asyncio.to_thread(take)
        return reply({**now, "preread": pre["read"], "precpu_stats": pre["cpu_stats"]})
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    previous: dict[str, Any] = {"read": "0001-01-01T00:00:00Z", "cpu_stats": {}}
    sample = pre
    try:
        while True:
            body = {**sample, "preread": previous["read"], "precpu_stats": previous["cpu_stats"]}
            await response.write(json.dumps(body).encode() + b"\n")
            if not containers.state(cid).running:
                break
            await asyncio.sleep(STATS_INTERVAL)
            previous, sample = sample, await asyncio.to_thread(take)
    except (ConnectionError, NotFound):
        pass
    return response


async def kill(request: web.Request) -> web.StreamResponse:
    containers, cid = _found(request)
    runtime(request).standalone.mark_stopped(cid)  # no restart policy after a kill (dockerd)
    await containers.kill(cid, parse_signal(request.query.get("signal")))
    return web.Response(status=204)


def _timeout(request: web.Request) -> int | None:
    raw = request.query.get("t", "")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f"invalid value for t: {raw!r}") from None


async def stop(request: web.Request) -> web.StreamResponse:
    _, cid = _found(request)
    sig = request.query.get("signal")
    stopped = await runtime(request).standalone.stop(cid, _timeout(request),
                                                     parse_signal(sig) if sig else None)
    return web.Response(status=204 if stopped else 304)


async def restart(request: web.Request) -> web.StreamResponse:
    containers, cid = _found(request)
    labels = (containers.record(cid).get("Config") or {}).get("Labels") or {}
    sig = request.query.get("signal")
    standalone = runtime(request).standalone
    if standalone.is_standalone(cid):
        await standalone.restart(cid, _timeout(request), parse_signal(sig) if sig else None)
        return web.Response(status=204)
    if "com.docker.swarm.task" in labels:
        # its task ends with it: the swarm starts a new task (a new container), as it would
        # after a stop
        await containers.stop(cid, _timeout(request), parse_signal(sig) if sig else None)
        return web.Response(status=204)
    raise NotFound(f"No such container: {param(request, 'id')}")


async def wait(request: web.Request) -> web.StreamResponse:
    containers, cid = _found(request)
    condition = request.query.get("condition", "") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    # the headers at once, as dockerd: the CLI's ContainerWait returns only once it has them,
    # and it calls it before starting the container (docker run)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    error: dict[str, str] | None = None
    try:
        code = await containers.wait(cid, condition)
    except Exception as exc:  # noqa: BLE001 - the status is sent already: the error goes in the body
        code, error = -1, {"Message": str(exc)}
    with contextlib.suppress(ConnectionError):  # the client went away (its run ended)
        await response.write(json.dumps({"StatusCode": code, "Error": error}).encode() + b"\n")
    return response


async def resize(request: web.Request) -> web.StreamResponse:
    containers, cid = _found(request)
    if not containers.state(cid).running:
        raise Conflict(f"Container {cid} is not running")
    try:
        h, w = int(request.query.get("h", "0")), int(request.query.get("w", "0"))
    except ValueError:
        raise InvalidArgument("invalid resize parameters") from None
    if (containers.record(cid).get("Config") or {}).get("Tty"):
        await asyncio.to_thread(attach.send_frame_quiet, cid, attach.RESIZE, f"{h} {w}".encode())
    return web.Response(status=200)


def register(router: Router) -> None:
    router.add("GET", "/containers/json", list_containers, reads_store=False)
    router.add("GET", "/containers/{id}/json", inspect_container, reads_store=False)
    router.add("GET", "/containers/{id}/logs", logs, reads_store=False)
    router.add("GET", "/containers/{id}/top", top, reads_store=False)
    router.add("GET", "/containers/{id}/stats", container_stats, reads_store=False)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("POST", "/containers/{id}/resize", resize)
