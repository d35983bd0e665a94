"""Store watches: every committed change, fanned out to subscribers, read in debounced batches.

Subscribe, then read the view, with no ``await`` in between: nothing is missed and duplicates are
harmless because every reader reconciles level-triggered (STYLE rule 5).

A subscriber that falls ``MAX_PENDING`` changes behind is not let grow (issue 16): its unread
changes are dropped, and its next read raises ``SubscriptionOverflow`` (an ``Unavailable``), after
which it reads the view again, as after subscribing, and goes on with the changes from then on.
The orchestrators' loop does a full pass; the other leader parts end, and the manager restarts
them, each with a fresh view (swarmkit's watch queues close a slow subscriber the same way).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from shoal import aio
from shoal.errors import Unavailable
from shoal.model.objects import StoredObject

__all__ = ["MAX_PENDING", "Change", "Subscription", "SubscriptionOverflow"]

log = logging.getLogger(__name__)

# Changes one subscriber may leave unread. A change holds its old and new objects (shared with
# the cache, or kept alive by it), a few KiB at most: this bounds a stuck reader to about 100 MB,
# while 5 full fan-outs of a 10,000-task service fit.
MAX_PENDING = 50_000


class SubscriptionOverflow(Unavailable):
    """The subscriber fell too far behind: its changes were dropped; read the view again."""

    def __init__(self, kinds: frozenset[str]) -> None:
        super().__init__(f"a store subscriber ({', '.join(sorted(kinds))}) fell more than "
                         f"{MAX_PENDING} changes behind; its changes were dropped, it must resync")


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
    def __init__(self, kinds: frozenset[str], on_close: Callable[[Subscription], None], *,
                 limit: int = MAX_PENDING) -> None:
        self.kinds = kinds
        self._queue: asyncio.Queue[list[Change]] = asyncio.Queue()
        self._on_close = on_close
        self._limit = limit
        self._pending = 0  # changes queued
        self._overflowed = False  # dropped; the next read raises SubscriptionOverflow

    def publish(self, changes: list[Change]) -> None:
        mine = [c for c in changes if c.kind in self.kinds]
        if not mine or self._overflowed:
            return  # once overflowed, the reader's resync from the view covers these too
        if self._pending + len(mine) > self._limit:
            log.warning("store subscriber (%s) more than %d changes behind: dropped, to resync",
                        ", ".join(sorted(self.kinds)), self._limit)
            self._drain()
            self._overflowed = True
            self._queue.put_nowait([])  # wakes the reader
            return
        self._pending += len(mine)
        self._queue.put_nowait(mine)

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._pending = 0

    def _took(self, changes: list[Change]) -> list[Change]:
        """``changes`` just read from the queue, or SubscriptionOverflow."""
        if self._overflowed:
            self._drain()
            self._overflowed = False  # changes from now on are queued again
            raise SubscriptionOverflow(self.kinds)
        self._pending -= len(changes)
        return changes

    async def next(self) -> list[Change]:
        return self._took(await self._queue.get())

    async def next_batch(
        self, *, gap: float = 0.05, max_latency: float = 1.0, idle: float | None = None
    ) -> list[Change]:
        """Changes after a quiet ``gap`` (at most ``max_latency`` after the first); [] if idle."""
        # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancellation that
        # arrives as the wait completes, and the caller's loop would never stop.
        loop = asyncio.get_running_loop()
        try:
            async with aio.timeout(idle):
                batch = self._took(await self._queue.get())
        except TimeoutError:
            return []
        deadline = loop.time() + max_latency
        while True:
            while not self._queue.empty():
                batch.extend(self._took(self._queue.get_nowait()))
            remaining = deadline - loop.time()
            if remaining <= 0:
                return batch
            try:
                async with aio.timeout(min(gap, remaining)):
                    batch.extend(self._took(await self._queue.get()))
            except TimeoutError:
                return batch

    def close(self) -> None:
        self._on_close(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

