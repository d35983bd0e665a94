"""Fixtures for every unit test: a leaked-asyncio-task check, a started store on the
in-process backend and the parts run over it (``parts.py``). Bounded waits: ``shoal.dev.wait.wait_for_async``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from parts import Parts

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
