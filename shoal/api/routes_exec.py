"""``docker exec``: /containers/{id}/exec, /exec/{id}/start (the hijacked stream), /exec/{id}/resize
and /exec/{id}/json, as dockerd serves them (moby api/server/router/container/exec.go). The
processes are the runc executor's (shoal.exec.runc.execs)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from aiohttp import web

from shoal.api.common import param, reply
from shoal.api.routes_containers import body_json, runtime
from shoal.api.server import Router
from shoal.api.streams import MULTIPLEXED, RAW, STDERR, STDOUT, frame, hijack
from shoal.errors import InvalidArgument
from shoal.exec.runc.execs import ExecConfig, ExecInstance, Execs

__all__ = ["register"]

_background: set[asyncio.Task[Any]] = set()


def _execs(request: web.Request) -> Execs:
    return runtime(request, missing="No such exec instance").execs


def _console(value: Any) -> tuple[int, int] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        h, w = value
        return (h, w) if h > 0 and w > 0 else None
    return None


async def create(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    cid = rt.containers.resolve(param(request, "id"))
    body = await body_json(request)
    cmd = body.get("Cmd") or []
    if isinstance(cmd, str):
        cmd = [cmd]
    config = ExecConfig(
        cmd=[str(c) for c in cmd], tty=bool(body.get("Tty")),
        attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout")),
        attach_stderr=bool(body.get("AttachStderr")),
        env=[str(e) for e in body.get("Env") or []], user=str(body.get("User") or ""),
        working_dir=str(body.get("WorkingDir") or ""), privileged=bool(body.get("Privileged")),
        console_size=_console(body.get("ConsoleSize")))
    inst = rt.execs.create(cid, config)
    return reply({"Id": inst.id}, status=201)


async def inspect(request: web.Request) -> web.StreamResponse:
    return reply(_execs(request).get(param(request, "id")).inspect())


async def resize(request: web.Request) -> web.StreamResponse:
    inst = _execs(request).get(param(request, "id"))
    try:
        h, w = int(request.query.get("h", "0")), int(request.query.get("w", "0"))
    except ValueError:
        raise InvalidArgument("invalid resize parameters") from None
    _execs(request).resize(inst, h, w)
    return web.Response(status=200)


async def _pipe(reader: asyncio.StreamReader | None, out: Any, stream: int, tty: bool) -> None:
    if reader is None:
        return
    while chunk := await reader.read(65536):
        out.write(chunk if tty else frame(stream, chunk))
        await out.drain()


async def _pty_out(master: int, out: Any) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[None] = asyncio.Queue()
    loop.add_reader(master, ready.put_nowait, None)
    try:
        while True:
            await ready.get()
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                continue
            except OSError:  # EIO: runc and the process closed the slave
                return
            if not chunk:
                return
            out.write(chunk)
            await out.drain()
    finally:
        loop.remove_reader(master)


async def _stdin(conn: Any, inst: ExecInstance) -> None:
    """The client's bytes to the process; its EOF closes the process's stdin."""
    proc = inst.proc
    assert proc is not None
    while True:
        data = await conn.read()
        if inst.master >= 0:
            if not data:
                if inst.config.tty:
                    continue  # a terminal ends when its process does
                return
            with contextlib.suppress(OSError):
                os.write(inst.master, data)
            continue
        if proc.stdin is None:
            return
        if not data:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            return
        with contextlib.suppress(OSError, ConnectionError):
            proc.stdin.write(data)
            await proc.stdin.drain()


async def start(request: web.Request) -> web.StreamResponse:
    execs = _execs(request)
    inst = execs.get(param(request, "id"))
    body = await body_json(request)
    await execs.start(inst)
    proc = inst.proc
    assert proc is not None
    if body.get("Detach"):
        task = asyncio.create_task(execs.finish(inst), name=f"exec-{inst.id[:12]}")
        _background.add(task)
        task.add_done_callback(_background.discard)
        return web.Response(status=200)
    tty = inst.config.tty
    conn = await hijack(request, RAW if tty else MULTIPLEXED)
    feeder = asyncio.create_task(_stdin(conn, inst)) if inst.config.attach_stdin else None
    try:
        if tty:
            await _pty_out(inst.master, conn)
        else:
            await asyncio.gather(_pipe(proc.stdout, conn, STDOUT, False),
                                 _pipe(proc.stderr, conn, STDERR, False))
        await execs.finish(inst)
        await conn.drain()
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        if inst.exit_code is None:  # the client went away: the process goes on, reaped later
            task = asyncio.create_task(execs.finish(inst), name=f"exec-{inst.id[:12]}")
            _background.add(task)
            task.add_done_callback(_background.discard)
        conn.close()
    return conn.response  # prepared already: nothing more is sent


def register(router: Router) -> None:
    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect, reads_store=False)
