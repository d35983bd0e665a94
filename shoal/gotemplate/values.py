"""Go semantics for JSON values in templates: the ``<no value>`` sentinel and truthiness."""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "truth"]


class _Missing:
    """A map key or field that is not there; Go prints it as ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil, "" and empty collections are false."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True
