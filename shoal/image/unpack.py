"""Images made ready to run (issue 4): each layer extracted once, off the event loop, and the
image's config read; what the executors get through ``ImageService.ensure``."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.image.catalog import Catalog
from shoal.image.store import ImageRecord

__all__ = ["LocalImage", "Unpacker"]


@dataclass(frozen=True, slots=True)
class LocalImage:
    """An image ready to run (shoal.exec's ``Image``)."""

    id: str  # "sha256:<config digest>"
    layer_dirs: list[Path]
    config: dict[str, Any]
    record: ImageRecord = field(repr=False)


class Unpacker:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        # one lock per layer: two images that share a layer may be pulled at the same time
        self._layer_locks: dict[str, threading.Lock] = {}
        self._ready_images: dict[ImageRecord, LocalImage] = {}  # layers extracted, config read

    def _layer_lock(self, digest: str) -> threading.Lock:
        with self._catalog.lock:
            return self._layer_locks.setdefault(digest, threading.Lock())

    def extract_sync(self, digest: str) -> Path:
        with self._layer_lock(digest):
            return self._catalog.store.layer_dir(digest)

    async def extract(self, digest: str) -> Path:
        return await asyncio.to_thread(self.extract_sync, digest)

    async def ready(self, record: ImageRecord) -> LocalImage:
        ready = self._ready_images.get(record)
        if ready is not None and all(d.is_dir() for d in ready.layer_dirs):
            return ready  # every task of a service asks for the same image
        dirs = [await self.extract(d) for d in record.layers]
        config = json.loads(self._catalog.store.read_blob(record.config))
        inner = config.get("config") if isinstance(config, dict) else None
        ready = LocalImage(record.config, dirs, inner if isinstance(inner, dict) else {}, record)
        self._ready_images[record] = ready
        return ready
