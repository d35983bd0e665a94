"""Exponential backoff with jitter and a cap, for the etcd supervisor's restarts.

Called by ``member.py``. Kept tiny and local until Shoal has its one shared retry helper
(STYLE rule 7); then this should become that helper's delay policy.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """``next()`` gives initial, initial*factor, ... up to ``cap``, each spread by +-``jitter``."""

    def __init__(
        self,
        *,
        initial: float = 0.5,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 0.25,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if initial <= 0 or cap < initial or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("backoff needs 0 < initial <= cap, factor >= 1, 0 <= jitter < 1")
        self._initial, self._cap, self._factor, self._jitter = initial, cap, factor, jitter
        self._rng = rng
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next(self) -> float:
        base = min(self._cap, self._initial * self._factor ** min(self._attempt, 64))
        self._attempt += 1
        spread = 1.0 + self._jitter * (2.0 * self._rng() - 1.0)
        return min(self._cap, base * spread)

    def reset(self) -> None:
        self._attempt = 0
