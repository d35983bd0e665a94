"""Small asyncio helpers every layer may use (below the model in the import order)."""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, Self

__all__ = ["Backoff", "LoopBlock", "LoopWatchdog", "cancel_and_wait", "guard_server_close_race",
           "timeout"]

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


@dataclass(frozen=True)
class LoopBlock:
    """One callback that held the event loop: for about ``seconds`` (wall clock, within one
    sampling interval), of which ``cpu`` on the loop's thread (near ``seconds``: computing;
    near 0: a blocking system call, or the process starved of CPU), and where it was once past
    the limit (``stack``, outermost first)."""

    seconds: float
    cpu: float
    stack: str

    def __str__(self) -> str:
        return (f"event loop blocked for {self.seconds:.2f} s (loop thread CPU {self.cpu:.2f} s)"
                f" by one callback; stack: {self.stack}")


_HANDLE_RUN = asyncio.events.Handle._run.__code__  # every callback of the loop runs under it
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class LoopWatchdog:
    """Finds callbacks that hold the event loop longer than ``limit`` seconds, which delays
    every heartbeat, gossip and DNS answer on it. Off the loop, so nothing runs in it: a daemon
    thread looks at the loop thread's stack every ``limit / 5`` (``sys._current_frames``); the
    same callback (the same frame of ``Handle._run``) seen for longer than ``limit`` is a block.
    Each block is logged once it ends, as one WARNING with its duration and its stack when it
    passed the limit, and kept in ``blocks`` (the last 32). Blocking C code that keeps the GIL
    is seen when it returns. Started from the thread that runs (or will run) the loop."""

    def __init__(self, limit: float, *, logger: logging.Logger = log) -> None:
        if limit <= 0:
            raise ValueError("the loop block limit must be more than 0 seconds")
        self.limit = limit
        self.blocks: list[LoopBlock] = []
        self._interval = limit / 5
        self._log = logger
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_thread = 0
        self._clock = time.CLOCK_THREAD_CPUTIME_ID

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._clock = time.pthread_getcpuclockid(self._loop_thread)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _watch(self) -> None:
        handle: FrameType | None = None  # the callback seen last, held so its id stays its own
        since = cpu0 = 0.0
        stack = ""
        while not self._stop.wait(self._interval):
            now, cpu = time.monotonic(), time.clock_gettime(self._clock)
            current = self._running_callback()
            if current is handle and current is not None:
                if not stack and now - since > self.limit:
                    stack = _compact_stack(sys._current_frames().get(self._loop_thread), handle)
                continue
            if stack:  # the callback that blocked has returned
                self._record(LoopBlock(now - since, cpu - cpu0, stack))
            handle, since, cpu0, stack = current, now, cpu, ""
            del current
        if stack:  # stopped by the very callback that blocks (a test's teardown)
            self._record(LoopBlock(time.monotonic() - since,
                                   time.clock_gettime(self._clock) - cpu0, stack))
        handle = None

    def _running_callback(self) -> FrameType | None:
        frame = sys._current_frames().get(self._loop_thread)
        for _ in range(500):  # bounded: a deep recursion in a callback is not worth more
            if frame is None or frame.f_code is _HANDLE_RUN:
                return frame
            frame = frame.f_back
        return None

    def _record(self, block: LoopBlock) -> None:
        self.blocks = [*self.blocks[-31:], block]
        self._log.warning("%s", block)


def _compact_stack(top: FrameType | None, bottom: FrameType | None) -> str:
    """``file:line function`` from the callee of ``bottom`` (the callback's ``Handle._run``) to
    ``top``, the innermost 40; files of this package by their path in it, others by name, the
    import machinery's frames left out (an import shows as the importing line, then the module)."""
    frames: list[str] = []
    frame = top
    while frame is not None and frame is not bottom and len(frames) < 40:
        path = frame.f_code.co_filename
        if not path.startswith("<frozen importlib"):
            name = (path[len(_PACKAGE_DIR):] if path.startswith(_PACKAGE_DIR)
                    else os.path.basename(path))
            frames.append(f"{name}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return " > ".join(reversed(frames))
