"""``--watch`` for the list commands (``service ls|ps``, ``node ls|ps``): the listing drawn
again every second, in place on a terminal (the screen cleared, a header with the time, as
``watch -n1`` shows it), and only when it changed; elsewhere each new listing is printed after
the last, separated by a blank line. Ctrl-C ends it (exit 0). An error (the daemon gone) ends
it too, as the command without --watch would."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

import click

from shoal.cli.app import App

__all__ = ["INTERVAL", "watch", "watch_option"]

INTERVAL = 1.0  # seconds between listings
_CLEAR = "\x1b[H\x1b[2J"


def watch_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-w", "--watch", is_flag=True,
                        help="Refresh the list every second until interrupted (Ctrl-C)")(fn)


def watch(app: App, title: str, listing: Callable[[], None], *, rounds: int | None = None) -> None:
    """Run ``listing`` (which writes with ``app.out``) every INTERVAL seconds; ``rounds``
    bounds it (tests), else until Ctrl-C."""
    last: str | None = None
    done = 0
    with contextlib.suppress(KeyboardInterrupt):
        while rounds is None or done < rounds:
            text = _captured(app, listing)
            if text != last:
                if app.is_tty:
                    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                    app.out(f"{_CLEAR}Every {INTERVAL:.0f}s: {title}    {stamp}\n\n{text}")
                else:
                    app.out(("\n" if last is not None else "") + text)
                last = text
            done += 1
            if rounds is None or done < rounds:
                app.sleep(INTERVAL)


def _captured(app: App, listing: Callable[[], None]) -> str:
    parts: list[str] = []
    original = app.out
    app.out = functools.partial(_collect, parts)  # type: ignore[method-assign]
    try:
        listing()
    finally:
        app.out = original  # type: ignore[method-assign]
    return "".join(parts)


def _collect(parts: list[str], text: str) -> None:
    parts.append(text)
