"""How unit tests run manager parts (orchestrators, allocator, scheduler, dispatcher, key
manager): each ``part.run()`` as a named asyncio task, all cancelled when the test ends (the
``parts`` fixture, set up after the ``store`` so it stops before the store closes). A part
that crashed fails the test; one that ignores its cancellation too. Also the fast settings the
parts are started with."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import pytest

from shoal.manager.allocator import AllocatorSettings
from shoal.manager.scheduler import SchedulerSettings

FAST_SCHED = SchedulerSettings(commit_debounce_gap=0.005, max_latency=0.05, resync_interval=5)
FAST_ALLOC = AllocatorSettings(commit_debounce_gap=0.005, max_latency=0.05, resync_interval=5)


class Part(Protocol):
    def run(self) -> Coroutine[Any, Any, None]: ...


P = TypeVar("P", bound=Part)


class Parts:
    """Parts started by a test; ``close()`` stops them (the fixture calls it; a test that
    replaces its parts, as a new leader does, may call it first)."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, part: P) -> P:
        self.tasks.append(asyncio.create_task(part.run(), name=type(part).__name__))
        return part

    async def close(self) -> None:
        tasks, self.tasks = self.tasks, []
        if not tasks:
            return
        for t in tasks:
            t.cancel()
        _, pending = await asyncio.wait(tasks, timeout=2.0)
        if pending:
            for t in pending:
                t.print_stack()
            pytest.fail(f"parts ignored cancellation: {[t.get_name() for t in pending]}")
        for t in tasks:
            if not t.cancelled() and (exc := t.exception()) is not None:
                raise exc
