"""The HTTP client the CLI (and the integration tests) use to talk to shoald.

It finds the daemon as docker does (``-H``, else ``DOCKER_HOST``, else the default socket),
negotiates the API version with ``HEAD /_ping`` and then calls ``/v{version}/...`` paths,
returning parsed JSON and raising `DaemonError` for error answers.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpcore
import httpx
from httpcore._backends.sync import SyncStream  # the stream httpcore's own backend returns

__all__ = [
    "DEFAULT_HOST",
    "MAX_API_VERSION",
    "Client",
    "DaemonError",
    "DaemonUnreachable",
    "TLSOptions",
    "filters_param",
    "resolve_host",
]

DEFAULT_HOST = "unix:///run/shoal/shoal.sock"
MAX_API_VERSION = "1.50"  # the docker CLI 28.2 maximum, which shoald advertises
_FALLBACK_API_VERSION = "1.24"  # what docker assumes when /_ping has no Api-Version
_USER_AGENT = "Shoal-Client/0.1.0 (linux)"
_UNIX_BASE_URL = "http://api.moby.localhost"  # the Host docker sends over a unix socket


class _UnixBackend(httpcore.SyncBackend):
    """httpcore's backend, but closing the socket when the connect fails (no ResourceWarning)."""

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        return SyncStream(sock)


class _UnixTransport(httpx.HTTPTransport):
    """``HTTPTransport(uds=path)`` with the socket-closing backend."""

    def __init__(self, path: str) -> None:
        super().__init__(uds=path)
        self._pool = httpcore.ConnectionPool(uds=path, network_backend=_UnixBackend())


class DaemonError(Exception):
    """The daemon answered with an error status; `message` is its ``{"message": ...}``."""

    def __init__(self, status: int, message: str, *, prefixed: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self._prefixed = prefixed

    def __str__(self) -> str:
        if self._prefixed:
            return f"Error response from daemon: {self.message}"
        return self.message

    @property
    def not_found(self) -> bool:
        return self.status == 404


class DaemonUnreachable(Exception):
    """No daemon listens at the configured host."""

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.host = host

    def __str__(self) -> str:
        return f"Cannot connect to the Shoal daemon at {self.host}. Is the shoald daemon running?"


# The shape of an answer the CLI reads into (a GET's, a create's): a list of objects or an object,
# and a swarm object's Spec, Version, Description and Status objects. A server at DOCKER_HOST that
# is not Docker's answers with anything; Go's json says so in one line.
_LISTS = re.compile(r"/(services|nodes|tasks|secrets|configs|networks|images/json|containers/json)")
_OBJECTS = re.compile(r"/(info|version|swarm|swarm/unlockkey|system/df|volumes|[a-z]+/create|distribution/.+/json|"
                      r"(services|nodes|tasks|secrets|configs|networks|volumes|images|containers)/[^/]+(/json)?)")


_SWARM_OBJECTS = re.compile(r"/(swarm$|(services|nodes|tasks|secrets|configs)(/|$))")


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "bool", type(None): "null"}.get(
        type(value), "number")


def _shaped(path: str, data: Any) -> Any:
    """``data`` when it has the shape ``path``'s answer has (a GET's, or a create's); else
    DaemonError."""
    want = "array" if _LISTS.fullmatch(path) else "object" if _OBJECTS.fullmatch(path) else None
    if want is not None and _kind(data) != want:
        raise DaemonError(200, f"json: cannot unmarshal {_kind(data)} into Go value of type {want} "
                               f"({path})", prefixed=False)
    items = data if want == "array" else [data] if want == "object" else []
    for item in items:
        if not isinstance(item, dict):
            raise DaemonError(200, f"json: cannot unmarshal {_kind(item)} into Go value of type object "
                                   f"({path})", prefixed=False)
        if _SWARM_OBJECTS.match(path):  # a swarm object's Spec, Version, Status... are objects
            for key in ("Spec", "Version", "Description", "Status"):
                if item.get(key) is not None and not isinstance(item[key], dict):  # null: absent
                    raise DaemonError(200, f"json: cannot unmarshal {_kind(item[key])} into Go struct field "
                                           f"{key} of type object ({path})", prefixed=False)
    return data


def resolve_host(host: str | None = None) -> str:
    """The daemon address: the explicit host, else DOCKER_HOST, else the default socket."""
    return host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def filters_param(filters: Mapping[str, list[str]]) -> str:
    """Encode filters the way the docker CLI does: ``{"key":{"value":true}}``."""
    return json.dumps(
        {key: {value: True for value in values} for key, values in sorted(filters.items())},
        separators=(",", ":"),
        sort_keys=True,
    )


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """docker's --tls/--tlsverify/--tlscacert/--tlscert/--tlskey, with its environment
    (DOCKER_TLS, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) and default files (~/.docker/*.pem)."""

    verify: bool
    cacert: str
    cert: str
    key: str

    @classmethod
    def from_flags(cls, *, tls: bool, tlsverify: bool, cacert: str | None, cert: str | None,
                   key: str | None) -> TLSOptions | None:
        verify = tlsverify or bool(os.environ.get("DOCKER_TLS_VERIFY"))
        if not (tls or verify or os.environ.get("DOCKER_TLS")):
            return None
        base = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
        return cls(verify=verify, cacert=cacert or os.path.join(base, "ca.pem"),
                   cert=cert or os.path.join(base, "cert.pem"), key=key or os.path.join(base, "key.pem"))

    def context(self) -> ssl.SSLContext:
        if self.verify:
            ctx = ssl.create_default_context(cafile=self.cacert)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if os.path.exists(self.cert) and os.path.exists(self.key):
            ctx.load_cert_chain(self.cert, self.key)
        return ctx


class Client:
    """A small synchronous Engine API client (one connection pool per instance)."""

    def __init__(
        self,
        host: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        version: str | None = None,
        tls: TLSOptions | None = None,
    ) -> None:
        self.host = resolve_host(host)
        base_url, default_transport = self._transport_for(self.host, tls)
        self._http = httpx.Client(
            base_url=base_url,
            transport=transport or default_transport,
            headers={"User-Agent": _USER_AGENT},
            timeout=httpx.Timeout(None, connect=10.0),
        )
        self._version = version or os.environ.get("DOCKER_API_VERSION") or None

    @staticmethod
    def _transport_for(host: str, tls: TLSOptions | None = None) -> tuple[str, httpx.BaseTransport]:
        parts = urlsplit(host)
        if parts.scheme == "unix":
            return _UNIX_BASE_URL, _UnixTransport(parts.path)
        if parts.scheme in ("tcp", "http", "https") and (tls is not None or parts.scheme == "https"):
            try:
                ctx = tls.context() if tls is not None else ssl.create_default_context()
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"could not read the TLS certificates: {exc}") from exc
            return f"https://{parts.netloc}", httpx.HTTPTransport(verify=ctx)
        if parts.scheme in ("tcp", "http"):
            return f"http://{parts.netloc}", httpx.HTTPTransport()
        raise ValueError(f"unable to parse docker host `{host}`")

    # -- version negotiation ---------------------------------------------------------------

    @property
    def version(self) -> str:
        """The API version in use, negotiated with the daemon on first use."""
        if self._version is None:
            self._version = self._negotiate()
        return self._version

    def _negotiate(self) -> str:
        response = self._send("HEAD", "/_ping")
        if response.status_code not in (200, 500):
            response = self._send("GET", "/_ping")
        server = (response.headers.get("Api-Version") or "").split(",")[0].strip()
        if not re.fullmatch(r"\d+\.\d+", server):
            server = _FALLBACK_API_VERSION
        if _version_tuple(server) < _version_tuple(MAX_API_VERSION):
            return server
        return MAX_API_VERSION

    def ping(self) -> httpx.Response:
        """``HEAD /_ping`` (unversioned), for callers that want the headers."""
        return self._send("HEAD", "/_ping")

    # -- requests --------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return _shaped(path, self._json(self.request("GET", path, params=params)))

    def post(
        self,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        answer = self._json(self.request("POST", path, params=params, body=body, headers=headers))
        return _shaped(path, answer) if path.endswith("/create") else answer

    def delete(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self._json(self.request("DELETE", path, params=params))

    def head(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request("HEAD", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one versioned request; raise `DaemonError` unless the status is 2xx/3xx."""
        versioned = f"/v{self.version}{path}"
        response = self._send(method, versioned, params=params, body=body, headers=headers)
        if response.status_code >= 400:
            raise self._error(response)
        return response

    @contextmanager
    def stream(self, path: str, params: Any = None, *, method: str = "GET",
               content: Iterator[bytes] | None = None,
               headers: Mapping[str, str] | None = None) -> Iterator[httpx.Response]:
        """A versioned request whose answer is read as it arrives (logs, pulls, loads);
        raises `DaemonError`."""
        try:
            with self._http.stream(method, quote(f"/v{self.version}{path}", safe="/:@"),
                                   params=params, content=content, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                yield response
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ConnectTimeout) as exc:
            raise DaemonUnreachable(self.host) from exc

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            all_headers["Content-Type"] = "application/json"
        try:
            return self._http.request(
                method, quote(path, safe="/:@"), params=params, content=content, headers=all_headers
            )
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ConnectTimeout) as exc:
            raise DaemonUnreachable(self.host) from exc

    def _json(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:  # not Docker's daemon at this address, or a broken one
            raise DaemonError(response.status_code, f"cannot read the answer of the daemon at {self.host}: "
                              f"{exc}", prefixed=False) from None

    @staticmethod
    def _error(response: httpx.Response) -> DaemonError:
        text = response.text.strip()
        if not text:
            reason = response.reason_phrase or str(response.status_code)
            return DaemonError(
                response.status_code,
                f"request returned {reason} for API route and version {response.request.url}, "
                "check if the server supports the requested API version",
                prefixed=False,
            )
        if response.headers.get("Content-Type") == "application/json":
            try:
                message = json.loads(text).get("message") or text
            except (ValueError, AttributeError):
                message = text
            return DaemonError(response.status_code, str(message).strip())
        return DaemonError(response.status_code, text)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
