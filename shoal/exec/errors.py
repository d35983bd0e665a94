"""Errors a Controller raises; the agent's step function turns them into task states.

    ShoalError
     └── ExecError            any failure of an executor or controller
          ├── TaskRejected    before the task started (pull, prepare): task REJECTED
          ├── ExitError       the process exited non-zero: "task: non-zero exit (N)"
          │    └── Unhealthy  the health check failed: "...: dockerexec: unhealthy container"
          └── Temporary       try the same step again after RETRY_DELAY

Whether an ExecError other than these becomes REJECTED or FAILED depends only on when it
happens (before STARTING or at/after), as in swarmkit's ``exec.Do``.
"""

from __future__ import annotations

from shoal.errors import ShoalError

__all__ = ["RETRY_DELAY", "ExecError", "ExitError", "TaskRejected", "Temporary", "Unhealthy"]

RETRY_DELAY = 1.0  # seconds before a Temporary step is retried (swarmkit's ErrTaskRetry)


class ExecError(ShoalError):
    """Base of every error a controller raises on purpose."""


class TaskRejected(ExecError):
    """The task cannot run here (image pull or prepare failed)."""


class ExitError(ExecError):
    """The task's process exited with a non-zero code."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or f"task: non-zero exit ({code})")
        self.code = code


class Unhealthy(ExitError):
    """The health check failed; the container was stopped with ``code``."""

    def __init__(self, code: int = 137) -> None:
        super().__init__(code, f"task: non-zero exit ({code}): dockerexec: unhealthy container")


class Temporary(ExecError):
    """A passing failure (daemon busy, lock held): the runner retries after RETRY_DELAY."""
