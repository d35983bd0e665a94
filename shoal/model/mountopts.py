"""What Shoal's nodes make of a ContainerSpec's ``Mounts``, checked at service create and
update so that no mount option is stored and then ignored.

Honoured: types ``bind``, ``volume`` (local, named or anonymous, ``NoCopy``, ``Subpath``) and
``tmpfs`` (``SizeBytes``, ``Mode``, ``Options``); ``ReadOnly``; bind ``Propagation``,
``NonRecursive``, ``CreateMountpoint``, ``ReadOnlyNonRecursive`` (what runc's ``ro`` is) and
``ReadOnlyForceRecursive``; ``Consistency`` (Docker ignores it on Linux too); volume ``Labels``
(kept in the spec: Shoal has no volume objects to show them on). Refused, naming the field:
``npipe``, ``cluster`` (CSI) and ``image`` mounts, volume drivers other than ``local`` and
driver options (an NFS volume, say). Paths are checked on the node, after the Go templates in
``Source`` and ``Target`` are expanded for the task (shoal.exec.templating).
"""

from __future__ import annotations

from typing import Any

from shoal.errors import InvalidArgument

__all__ = ["check_mounts"]

_PROPAGATIONS = ("", "rprivate", "private", "rshared", "shared", "rslave", "slave")
_REFUSED_TYPES = {
    "npipe": "named pipes are for Windows containers",
    "cluster": "cluster (CSI) volumes need a CSI plugin, and Shoal has none",
    "image": "Shoal does not mount images into containers",
}


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid JSON in request body: {what} must be an object")
    return value


def _volume(m: dict[str, Any], target: str) -> None:
    opts = _object(m.get("VolumeOptions"), "Mount.VolumeOptions")
    driver = _object(opts.get("DriverConfig"), "Mount.VolumeOptions.DriverConfig")
    name = driver.get("Name") or "local"
    if name != "local":
        raise InvalidArgument(f"invalid mount config for {target}: volume driver {name!r} is "
                              "not supported by Shoal: only local volumes")
    # DriverConfig.Options are the local driver's (type, device, o), checked by the node's
    # volume service when the volume is made (shoal.volume.local), as dockerd checks them
    sub = opts.get("Subpath") or ""
    if sub and (sub.startswith("/") or ".." in sub.split("/")):
        raise InvalidArgument(f"invalid mount config for {target}: subpath must be a relative "
                              "path within the volume")


def _bind(m: dict[str, Any], target: str) -> None:
    opts = _object(m.get("BindOptions"), "Mount.BindOptions")
    if (opts.get("Propagation") or "") not in _PROPAGATIONS:
        raise InvalidArgument(f"invalid mount config for {target}: invalid propagation mode "
                              f"{opts.get('Propagation')!r}")
    if opts.get("ReadOnlyNonRecursive") and opts.get("ReadOnlyForceRecursive"):
        raise InvalidArgument(f"invalid mount config for {target}: cannot set both "
                              "ReadOnlyNonRecursive and ReadOnlyForceRecursive")
    if (opts.get("ReadOnlyNonRecursive") or opts.get("ReadOnlyForceRecursive")) \
            and not m.get("ReadOnly"):
        raise InvalidArgument(f"invalid mount config for {target}: ReadOnlyNonRecursive and "
                              "ReadOnlyForceRecursive need ReadOnly")


def _tmpfs(m: dict[str, Any], target: str) -> None:
    opts = _object(m.get("TmpfsOptions"), "Mount.TmpfsOptions")
    for option in opts.get("Options") or []:
        if not isinstance(option, list) or not 1 <= len(option) <= 2 \
                or not all(isinstance(x, str) and x for x in option):
            raise InvalidArgument(f"invalid mount config for {target}: TmpfsOptions.Options "
                                  "entries are [\"flag\"] or [\"key\", \"value\"]")


def check_mounts(mounts: Any) -> None:
    """InvalidArgument for a mount Shoal's nodes would not make as asked."""
    if mounts is None:
        return
    if not isinstance(mounts, list) or not all(isinstance(m, dict) for m in mounts):
        raise InvalidArgument("invalid JSON in request body: Mounts must be a list of objects")
    seen: set[str] = set()
    for m in mounts:
        kind, target = m.get("Type") or "volume", str(m.get("Target") or "")
        if target in seen:  # swarmkit's validateMounts
            raise InvalidArgument(f"rpc error: code = InvalidArgument desc = invalid mount "
                                  f"target, duplicated mount point: {target}")
        seen.add(target)
        if kind in _REFUSED_TYPES:
            raise InvalidArgument(f"mount type {kind!r} is not supported by Shoal: "
                                  f"{_REFUSED_TYPES[kind]}")
        if kind == "volume":
            _volume(m, target)
        elif kind == "bind":
            _bind(m, target)
        elif kind == "tmpfs":
            _tmpfs(m, target)
        else:
            raise InvalidArgument(f"invalid mount config: mount type unknown: {kind!r}")
