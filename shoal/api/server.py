"""The Docker Engine API server: version prefixes, common headers, one error mapping, routing.

Paths are accepted with or without ``/vX.Y`` (1.24 to 1.50, engine-api.md 1.4); every response
carries Api-Version, Server and Ostype as dockerd's VersionMiddleware sets them.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from shoal import __version__
from shoal.api.engine import API_WARNINGS, ENGINE, Engine
from shoal.api.errors import error_response, json_error
from shoal.errors import InvalidArgument

__all__ = ["APITLS", "API_VERSION", "API_VERSION_IN_USE", "BIND_WARNINGS", "MIN_API_VERSION", "PATH_PARAMS",
           "STALE_READ_HEADER", "Router", "insecure_listener_notice", "make_app", "parse_version", "serve"]

log = logging.getLogger(__name__)

API_VERSION = "1.50"
MIN_API_VERSION = "1.24"
SERVER = f"Shoal/{__version__} (linux)"
STALE_READ_HEADER = "X-Shoal-Stale-Read"  # on a read served without the read barrier: why
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Per request (each runs in its own task): the path parameters and the API version asked for.
PATH_PARAMS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("path_params")
API_VERSION_IN_USE: contextvars.ContextVar[str] = contextvars.ContextVar("api_version", default="1.50")
_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")


def parse_version(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []

    def add(self, method: str, pattern: str, handler: Handler, *, reads_store: bool = True) -> None:
        """``reads_store=False`` for a GET that never reads the swarm state (``/_ping``): it then
        skips the read barrier, which costs a quorum round trip and waits during an election."""
        # {id} is one path segment; {name*} may span several (image names: /distribution/a/b:c/json).
        regex = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", pattern)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self._routes.append((method, re.compile(f"^{regex}$"), handler, reads_store))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str], bool] | None:
        """The handler, its path parameters, and whether a GET of it needs the read barrier."""
        allowed: set[str] = set()
        for m, regex, handler, reads_store in self._routes:
            found = regex.match(path)
            if found:
                if m == method or (m == "GET" and method == "HEAD"):
                    return handler, found.groupdict(), reads_store and method == "GET"
                allowed |= {m, "HEAD"} if m == "GET" else {m}
        if allowed:
            raise web.HTTPMethodNotAllowed(method, sorted(allowed))
        return None


def make_app(engine: Engine, router: Router) -> web.Application:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        path = request.path
        found = _VERSIONED.match(path)
        version = API_VERSION
        if found:
            version, path = found.group(1), found.group(2)
            if parse_version(version) > parse_version(API_VERSION):
                return json_error(400, f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
            if parse_version(version) < parse_version(MIN_API_VERSION):
                return json_error(
                    400,
                    f"client version {version} is too old. Minimum supported API version is "
                    f"{MIN_API_VERSION}, please upgrade your client to a newer version",
                )
        API_VERSION_IN_USE.set(version)
        try:
            matched = router.match(request.method, path.rstrip("/") or "/")
        except web.HTTPMethodNotAllowed as exc:
            refused = json_error(405, "method not allowed")
            refused.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
            return refused
        if matched is None:
            return json_error(404, "page not found")
        handler, params, barrier = matched
        PATH_PARAMS.set(params)
        stale = None
        try:
            store = engine.store
            if barrier and store is not None:
                stale = await store.sync()  # linearizable reads on every manager, not only the leader
            response = await handler(request)
            if stale is not None and not response.prepared:
                # Served from this manager's cache without a quorum: it may miss acknowledged
                # writes. Said in a header (as Consul's X-Consul-KnownLeader) since the body is
                # Docker's.
                response.headers[STALE_READ_HEADER] = stale
            return response
        except Exception as exc:  # noqa: BLE001 - the one place errors become responses
            refused = error_response(exc)
            if stale is not None:  # a 404 from a stale cache is no proof of absence either
                refused.headers[STALE_READ_HEADER] = stale
            return refused

    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # aiohttp's own (a path its router cannot take): JSON too
            response = json_error(exc.status, exc.reason.lower())
        if not response.prepared and "Content-Type" not in response.headers:
            # Every answer says what it is, an empty one too: the type every operation of the
            # Engine API's swagger documents (the docker CLI and docker-py read no empty body).
            response.headers["Content-Type"] = "application/json"
        response.headers["Api-Version"] = API_VERSION
        response.headers["Server"] = SERVER
        response.headers["Ostype"] = "linux"
        return response

    app = web.Application(middlewares=[headers], client_max_size=16 * 1024 * 1024)
    app[ENGINE] = engine
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


@dataclass(frozen=True, slots=True, kw_only=True)
class APITLS:
    """dockerd's --tls/--tlsverify flags: the API's certificate, and the CA that client
    certificates must chain to when ``verify`` is set."""

    cert: Path
    key: Path
    ca: Path | None = None
    verify: bool = False

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert), str(self.key))
        if self.verify:
            if self.ca is None:
                raise InvalidArgument("--tlsverify needs --tlscacert")
            ctx.load_verify_locations(str(self.ca))
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def _tcp_address(host: str, tls: APITLS | None) -> tuple[str, int]:
    ip, _, port = host[len("tcp://") :].rpartition(":")
    ip = ip.strip("[]") or "127.0.0.1"
    try:
        address = ipaddress.ip_address(ip)
        number = int(port)
    except ValueError:
        raise InvalidArgument(f"invalid host {host!r}: use tcp://IP:PORT") from None
    # No insecure mode: plain HTTP would hand the swarm to anyone who reaches the port.
    if tls is None and not address.is_loopback:
        raise InvalidArgument(
            f"refusing to serve the API on {host} without TLS: use a loopback address, a unix "
            "socket, or --tlsverify with --tlscacert, --tlscert and --tlskey"
        )
    return ip, number


# dockerd's words. At start (moby cmd/dockerd/daemon.go, loadListeners): any TCP listener that
# does not require client certificates (plain HTTP, or --tls without --tlsverify) hands the
# daemon to whoever reaches the port. dockerd also sleeps a second to make the point; shoald
# does not slow its start.
BIND_WARNINGS = (
    ("Binding to IP address without --tlsverify is insecure and gives root access on this machine "
     "to everyone who has access to your network."),
    ("Binding to an IP address, even on localhost, can also give access to scripts run in a "
     "browser. Be safe out there!"),
)
# And in docker info's Warnings (moby daemon/info.go), without dockerd's promise that a future
# version will refuse to start: Shoal already refuses plain HTTP off loopback.
_ATTACK_SURFACE = """
         Access to the remote API is equivalent to root access on the host. Refer
         to the 'Docker daemon attack surface' section in the documentation for
         more information: https://docs.docker.com/go/attack-surface/"""


def insecure_listener_notice(host: str, tls: APITLS | None) -> str | None:
    """docker info's warning for ``host`` when it is a TCP listener that does not verify its
    clients, else None."""
    if not host.startswith("tcp://"):
        return None
    addr = host[len("tcp://"):]
    if tls is None:
        return f"[DEPRECATION NOTICE]: API is accessible on http://{addr} without encryption.{_ATTACK_SURFACE}"
    if not tls.verify:
        return (f"[DEPRECATION NOTICE]: API is accessible on https://{addr} without TLS client "
                f"verification.{_ATTACK_SURFACE}")
    return None


async def serve(app: web.Application, hosts: list[str], *, tls: APITLS | None = None) -> web.AppRunner:
    """Listen on every ``unix://PATH`` / ``tcp://IP:PORT`` in ``hosts``."""
    notices = [n for n in (insecure_listener_notice(h, tls) for h in hosts) if n is not None]
    app[API_WARNINGS] = notices  # before the runner freezes the app
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        for host in hosts:
            if host.startswith("unix://"):
                path = Path(host[len("unix://") :])
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.is_socket():
                    path.unlink()
                site: web.BaseSite = web.UnixSite(runner, str(path))
                await site.start()
                path.chmod(0o660)
            elif host.startswith("tcp://"):
                ip, port = _tcp_address(host, tls)
                if insecure_listener_notice(host, tls) is not None:
                    for line in BIND_WARNINGS:
                        log.warning('%s host="%s"', line, host)
                site = web.TCPSite(runner, ip, port, ssl_context=tls.context() if tls else None)
                await site.start()
            else:
                raise InvalidArgument(f"invalid host {host!r}: use unix://PATH or tcp://IP:PORT")
            log.info("API listening on %s%s", host, " (TLS)" if tls and host.startswith("tcp://") else "")
    except BaseException:
        await runner.cleanup()
        raise
    return runner
