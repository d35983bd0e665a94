"""The one polling helper of tests and dev tools: call ``fn`` until it returns something truthy,
bounded in time (a failing wait names what it waited for and the last result or error).
``wait_for`` blocks (integration tests, ``shoal dev``); ``wait_for_async`` yields to the loop
(unit tests, whose parts run in the same loop)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["wait_for", "wait_for_async"]

T = TypeVar("T")

Retried = tuple[type[Exception], ...]


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1,
             *, retry_on: Retried = (Exception,),
             error: Callable[[str], Exception] = AssertionError) -> T:
    """Poll ``fn`` until it returns something truthy; an error in ``retry_on`` counts as not yet.
    After ``timeout`` seconds, raise ``error`` naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except retry_on as exc:  # remembered for the failure message
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        time.sleep(interval)
    raise error(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


async def wait_for_async(what: str, fn: Callable[[], T | None | Awaitable[T | None]],
                         timeout: float = 5.0, interval: float = 0.01) -> T:
    """``wait_for`` in a running loop: the parts being waited for run between the polls.
    ``fn`` may be a coroutine function (a check that must await, such as reading logs)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        try:
            got = fn()
            last = await got if inspect.isawaitable(got) else got
        except Exception as exc:  # noqa: BLE001 - remembered for the failure message
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        if loop.time() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)
