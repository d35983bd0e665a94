"""Pulling images over the OCI distribution API into the node's image store (issue 4).

``fetch(store, ref)``: the manifest by tag or digest (a manifest list or OCI index picks the
wanted platform, linux/amd64 by default), then the config and every layer not yet in the store,
each checked against its digest and size while it streams; ``pull`` also tags the name.
``describe`` is the registry's descriptor of a manifest (``GET /distribution/{name}/json``).
Docker Hub's names go to registry-1.docker.io, or to ``mirror`` (a base URL) when given. A
registry answers over HTTPS, or over HTTP only when named in ``insecure``. Authentication follows the registry's challenge: a bearer token from
its realm (with the given credentials, if any), or basic auth.

``fetch`` reports its steps as Docker's JSON messages (what dockerd streams on
``POST /images/create`` and the docker CLI prints)::

    {"status": "Pulling from shoaltest/bb", "id": "1"}
    {"status": "Pulling fs layer" | "Already exists", "progressDetail": {}, "id": "<12 hex>"}
    {"status": "Downloading", "progressDetail": {"current": N, "total": SIZE}, "id": "<12 hex>"}
    {"status": "Download complete", "progressDetail": {}, "id": "<12 hex>"}
    {"status": "Pull complete", "progressDetail": {}, "id": "<12 hex>"}   (after extraction)
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from shoal.errors import InvalidArgument, NotFound, PermissionDenied, ShoalError, Unavailable
from shoal.image.reference import DEFAULT_DOMAIN, Reference
from shoal.image.store import ImageRecord, ImageStore, digest_of, json_object

__all__ = ["MANIFEST_TYPES", "Descriptor", "Event", "PullResult", "Registry"]

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.1  # seconds between a layer's Downloading messages

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platforms: list[dict[str, Any]]

    def docker(self) -> dict[str, Any]:
        return {"Descriptor": {"mediaType": self.media_type, "digest": self.digest, "size": self.size},
                "Platforms": self.platforms}


@dataclass(frozen=True, slots=True)
class PullResult:
    record: ImageRecord
    digest: str  # the digest the registry knows the image by (the index's, for a manifest list)


def _ignore(event: Event) -> None:
    pass


async def _nothing(digest: str) -> None:
    pass


def _platform(value: Any) -> dict[str, Any]:
    value = value if isinstance(value, dict) else {}
    keys = ("architecture", "os", "os.version", "os.features", "variant")
    return {k: value[k] for k in keys if value.get(k)}


_TLS: list[ssl.SSLContext] = []


def _first_client() -> ssl.SSLContext:
    # What httpx imports at its first client (httpcore) and first close (anyio's asyncio
    # backend): 0.1-0.5 s each on the event loop otherwise.
    for module in ("httpcore", "anyio._backends._asyncio"):
        importlib.import_module(module)
    return httpx.create_ssl_context()


async def default_tls() -> ssl.SSLContext:
    """httpx's default verification context (certifi's roots), made once per process, in a
    thread (with httpx's transport imported): loading the roots takes 30-50 ms of CPU, which
    every new client spent on the event loop."""
    if not _TLS:
        context = await asyncio.to_thread(_first_client)
        if not _TLS:
            _TLS.append(context)
    return _TLS[0]


class Registry:
    def __init__(self, *, insecure: Iterable[str] = (), credentials: tuple[str, str] | None = None,
                 platform: tuple[str, str] = ("linux", "amd64"), timeout: float = 60.0,
                 mirror: str = "", tls: ssl.SSLContext | None = None) -> None:
        self._insecure = set(insecure)
        self._mirror = mirror.rstrip("/")
        self._credentials = credentials
        self._platform = platform
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=True,
                                       verify=tls if tls is not None else True)
        self._auth: dict[str, str] = {}  # repository -> Authorization header value

    async def close(self) -> None:
        await self._http.aclose()

    def _base(self, ref: Reference) -> str:
        if self._mirror and ref.domain == DEFAULT_DOMAIN:
            return f"{self._mirror}/v2/{ref.path}"
        host = "registry-1.docker.io" if ref.domain == DEFAULT_DOMAIN else ref.domain
        scheme = "http" if ref.domain in self._insecure else "https"
        return f"{scheme}://{host}/v2/{ref.path}"

    async def _get(self, ref: Reference, path: str, accept: str = "") -> httpx.Response:
        """GET with this repository's authorization, answering one auth challenge."""
        url = f"{self._base(ref)}/{path}"
        for attempt in range(2):
            headers = {"Accept": accept} if accept else {}
            if ref.repository in self._auth:
                headers["Authorization"] = self._auth[ref.repository]
            request = self._http.build_request("GET", url, headers=headers)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise Unavailable(f"cannot reach {ref.domain}: {exc}") from exc
            if response.status_code == 401 and attempt == 0:
                challenge = response.headers.get("WWW-Authenticate", "")
                await response.aclose()
                self._auth[ref.repository] = await self._authorize(ref, challenge)
                continue
            if response.status_code != 200:
                body = (await response.aread()).decode(errors="replace")
                await response.aclose()
                raise _error(response.status_code, body, ref)
            return response
        raise AssertionError("unreachable")

    async def _authorize(self, ref: Reference, challenge: str) -> str:
        scheme, _, params = challenge.partition(" ")
        fields = dict(_CHALLENGE.findall(params))
        if scheme.lower() == "basic":
            if self._credentials is None:
                raise PermissionDenied(f"{ref.domain}: authentication required (no credentials given)")
            user, password = self._credentials
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if scheme.lower() != "bearer" or "realm" not in fields:
            raise PermissionDenied(f"{ref.domain}: unsupported authentication challenge {challenge!r}")
        query = {"service": fields.get("service", ""), "scope": f"repository:{ref.path}:pull"}
        auth = httpx.BasicAuth(*self._credentials) if self._credentials else None
        try:
            answer = await self._http.get(fields["realm"], params=query, auth=auth)
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach the token service {fields['realm']}: {exc}") from exc
        if answer.status_code != 200:
            raise PermissionDenied(f"{ref.domain}: token refused ({answer.status_code}): {answer.text[:200]}")
        doc = answer.json()
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise PermissionDenied(f"{ref.domain}: the token service returned no token")
        return f"Bearer {token}"

    async def _manifest(self, ref: Reference, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest, checked against a digest reference."""
        response = await self._get(ref, f"manifests/{reference}", accept=", ".join(MANIFEST_TYPES))
        data = await response.aread()
        await response.aclose()
        digest = digest_of(data)
        if reference.startswith("sha256:") and digest != reference:
            raise InvalidArgument(f"manifest digest mismatch: expected {reference}, got {digest}")
        media = response.headers.get("Content-Type", "").split(";")[0]
        return data, media, digest

    def _pick(self, index: dict[str, Any], ref: Reference) -> str:
        os_, arch = self._platform
        for entry in index.get("manifests") or []:
            platform = entry.get("platform") or {}
            if platform.get("os") == os_ and platform.get("architecture") == arch:
                return str(entry["digest"])
        raise NotFound(f"no matching manifest for {os_}/{arch} in the manifest list entries of {ref.familiar}")

    async def _blob(self, store: ImageStore, ref: Reference, digest: str, size: int | None,
                    emit: Callable[[Event], None] | None = None) -> None:
        """Fetch one blob; ``emit`` gets docker's ``Downloading`` progress for it (at most
        every PROGRESS_EVERY seconds, as dockerd's progress reader throttles)."""
        if store.has_blob(digest):
            return
        response = await self._get(ref, f"blobs/{digest}")
        short = digest.split(":", 1)[-1][:12]
        total = size if isinstance(size, int) and size > 0 else 0
        done, last = 0, 0.0
        try:
            with store.writer(digest=digest, size=size) as out:
                async for chunk in response.aiter_bytes(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if emit is not None and (time.monotonic() - last >= PROGRESS_EVERY or done == total):
                        last = time.monotonic()
                        emit({"status": "Downloading", "id": short,
                              "progressDetail": {"current": done, "total": total}})
                out.commit()
        except httpx.HTTPError as exc:
            raise Unavailable(f"{ref.domain}: download of {digest} failed: {exc}") from exc
        finally:
            await response.aclose()

    async def pull(self, store: ImageStore, ref: Reference) -> ImageRecord:
        """Pull ``ref`` into ``store`` and tag it there; returns the image's record."""
        result = await self.fetch(store, ref)
        store.tag(ref, result.record)
        log.info("pulled %s (%s, %d layers)", ref, result.digest, len(result.record.layers))
        return result.record

    async def describe(self, ref: Reference) -> Descriptor:
        data, media, digest = await self._manifest(ref, ref.digest or ref.tag)
        doc = json_object(data, "manifest")
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
            platforms = [_platform(m.get("platform")) for m in doc.get("manifests") or []
                         if isinstance(m, dict) and m.get("platform")]
        else:
            config = doc.get("config") or {}
            response = await self._get(ref, f"blobs/{config.get('digest', '')}")
            try:
                blob = await response.aread()
            finally:
                await response.aclose()
            platforms = [_platform(json_object(blob, "image config"))]
        return Descriptor(media or str(doc.get("mediaType", "")), digest, len(data), platforms)

    async def fetch(self, store: ImageStore, ref: Reference, *,
                    emit: Callable[[Event], None] = _ignore,
                    extract: Callable[[str], Awaitable[None]] = _nothing) -> PullResult:
        """Fetch ``ref``'s manifest, config and layers into ``store`` (nothing is tagged);
        ``extract(layer digest)`` runs after each layer is in."""
        data, media, top = await self._manifest(ref, ref.digest or ref.tag)
        doc = json_object(data, "manifest")
        digest = top
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
            data, media, digest = await self._manifest(ref, self._pick(doc, ref))
            doc = json_object(data, "manifest")
        # only now (a missing tag or a refusal is an error answer, not a stream, as in dockerd)
        emit({"status": f"Pulling from {ref.path}", "id": ref.tag or ref.digest})
        config = doc.get("config") or {}
        layers = doc.get("layers") or []
        if not isinstance(config, dict) or "digest" not in config or not isinstance(layers, list):
            raise InvalidArgument(f"{ref.familiar}: unsupported manifest ({media or 'no media type'})")
        digests = [str(layer["digest"]) for layer in layers]
        present = {d for d in digests if store.has_blob(d)}
        for d in digests:
            short = d.split(":", 1)[1][:12]
            emit({"status": "Already exists" if d in present else "Pulling fs layer",
                  "progressDetail": {}, "id": short})
        await self._blob(store, ref, str(config["digest"]), config.get("size"))
        for layer, d in zip(layers, digests, strict=True):
            short = d.split(":", 1)[1][:12]
            if d in present:
                await extract(d)
                continue
            await self._blob(store, ref, d, layer.get("size"), emit)
            emit({"status": "Download complete", "progressDetail": {}, "id": short})
            await extract(d)
            emit({"status": "Pull complete", "progressDetail": {}, "id": short})
        store.put_blob(data, digest=digest)
        return PullResult(ImageRecord(digest, str(config["digest"]), tuple(digests)), top)


def _error(status: int, body: str, ref: Reference) -> ShoalError:
    """The registry's own reason (its ``errors[0].message``), as Docker reports it."""
    try:
        errors = json.loads(body).get("errors") or []
        reason = "; ".join(str(e.get("message", e)) for e in errors) or body[:200]
    except (ValueError, AttributeError):
        reason = body[:200] or f"HTTP {status}"
    if status == 404:
        return NotFound(f"manifest for {ref.familiar}:{ref.tag or ref.digest} not found: {reason}")
    if status in (401, 403):
        return PermissionDenied(f"pull access denied for {ref.familiar}: {reason}")
    return Unavailable(f"{ref.domain}: HTTP {status}: {reason}")
