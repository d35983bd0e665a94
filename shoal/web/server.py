"""The web view's app and listener: one page (``/``), its script and style, and a read-only
JSON and server-sent-events API under ``/api/``.

Read-only: GET and HEAD only. The files are read from the package once, at start. Every answer
forbids framing and sniffing and allows scripts from this origin only. A loopback listener
answers only requests whose Host is an IP address or ``localhost``: a web page elsewhere that
renames itself to 127.0.0.1 (DNS rebinding) cannot read the swarm through the browser. Off
loopback the listener needs TLS (the API's certificate; with ``--tlsverify`` the browser must
present a client certificate as the docker CLI does): ``parse_web_addr`` refuses it otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable
from importlib import resources

import msgspec
from aiohttp import web
from aiohttp.typedefs import Middleware

from shoal.errors import InvalidArgument, NotFound, ShoalError, Unavailable
from shoal.model.objects import Task
from shoal.web.logs import task_logs
from shoal.web.snapshot import snapshot, task_detail
from shoal.web.source import WebSource, unavailable_reason
from shoal.web.sse import STOPPING
from shoal.web.stream import SOURCE, state_events

__all__ = ["build_web_app", "parse_web_addr", "serve_web"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FILES = {"/": ("index.html", "text/html"), "/static/app.js": ("app.js", "text/javascript"),
          "/static/app.css": ("app.css", "text/css")}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
}
_encoder = msgspec.json.Encoder()


def parse_web_addr(text: str, *, tls: bool) -> tuple[str, int]:
    """``--web-addr IP:PORT`` ([IPv6]:PORT): (ip, port); InvalidArgument with one line if it
    is not one, or if it is off loopback without TLS."""
    host, sep, port = text.rpartition(":")
    ip = host.strip("[]")
    try:
        address = ipaddress.ip_address(ip)
        number = int(port)
    except ValueError:
        raise InvalidArgument(f"--web-addr {text!r}: use IP:PORT (127.0.0.1:8080)") from None
    if not sep or not 0 <= number <= 65535:
        raise InvalidArgument(f"--web-addr {text!r}: use IP:PORT (127.0.0.1:8080)")
    if not tls and not address.is_loopback:
        raise InvalidArgument(f"--web-addr {text}: refusing to serve the web view off loopback "
                              "without TLS: use a loopback address, or --tls/--tlsverify with "
                              "--tlscert and --tlskey")
    return ip, number


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_encoder.encode(data), content_type="application/json")


def _source(request: web.Request) -> WebSource:
    return request.app[SOURCE]


async def _state(request: web.Request) -> web.StreamResponse:
    source = _source(request)
    store = source.store
    if store is None:
        raise Unavailable(unavailable_reason(source))
    return _json(snapshot(store.view(), store.revision))


async def _task(request: web.Request) -> web.StreamResponse:
    source = _source(request)
    store = source.store
    if store is None:
        raise Unavailable(unavailable_reason(source))
    view = store.view()
    task = view.get(Task, request.match_info["id"])
    if task is None:
        raise NotFound(f"task {request.match_info['id']} not found")
    return _json(task_detail(task, view))


def _loopback_host(host: str) -> bool:
    """Whether a Host header names this machine by address (or as localhost)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _middleware(loopback: bool) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            response: web.StreamResponse = _json({"message": "the web view is read-only"}, 405)
            response.headers["Allow"] = "GET, HEAD"
        elif loopback and not _loopback_host(request.host):
            response = _json({"message": "use the web view by its IP address"}, 421)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = _json({"message": exc.reason}, exc.status)
            except NotFound as exc:
                response = _json({"message": exc.message}, 404)
            except Unavailable as exc:
                response = _json({"message": exc.message}, 503)
            except ShoalError as exc:
                response = _json({"message": exc.message}, 500)
        if not response.prepared:
            response.headers.update(_HEADERS)
        return response

    return guard


def _static() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("shoal.web") / "static"
    return {path: ((folder / name).read_bytes(), ctype) for path, (name, ctype) in _FILES.items()}


def build_web_app(source: WebSource, *, loopback: bool = True) -> web.Application:
    files = _static()

    async def static(request: web.Request) -> web.StreamResponse:
        body, ctype = files[request.path]
        response = web.Response(body=body, content_type=ctype, charset="utf-8")
        response.headers["Cache-Control"] = "no-cache"  # small; a new shoald's files at once
        response.enable_compression()
        return response

    app = web.Application(middlewares=[_middleware(loopback)])
    app[SOURCE] = source
    app[STOPPING] = asyncio.Event()

    async def stopping(app: web.Application) -> None:
        app[STOPPING].set()  # the open streams end before aiohttp waits for their handlers

    app.on_shutdown.append(stopping)
    for path in files:
        app.router.add_get(path, static)
    app.router.add_get("/api/state", _state)
    app.router.add_get("/api/events", state_events)
    app.router.add_get("/api/tasks/{id}", _task)
    app.router.add_get("/api/tasks/{id}/logs", task_logs)
    return app


async def serve_web(source: WebSource, ip: str, port: int, *,
                    ssl_context: ssl.SSLContext | None) -> web.AppRunner:
    """Listen on ``ip:port`` (from ``parse_web_addr``) on the running loop."""
    loopback = ipaddress.ip_address(ip).is_loopback
    runner = web.AppRunner(build_web_app(source, loopback=loopback), access_log=None,
                           handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, ip, port, ssl_context=ssl_context).start()
    except OSError as exc:
        await runner.cleanup()
        raise InvalidArgument(f"--web-addr {ip}:{port}: {exc.strerror or exc}") from exc
    except BaseException:
        await runner.cleanup()
        raise
    scheme = "https" if ssl_context is not None else "http"
    shown = f"[{ip}]" if ":" in ip else ip
    log.info("web view on %s://%s:%d/", scheme, shown, port)
    return runner
