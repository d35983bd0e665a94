"""The node's images (issue 4): what ``docker pull|load|import|images|image inspect|rmi`` and
the executors (``ensure``) use; it satisfies shoal.exec's ``ImageProvider`` structurally.

* Names live in the ImageStore's index (``repo:tag``, and ``repo@digest`` for what a registry
  served); an image that loses its last name (``import`` without a name, ``load`` of an untagged
  image, a tag moved to another image) is kept as *dangling* in ``untagged.json``, as Docker
  keeps ``<none>:<none>`` images.
* ``ensure``: the image by name, digest or ID if it is here, else a pull. Concurrent pulls of
  one reference share one pull. Layers are extracted once, off the event loop.
* Registries on loopback (localhost, 127.0.0.0/8, ::1) are spoken to over plain HTTP, as dockerd
  does; others only when named (``host[:port]`` or a CIDR) in ``insecure_registries``.
* ``remove`` deletes the blobs and extracted layers no other image uses. There is no container
  tracking here: removing an image that a running container uses is not refused (dockerd would
  answer 409), so the executors keep their own reference to the layer directories they mount.
"""

from __future__ import annotations

import asyncio
import bz2
import gzip
import ipaddress
import json
import logging
import lzma
import os
import platform
import re
import shutil
import tarfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from shoal.errors import Conflict, InvalidArgument, NotFound
from shoal.image.archive import oci_manifest, read_archive
from shoal.image.auth import decode_registry_auth
from shoal.image.changes import apply_changes
from shoal.image.reference import Reference, parse
from shoal.image.registry import Descriptor, Event, PullResult, Registry
from shoal.image.store import ImageRecord, ImageStore

__all__ = ["ImageService", "LocalImage", "is_loopback_registry", "reference_matches"]

log = logging.getLogger(__name__)

ZERO_TIME = "0001-01-01T00:00:00Z"
Answer = list[dict[str, str]]
RefList = list[Reference]
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> tuple[str, str]:
    machine = platform.machine()
    return "linux", _ARCH.get(machine, machine)


@dataclass(frozen=True, slots=True)
class LocalImage:
    """An image ready to run (shoal.exec's ``Image``)."""

    id: str  # "sha256:<config digest>"
    layer_dirs: list[Path]
    config: dict[str, Any]
    record: ImageRecord = field(repr=False)


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


def _unix(created: str) -> int:
    if not created or created.startswith("0001-"):
        return 0
    text = created.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Go writes up to 9 fractional digits; fromisoformat takes 6
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0


def _label(labels: dict[str, str], item: str) -> bool:
    key, eq, value = item.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class _Prefixed:
    """A reader that gives back ``head`` before the rest of ``source`` (magic-byte sniffing on a
    stream that cannot seek)."""

    def __init__(self, head: bytes, source: IO[bytes]) -> None:
        self._head, self._source = head, source

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                out, self._head = self._head + self._source.read(), b""
                return out
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._source.read(size)


def _decompressed(source: IO[bytes]) -> Any:
    """``source`` uncompressed (gzip, bzip2 and xz are recognised by their magic bytes)."""
    head = source.read(6)
    stream: Any = _Prefixed(head, source)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(stream, mode="rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(stream, mode="rb")
    return stream


class ImageService:
    def __init__(self, root: Path, *, insecure_registries: Iterable[str] = (),
                 platform: tuple[str, str] | None = None) -> None:
        self.root = root
        self.store = ImageStore(root)
        self.insecure_registries = list(insecure_registries)
        self.platform = platform or host_platform()
        self._untagged_path = root / "untagged.json"
        self._lock = threading.RLock()  # the index and untagged.json; blob removal
        self._layer_locks: dict[str, threading.Lock] = {}
        self._pulls: dict[str, asyncio.Future[PullResult]] = {}
        self._ready_images: dict[ImageRecord, LocalImage] = {}  # layers extracted, config read
        self._listeners: dict[str, list[Callable[[Event], None]]] = {}

    # -- registries ------------------------------------------------------------------------
    def _insecure(self, domain: str) -> bool:
        if is_loopback_registry(domain):
            return True
        host = domain.strip("[]").rpartition(":")[0].strip("[]") if ":" in domain else domain
        for entry in self.insecure_registries:
            if entry == domain:
                return True
            if "/" in entry:
                try:
                    if ipaddress.ip_address(host or domain) in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    def _client(self, ref: Reference, registry_auth: str, timeout: float = 60.0) -> Registry:
        auth = decode_registry_auth(registry_auth)
        return Registry(insecure=[ref.domain] if self._insecure(ref.domain) else [],
                                credentials=auth.credentials, platform=self.platform, timeout=timeout)

    # -- names -----------------------------------------------------------------------------
    def _untagged(self) -> dict[str, ImageRecord]:
        try:
            doc = json.loads(self._untagged_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {k: ImageRecord(v["manifest"], v["config"], tuple(v["layers"])) for k, v in doc.items()}

    def _save_untagged(self, records: dict[str, ImageRecord]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._untagged_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: asdict(v) | {"layers": list(v.layers)} for k, v in records.items()},
                                  indent=1, sort_keys=True))
        os.replace(tmp, self._untagged_path)

    def _names(self) -> dict[Reference, ImageRecord]:
        out = {}
        for key, record in self.store.names().items():
            try:
                out[parse(key)] = record
            except InvalidArgument:
                log.warning("ignoring an unreadable name in the image index: %r", key)
        return out

    def _images(self) -> dict[str, tuple[ImageRecord, list[Reference]]]:
        """Every image by ID: a record and its names (none for a dangling one)."""
        out: dict[str, tuple[ImageRecord, list[Reference]]] = {}
        for ref, record in sorted(self._names().items(), key=lambda item: str(item[0])):
            out.setdefault(record.config, (record, []))[1].append(ref)
        for ident, record in self._untagged().items():
            out.setdefault(ident, (record, []))
        return out

    def _tag(self, ref: Reference, record: ImageRecord) -> None:
        """Name ``record`` by ``ref``; the image that loses its last name becomes dangling."""
        with self._lock:
            names = self._names()
            previous = names.get(ref)
            self.store.tag(ref, record)
            untagged = self._untagged()
            changed = untagged.pop(record.config, None) is not None
            if previous is not None and previous.config != record.config and not any(
                    r.config == previous.config for k, r in names.items() if k != ref):
                untagged[previous.config] = previous
                changed = True
            if changed:
                self._save_untagged(untagged)

    def _keep_untagged(self, record: ImageRecord) -> None:
        with self._lock:
            if any(r.config == record.config for r in self._names().values()):
                return
            untagged = self._untagged()
            untagged[record.config] = record
            self._save_untagged(untagged)

    def _find(self, name: str) -> tuple[str, ImageRecord, list[Reference], Reference | None]:
        """(image ID, record, all its names, the name matched) for a name, ``name@digest``, an
        ID or a unique ID prefix; NotFound with Docker's message otherwise."""
        images = self._images()
        ref: Reference | None = None
        try:
            ref = parse(name)
        except InvalidArgument:
            pass
        if ref is not None:
            lookup = Reference(ref.domain, ref.path, "", ref.digest) if ref.digest else ref
            for ident, (record, refs) in images.items():
                if lookup in refs:
                    return ident, record, refs, lookup
            if ref.digest:
                for ident, (record, refs) in images.items():
                    if record.manifest == ref.digest and any(r.repository == ref.repository for r in refs):
                        return ident, record, refs, None
        hexpart = name.removeprefix("sha256:")
        if hexpart and len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart):
            found = [i for i in images if i.removeprefix("sha256:").startswith(hexpart)]
            if len(found) > 1:
                raise InvalidArgument(f"{name} is ambiguous ({len(found)} matches found)")
            if found:
                record, refs = images[found[0]]
                return found[0], record, refs, None
        raise NotFound(f"No such image: {name}")

    # -- running ---------------------------------------------------------------------------
    def _layer_lock(self, digest: str) -> threading.Lock:
        with self._lock:
            return self._layer_locks.setdefault(digest, threading.Lock())

    def _extract_sync(self, digest: str) -> Path:
        with self._layer_lock(digest):
            return self.store.layer_dir(digest)

    async def _extract(self, digest: str) -> Path:
        return await asyncio.to_thread(self._extract_sync, digest)

    async def _ready(self, record: ImageRecord) -> LocalImage:
        ready = self._ready_images.get(record)
        if ready is not None and all(d.is_dir() for d in ready.layer_dirs):
            return ready  # every task of a service asks for the same image
        dirs = [await self._extract(d) for d in record.layers]
        config = json.loads(self.store.read_blob(record.config))
        inner = config.get("config") if isinstance(config, dict) else None
        ready = LocalImage(record.config, dirs, inner if isinstance(inner, dict) else {}, record)
        self._ready_images[record] = ready
        return ready

    async def ensure(self, image: str, *, registry_auth: str = "",
                     progress: Callable[[str], None] | None = None) -> LocalImage:
        """The image, pulled if it is not here; its layers extracted."""
        try:
            _, record, _, _ = self._find(image)
        except NotFound:
            ref = parse(image)
            layers = {"done": 0, "total": 0}

            def report(event: Event) -> None:
                status = event.get("status", "")
                if status in ("Pulling fs layer", "Already exists"):
                    layers["total"] += 1
                if status in ("Pull complete", "Already exists"):
                    layers["done"] += 1
                if progress is not None and status != "Download complete":
                    progress(f"pulling image {image}: {layers['done']}/{layers['total']} layers")

            record = (await self._pull(ref, registry_auth, report)).record
        return await self._ready(record)

    async def pull(self, name: str, *, registry_auth: str = "",
                   progress: Callable[[Event], None] | None = None) -> LocalImage:
        """Pull ``name`` (``docker pull``): ``progress`` gets Docker's JSON messages, up to the
        final ``Status: ...`` line."""
        ref = parse(name)
        emit = progress or (lambda _event: None)
        before = None
        try:
            before = self._find(str(ref))[1]
        except NotFound:
            pass
        result = await self._pull(ref, registry_auth, emit)
        emit({"status": f"Digest: {result.digest}"})
        shown = ref.familiar + (f"@{ref.digest}" if ref.digest else f":{ref.tag}")
        fresh = before is None or before.manifest != result.record.manifest
        emit({"status": f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} for {shown}"})
        return await self._ready(result.record)

    async def _pull(self, ref: Reference, registry_auth: str,
                    emit: Callable[[Event], None]) -> PullResult:
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
            await self._extract(digest)

        client = self._client(ref, registry_auth)
        try:
            result = await client.fetch(self.store, ref, emit=broadcast, extract=extract)
        finally:
            await client.close()
        if ref.tag and not ref.digest:
            self._tag(ref, result.record)
        self._tag(Reference(ref.domain, ref.path, "", result.digest), result.record)
        log.info("pulled %s (%s, %d layers)", ref, result.digest, len(result.record.layers))
        return result

    async def distribution(self, name: str, registry_auth: str = "") -> dict[str, Any]:
        """The registry's descriptor of ``name`` (``GET /distribution/{name}/json``)."""
        ref = parse(name)
        client = self._client(ref, registry_auth, timeout=15.0)
        try:
            descriptor: Descriptor = await client.describe(ref)
        finally:
            await client.close()
        return descriptor.docker()

    # -- load and import -------------------------------------------------------------------
    def load(self, fileobj: IO[bytes]) -> list[str]:
        """Load a ``docker save`` or OCI layout archive; returns Docker's lines
        (``Loaded image: NAME`` / ``Loaded image ID: sha256:...``). All or nothing."""
        loaded = read_archive(self.store, fileobj, platform=self.platform)
        for _ref, record in loaded:  # as dockerd: layers unpacked at load, not at first run
            for digest in record.layers:
                self._extract_sync(digest)
        lines = []
        for ref, record in loaded:
            if ref is None:
                self._keep_untagged(record)
                lines.append(f"Loaded image ID: {record.config}")
            else:
                self._tag(ref, record)
                if ref.digest and not ref.tag:
                    lines.append(f"Loaded image: {ref.familiar}@{ref.digest}")
                else:
                    lines.append(f"Loaded image: {ref.familiar}:{ref.tag}")
        return lines

    def import_rootfs(self, fileobj: IO[bytes], name: str = "", changes: Iterable[str] = (),
                      message: str = "", *, source: str = "-") -> str:
        """A rootfs tar (plain, gzip, bzip2 or xz) as a one-layer image named ``name`` (none:
        dangling); ``changes`` as ``docker import --change``. Returns the image ID."""
        ref = parse(name) if name else None
        if ref is not None and ref.digest:
            raise InvalidArgument("cannot import digest reference")
        config_inner = apply_changes({}, list(changes))
        stream = _decompressed(fileobj)
        added: list[str] = []
        try:
            with self.store.writer() as out:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    out.write(chunk)
                with self._lock:
                    layer = out.commit()
                    # (a blob already present is the same bytes; nothing of ours to undo there)
            added.append(layer)
            try:
                with open(self.store.blob_path(layer), "rb") as blob, \
                        tarfile.open(fileobj=blob, mode="r|") as tar:
                    for _member in tar:
                        pass
            except (tarfile.TarError, EOFError) as exc:
                raise InvalidArgument(f"archive/tar: invalid tar header: {exc}") from exc
            self._extract_sync(layer)  # as dockerd: unpacked at import, not at first run
            created = _now()
            os_, arch = self.platform
            config = {"architecture": arch, "os": os_, "created": created, "config": config_inner,
                      "rootfs": {"type": "layers", "diff_ids": [layer]},
                      "history": [{"created": created, "created_by": "",
                                   "comment": message or f"Imported from {source}"}]}
            if message:
                config["comment"] = message
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            config_digest = self.store.put_blob(config_bytes)
            added.append(config_digest)
            size = self.store.blob_path(layer).stat().st_size
            manifest = self.store.put_blob(oci_manifest((config_digest, len(config_bytes)), [(layer, size)]))
            added.append(manifest)
            record = ImageRecord(manifest, config_digest, (layer,))
            if ref is None:
                self._keep_untagged(record)
            else:
                self._tag(ref, record)
        except BaseException:
            with self._lock:
                used = self._used_blobs()
                for digest in added:
                    if digest not in used:
                        self.store.blob_path(digest).unlink(missing_ok=True)
            raise
        return config_digest

    # -- inspecting ------------------------------------------------------------------------
    def _config(self, record: ImageRecord) -> dict[str, Any]:
        try:
            doc = json.loads(self.store.read_blob(record.config))
        except (NotFound, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _size(self, record: ImageRecord) -> int:
        total = 0
        for digest in record.layers:
            try:
                total += self.store.blob_path(digest).stat().st_size
            except FileNotFoundError:
                pass
        return total

    @staticmethod
    def _tags_and_digests(refs: list[Reference]) -> tuple[list[str], list[str]]:
        tags = [f"{r.familiar}:{r.tag}" for r in refs if r.tag and not r.digest]
        digests = [f"{r.familiar}@{r.digest}" for r in refs if r.digest]
        return tags, digests

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """``GET /images/json``: every image, newest first (Docker's ``image.Summary``);
        ``filters``: ``reference`` (patterns, ORed), ``dangling`` (true/false), ``label``
        (``key`` or ``key=value``, ANDed)."""
        filters = filters or {}
        dangling = filters.get("dangling") or []
        for value in dangling:
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
        out: list[dict[str, Any]] = []
        for ident, (record, refs) in self._images().items():
            config = self._config(record)
            tags, digests = self._tags_and_digests(refs)
            labels = (config.get("config") or {}).get("Labels") or {}
            if dangling and (dangling[-1].lower() in ("true", "1")) != (not tags):
                continue
            if filters.get("reference") and not any(reference_matches(p, refs) for p in filters["reference"]):
                continue
            if not all(_label(labels, item) for item in filters.get("label") or []):
                continue
            out.append({"Id": ident, "ParentId": "", "RepoTags": tags, "RepoDigests": digests,
                        "Created": _unix(str(config.get("created") or "")), "Size": self._size(record),
                        "SharedSize": -1, "Labels": labels, "Containers": -1,
                        "Descriptor": self._descriptor(record)})
        out.sort(key=lambda item: (-int(item["Created"]), str(item["Id"])))
        return out

    def _descriptor(self, record: ImageRecord) -> dict[str, Any]:
        try:
            size = self.store.blob_path(record.manifest).stat().st_size
        except FileNotFoundError:
            size = 0
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": record.manifest,
                "size": size}

    def inspect(self, name: str) -> dict[str, Any]:
        """``GET /images/{name}/json`` (Docker's ``image.InspectResponse``)."""
        ident, record, refs, _ = self._find(name)
        config = self._config(record)
        tags, digests = self._tags_and_digests(refs)
        rootfs = config.get("rootfs") or {}
        diff_ids = rootfs.get("diff_ids") or list(record.layers)
        return {
            "Id": ident, "RepoTags": tags, "RepoDigests": digests, "Parent": "",
            "Comment": str(config.get("comment") or ""), "Created": str(config.get("created") or ZERO_TIME),
            "DockerVersion": str(config.get("docker_version") or ""), "Author": str(config.get("author") or ""),
            "Config": config.get("config") or {}, "Architecture": str(config.get("architecture") or ""),
            "Variant": config.get("variant") or None, "Os": str(config.get("os") or ""),
            "Size": self._size(record),
            "GraphDriver": {"Name": "overlay2", "Data": None},
            "RootFS": {"Type": str(rootfs.get("type") or "layers"), "Layers": diff_ids},
            "Metadata": {"LastTagTime": ZERO_TIME},
            "Descriptor": self._descriptor(record),
        }

    def tag(self, source: str, target: str) -> None:
        """``docker tag SOURCE TARGET``."""
        _, record, _, _ = self._find(source)
        ref = parse(target)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        self._tag(ref, record)

    def exists(self, name: str) -> bool:
        try:
            self._find(name)
        except NotFound:
            return False
        return True

    # -- removing --------------------------------------------------------------------------
    def _used_blobs(self) -> set[str]:
        used: set[str] = set()
        records = [*self._names().values(), *self._untagged().values()]
        for record in records:
            used.update((record.manifest, record.config, *record.layers))
        return used

    def _untag(self, ref: Reference, answer: Answer) -> None:
        self.store.untag(ref)
        shown = f"{ref.familiar}@{ref.digest}" if ref.digest else f"{ref.familiar}:{ref.tag}"
        answer.append({"Untagged": shown})

    def remove(self, name: str, force: bool = False) -> Answer:
        """``docker rmi`` as moby's ImageDelete: a name is untagged (with the digest names of
        its repository when it was that repository's last tag), and the image is deleted once
        no name is left; an ID deletes the image, refused without ``force`` when it is named in
        more than one repository. Deleting removes every blob and extracted layer that no other
        image uses. Returns ``[{"Untagged": ...}, {"Deleted": ...}]``."""
        with self._lock:
            ident, record, refs, matched = self._find(name)
            names = self._names()
            records = {record, *(names[r] for r in refs if r in names)}
            answer: Answer = []
            remaining = [*refs]
            if matched is not None:
                self._untag(matched, answer)
                remaining.remove(matched)
                if not matched.digest and not any(
                        r.tag and not r.digest and r.repository == matched.repository for r in remaining):
                    for ref in [r for r in remaining if r.digest and r.repository == matched.repository]:
                        self._untag(ref, answer)
                        remaining.remove(ref)
                if remaining:
                    return answer
            else:
                tags = [r for r in refs if r.tag and not r.digest]
                if len(tags) <= 1 and len({r.repository for r in refs}) <= 1:
                    for ref in refs:
                        self._untag(ref, answer)
                    remaining = []
                if remaining and not force:
                    raise Conflict(f"conflict: unable to delete {ident.removeprefix('sha256:')[:12]} "
                                   "(must be forced) - image is referenced in multiple repositories")
                for ref in remaining:
                    self._untag(ref, answer)
            untagged = self._untagged()
            if untagged.pop(ident, None) is not None:
                self._save_untagged(untagged)
            used = self._used_blobs()
            for rec in records:
                for digest in (rec.manifest, rec.config, *rec.layers):
                    if digest in used:
                        continue
                    self.store.blob_path(digest).unlink(missing_ok=True)
                    if digest in rec.layers:
                        layer = self.root / "layers" / digest.removeprefix("sha256:")[:12]
                        shutil.rmtree(layer, ignore_errors=True)
            answer.append({"Deleted": ident})
            return answer


def _path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` do not cross ``/``."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                return False
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.fullmatch("".join(out), name) is not None
    except re.error:
        return False


def reference_matches(pattern: str, refs: RefList) -> bool:
    """Docker's ``reference`` filter (``FamiliarMatch``): the pattern against each name's
    familiar name and its familiar ``name:tag`` / ``name@digest``."""
    for ref in refs:
        full = f"{ref.familiar}@{ref.digest}" if ref.digest else f"{ref.familiar}:{ref.tag}"
        if _path_match(pattern, ref.familiar) or _path_match(pattern, full):
            return True
    return False
