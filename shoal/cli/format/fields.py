"""Small helpers the row and page contexts (`shoal.gotemplate.Fields`) share."""

from __future__ import annotations

from typing import Any

__all__ = ["dig", "pretty_print"]


def pretty_print(value: Any) -> str:
    """docker's ``PrettyPrint``: capitalise the first letter, lower-case the rest."""
    text = "None" if value is None else str(value)
    if len(text) <= 1:
        return text.lower()
    return text[0].upper() + text[1:].lower()


def dig(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...``, or None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj
