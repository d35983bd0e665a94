"""Go text/template's predefined functions: ``and``, ``or``, ``not``, ``len``, ``index``,
``slice``, ``print``, ``println``, ``printf``, ``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal.gotemplate.printf import go_print, go_sprint, go_sprintf
from shoal.gotemplate.values import MISSING, truth

__all__ = ["BUILTINS", "FuncError"]


class FuncError(ValueError):
    """A template function was called with arguments it cannot handle."""


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
