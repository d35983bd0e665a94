"""The node's images (issue 4): what ``docker pull|load|import|images|image inspect|tag|rmi``
and the executors (``ensure``) use; it satisfies shoal.exec's ``ImageProvider`` structurally.

A facade: names are the catalog's (shoal.image.catalog), pulls shoal.image.pull's, archives
shoal.image.archive's, imports shoal.image.rootfs's, the API's JSON shoal.image.api_json's and
``rmi`` shoal.image.delete's; layers are unpacked once each by shoal.image.unpack.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from shoal import metrics
from shoal.errors import InvalidArgument, NotFound
from shoal.events import EventLog
from shoal.image.api_json import inspect_image, list_images, reference_matches
from shoal.image.archive import load_archive
from shoal.image.catalog import Catalog
from shoal.image.delete import Answer, delete_image
from shoal.image.events import ImageEvents, familiar_string
from shoal.image.pull import Puller, is_loopback_registry
from shoal.image.reference import parse
from shoal.image.registry import Event
from shoal.image.rootfs import import_rootfs
from shoal.image.unpack import LocalImage, Unpacker

# is_loopback_registry, reference_matches: importers of this module's earlier names
__all__ = ["ImageService", "LocalImage", "host_platform", "is_loopback_registry", "reference_matches"]

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> tuple[str, str]:
    machine = _platform.machine()
    return "linux", _ARCH.get(machine, machine)


class ImageService:
    def __init__(self, root: Path, *, insecure_registries: Iterable[str] = (),
                 registry_mirrors: Iterable[str] = (),
                 platform: tuple[str, str] | None = None, events: EventLog | None = None) -> None:
        self.root = root
        self.catalog = Catalog(root)
        self._events = ImageEvents(self.catalog, events)  # the node's event log (None: no events)
        self.store = self.catalog.store
        self.insecure_registries = list(insecure_registries)
        self.registry_mirrors = list(registry_mirrors)
        self.platform = platform or host_platform()
        self._unpacker = Unpacker(self.catalog)
        self._puller = Puller(self.catalog, self._unpacker, self.insecure_registries, self.platform,
                              self.registry_mirrors)

    async def ensure(self, image: str, *, registry_auth: str = "",
                     progress: Callable[[str], None] | None = None) -> LocalImage:
        """The image by name, digest or ID, pulled if it is not here; its layers extracted."""
        try:
            _, record, _, _ = self.catalog.find(image)
        except NotFound:
            with metrics.timed(metrics.IMAGE_ACTIONS.labels("pull")):
                record = await self._puller.pull_for_task(image, registry_auth, progress)
            self._events.pulled(parse(image), record.config)
        return await self._unpacker.ready(record)

    async def pull(self, name: str, *, registry_auth: str = "",
                   progress: Callable[[Event], None] | None = None) -> LocalImage:
        """Pull ``name`` (``docker pull``): ``progress`` gets Docker's JSON messages, up to the
        final ``Status: ...`` line."""
        with metrics.timed(metrics.IMAGE_ACTIONS.labels("pull")):
            record = await self._puller.pull(name, registry_auth, progress)
        self._events.pulled(parse(name), record.config)
        return await self._unpacker.ready(record)

    async def distribution(self, name: str, registry_auth: str = "") -> dict[str, Any]:
        """The registry's descriptor of ``name`` (``GET /distribution/{name}/json``)."""
        return await self._puller.distribution(name, registry_auth)

    def load(self, fileobj: IO[bytes]) -> list[str]:
        """Load a ``docker save`` or OCI layout archive; returns Docker's lines
        (``Loaded image: NAME`` / ``Loaded image ID: sha256:...``). All or nothing."""
        lines = load_archive(self.catalog, fileobj, platform=self.platform,
                             extract=self._unpacker.extract_sync)
        loaded: list[str] = []  # one load event per image, as moby's tarexport
        for line in lines:
            name = line.removeprefix("Loaded image: ").removeprefix("Loaded image ID: ")
            try:
                ident = self.catalog.find(name)[0]
            except (NotFound, InvalidArgument):
                continue
            if ident not in loaded:
                loaded.append(ident)
                self._events.log(ident, ident, "load")
        return lines

    def import_rootfs(self, fileobj: IO[bytes], name: str = "", changes: Iterable[str] = (),
                      message: str = "", *, source: str = "-") -> str:
        """A rootfs tar (plain, gzip, bzip2 or xz) as a one-layer image named ``name`` (none:
        dangling); ``changes`` as ``docker import --change``. Returns the image ID."""
        ident = import_rootfs(self.catalog, fileobj, name, changes, message, source=source,
                              platform=self.platform, extract=self._unpacker.extract_sync)
        if name:  # moby tags the new image first (TagImage's event), then logs the import
            self._events.log(ident, familiar_string(parse(name)), "tag")
        self._events.log(ident, ident, "import")
        return ident

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """``GET /images/json`` (see shoal.image.api_json.list_images for ``filters``)."""
        return list_images(self.catalog, filters)

    def inspect(self, name: str) -> dict[str, Any]:
        """``GET /images/{name}/json`` (Docker's ``image.InspectResponse``)."""
        return inspect_image(self.catalog, name)

    def tag(self, source: str, target: str) -> None:
        """``docker tag SOURCE TARGET``."""
        ident, record, _, _ = self.catalog.find(source)
        ref = parse(target)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        self.catalog.tag(ref, record)
        self._events.log(ident, familiar_string(ref), "tag")

    def exists(self, name: str) -> bool:
        return self.catalog.exists(name)

    def remove(self, name: str, force: bool = False) -> Answer:
        """``docker rmi`` (shoal.image.delete): ``[{"Untagged": ...}, {"Deleted": ...}]``;
        an ``untag`` event per name removed, then ``delete`` if the image went."""
        try:
            ident = self.catalog.find(name)[0]
        except (NotFound, InvalidArgument):
            ident = ""
        labels = self._events.labels(ident) if ident else {}
        with metrics.timed(metrics.IMAGE_ACTIONS.labels("delete")):
            answer = delete_image(self.catalog, name, force)
        for item in answer:
            if "Untagged" in item and ident:
                self._events.log(ident, ident, "untag", labels)
            elif "Deleted" in item:
                self._events.log(item["Deleted"], item["Deleted"], "delete", {})
        return answer
