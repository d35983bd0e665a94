"""The functions docker's ``--format`` templates can call: Go's builtins (``index``, ``len``,
``eq``, ``printf``...) and docker's (``json``, ``join``, ``split``, ``upper``, ``pad``...)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shoal.cli.template.printf import go_print, go_sprint, go_sprintf
from shoal.cli.template.values import MISSING, truth

__all__ = ["BASIC_FUNCTIONS", "BUILTINS", "HEADER_FUNCTIONS", "FuncError", "to_json"]


class FuncError(ValueError):
    """A template function was called with arguments it cannot handle."""


def to_json(value: Any) -> str:
    """docker's ``json`` function: Go's encoder with HTML escaping off, except that formatter
    contexts marshal themselves with ``json.Marshal`` (so ``->`` becomes ``-\\u003e``)."""
    text = json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"))
    if callable(getattr(value, "json_fields", None)):
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


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            if key in item:
                item = item[key]
            else:  # a map[string]string gives "", a map of JSON values gives nil
                item = "" if all(isinstance(v, str) for v in item.values()) else None
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or not 0 <= key < len(item):
                raise FuncError(f"index out of range: {key}")
            item = item[key]
        elif item is None or item is MISSING:
            raise FuncError("index of untyped nil")
        else:
            raise FuncError(f"can't index item of type {type(item).__name__}")
    return item


def _compare(op: str) -> Callable[..., bool]:
    def compare(a: Any, *others: Any) -> bool:
        a = None if a is MISSING else a
        if op == "eq":
            return any(a == (None if b is MISSING else b) for b in others)
        b = others[0] if others else None
        b = None if b is MISSING else b
        if op == "ne":
            return bool(a != b)
        if type(a) is not type(b) and not (
            isinstance(a, (int, float)) and isinstance(b, (int, float))
        ):
            raise FuncError("incompatible types for comparison")
        if a is None or isinstance(a, (bool, dict, list)):
            raise FuncError("invalid type for comparison")
        left: Any = a
        right: Any = b
        return bool(
            {"lt": left < right, "le": left <= right, "gt": left > right, "ge": left >= right}[op]
        )

    return compare


def _length(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise FuncError(f"len of type {type(item).__name__}")


def _slice(item: Any, *bounds: int) -> Any:
    return item[bounds[0] : bounds[1]] if len(bounds) > 1 else item[bounds[0] :] if bounds else item


BUILTINS: dict[str, Callable[..., Any]] = {
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
    "not": lambda a: not truth(a),
    "len": _length,
    "index": _index,
    "slice": _slice,
    "print": lambda *a: go_sprint(list(a)),
    "println": lambda *a: " ".join(go_print(x) for x in a) + "\n",
    "printf": lambda f, *a: go_sprintf(f, list(a)),
    "eq": _compare("eq"),
    "ne": _compare("ne"),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
}
