"""The node's images by name and by ID (issue 4): what pulls, loads and imports name, and what
``inspect``, ``list`` and ``rmi`` look up.

Names live in the ImageStore's index (``repo:tag``, and ``repo@digest`` for what a registry
served); an image that loses its last name (``import`` without a name, ``load`` of an untagged
image, a tag moved to another image) is kept as *dangling* in ``untagged.json``, as Docker keeps
``<none>:<none>`` images.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from pathlib import Path

from shoal.errors import InvalidArgument, NotFound
from shoal.fsutil import write_atomic
from shoal.image.reference import Reference, parse
from shoal.image.store import ImageRecord, ImageStore

__all__ = ["Catalog", "Found", "Images"]

log = logging.getLogger(__name__)

Images = dict[str, tuple[ImageRecord, list[Reference]]]
Found = tuple[str, ImageRecord, list[Reference], Reference | None]


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = ImageStore(root)
        self.lock = threading.RLock()  # the index and untagged.json; blob removal
        self._untagged_path = root / "untagged.json"

    def untagged(self) -> dict[str, ImageRecord]:
        try:
            doc = json.loads(self._untagged_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {k: ImageRecord(v["manifest"], v["config"], tuple(v["layers"])) for k, v in doc.items()}

    def save_untagged(self, records: dict[str, ImageRecord]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self._untagged_path, json.dumps(
            {k: asdict(v) | {"layers": list(v.layers)} for k, v in records.items()}, indent=1, sort_keys=True))

    def names(self) -> dict[Reference, ImageRecord]:
        out = {}
        for key, record in self.store.names().items():
            try:
                out[parse(key)] = record
            except InvalidArgument:
                log.warning("ignoring an unreadable name in the image index: %r", key)
        return out

    def images(self) -> Images:
        """Every image by ID: a record and its names (none for a dangling one)."""
        out: Images = {}
        for ref, record in sorted(self.names().items(), key=lambda item: str(item[0])):
            out.setdefault(record.config, (record, []))[1].append(ref)
        for ident, record in self.untagged().items():
            out.setdefault(ident, (record, []))
        return out

    def tag(self, ref: Reference, record: ImageRecord) -> None:
        """Name ``record`` by ``ref``; the image that loses its last name becomes dangling."""
        with self.lock:
            names = self.names()
            previous = names.get(ref)
            self.store.tag(ref, record)
            untagged = self.untagged()
            changed = untagged.pop(record.config, None) is not None
            if previous is not None and previous.config != record.config and not any(
                    r.config == previous.config for k, r in names.items() if k != ref):
                untagged[previous.config] = previous
                changed = True
            if changed:
                self.save_untagged(untagged)

    def keep_untagged(self, record: ImageRecord) -> None:
        with self.lock:
            if any(r.config == record.config for r in self.names().values()):
                return
            untagged = self.untagged()
            untagged[record.config] = record
            self.save_untagged(untagged)

    def find(self, name: str) -> Found:
        """(image ID, record, all its names, the name matched) for a name, ``name@digest``, an
        ID or a unique ID prefix; NotFound with Docker's message otherwise."""
        images = self.images()
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

    def exists(self, name: str) -> bool:
        try:
            self.find(name)
        except NotFound:
            return False
        return True

    def used_blobs(self) -> set[str]:
        """Every blob some image (named or dangling) still uses."""
        used: set[str] = set()
        records = [*self.names().values(), *self.untagged().values()]
        for record in records:
            used.update((record.manifest, record.config, *record.layers))
        return used
