"""Small asyncio helpers every layer may use (below the model in the import order)."""

from __future__ import annotations

import asyncio
import asyncio.base_events
import logging
import random
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

__all__ = ["Backoff", "cancel_and_wait", "guard_server_close_race", "timeout"]

log = logging.getLogger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` and wait for each to end; a failure other than the cancellation is
    logged, not raised, because the caller is stopping anyway."""
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    for task in live:
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("task %s failed while stopping", task.get_name())


class Backoff:
    """The one retry delay policy: ``next()`` gives initial, initial*factor, ... up to ``cap``,
    each spread by +-``jitter`` (then capped again). A fixed retry is ``initial == cap`` with no
    jitter. The agent's reconnect (swarmkit's 100 ms to 8 s), the etcd supervisor's restarts and
    the manager's retry loops all use it."""

    def __init__(self, *, initial: float, cap: float, factor: float = 2.0, jitter: float = 0.0,
                 rng: Callable[[], float] = random.random) -> None:
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

    async def sleep(self) -> None:
        """Wait the next delay."""
        await asyncio.sleep(self.next())


class _Timeout(asyncio.Timeout):  # type: ignore[misc]  # final in typeshed, not at run time
    """asyncio.Timeout as Python 3.11.3 fixed it (gh-102780), for Debian 12's 3.11.2: there, in a
    task that was ever cancelled without ending (a cancellation caught), an expiring timeout
    raises CancelledError instead of TimeoutError, and the caller's ``except TimeoutError``
    never runs (an etcd stop returned before etcd had exited)."""

    _entry_cancelling = 0

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        task = asyncio.current_task()
        self._entry_cancelling = task.cancelling() if task is not None else 0
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        if not self.expired():
            await super().__aexit__(exc_type, exc_val, exc_tb)
            return
        # What 3.11.3's __aexit__ does once the deadline fired (private state: 3.11.0-3.11.2 only).
        state: Any = self
        if state._timeout_handler is not None:
            state._timeout_handler.cancel()
            state._timeout_handler = None
        state._state = type(state._state).EXPIRED
        if (state._task.uncancel() <= self._entry_cancelling and exc_type is not None
                and issubclass(exc_type, asyncio.CancelledError)):
            raise TimeoutError from exc_val


def timeout(delay: float | None) -> asyncio.Timeout:
    """``asyncio.timeout``, with its 3.11.3 fix on older Pythons."""
    if sys.version_info >= (3, 11, 3):
        return asyncio.timeout(delay)
    loop = asyncio.get_running_loop()
    return _Timeout(loop.time() + delay if delay is not None else None)


def guard_server_close_race() -> None:
    """Make a second wake-up of a closed asyncio server harmless (CPython 3.12 and later,
    gh-109564, still open). A connection accepted in the same loop turn as ``Server.close()``
    gets a transport that fails half made; its ``__del__`` wakes the server's waiters a second
    time and logs "TypeError: 'NoneType' object is not iterable". Agents that reconnect while a
    manager stops hit it. Idempotent; nothing to do on 3.11, whose transports never wake."""
    server_cls: Any = asyncio.base_events.Server
    if sys.version_info < (3, 12) or getattr(server_cls._wakeup, "_shoal_guarded", False):
        return
    wakeup = server_cls._wakeup

    def _wakeup(server: Any) -> None:
        if server._waiters is not None:
            wakeup(server)

    setattr(_wakeup, "_shoal_guarded", True)  # noqa: B010  # a mark on a function
    server_cls._wakeup = _wakeup
