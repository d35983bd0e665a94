"""Variable substitution in compose values, as docker's ``cli/compose/template``: ``$VAR``,
``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``${VAR?err}``, ``$$``.
An unset variable becomes ""; the source is the given environment only (no ``.env``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["InterpolationError", "interpolate", "substitute"]

_NAME = r"[_a-z][_a-z0-9]*"
_PATTERN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>" + _NAME + r")|\{(?P<braced>" + _NAME
    + r"(?::?[-?][^}]*)?)\}|(?P<invalid>))",
    re.IGNORECASE,
)


class InterpolationError(ValueError):
    """A bad template (`invalid` True) or a missing required variable."""

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid


def _braced(expr: str, env: Mapping[str, str]) -> str:
    for sep in (":-", ":?", "-", "?"):
        name, found, rest = expr.partition(sep)
        if not found or not re.fullmatch(_NAME, name, re.IGNORECASE):
            continue
        value = env.get(name)
        empty = value is None or (sep.startswith(":") and value == "")
        if sep.endswith("-"):
            return rest if empty else str(value)
        if empty:
            raise InterpolationError(f"required variable {name} is missing a value: {rest}")
        return str(value)
    return env.get(expr, "")


def substitute(text: str, env: Mapping[str, str]) -> str:
    """One string with its variables replaced."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped") is not None:
            return "$"
        if match.group("named") is not None:
            return env.get(match.group("named"), "")
        if match.group("braced") is not None:
            return _braced(match.group("braced"), env)
        raise InterpolationError(f"Invalid template: {json.dumps(text)}", invalid=True)

    return _PATTERN.sub(replace, text)


def interpolate(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Every string value under `value` substituted (keys are kept as written); errors name
    the key path as docker does."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, path) for v in value]
    if isinstance(value, str):
        try:
            return substitute(value, env)
        except InterpolationError as exc:
            if exc.invalid:
                raise InterpolationError(
                    f"invalid interpolation format for {path}: {json.dumps(value)}; "
                    "you may need to escape any $ with another $",
                    invalid=True,
                ) from exc
            raise
    return value
