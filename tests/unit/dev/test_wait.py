"""shoal.dev.wait: the value that ended the wait is returned; a timeout names what was awaited."""

from __future__ import annotations

import pytest

from shoal.dev.wait import wait_for, wait_for_async


def test_wait_for_returns_the_value_and_retries_errors() -> None:
    calls = iter([ValueError("not yet"), None, "ok"])

    def fn() -> str | None:
        got = next(calls)
        if isinstance(got, Exception):
            raise got
        return got

    assert wait_for("ok", fn, timeout=5, interval=0.001) == "ok"


def test_wait_for_times_out_with_the_error_asked_for() -> None:
    with pytest.raises(LookupError, match=r"waiting for nothing \(last: False\)"):
        wait_for("nothing", lambda: False, timeout=0.02, interval=0.001, error=LookupError)


async def test_wait_for_async_awaits_a_coroutine_check() -> None:
    seen: list[int] = []

    async def check() -> list[int] | None:
        seen.append(1)
        return seen if len(seen) == 3 else None

    assert await wait_for_async("three checks", check, interval=0.001) == [1, 1, 1]
    with pytest.raises(AssertionError, match="waiting for never"):
        await wait_for_async("never", lambda: 0, timeout=0.02)
