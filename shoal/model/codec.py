"""JSON in and out of the model, with Go's leniency on the way in.

Go's encoding/json matches keys case-insensitively and reads ``null`` as absent; docker-py relies
on both (``{"replicated": {"Replicas": 2}}``, ``"Command": null``). ``decode`` walks the request
against the target type, renames keys to their canonical spelling and drops nulls, then lets
msgspec validate. Free-form maps (labels, options) are left exactly as sent.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import msgspec

from shoal.errors import InvalidArgument

__all__ = ["CONTAINER_SPEC_KEYS", "decode", "encode", "to_builtins"]

T = TypeVar("T")

# ContainerSpec passes through as a dict; these are its keys (api/types/swarm/container.go).
CONTAINER_SPEC_KEYS = ["Image", "Labels", "Command", "Args", "Hostname", "Env", "Dir", "User", "Groups", "Privileges", "Init", "StopSignal", "TTY", "OpenStdin", "ReadOnly", "Mounts", "StopGracePeriod", "Healthcheck", "Hosts", "DNSConfig", "Secrets", "Configs", "Isolation", "Sysctls", "CapabilityAdd", "CapabilityDrop", "Ulimits", "OomScoreAdj"]
_HEALTH_KEYS = ["Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"]
# Secret and config references (SecretReference, ConfigReference, their File target),
# Privileges and the other options: the control API and the nodes read these keys, so they are
# stored in one spelling.
_NESTED_KEYS = {
    "Secrets": ["File", "SecretID", "SecretName"],
    "Configs": ["File", "Runtime", "ConfigID", "ConfigName"],
    "File": ["Name", "UID", "GID", "Mode"],
    "Privileges": ["CredentialSpec", "SELinuxContext", "Seccomp", "AppArmor", "NoNewPrivileges"],
    "CredentialSpec": ["Config", "File", "Registry"],
    "SELinuxContext": ["Disable", "User", "Role", "Type", "Level"],
    "Seccomp": ["Mode", "Profile"],
    "AppArmor": ["Mode"],
    # the options the nodes read (shoal.model.containeropts, mountopts, logdriver)
    "DNSConfig": ["Nameservers", "Search", "Options"],
    "Ulimits": ["Name", "Soft", "Hard"],
    "Mounts": ["Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions",
               "VolumeOptions", "ImageOptions", "TmpfsOptions", "ClusterOptions"],
    "BindOptions": ["Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive",
                    "ReadOnlyForceRecursive"],
    "VolumeOptions": ["NoCopy", "Labels", "Subpath", "DriverConfig"],
    "DriverConfig": ["Name", "Options"],
    "TmpfsOptions": ["SizeBytes", "Mode", "Options"],
    "LogDriver": ["Name", "Options"],
}
_CANON: dict[str, dict[str, str]] = {
    "ContainerSpec": {k.lower(): k for k in CONTAINER_SPEC_KEYS},
    "Healthcheck": {k.lower(): k for k in _HEALTH_KEYS},
    **{key: {k.lower(): k for k in keys} for key, keys in _NESTED_KEYS.items()},
}


@functools.cache
def _fields(cls: type) -> dict[str, tuple[str, Any]]:
    """lower-case key -> (canonical key, field type info) for a Struct type."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.encode_name.lower(): (f.encode_name, f.type) for f in info.fields}


def _normalize(value: Any, info: Any, key: str = "") -> Any:
    if value is None:
        return None
    if isinstance(info, msgspec.inspect.UnionType):
        for t in info.types:
            if not isinstance(t, msgspec.inspect.NoneType):
                return _normalize(value, t, key)
        return value
    if isinstance(info, msgspec.inspect.StructType) and isinstance(value, dict):
        fields = _fields(info.cls)
        out: dict[str, Any] = {}
        for k, v in value.items():
            if v is None:
                continue
            canon = fields.get(str(k).lower())
            if canon is None:
                continue  # unknown field: ignored, as Go does
            out[canon[0]] = _normalize(v, canon[1], canon[0])
        return out
    if isinstance(info, msgspec.inspect.ListType) and isinstance(value, list):
        return [_normalize(v, info.item_type, key) for v in value]
    if isinstance(info, msgspec.inspect.DictType) and isinstance(value, dict):
        if key in _CANON:
            return _canon_dict(value, key)
        return {k: _normalize(v, info.value_type) for k, v in value.items()}
    return value


def _canon_dict(value: dict[str, Any], key: str) -> dict[str, Any]:
    names = _CANON[key]
    out: dict[str, Any] = {}
    for k, v in value.items():
        if v is None:
            continue
        canon = names.get(k.lower(), k)
        if canon in _CANON and isinstance(v, dict):
            v = _canon_dict(v, canon)
        elif canon in _CANON and isinstance(v, list):  # Secrets, Configs: lists of references
            v = [_canon_dict(x, canon) if isinstance(x, dict) else x for x in v]
        out[canon] = v
    return out


def decode(data: bytes | str | Any, type_: type[T], *, what: str = "request body") -> T:
    """Parse a client's JSON into ``type_`` leniently; bad input is InvalidArgument."""
    try:
        raw = msgspec.json.decode(data) if isinstance(data, (bytes, str)) else data
        return msgspec.convert(_normalize(raw, msgspec.inspect.type_info(type_)), type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidArgument(f"invalid JSON in {what}: {exc}") from exc


_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def to_builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)
