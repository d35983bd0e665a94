"""``docker import``: a rootfs tar (plain, gzip, bzip2 or xz) as a one-layer image (issue 4).

The layer is stored uncompressed (its digest is the image's only diff ID); the config gets the
host's platform, ``--change`` instructions and a history entry, and an OCI manifest is written
for it. An import is all or nothing: a failure removes the blobs it added that no image uses.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import tarfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any

from shoal.errors import InvalidArgument
from shoal.image.archive import oci_manifest
from shoal.image.catalog import Catalog
from shoal.image.changes import apply_changes
from shoal.image.reference import parse
from shoal.image.store import ImageRecord

__all__ = ["import_rootfs"]


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


def import_rootfs(catalog: Catalog, fileobj: IO[bytes], name: str = "", changes: Iterable[str] = (),
                  message: str = "", *, source: str = "-", platform: tuple[str, str],
                  extract: Callable[[str], object]) -> str:
    """A rootfs tar as a one-layer image named ``name`` (none: dangling), its layer unpacked
    with ``extract``; ``changes`` as ``docker import --change``. Returns the image ID."""
    store = catalog.store
    ref = parse(name) if name else None
    if ref is not None and ref.digest:
        raise InvalidArgument("cannot import digest reference")
    config_inner = apply_changes({}, list(changes))
    stream = _decompressed(fileobj)
    added: list[str] = []
    try:
        with store.writer() as out:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                out.write(chunk)
            with catalog.lock:
                layer = out.commit()
                # (a blob already present is the same bytes; nothing of ours to undo there)
        added.append(layer)
        try:
            with open(store.blob_path(layer), "rb") as blob, \
                    tarfile.open(fileobj=blob, mode="r|") as tar:
                for _member in tar:
                    pass
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidArgument(f"archive/tar: invalid tar header: {exc}") from exc
        extract(layer)  # as dockerd: unpacked at import, not at first run
        created = _now()
        os_, arch = platform
        config = {"architecture": arch, "os": os_, "created": created, "config": config_inner,
                  "rootfs": {"type": "layers", "diff_ids": [layer]},
                  "history": [{"created": created, "created_by": "",
                               "comment": message or f"Imported from {source}"}]}
        if message:
            config["comment"] = message
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_digest = store.put_blob(config_bytes)
        added.append(config_digest)
        size = store.blob_path(layer).stat().st_size
        manifest = store.put_blob(oci_manifest((config_digest, len(config_bytes)), [(layer, size)]))
        added.append(manifest)
        record = ImageRecord(manifest, config_digest, (layer,))
        if ref is None:
            catalog.keep_untagged(record)
        else:
            catalog.tag(ref, record)
    except BaseException:
        with catalog.lock:
            used = catalog.used_blobs()
            for digest in added:
                if digest not in used:
                    store.remove_blob(digest)
        raise
    return config_digest
