"""The CLI's own errors: what a command raises to end with a message and an exit status.

    CliError             printed to stderr as is, exit `status` (1 unless told)
     └── UsageError      wrong arguments or flags, docker's wording (exit 1 or 125)
    Interrupted          Ctrl-C: exit 130 after a clean message

Daemon failures arrive as `shoal.cli.client.DaemonError` / `DaemonUnreachable`; `main` prints
all of them in one place.
"""

from __future__ import annotations

__all__ = ["CliError", "Interrupted", "UsageError"]


class CliError(Exception):
    """End the command: print `message` to stderr (when not empty) and exit with `status`."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


class UsageError(CliError):
    """Bad arguments or flags; the message already carries docker's usage hint."""


class Interrupted(Exception):
    """The user pressed Ctrl-C."""
