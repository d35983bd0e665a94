"""Extract an image layer (a tar, plain or gzip) into a directory of its own, for overlayfs.

Extraction is all or nothing: into ``<dest>.partial``, renamed to ``dest`` only when every entry
is in, removed on any error. Safety (reference linux.md section 2) is checked here, the same on
every Python (tarfile's filters arrived in 3.11.4; Debian 12 has 3.11.2): every entry stays inside
the directory (leading slashes stripped; a path, or a write through a symlink, that would land
outside is refused, as tarfile's 'tar' filter does); hard links must point inside too; the entry's
own mode is kept (setuid bits and /tmp's 1777 are part of an image). Absolute symlinks are kept as
they are: they resolve inside the container's root when it runs.

OCI whiteouts become overlayfs ones: ``.wh.NAME`` a 0/0 character device NAME (a file deleted
by this layer), ``.wh..wh..opq`` the ``trusted.overlay.opaque`` attribute on its directory.
"""

from __future__ import annotations

import copy
import os
import shutil
import stat
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from shoal.errors import InvalidArgument

__all__ = ["OPAQUE", "WHITEOUT_PREFIX", "LayerError", "extract_layer"]

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"


class LayerError(InvalidArgument):
    """A layer that cannot be extracted safely (an entry escapes its directory, or is malformed)."""


# Where tarfile has filters, say "fully trusted" (the checks are ours): from 3.14 on its default
# is the 'data' filter, which would drop setuid bits and refuse absolute symlinks.
_NO_FILTER: dict[str, Any] = (
    {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {})


def _checked(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """``member`` with leading slashes stripped from its name (and a hard link's target, which
    tarfile would otherwise take as a host path), refused if either would land outside ``dest``."""
    safe = copy.copy(member)
    safe.name = member.name.lstrip("/") or "."
    target = os.path.realpath(os.path.join(dest, safe.name))
    if os.path.commonpath([target, dest]) != dest:
        raise LayerError(f"layer entry {member.name!r} refused: it would land outside the layer")
    if member.islnk():
        safe.linkname = member.linkname.lstrip("/")
        linked = os.path.realpath(os.path.join(dest, safe.linkname))
        if os.path.commonpath([linked, dest]) != dest:
            raise LayerError(f"layer entry {member.name!r} refused: hard link to {member.linkname!r} "
                             "points outside the layer")
    return safe


def _inside(root: str, relative: PurePosixPath) -> str:
    """``root/relative`` with every symlink resolved, refused unless it stays under ``root``."""
    path = os.path.realpath(os.path.join(root, str(relative).lstrip("/")))
    if os.path.commonpath([path, root]) != root:
        raise LayerError(f"layer entry {str(relative)!r} refused: it would land outside the layer")
    return path


def _whiteout(root: str, name: PurePosixPath) -> None:
    parent = _inside(root, name.parent)
    os.makedirs(parent, exist_ok=True)
    if name.name == OPAQUE:
        os.setxattr(parent, "trusted.overlay.opaque", b"y")
        return
    target = os.path.join(parent, name.name[len(WHITEOUT_PREFIX):])
    if os.path.lexists(target):
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        else:
            os.unlink(target)
    os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def extract_layer(source: BinaryIO, dest: Path) -> None:
    """Extract the layer tar read from ``source`` into ``dest`` (which must not exist yet)."""
    if dest.exists():
        raise LayerError(f"layer directory {dest} exists already")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a crash
    partial.mkdir(parents=True)
    root = os.path.realpath(partial)
    try:
        with tarfile.open(fileobj=source, mode="r|*") as tar:
            for member in tar:
                name = PurePosixPath(member.name)
                if name.name.startswith(WHITEOUT_PREFIX):
                    _whiteout(root, name)
                    continue
                tar.extract(_checked(member, root), root, set_attrs=True, numeric_owner=True,
                            **_NO_FILTER)
        os.rename(partial, dest)
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, (tarfile.TarError, EOFError)) and not isinstance(exc, LayerError):
            raise LayerError(f"layer is not a valid tar: {exc}") from exc
        raise
