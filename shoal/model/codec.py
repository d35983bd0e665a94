"""JSON in and out of the model, with Go's leniency on the way in.

Go's encoding/json matches keys case-insensitively and reads ``null`` as absent; docker-py relies
on both (``{"replicated": {"Replicas": 2}}``, ``"Command": null``). ``decode`` walks the request
against the target type, renames keys to their canonical spelling and drops nulls, then lets
msgspec validate. Free-form maps (labels, options) are left exactly as sent.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, TypeVar

import msgspec

from shoal.errors import InvalidArgument
from shoal.model.gotypes import BOUNDS, SHAPES, go_name

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


@functools.cache
def _shape(key: str) -> Any:
    return msgspec.inspect.type_info(SHAPES[key])


class _Mismatch(Exception):
    """Go's json.UnmarshalTypeError: ``value`` ("string", "number 1e99"...) does not fit the
    Go type ``go`` of the field at ``path`` (JSON keys from the top) of the Go struct ``struct``."""

    def __init__(self, value: str, go: str, at: _At) -> None:
        super().__init__(value, go, at)
        self.value, self.go, self.at = value, go, at

    def __str__(self) -> str:
        if self.at.path:
            return (f"json: cannot unmarshal {self.value} into Go struct field "
                    f"{self.at.struct}.{'.'.join(self.at.path)} of type {self.go}")
        return f"json: cannot unmarshal {self.value} into Go value of type {self.go}"


class _At(NamedTuple):
    """Where the decoder is: the innermost Go struct and the path of JSON keys to the field."""

    struct: str = ""
    path: tuple[str, ...] = ()


def _kind(value: Any) -> str:
    """How Go names a JSON value that does not fit."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _go(info: Any) -> str:
    """Go's name of the type ``info`` stands for ("[]string", "map[string]string", "uint64")."""
    if isinstance(info, msgspec.inspect.Metadata):
        return str((info.extra or {}).get("go") or _go(info.type))
    if isinstance(info, msgspec.inspect.UnionType):
        types = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        return _go(types[0]) if len(types) == 1 else "interface {}"
    if isinstance(info, msgspec.inspect.StructType):
        return go_name(info.cls)
    if isinstance(info, msgspec.inspect.ListType):
        return "[]" + _go(info.item_type)
    if isinstance(info, msgspec.inspect.DictType):
        return "map[string]" + _go(info.value_type)
    simple: dict[type, str] = {msgspec.inspect.IntType: "int64", msgspec.inspect.FloatType: "float64",
                               msgspec.inspect.StrType: "string", msgspec.inspect.BoolType: "bool"}
    return simple.get(type(info), "interface {}")


def _number(value: Any, info: Any, go: str, at: _At) -> Any:
    """An integer or float field: a JSON number the Go type holds, else Go's error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Mismatch(_kind(value), go, at)
    if isinstance(info, msgspec.inspect.IntType):
        low, high = BOUNDS.get(go, BOUNDS["int64"])
        if isinstance(value, float) or not low <= value <= high:
            raise _Mismatch(f"number {value}", go, at)
    elif go == "float32" and abs(value) > _FLOAT32_MAX:
        raise _Mismatch(f"number {value}", go, at)
    return value


_FLOAT32_MAX = 3.4028234663852886e38
_SCALARS: dict[type, type] = {msgspec.inspect.StrType: str, msgspec.inspect.BoolType: bool}


_TOP = _At()


def _normalize(value: Any, info: Any, key: str = "", at: _At = _TOP) -> Any:
    """``value`` with canonical keys and no nulls, checked against ``info`` as Go's decoder
    would check it against the Go type (``_Mismatch``); msgspec converts it after."""
    if value is None:
        return None
    go = ""
    if isinstance(info, msgspec.inspect.Metadata):
        go = str((info.extra or {}).get("go", ""))
        info = info.type
    if isinstance(info, msgspec.inspect.UnionType):
        for t in info.types:
            if not isinstance(t, msgspec.inspect.NoneType):
                return _normalize(value, t, key, at)
        return value
    if isinstance(info, (msgspec.inspect.IntType, msgspec.inspect.FloatType)):
        return _number(value, info, go or _go(info), at)
    scalar = _SCALARS.get(type(info))
    if scalar is not None:
        if not isinstance(value, scalar):
            raise _Mismatch(_kind(value), _go(info), at)
        return value
    if isinstance(info, msgspec.inspect.StructType):
        if not isinstance(value, dict):
            raise _Mismatch(_kind(value), _go(info), at)
        struct = go_name(info.cls).rpartition(".")[2]
        fields = _fields(info.cls)
        out: dict[str, Any] = {}
        for k, v in value.items():
            if v is None:
                continue
            canon = fields.get(str(k).lower())
            if canon is None:
                continue  # unknown field: ignored, as Go does
            out[canon[0]] = _normalize(v, canon[1], canon[0], _At(struct, (*at.path, canon[0])))
        return out
    if isinstance(info, msgspec.inspect.ListType):
        if not isinstance(value, list):
            raise _Mismatch(_kind(value), _go(info), at)
        return [_normalize(v, info.item_type, key, at) for v in value]
    if isinstance(info, msgspec.inspect.DictType):
        if key in SHAPES and isinstance(info.value_type, msgspec.inspect.AnyType):
            _normalize(value, _shape(key), key, at)  # checked as Go's struct, kept as sent
        elif not isinstance(value, dict):
            raise _Mismatch(_kind(value), _go(info), at)
        if key in _CANON:
            return _canon_dict(value, key)
        return {k: _normalize(v, info.value_type, "", at) for k, v in value.items()}
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
    """Parse a client's JSON into ``type_`` leniently; bad input is InvalidArgument, with
    dockerd's words (``invalid JSON: json: cannot unmarshal ...``) for a value of the wrong
    type or out of its Go type's range."""
    prefix = "invalid JSON" if what == "request body" else f"invalid JSON in {what}"
    try:
        raw = msgspec.json.decode(data) if isinstance(data, (bytes, str)) else data
        return msgspec.convert(_normalize(raw, msgspec.inspect.type_info(type_)), type_)
    except _Mismatch as exc:
        raise InvalidArgument(f"{prefix}: {exc}") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidArgument(f"{prefix}: {exc}") from exc


_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def to_builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)
