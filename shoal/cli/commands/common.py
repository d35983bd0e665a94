"""What several commands do alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.errors import CliError

__all__ = ["remove_each"]


def remove_each(app: App, refs: Sequence[str], remove: Callable[[str], object]) -> None:
    """docker's ``rm`` loop: remove every reference, print each one removed, then fail with
    every error at once (one bad reference does not stop the others)."""
    errors = []
    for ref in refs:
        try:
            remove(ref)
        except DaemonError as exc:
            errors.append(str(exc))
            continue
        app.println(ref)
    if errors:
        raise CliError("\n".join(errors))
