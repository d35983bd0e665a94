"""Pulls for ``docker pull``, for tasks (``ensure``) and ``GET /distribution`` (issue 4): which
registries are spoken to over plain HTTP, one shared pull per reference, Docker's messages.

* Registries on loopback (localhost, 127.0.0.0/8, ::1) are spoken to over plain HTTP, as dockerd
  does; others only when named (``host[:port]`` or a CIDR) in ``insecure_registries``.
* Docker Hub names are tried at each ``--registry-mirror`` first (``mirrors``), falling back to
  the next mirror, then Docker Hub, on any error, as dockerd does.
* Concurrent pulls of one reference share one pull, and each caller gets its messages. Layers
  are extracted as they arrive, off the event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from shoal.errors import NotFound, ShoalError
from shoal.image.auth import decode_registry_auth
from shoal.image.catalog import Catalog
from shoal.image.mirrors import endpoints
from shoal.image.reference import Reference, parse
from shoal.image.registry import Descriptor, Event, PullResult, Registry, default_tls
from shoal.image.store import ImageRecord
from shoal.image.unpack import Unpacker

__all__ = ["Puller", "is_insecure_registry", "is_loopback_registry"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_loopback_registry(domain: str) -> bool:
    host = domain
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_insecure_registry(domain: str, insecure_registries: Iterable[str]) -> bool:
    """Whether ``domain`` is spoken to over plain HTTP: loopback, or named (``host[:port]``, or
    a CIDR its address is in) in ``insecure_registries``."""
    if is_loopback_registry(domain):
        return True
    host = domain.strip("[]").rpartition(":")[0].strip("[]") if ":" in domain else domain
    for entry in insecure_registries:
        if entry == domain:
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(host or domain) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


class Puller:
    def __init__(self, catalog: Catalog, unpacker: Unpacker, insecure_registries: list[str],
                 platform: tuple[str, str], mirrors: Iterable[str] = ()) -> None:
        self._catalog = catalog
        self._mirrors = list(mirrors)
        self._unpacker = unpacker
        self._insecure_registries = insecure_registries
        self._platform = platform
        self._pulls: dict[str, asyncio.Future[PullResult]] = {}
        self._listeners: dict[str, list[Callable[[Event], None]]] = {}

    async def _client(self, ref: Reference, registry_auth: str, timeout: float = 60.0,
                      mirror: str = "") -> Registry:
        auth = decode_registry_auth(registry_auth)
        insecure = is_insecure_registry(ref.domain, self._insecure_registries)
        return Registry(insecure=[ref.domain] if insecure else [],
                        credentials=auth.credentials, platform=self._platform, timeout=timeout,
                        mirror=mirror, tls=await default_tls())

    async def _each_endpoint(self, ref: Reference, registry_auth: str, timeout: float,
                             call: Callable[[Registry], Awaitable[T]]) -> T:
        """``call`` at the first endpoint of ``ref`` that answers it: its mirrors, then its own."""
        *mirrors, _ = bases = endpoints(ref, self._mirrors)
        for base in bases:
            client = await self._client(ref, registry_auth, timeout, mirror=base)
            try:
                return await call(client)
            except ShoalError as exc:
                if base not in mirrors:
                    raise
                log.warning("pull of %s from mirror %s failed, trying the next endpoint: %s",
                            ref, base, exc.message)
            finally:
                await client.close()
        raise AssertionError("unreachable: the last endpoint raises")

    async def pull_for_task(self, image: str, registry_auth: str,
                            progress: Callable[[str], None] | None) -> ImageRecord:
        """Pull ``image`` for a task: ``progress`` gets one line counting the layers in."""
        ref = parse(image)
        layers = {"done": 0, "total": 0}

        def report(event: Event) -> None:
            status = event.get("status", "")
            if status in ("Pulling fs layer", "Already exists"):
                layers["total"] += 1
            if status in ("Pull complete", "Already exists"):
                layers["done"] += 1
            if progress is not None and status not in ("Downloading", "Download complete"):
                progress(f"pulling image {image}: {layers['done']}/{layers['total']} layers")

        return (await self._shared(ref, registry_auth, report)).record

    async def pull(self, name: str, registry_auth: str,
                   progress: Callable[[Event], None] | None) -> ImageRecord:
        """Pull ``name`` (``docker pull``): ``progress`` gets Docker's JSON messages, up to the
        final ``Status: ...`` line."""
        ref = parse(name)
        emit = progress or (lambda _event: None)
        before = None
        try:
            before = self._catalog.find(str(ref))[1]
        except NotFound:
            pass
        result = await self._shared(ref, registry_auth, emit)
        emit({"status": f"Digest: {result.digest}"})
        fresh = before is None or before.manifest != result.record.manifest
        emit({"status": f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} for {ref.shown}"})
        return result.record

    async def _shared(self, ref: Reference, registry_auth: str,
                      emit: Callable[[Event], None]) -> PullResult:
        """The pull of ``ref`` under way, or a new one; ``emit`` gets its messages meanwhile."""
        key = str(ref)
        listeners = self._listeners.setdefault(key, [])
        listeners.append(emit)
        try:
            future = self._pulls.get(key)
            if future is None:
                future = asyncio.ensure_future(self._fetch(ref, registry_auth, key))
                self._pulls[key] = future
                future.add_done_callback(lambda f: self._pull_done(key, f))
            return await asyncio.shield(future)
        finally:
            listeners.remove(emit)
            if not listeners:
                self._listeners.pop(key, None)

    def _pull_done(self, key: str, future: asyncio.Future[PullResult]) -> None:
        self._pulls.pop(key, None)
        if not future.cancelled():
            future.exception()  # retrieved: every caller may have gone away meanwhile

    async def _fetch(self, ref: Reference, registry_auth: str, key: str) -> PullResult:
        def broadcast(event: Event) -> None:
            for listener in list(self._listeners.get(key, ())):
                try:
                    listener(event)
                except Exception:  # a listener's failure is not the pull's
                    log.exception("image pull progress listener failed")

        async def extract(digest: str) -> None:
            await self._unpacker.extract(digest)

        async def fetch(client: Registry) -> PullResult:
            return await client.fetch(self._catalog.store, ref, emit=broadcast, extract=extract)

        result = await self._each_endpoint(ref, registry_auth, 60.0, fetch)
        if ref.tag and not ref.digest:
            self._catalog.tag(ref, result.record)
        self._catalog.tag(Reference(ref.domain, ref.path, "", result.digest), result.record)
        log.info("pulled %s (%s, %d layers)", ref, result.digest, len(result.record.layers))
        return result

    async def distribution(self, name: str, registry_auth: str) -> dict[str, Any]:
        """The registry's descriptor of ``name`` (``GET /distribution/{name}/json``)."""
        ref = parse(name)
        async def describe(client: Registry) -> Descriptor:
            return await client.describe(ref)

        return (await self._each_endpoint(ref, registry_auth, 15.0, describe)).docker()
