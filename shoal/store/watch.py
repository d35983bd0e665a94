"""Store watches: every committed change, fanned out to subscribers, read in debounced batches.

Subscribe, then read the view, with no ``await`` in between: nothing is missed and duplicates are
harmless because every reader reconciles level-triggered (STYLE rule 5).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from shoal import aio
from shoal.model.objects import StoredObject

__all__ = ["Change", "Subscription"]


@dataclass(frozen=True, slots=True)
class Change:
    """One object's change at one revision: created (old None), updated, or deleted (new None)."""

    kind: str
    old: StoredObject | None
    new: StoredObject | None
    revision: int

    @property
    def obj(self) -> StoredObject:
        obj = self.new if self.new is not None else self.old
        assert obj is not None
        return obj


class Subscription:
    def __init__(self, kinds: frozenset[str], on_close: Callable[[Subscription], None]) -> None:
        self.kinds = kinds
        self._queue: asyncio.Queue[list[Change]] = asyncio.Queue()
        self._on_close = on_close

    def publish(self, changes: list[Change]) -> None:
        mine = [c for c in changes if c.kind in self.kinds]
        if mine:
            self._queue.put_nowait(mine)

    async def next(self) -> list[Change]:
        return await self._queue.get()

    async def next_batch(
        self, *, gap: float = 0.05, max_latency: float = 1.0, idle: float | None = None
    ) -> list[Change]:
        """Changes after a quiet ``gap`` (at most ``max_latency`` after the first); [] if idle."""
        # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancellation that
        # arrives as the wait completes, and the caller's loop would never stop.
        loop = asyncio.get_running_loop()
        try:
            async with aio.timeout(idle):
                batch = await self._queue.get()
        except TimeoutError:
            return []
        deadline = loop.time() + max_latency
        while True:
            while not self._queue.empty():
                batch.extend(self._queue.get_nowait())
            remaining = deadline - loop.time()
            if remaining <= 0:
                return batch
            try:
                async with aio.timeout(min(gap, remaining)):
                    batch.extend(await self._queue.get())
            except TimeoutError:
                return batch

    def close(self) -> None:
        self._on_close(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

