"""Executors: the Protocols the agent drives (executor.py), their errors, and drivers (runc/, sim/)."""

from shoal.exec.errors import (
    RETRY_DELAY,
    ExecError,
    ExitError,
    TaskRejected,
    Temporary,
    Unhealthy,
)
from shoal.exec.executor import ContainerStatuser, Controller, Executor, host_description

__all__ = [
    "RETRY_DELAY",
    "ContainerStatuser",
    "Controller",
    "ExecError",
    "Executor",
    "ExitError",
    "TaskRejected",
    "Temporary",
    "Unhealthy",
    "host_description",
]
