"""Fixtures: a fake daemon and a runner that invokes ``shoal`` through click's CliRunner."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from shoal.cli.app import App
from shoal.cli.main import cli

from .fake_daemon import FakeDaemon


@dataclass
class Result:
    status: int
    out: str
    err: str


class Shoal:
    """Runs ``shoal ARGS`` in-process against the fake daemon, with a fake clock."""

    def __init__(self, daemon: FakeDaemon) -> None:
        self.daemon = daemon
        self.time = 1000.0
        self.sleeps = 0
        self.tty = False
        self.width = 200
        self.now_ns = 1714557605 * 1_000_000_000  # 2024-05-01T10:00:05Z

    def _sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.time += seconds
        if self.sleeps > 10_000:
            raise AssertionError("progress loop did not end")

    def app(self) -> App:
        return App(
            transport=self.daemon.transport(),
            tty=self.tty,
            width=self.width,
            sleep=self._sleep,
            clock=lambda: self.time,
            now_ns=lambda: self.now_ns,
        )

    def __call__(self, *args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), obj=self.app(), input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    yield FakeDaemon()


@pytest.fixture
def shoal(daemon: FakeDaemon) -> Shoal:
    return Shoal(daemon)
