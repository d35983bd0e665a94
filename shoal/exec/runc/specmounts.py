"""A ContainerSpec's ``Mounts`` as OCI mounts (called by the controller at prepare, with the
Go templates of Source and Target already expanded), with Docker's wording when one is wrong.

bind: ``Propagation`` (rprivate), ``NonRecursive`` (a plain bind), ``CreateMountpoint`` (the
source directory made), read-only as runc's ``ro`` (the top mount: ``ReadOnlyNonRecursive``)
or ``rro`` for ``ReadOnlyForceRecursive``. volume: a named one from the node's volumes
(shoal.volume, through ``VolumeProvider``), made on first use with the mount's DriverConfig and
filled, while empty, with the image's content at the target (Docker's copy-up, unless
``NoCopy``), or ``Subpath`` of it; an anonymous one in ``anon_root``, removed
with the container. tmpfs: ``SizeBytes``, ``Mode`` and ``Options`` (``[["noexec"]]``). What a
node cannot do at all is refused at create (shoal.model.mountopts).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from shoal.errors import ShoalError
from shoal.exec.errors import TaskRejected
from shoal.exec.executor import VolumeProvider

__all__ = ["build_mounts", "named_volumes", "remount_volumes"]


def named_volumes(container_spec: dict[str, Any]) -> list[str]:
    """The names of the volumes the ContainerSpec mounts (anonymous ones have none)."""
    return [m.get("Source") or "" for m in container_spec.get("Mounts") or []
            if (m.get("Type") or "volume") == "volume" and m.get("Source")]


def _volume(mount: dict[str, Any], volumes: VolumeProvider | None) -> Path:
    """A named volume's data directory from the node's volumes, made on first use with the
    mount's DriverConfig and labels (as swarm's executor creates it through dockerd)."""
    if volumes is None:
        raise TaskRejected("named volumes are not available on this node")
    opts = mount.get("VolumeOptions") or {}
    driver = opts.get("DriverConfig") or {}
    try:
        return volumes.mount(mount.get("Source") or "", driver=driver.get("Name") or "",
                             options=driver.get("Options") or None,
                             labels=opts.get("Labels") or None)
    except ShoalError as exc:
        raise TaskRejected(exc.message) from exc


def _copy_up(data: Path, seed: Path) -> None:
    """Docker's copy-up: an empty volume gets what the image has at its target."""
    if seed.is_dir() and not seed.is_symlink() and not any(data.iterdir()):
        shutil.copytree(seed, data, symlinks=True, dirs_exist_ok=True)


def remount_volumes(container_spec: dict[str, Any], volumes: VolumeProvider | None) -> None:
    """A prepared container's named volumes, their devices mounted again (after a reboot)."""
    for m in container_spec.get("Mounts") or []:
        if (m.get("Type") or "volume") == "volume" and m.get("Source"):
            _volume(m, volumes)


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


def build_mounts(container_spec: dict[str, Any], *, volumes: VolumeProvider | None,
                 anon_root: Path, rootfs: Path) -> list[dict[str, Any]]:
    """The ContainerSpec's Mounts as OCI mounts; TaskRejected with Docker's wording when one is
    wrong. A volume without a name gets a directory in ``anon_root`` (removed with the
    container); named ones come from ``volumes`` and outlive it."""
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
                volume = _volume(m, volumes)
            else:
                volume = anon_root / str(len(out))
                volume.mkdir(parents=True, exist_ok=True)
            if not opts.get("NoCopy"):
                _copy_up(volume, rootfs / target.lstrip("/"))
            data = str(volume)
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
