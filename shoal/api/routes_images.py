"""/images: pull, import, load, list, inspect, tag and remove, as dockerd serves them to the
docker CLI 28 and docker-py; and ``/distribution/{name}/json`` (the registry's descriptor, which
``service create`` pins).

Streaming answers (pull, import, load) are JSON lines. A failure before the first line is an
ordinary error answer (404 for a missing tag, 400 for a bad archive); once the 200 has started,
it is a last line ``{"errorDetail": {"message": M}, "error": M}``, as dockerd writes it.
Uploaded bodies (archives, root filesystems) go to a temporary file under the image root,
never whole into memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any

from aiohttp import web

from shoal.api.common import engine, param, reply
from shoal.api.errors import json_error
from shoal.api.params import bool_value, filters
from shoal.api.server import Router
from shoal.errors import InvalidArgument, NotFound, PermissionDenied, ShoalError, Unavailable
from shoal.image.reference import parse
from shoal.image.service import ImageService

__all__ = ["register"]

_AUTH = "X-Registry-Auth"


def _images(request: web.Request) -> ImageService:
    return engine(request).images


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


async def _start(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    return response


def _error_line(exc: BaseException) -> bytes:
    message = exc.message if isinstance(exc, ShoalError) else f"internal error: {exc}"
    return _line({"errorDetail": {"message": message}, "error": message})


@contextlib.asynccontextmanager
async def _body_file(request: web.Request, service: ImageService) -> AsyncIterator[IO[bytes]]:
    """The request body, streamed to a temporary file under the image root."""
    tmp_dir = service.root / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=tmp_dir) as out:
        async for chunk in request.content.iter_chunked(1 << 20):
            out.write(chunk)
        out.seek(0)
        yield out


def _pull_name(request: web.Request) -> str:
    image, tag = request.query.get("fromImage", ""), request.query.get("tag", "")
    if tag:
        image += f"@{tag}" if tag.startswith("sha256:") else f":{tag}"
    if not image:
        raise InvalidArgument("fromImage or fromSrc is required")
    parse(image)  # a bad name is a 400 before anything starts
    return image


async def _pull(request: web.Request) -> web.StreamResponse:
    service = _images(request)
    name = _pull_name(request)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(service.pull(name, registry_auth=request.headers.get(_AUTH, ""),
                                              progress=queue.put_nowait))
    response: web.StreamResponse | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
            else:
                if response is None:
                    response = await _start(request)
                await response.write(_line(getter.result()))
                continue
            while not queue.empty():
                if response is None:
                    response = await _start(request)
                await response.write(_line(queue.get_nowait()))
            break
        exc = task.exception()
        if exc is not None:
            if response is None:
                raise exc
            await response.write(_error_line(exc))
        if response is None:
            response = await _start(request)
        await response.write_eof()
        return response
    finally:
        if not task.done():
            task.cancel()  # the client went away; a shared pull goes on for its other callers
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _import(request: web.Request) -> web.StreamResponse:
    service = _images(request)
    source = request.query.get("fromSrc", "")
    if source != "-":
        raise InvalidArgument(f"importing from a URL is not supported (fromSrc={source!r}); send the "
                              "archive as the request body (fromSrc=-)")
    repo, tag = request.query.get("repo", ""), request.query.get("tag", "")
    name = f"{repo}:{tag}" if repo and tag else repo
    if repo:
        parse(name)
    changes = request.query.getall("changes", [])
    message = request.query.get("message", "")
    async with _body_file(request, service) as body:
        ident = await asyncio.to_thread(service.import_rootfs, body, name, changes, message)
    response = await _start(request)
    await response.write(_line({"status": ident}))
    await response.write_eof()
    return response


async def create(request: web.Request) -> web.StreamResponse:
    if "fromSrc" in request.query:
        return await _import(request)
    return await _pull(request)


async def load(request: web.Request) -> web.StreamResponse:
    service = _images(request)
    async with _body_file(request, service) as body:
        lines = await asyncio.to_thread(service.load, body)
    response = await _start(request)
    for text in lines:
        await response.write(_line({"stream": text + "\n"}))
    await response.write_eof()
    return response


async def list_images(request: web.Request) -> web.StreamResponse:
    wanted = filters(request, {"reference", "dangling", "label", "before", "since", "until"})
    for key in ("before", "since", "until"):
        if key in wanted:
            raise InvalidArgument(f"filter '{key}' is not supported")
    legacy = request.query.get("filter", "")
    if legacy:  # docker-py's name= before API 1.25
        wanted.setdefault("reference", []).append(legacy)
    return reply(_images(request).list(wanted))


async def inspect(request: web.Request) -> web.StreamResponse:
    return reply(_images(request).inspect(param(request, "name")))


async def tag(request: web.Request) -> web.StreamResponse:
    repo, tag_ = request.query.get("repo", ""), request.query.get("tag", "")
    if not repo:
        raise InvalidArgument("repository name must have at least one component")
    _images(request).tag(param(request, "name"), f"{repo}:{tag_}" if tag_ else repo)
    return web.Response(status=201)


async def remove(request: web.Request) -> web.StreamResponse:
    name = param(request, "name")
    answer = await asyncio.to_thread(_images(request).remove, name, bool_value(request, "force"))
    return reply(answer)


async def distribution(request: web.Request) -> web.StreamResponse:
    """The registry's manifest descriptor. A registry that refuses: 401 with its reason; a name
    it does not have: 404. A registry that cannot be reached at all (no network, no such
    host): the empty descriptor, which the CLI takes as "do not pin" without a warning
    (engine-api.md 6.2), so swarms without registry access behave as before."""
    name = param(request, "name")
    try:
        return reply(await _images(request).distribution(name, request.headers.get(_AUTH, "")))
    except PermissionDenied as exc:
        return json_error(401, exc.message)
    except NotFound as exc:
        return json_error(404, exc.message)
    except Unavailable:
        return reply({"Descriptor": {"mediaType": "", "digest": "", "size": 0}, "Platforms": None})


def register(router: Router) -> None:
    router.add("POST", "/images/create", create)
    router.add("POST", "/images/load", load)
    router.add("GET", "/images/json", list_images, reads_store=False)
    router.add("GET", "/images/{name*}/json", inspect, reads_store=False)
    router.add("POST", "/images/{name*}/tag", tag)
    router.add("DELETE", "/images/{name*}", remove)
    router.add("GET", "/distribution/{name*}/json", distribution, reads_store=False)

