"""``--watch``: the listing again every second, redrawn in place on a terminal only when it
changed, appended elsewhere, ended by Ctrl-C with exit 0; wired into service ls|ps, node ls."""

from __future__ import annotations

import pytest

from shoal.cli.app import App
from shoal.cli.watch import watch

from .conftest import Shoal


class Screen:
    def __init__(self, tty: bool, frames: list[str], interrupt_after: int | None = None) -> None:
        self.written: list[str] = []
        self.frames = frames
        self.shown = 0
        self.sleeps = 0
        self.interrupt_after = interrupt_after
        self.app = App(tty=tty, sleep=self.sleep)
        self.app.out = self.written.append  # type: ignore[method-assign]

    def sleep(self, seconds: float) -> None:
        assert seconds == 1.0
        self.sleeps += 1
        if self.interrupt_after is not None and self.sleeps >= self.interrupt_after:
            raise KeyboardInterrupt

    def listing(self) -> None:
        self.app.out(self.frames[min(self.shown, len(self.frames) - 1)])
        self.shown += 1


def test_on_a_terminal_redrawn_in_place_only_when_changed() -> None:
    screen = Screen(True, ["a\n", "a\n", "b\n"])
    watch(screen.app, "shoal service ls", screen.listing, rounds=3)
    assert len(screen.written) == 2  # "a" once, then "b"
    assert all(w.startswith("\x1b[H\x1b[2JEvery 1s: shoal service ls") for w in screen.written)
    assert screen.written[0].endswith("\n\na\n") and screen.written[1].endswith("\n\nb\n")
    assert screen.sleeps == 2


def test_elsewhere_each_new_listing_after_a_blank_line() -> None:
    screen = Screen(False, ["a\n", "b\n", "b\n"])
    watch(screen.app, "t", screen.listing, rounds=3)
    assert screen.written == ["a\n", "\nb\n"]


def test_ctrl_c_ends_it_quietly() -> None:
    screen = Screen(False, ["a\n"], interrupt_after=2)
    watch(screen.app, "t", screen.listing)  # unbounded: only the interrupt ends it
    assert screen.shown == 2 and screen.written == ["a\n"]


@pytest.mark.parametrize("args", [("service", "ls", "--watch"), ("node", "ls", "-w")])
def test_list_commands_take_watch(shoal: Shoal, args: tuple[str, ...]) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    shoal._sleep = interrupt  # type: ignore[method-assign]
    result = shoal(*args)
    assert result.status == 0, result.err
    assert result.out.startswith("ID ")  # the table, once


def test_service_ps_takes_watch(shoal: Shoal) -> None:
    shoal("service", "create", "--detach", "--name", "web", "busybox")

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    shoal._sleep = interrupt  # type: ignore[method-assign]
    result = shoal("service", "ps", "--watch", "web")
    assert result.status == 0, result.err
    assert result.out.startswith("ID ")
