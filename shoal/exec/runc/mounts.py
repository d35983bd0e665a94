"""Mounts in the host's mount namespace: a container's overlayfs root, and finding leftovers.

The overlay's mount data must stay under one page (4096 bytes). When the layer paths are too
long for that, the lower dirs are reached through short symlinks ``<dir>/l/<n>`` and mounted by
relative path (``mount(8)`` run in ``<dir>``), as Docker does with its short link ids.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

__all__ = ["is_mounted", "mount_overlay", "mounts_under", "umount"]

MNT_DETACH = 2
PAGE = 4096

_libc = ctypes.CDLL(None, use_errno=True)


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(path):
        code = path[i + 1:i + 4]
        if path[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def mount_points() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return [_unescape(line.split()[4]) for line in f if line.strip()]


def is_mounted(path: Path) -> bool:
    # a stat, not a read of mountinfo: that grows with every container on the node
    return os.path.ismount(path)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first (the order to unmount them)."""
    prefix = str(root).rstrip("/") + "/"
    found = [m for m in mount_points() if m == str(root) or m.startswith(prefix)]
    return sorted(set(found), key=len, reverse=True)


def mount_overlay(lower: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay on ``target``; ``lower`` is the top layer first."""
    data = f"lowerdir={':'.join(map(str, lower))},upperdir={upper},workdir={work}"
    if len(data) < PAGE:
        if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, data.encode()) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")
        return
    base = target.parent
    links = base / "l"
    links.mkdir(exist_ok=True)
    names = []
    for n, layer in enumerate(lower):
        link = links / format(n, "x")
        if not link.is_symlink():
            link.symlink_to(layer)
        names.append(f"l/{n:x}")
    data = (f"lowerdir={':'.join(names)},upperdir={os.path.relpath(upper, base)},"
            f"workdir={os.path.relpath(work, base)}")
    if len(data) >= PAGE:
        raise OSError(f"too many layers for one overlay mount ({len(lower)})")
    proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", data, str(target)],
                          cwd=base, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise OSError(f"mount overlay on {target}: {proc.stderr.strip()}")


def umount(path: Path | str) -> None:
    """Unmount ``path`` (lazily if busy); no error when it is not mounted."""
    p = str(path).encode()
    if _libc.umount2(p, 0) == 0:
        return
    err = ctypes.get_errno()
    if err in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
        return
    if _libc.umount2(p, MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):
            raise OSError(err, f"umount {path}: {os.strerror(err)}")
