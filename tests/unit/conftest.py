"""Fixtures for every unit test: a leaked-asyncio-task check, a bounded wait, and a started
store on the in-process backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store

Eventually = Callable[[Callable[[], bool], str], Awaitable[None]]


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
def eventually() -> Callable[..., Awaitable[None]]:
    async def wait(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
            await asyncio.sleep(0.01)
    return wait


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = Store(MemoryBackend())
    await s.start()
    try:
        yield s
    finally:
        await s.close()
