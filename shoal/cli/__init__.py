"""The ``shoal`` command line: the swarm subset of the docker CLI, talking to shoald.

`shoal.cli.main` holds the entry point; `shoal.cli.client.Client` is the HTTP client the
commands (and the integration tests) use to reach the daemon.
"""

from __future__ import annotations

__all__ = ["Client", "DaemonError", "DaemonUnreachable", "main"]

from shoal.cli.client import Client, DaemonError, DaemonUnreachable


def main() -> None:
    """Run the ``shoal`` command (console-script entry point)."""
    from shoal.cli.main import main as _main

    _main()
