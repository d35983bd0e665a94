"""Natural ordering (``web.2`` before ``web.10``), a port of fvbommel/sortorder.NaturalLess."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cmp_to_key
from typing import TypeVar

__all__ = ["natural_less", "natural_sorted"]

T = TypeVar("T")


def _digit(byte: int) -> bool:
    return 48 <= byte <= 57


def natural_less(left: str, right: str) -> bool:
    """True when `left` sorts before `right`; runs of digits compare as numbers."""
    a, b = left.encode(), right.encode()
    i = j = 0
    while i < len(a) and j < len(b):
        da, db = _digit(a[i]), _digit(b[j])
        if da != db:
            return da
        if not da:
            if a[i] != b[j]:
                return a[i] < b[j]
            i, j = i + 1, j + 1
            continue
        while i < len(a) and a[i] == 48:
            i += 1
        while j < len(b) and b[j] == 48:
            j += 1
        start_a, start_b = i, j
        while i < len(a) and _digit(a[i]):
            i += 1
        while j < len(b) and _digit(b[j]):
            j += 1
        if i - start_a != j - start_b:
            return i - start_a < j - start_b
        if a[start_a:i] != b[start_b:j]:
            return a[start_a:i] < b[start_b:j]
        if start_a != start_b:
            return start_a < start_b
    return len(a) < len(b)


def natural_sorted(items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    """`items` sorted naturally by `key` (stable)."""

    def compare(x: T, y: T) -> int:
        kx, ky = key(x), key(y)
        return -1 if natural_less(kx, ky) else (1 if natural_less(ky, kx) else 0)

    return sorted(items, key=cmp_to_key(compare))
