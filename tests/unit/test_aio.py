"""shoal.aio.timeout: a deadline is a TimeoutError on every supported Python, 3.11.2 included;
shoal.aio.Backoff: the one retry delay policy; shoal.aio.LoopWatchdog: a callback that holds the
event loop is logged once, with its stack; many short ones are not."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from shoal import aio


async def _in_a_task_that_caught_a_cancellation() -> str:
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        pass  # caught, not uncancelled: the task's cancelling() stays 1, as in a stop path
    assert task.cancelling() == 1
    with pytest.raises(TimeoutError):  # 3.11.2's asyncio.timeout raised CancelledError here
        async with aio.timeout(0.01):
            await asyncio.sleep(1)
    async with aio.timeout(1):  # and one that does not fire changes nothing
        await asyncio.sleep(0)
    return "went on"


async def test_a_deadline_is_a_timeout_error_even_after_a_caught_cancellation() -> None:
    assert await asyncio.create_task(_in_a_task_that_caught_a_cancellation()) == "went on"


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    started = asyncio.Event()

    async def waits() -> None:
        async with aio.timeout(10):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(waits())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_shoal_code_uses_the_fixed_timeout() -> None:
    root = Path(aio.__file__).parent
    users = [str(p.relative_to(root)) for p in root.rglob("*.py")
             if p.name != "aio.py" and "asyncio.timeout(" in p.read_text()]
    assert users == [], "use shoal.aio.timeout, not asyncio.timeout (broken on Python 3.11.2)"


async def _accept_in_the_turn_the_server_closes() -> None:
    """gh-109564: the server's accept callback runs, and close() runs before the transport it
    scheduled is made."""
    server = await asyncio.start_server(lambda *_: None, "127.0.0.1", 0)
    sock = server.sockets[0]
    loop: Any = asyncio.get_running_loop()
    accept, _ = loop._selector.get_key(sock.fileno()).data
    connecting = asyncio.create_task(asyncio.open_connection(*sock.getsockname()[:2]))
    for _ in range(50):
        await asyncio.sleep(0)
        if accept in loop._ready:
            break
    else:
        pytest.fail("the server never saw the connection")
    loop.call_soon(server.close)
    _, writer = await connecting
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    writer.close()
    await server.wait_closed()


def test_a_connection_accepted_as_its_server_closes_logs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    aio.guard_server_close_race()
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the half-made transport's own warning
        for _ in range(5):
            asyncio.run(_accept_in_the_turn_the_server_closes())
    assert [str(u.exc_value) for u in seen] == []


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    backoff = aio.Backoff(initial=0.5, cap=4.0, jitter=0.25, rng=lambda: 1.0)
    assert [round(backoff.next(), 3) for _ in range(5)] == [0.625, 1.25, 2.5, 4.0, 4.0]
    backoff.reset()
    low = aio.Backoff(initial=0.5, cap=4.0, jitter=0.25, rng=lambda: 0.0)
    assert [low.next() for _ in range(5)] == [0.375, 0.75, 1.5, 3.0, 3.0]
    fixed = aio.Backoff(initial=1.0, cap=1.0)  # a fixed retry: no growth, no jitter
    assert [fixed.next() for _ in range(3)] == [1.0, 1.0, 1.0]


def _blocking_read() -> None:
    time.sleep(0.4)  # stands for a synchronous file read or subprocess.run in a coroutine


@pytest.mark.blocks_loop
async def test_the_watchdog_logs_a_callback_that_blocks_the_loop_once_with_its_stack(
        caplog: pytest.LogCaptureFixture) -> None:
    watchdog = aio.LoopWatchdog(0.1)
    watchdog.start()
    try:
        for _ in range(20):  # short callbacks, 0.2 s in all: the loop turns, nothing to report
            time.sleep(0.01)  # noqa: ASYNC251  # a short callback, on purpose
            await asyncio.sleep(0)
        with caplog.at_level(logging.WARNING, logger="shoal.aio"):
            _blocking_read()
            await asyncio.sleep(0.1)  # the watchdog sees the callback end
    finally:
        watchdog.stop()
    assert len(watchdog.blocks) == 1, watchdog.blocks
    block = watchdog.blocks[0]
    assert block.seconds >= 0.3 and block.cpu < block.seconds
    assert block.stack.endswith("_blocking_read"), block.stack
    assert "test_the_watchdog_logs" in block.stack
    assert caplog.messages == [str(block)]
    assert caplog.messages[0].startswith("event loop blocked for ")


def test_a_watchdog_needs_a_positive_limit() -> None:
    with pytest.raises(ValueError, match="more than 0"):
        aio.LoopWatchdog(0)
