"""A task's secrets and configs as files (moby's setupSecretDir): a small tmpfs at
``<container dir>/mounts/secrets`` (mode 0700, root, nodev nosuid noexec), one file per secret or
config, named by its ID, with the reference's UID, GID and mode; then the tmpfs is made
read-only and each file is bind-mounted read-only at its target in the container. The data
never touches a disk; the tmpfs goes with the container's other mounts when it is removed
(state.remove_container_files), and outlives a daemon restart while the container runs."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

from shoal.exec.errors import Temporary
from shoal.exec.executor import TaskFiles
from shoal.exec.runc import mounts
from shoal.model.references import FileRef

__all__ = ["bind_mounts", "drivers", "fetch", "populate", "tmpfs_dir"]

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC
BASE_SIZE = 1024 * 1024  # room beyond the data itself: inodes, rounding to pages

_libc = ctypes.CDLL(None, use_errno=True)


def tmpfs_dir(container_dir: Path) -> Path:
    return container_dir / "mounts" / "secrets"


def fetch(refs: list[FileRef], files: TaskFiles | None) -> dict[FileRef, bytes]:
    """Each reference's data; Temporary while the agent does not hold one (after a restart the
    manager sends it with the next full assignments)."""
    out = {}
    for ref in refs:
        get = None if files is None else files.secret if ref.kind == "secret" else files.config
        data = get(ref.id) if get is not None else None
        if data is None:
            raise Temporary(f"{ref.kind} {ref.id} is not on this node yet")
        out[ref] = data
    return out


def drivers(refs: list[FileRef], files: TaskFiles | None) -> dict[FileRef, str]:
    """The template driver of each templated reference (shoal.exec.templating expands them)."""
    if files is None:
        return {}
    found = {ref: files.templating(ref.kind, ref.id) for ref in refs}
    return {ref: driver for ref, driver in found.items() if driver}


def _mount(target: Path, flags: int, options: str) -> None:
    if _libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {target}: {os.strerror(err)}")


def populate(container_dir: Path, data: dict[FileRef, bytes]) -> None:
    """Mount the tmpfs and write the files (blocking); a leftover mount is replaced."""
    d = tmpfs_dir(container_dir)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    if mounts.is_mounted(d):
        mounts.umount(d)
    size = BASE_SIZE + sum(len(b) for b in data.values())
    _mount(d, _FLAGS, f"mode=0700,uid=0,gid=0,size={size}")
    try:
        for ref, content in data.items():
            fd = os.open(d / ref.id, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, content)  # tmpfs: one write takes it all
                os.fchown(fd, ref.uid, ref.gid)
                os.fchmod(fd, ref.mode & 0o7777)  # after chown, which clears set-id bits
            finally:
                os.close(fd)
        _mount(d, _FLAGS | MS_REMOUNT | MS_RDONLY, "")
    except BaseException:
        mounts.umount(d)
        raise


def bind_mounts(container_dir: Path, refs: list[FileRef]) -> list[dict[str, Any]]:
    """The OCI mounts of the files at their targets, read-only."""
    d = tmpfs_dir(container_dir)
    return [{"destination": ref.target, "type": "bind", "source": str(d / ref.id),
             "options": ["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"]}
            for ref in refs]
