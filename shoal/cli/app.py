"""The per-invocation state every command receives: the API client and the output streams."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import httpx

from shoal.cli.client import Client, TLSOptions
from shoal.cli.errors import CliError

__all__ = ["App"]

_DEFAULT_WIDTH = 200  # what docker assumes when stdout is not a terminal


class App:
    """Holds the lazily created `Client` and writes to stdout/stderr.

    Tests pass a `transport` (an ``httpx.MockTransport``) and, for the progress display,
    `tty`, `sleep` and `clock` replacements.
    """

    def __init__(
        self,
        *,
        host: str | None = None,
        transport: httpx.BaseTransport | None = None,
        tls: TLSOptions | None = None,
        tty: bool | None = None,
        width: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.host = host
        self.tls = tls
        self._transport = transport
        self._client: Client | None = None
        self._tty = tty
        self._width = width
        self.sleep = sleep
        self.clock = clock
        self.now_ns = now_ns

    @property
    def client(self) -> Client:
        if self._client is None:
            try:
                self._client = Client(self.host, transport=self._transport, tls=self.tls)
            except ValueError as exc:
                raise CliError(str(exc)) from exc
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- output ----------------------------------------------------------------------------

    def out(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def err(self, text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    def println(self, text: str = "") -> None:
        self.out(text + "\n")

    def eprintln(self, text: str = "") -> None:
        self.err(text + "\n")

    @property
    def is_tty(self) -> bool:
        if self._tty is not None:
            return self._tty
        try:
            return sys.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def width(self) -> int:
        """The terminal width of stdout, or 200 when unknown (as docker's progress bars)."""
        if self._width is not None:
            return self._width
        try:
            return os.get_terminal_size(sys.stdout.fileno()).columns
        except (AttributeError, ValueError, OSError):
            return _DEFAULT_WIDTH
