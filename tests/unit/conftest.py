"""Fixtures for every unit test: a leaked-asyncio-task check, a check that no callback blocked
the event loop, a started store on the in-process backend and the parts run over it
(``parts.py``). Bounded waits: ``shoal.dev.wait.wait_for_async``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from parts import Parts

from shoal.aio import LoopWatchdog
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = set(asyncio.all_tasks())
    yield
    for _ in range(5):
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before
              if t is not asyncio.current_task() and not t.done()]
    for t in leaked:
        t.cancel()
    assert not leaked, f"leaked asyncio tasks: {[t.get_name() for t in leaked]}"


# Seconds one callback may hold the loop. 1 s does not trip on a loaded 2-core machine (GC
# pauses and CPU starvation delay callbacks too); lower it to find blockers, e.g.
# SHOAL_TEST_LOOP_BLOCK_LIMIT=0.1 pytest tests/unit; 0 turns the check off.
LOOP_BLOCK_LIMIT = float(os.environ.get("SHOAL_TEST_LOOP_BLOCK_LIMIT", "1.0"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "blocks_loop: blocks its event loop on purpose (not checked)")


@pytest.fixture(autouse=True)
async def no_blocked_loop(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Fails a test during which one callback held its event loop longer than the limit."""
    if LOOP_BLOCK_LIMIT <= 0 or request.node.get_closest_marker("blocks_loop"):
        yield
        return
    watchdog = LoopWatchdog(LOOP_BLOCK_LIMIT)
    watchdog.start()
    try:
        yield
    finally:
        watchdog.stop()
    assert not watchdog.blocks, "\n".join(map(str, watchdog.blocks))


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = Store(MemoryBackend())
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def parts(store: Store) -> AsyncIterator[Parts]:
    """Parts a test starts over ``store``; stopped before the store closes."""
    p = Parts()
    try:
        yield p
    finally:
        await p.close()
