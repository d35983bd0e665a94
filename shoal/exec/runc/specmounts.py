"""A ContainerSpec's ``Mounts`` as OCI mounts (called by the controller at prepare, with the
Go templates of Source and Target already expanded), with Docker's wording when one is wrong.

bind: ``Propagation`` (rprivate), ``NonRecursive`` (a plain bind), ``CreateMountpoint`` (the
source directory made), read-only as runc's ``ro`` (the top mount: ``ReadOnlyNonRecursive``)
or ``rro`` for ``ReadOnlyForceRecursive``. volume: a named one under ``volumes_root/<name>/
_data``, made on first use and filled with the image's content at the target (Docker's
copy-up, unless ``NoCopy``), or ``Subpath`` of it; an anonymous one in ``anon_root``, removed
with the container. tmpfs: ``SizeBytes``, ``Mode`` and ``Options`` (``[["noexec"]]``). What a
node cannot do at all is refused at create (shoal.model.mountopts).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from shoal.exec.errors import TaskRejected

__all__ = ["build_mounts"]


def _volume(source: str, target: str, volumes_root: Path, rootfs: Path,
            options: dict[str, Any]) -> str:
    if "/" in source or source in (".", ".."):
        raise TaskRejected(f"invalid mount config for type \"volume\": invalid volume name {source!r}")
    data = volumes_root / source / "_data"
    if not data.is_dir():
        data.mkdir(parents=True)
        seed = rootfs / target.lstrip("/")
        if not options.get("NoCopy") and seed.is_dir() and not seed.is_symlink():
            shutil.copytree(seed, data, symlinks=True, dirs_exist_ok=True)
    return str(data)


def _subpath(data: str, sub: str) -> str:
    """``VolumeOptions.Subpath``: a directory or file that exists inside the volume."""
    path = os.path.realpath(os.path.join(data, sub))
    if not (path + "/").startswith(os.path.realpath(data) + "/"):
        raise TaskRejected(f"invalid mount config for type \"volume\": subpath {sub!r} "
                           "escapes the volume")
    if not os.path.exists(path):
        raise TaskRejected(f"cannot access path {path}: no such file or directory")
    return path


def _bind(m: dict[str, Any], source: str, bad: str) -> list[str]:
    opts = m.get("BindOptions") or {}
    if not source.startswith("/"):
        raise TaskRejected(bad + f"invalid mount path: '{source}' mount path must be absolute")
    if not os.path.exists(source):
        if not opts.get("CreateMountpoint"):
            raise TaskRejected(bad + f"bind source path does not exist: {source}")
        os.makedirs(source, exist_ok=True)
    ro = []
    if m.get("ReadOnly"):
        ro = ["rro"] if opts.get("ReadOnlyForceRecursive") else ["ro"]
    kind = "bind" if opts.get("NonRecursive") else "rbind"
    return [kind, opts.get("Propagation") or "rprivate", *ro]


def _tmpfs(m: dict[str, Any]) -> list[str]:
    t = m.get("TmpfsOptions") or {}
    opts = ["nosuid", "nodev", *(["ro"] if m.get("ReadOnly") else [])]
    if t.get("SizeBytes"):
        opts.append(f"size={int(t['SizeBytes'])}")
    if t.get("Mode"):
        opts.append(f"mode={int(t['Mode']):o}")
    for option in t.get("Options") or []:
        opts.append("=".join(str(x) for x in option))
    return opts


def build_mounts(container_spec: dict[str, Any], *, volumes_root: Path, anon_root: Path,
                 rootfs: Path) -> list[dict[str, Any]]:
    """The ContainerSpec's Mounts as OCI mounts; TaskRejected with Docker's wording when one is
    wrong."""
    out = []
    for m in container_spec.get("Mounts") or []:
        kind = m.get("Type") or "volume"
        target, source = m.get("Target") or "", m.get("Source") or ""
        bad = f"invalid mount config for type \"{kind}\": "
        if not target.startswith("/"):
            raise TaskRejected(bad + f"invalid mount path: '{target}' mount path must be absolute")
        ro = ["ro"] if m.get("ReadOnly") else []
        if kind == "bind":
            out.append({"destination": target, "type": "bind", "source": source,
                        "options": _bind(m, source, bad)})
        elif kind == "volume":
            opts = m.get("VolumeOptions") or {}
            if source:
                data = _volume(source, target, volumes_root, rootfs, opts)
            else:
                anon = anon_root / str(len(out))
                anon.mkdir(parents=True, exist_ok=True)
                data = str(anon)
            if opts.get("Subpath"):
                data = _subpath(data, str(opts["Subpath"]))
            out.append({"destination": target, "type": "bind", "source": data,
                        "options": ["rbind", "rprivate", *ro]})
        elif kind == "tmpfs":
            out.append({"destination": target, "type": "tmpfs", "source": "tmpfs",
                        "options": _tmpfs(m)})
        else:
            raise TaskRejected(f"invalid mount config: mount type unknown: {kind!r}")
    return out
