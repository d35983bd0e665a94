"""Parse ``--mount`` values as docker's ``MountOpt`` does:
``type=bind,source=/a,target=/b,readonly`` -> an API Mount object."""

from __future__ import annotations

import os
from typing import Any

from shoal.cli.flagtypes import GoValue
from shoal.cli.format import units
from shoal.cli.service.opts import csv_fields

__all__ = ["MOUNT", "parse_mount"]


def _parse_bool_field(key: str, value: str) -> bool:
    try:
        return units.parse_bool(value)
    except ValueError:
        raise ValueError(f"invalid value for {key}: {value}") from None


def parse_mount(value: str) -> dict[str, Any]:
    """docker's ``MountOpt.Set``: ``type=bind,source=/a,target=/b,readonly`` -> Mount."""
    mount: dict[str, Any] = {"Type": "volume"}
    options: dict[str, dict[str, Any]] = {}

    def group(name: str) -> dict[str, Any]:
        if name == "VolumeOptions" and name not in options:
            options[name] = {"Labels": {}, "DriverConfig": {}}
        return options.setdefault(name, {})

    for field in csv_fields(value):
        key, sep, val = field.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                mount["ReadOnly"] = True
            elif key == "volume-nocopy":
                group("VolumeOptions")["NoCopy"] = True
            elif key == "bind-nonrecursive":
                group("BindOptions")["NonRecursive"] = True
            else:
                raise ValueError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "type":
            mount["Type"] = val.lower()
        elif key in ("source", "src"):
            mount["Source"] = (
                os.path.abspath(val) if not os.path.isabs(val) and val.startswith(".") else val
            )
        elif key in ("target", "dst", "destination"):
            mount["Target"] = val
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _parse_bool_field(key, val)
        elif key == "consistency":
            mount["Consistency"] = val.lower()
        elif key == "bind-propagation":
            group("BindOptions")["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            group("BindOptions")["NonRecursive"] = _parse_bool_field(key, val)
        elif key == "bind-recursive":
            flags = {
                "enabled": None,
                "disabled": "NonRecursive",
                "writable": "ReadOnlyNonRecursive",
                "readonly": "ReadOnlyForceRecursive",
            }
            if val not in flags:
                raise ValueError(
                    f'invalid value for {key}: {val} (must be "enabled", "disabled", '
                    '"writable", or "readonly")'
                )
            if flags[val]:
                group("BindOptions")[str(flags[val])] = True
        elif key == "volume-subpath":
            group("VolumeOptions")["Subpath"] = val
        elif key == "volume-nocopy":
            group("VolumeOptions")["NoCopy"] = _parse_bool_field("volume-nocopy", val)
        elif key == "volume-label":
            label_key, _, label_value = val.partition("=")
            if label_key:
                group("VolumeOptions")["Labels"][label_key] = label_value
        elif key == "volume-driver":
            group("VolumeOptions")["DriverConfig"]["Name"] = val
        elif key == "volume-opt":
            opt_key, _, opt_value = val.partition("=")
            if opt_key:
                group("VolumeOptions")["DriverConfig"].setdefault("Options", {})[opt_key] = (
                    opt_value
                )
        elif key == "image-subpath":
            group("ImageOptions")["Subpath"] = val
        elif key == "tmpfs-size":
            try:
                group("TmpfsOptions")["SizeBytes"] = units.ram_in_bytes(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            try:
                group("TmpfsOptions")["Mode"] = units.parse_uint(val, 32, base=8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Type"):
        raise ValueError("type is required")
    if not mount.get("Target"):
        raise ValueError("target is required")
    for name, kind in (
        ("VolumeOptions", "volume"),
        ("ImageOptions", "image"),
        ("BindOptions", "bind"),
        ("TmpfsOptions", "tmpfs"),
    ):
        if name in options and mount["Type"] != kind:
            prefix = name[: -len("Options")].lower()
            raise ValueError(f"cannot mix '{prefix}-*' options with mount type '{mount['Type']}'")
    bind = options.get("BindOptions", {})
    if bind.get("ReadOnlyNonRecursive") and not mount.get("ReadOnly"):
        raise ValueError(
            "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"
        )
    if bind.get("ReadOnlyForceRecursive"):
        if not mount.get("ReadOnly"):
            raise ValueError(
                "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"
            )
        if bind.get("Propagation") != "rprivate":
            raise ValueError(
                "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' "
                "to be specified in conjunction"
            )
    ordered = {
        k: mount[k] for k in ("Type", "Source", "Target", "ReadOnly", "Consistency") if mount.get(k)
    }
    for name in ("BindOptions", "VolumeOptions", "ImageOptions", "TmpfsOptions"):
        if name in options:
            ordered[name] = {
                k: v
                for k, v in options[name].items()
                if k == "DriverConfig" or v not in ({}, "", None, False)
            }
    return ordered


MOUNT = GoValue("mount", parse_mount)
