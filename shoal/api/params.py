"""Query parameters as the Docker API reads them: lenient booleans, strict booleans, filters in
both encodings (the CLI's map of bools, docker-py's lists)."""

from __future__ import annotations

import json

from aiohttp import web

from shoal.errors import InvalidArgument

__all__ = ["bool_value", "filters", "parse_bool", "version_param"]

Filters = dict[str, list[str]]


def bool_value(request: web.Request, name: str) -> bool:
    """moby's BoolValue: "", 0, no, false, none are false; anything else is true."""
    value = request.query.get(name, "").strip().lower()
    return value not in ("", "0", "no", "false", "none")


def parse_bool(request: web.Request, name: str) -> bool:
    """strconv.ParseBool, for status, insertDefaults and rotate*Token."""
    value = request.query.get(name, "")
    if value in ("", "0", "f", "F", "FALSE", "false", "False"):
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    raise InvalidArgument(f"invalid value for {name}: {value!r}")


def filters(request: web.Request, allowed: set[str]) -> Filters:
    raw = request.query.get("filters", "")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid filter: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgument("invalid filter: expected an object")
    out: Filters = {}
    for key, values in data.items():
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
        if isinstance(values, dict):
            out[key] = [k for k, v in values.items() if v]
        elif isinstance(values, list):
            out[key] = [str(v) for v in values]
        else:
            out[key] = [str(values)]
    return out


def version_param(request: web.Request, *, what: str = "version") -> int:
    """strconv.ParseUint(version, 10, 64), with dockerd's message."""
    raw = request.query.get("version", "")
    if raw.isascii() and raw.isdigit():
        if int(raw) < 2**64:
            return int(raw)
        reason = "value out of range"
    else:
        reason = "invalid syntax"
    raise InvalidArgument(f'invalid {what} \'{raw}\': strconv.ParseUint: parsing "{raw}": {reason}')


def label_match(labels: dict[str, str] | None, wanted: list[str]) -> bool:
    """Every ``key`` or ``key=value`` in ``wanted`` holds (label filters are ANDed, as dockerd)."""
    labels = labels or {}
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True
