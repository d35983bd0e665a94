"""click parameter types that parse flag values as the docker CLI (pflag) does.

A bad value fails with pflag's wording: ``invalid argument "x" for "--replicas" flag: ...``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import Any

import click

from shoal.cli.client import filters_param
from shoal.cli.format import units
from shoal.gotemplate.printf import go_quote

__all__ = [
    "COMMAND",
    "DURATION",
    "ENV",
    "FILTER",
    "FLOAT32",
    "INT",
    "INT64",
    "LABEL",
    "MEM_BYTES",
    "NANO_CPUS",
    "POSITIVE_DURATION",
    "STRING",
    "UINT32",
    "UINT64",
    "GoValue",
    "filter_query",
    "filters_from",
    "flag_display",
    "invalid_argument",
]


def flag_display(param: click.Parameter | None) -> str:
    """How pflag names a flag in errors: ``--replicas`` or ``-p, --publish``."""
    if param is None:
        return "flag"
    opts = list(getattr(param, "opts", []))
    short = [o for o in opts if not o.startswith("--")]
    long = [o for o in opts if o.startswith("--")]
    if short and long:
        return f"{short[0]}, {long[0]}"
    return str((long or short or [param.name or ""])[0])


def invalid_argument(
    value: str, param: click.Parameter | None, ctx: click.Context | None, exc: ValueError
) -> click.BadParameter:
    """pflag's wording for a value its flag cannot parse."""
    return click.BadParameter(
        f"invalid argument {go_quote(value)} for {go_quote(flag_display(param))} flag: {exc}",
        ctx=ctx,
        param=param,
    )


class GoValue(click.ParamType[Any]):
    """A flag value parsed by `parser`; its ValueError message becomes pflag's error."""

    def __init__(self, name: str, parser: Callable[[str], Any]) -> None:
        self.name = name
        self._parser = parser

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._parser(value)
        except ValueError as exc:
            raise invalid_argument(value, param, ctx, exc) from exc


def _positive_duration(text: str) -> int:
    value = units.parse_duration(text)
    if value < 0:
        raise ValueError("duration cannot be negative")
    return value


def _shlex(text: str) -> list[str]:
    """Split like google/shlex (docker's ``--entrypoint`` and ``--args``)."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        message = str(exc)
        if "quotation" in message:
            message = "EOF found when expecting closing quote"
        elif "escaped" in message:
            message = "EOF found after escape character"
        raise ValueError(message) from exc


def validate_env(text: str) -> str:
    """docker's ``ValidateEnv``: ``KEY`` alone takes its value from this environment."""
    key, sep, _ = text.partition("=")
    if key == "":
        raise ValueError(f"invalid environment variable: {text}")
    if sep:
        return text
    if key in os.environ:
        return f"{key}={os.environ[key]}"
    return text


def validate_label(text: str) -> str:
    """docker's ``ValidateLabel``."""
    key = text.partition("=")[0].lstrip(" \t\n\v\f\r")
    if key == "":
        raise ValueError(f"invalid label '{text}': empty name")
    if any(c in key for c in " \t\n\v\f\r"):
        raise ValueError(f"label '{key}' contains whitespaces")
    return text


def parse_filter(text: str) -> tuple[str, str] | None:
    """docker's ``FilterOpt.Set``: ``name=value`` -> (lowercased name, value)."""
    if text == "":
        return None
    if "=" not in text:
        raise ValueError("bad format of filter (expected name=value)")
    name, _, value = text.partition("=")
    return name.strip().lower(), value.strip()


DURATION = GoValue("duration", units.parse_duration)
POSITIVE_DURATION = GoValue("duration", _positive_duration)
MEM_BYTES = GoValue("bytes", units.ram_in_bytes)
NANO_CPUS = GoValue("decimal", units.parse_cpus)
UINT64 = GoValue("uint", lambda s: units.parse_uint(s, 64))
UINT32 = GoValue("uint32", lambda s: units.parse_uint(s, 32))
INT64 = GoValue("int", lambda s: units.parse_int(s, 64))
INT = GoValue("int", lambda s: units.parse_int(s, 64))
FLOAT32 = GoValue("float", lambda s: units.parse_float(s, 64))  # sent as float32 JSON would print
COMMAND = GoValue("command", _shlex)
ENV = GoValue("list", validate_env)
LABEL = GoValue("list", validate_label)
FILTER = GoValue("filter", parse_filter)
STRING = GoValue("string", str)


def filters_from(pairs: tuple[tuple[str, str] | None, ...]) -> dict[str, list[str]]:
    """Collect ``-f key=value`` flags into docker's filter arguments."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        if pair is not None:
            values = out.setdefault(pair[0], [])
            if pair[1] not in values:
                values.append(pair[1])
    return out


def filter_query(filters: dict[str, list[str]]) -> dict[str, str] | None:
    """The ``filters`` query parameter, or no parameter when there are no filters."""
    return {"filters": filters_param(filters)} if filters else None
