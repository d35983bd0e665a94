"""The functions docker adds to its ``--format`` templates (``json``, ``join``, ``split``,
``upper``, ``pad``...), on top of Go's builtins (`shoal.gotemplate.builtins`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shoal.gotemplate.printf import go_print
from shoal.gotemplate.values import MISSING

__all__ = ["BASIC_FUNCTIONS", "HEADER_FUNCTIONS", "to_json"]


def to_json(value: Any) -> str:
    """docker's ``json`` function: Go's encoder with HTML escaping off, except that formatter
    contexts marshal themselves with ``json.Marshal`` (so ``->`` becomes ``-\\u003e``); a
    context standing for a plain API struct says so with ``json_escape_html = False``."""
    text = json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"))
    if callable(getattr(value, "json_fields", None)) and getattr(value, "json_escape_html", True):
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


def _jsonable(value: Any) -> Any:
    if value is MISSING:
        return None
    if callable(getattr(value, "json_fields", None)):
        return {k: _jsonable(v) for k, v in value.json_fields().items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _title(text: str) -> str:
    out, previous = [], " "
    for ch in text:
        out.append(ch.upper() if not (previous.isalnum() or previous in "_'") else ch)
        previous = ch
    return "".join(out)


def _pad(text: Any, prefix: int, suffix: int) -> str:
    source = go_print(text)
    return source if source == "" else " " * prefix + source + " " * suffix


def _truncate(text: Any, length: int) -> str:
    source = go_print(text)
    return source if len(source) < length else source[:length]


def _split(text: Any, sep: str) -> list[str]:
    source = go_print(text)
    if sep == "":
        return list(source)
    return source.split(sep)


def _join(items: Any, sep: str) -> str:
    return sep.join(go_print(i) for i in (items or []))


BASIC_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": to_json,
    "split": _split,
    "join": _join,
    "title": lambda s: _title(go_print(s)),
    "lower": lambda s: go_print(s).lower(),
    "upper": lambda s: go_print(s).upper(),
    "pad": _pad,
    "truncate": _truncate,
}

HEADER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: (lambda v, *_: v)
    for name in ("json", "split", "join", "title", "lower", "upper", "truncate")
}
