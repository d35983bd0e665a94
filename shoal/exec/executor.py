"""The driver interface between the agent and whatever runs tasks (swarmkit agent/exec).

An ``Executor`` describes the node and makes one ``Controller`` per task; the agent's step
function (shoal.agent.task) calls the controller's methods, one per state transition:

    prepare()   PREPARING -> READY      pull the image, create the container (idempotent)
    start()     STARTING  -> RUNNING    returns once running, and healthy with a health check
    wait()      RUNNING   -> COMPLETE   returns the exit code 0; raises ExitError / Unhealthy
    shutdown()  any       -> SHUTDOWN   stop gracefully (stop grace period)
    terminate()             kill now
    remove()                remove the container and everything the controller made
    update(t)               a newer version of the task (spec or desired state)

Optional abilities are separate small protocols (``ContainerStatuser``, ``LogSource``,
``ProgressReporting``, ``TaskPruning``). A controller gets the data of its task's secrets and configs through
the ``TaskFiles`` the agent passes when it asks for the controller (memory only, never disk). Images reach an executor through ``ImageProvider`` (the daemon passes
shoal.image's ImageService, which satisfies it structurally), networks through
``NetworkAttacher`` (shoal.net's NetworkAgent), named volumes through ``VolumeProvider``
(shoal.volume's VolumeService). Implementations: shoal.exec.sim (no
processes) and shoal.exec.runc. This package imports only shoal.model and shoal.errors.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from shoal.model.objects import (
    ContainerStatus,
    EngineDescription,
    NodeDescription,
    NodeResources,
    Task,
)
from shoal.model.specs import Platform

__all__ = [
    "ContainerStatuser",
    "Controller",
    "Executor",
    "Image",
    "ImageProvider",
    "LogLine",
    "LogOptions",
    "LogSource",
    "NetworkAttacher",
    "ProgressReporting",
    "TaskFiles",
    "TaskPruning",
    "VolumeProvider",
    "host_description",
    "memory_bytes",
]


class Controller(Protocol):
    """Runs one task; every method may be called again after a restart (idempotent)."""

    async def prepare(self) -> None: ...

    async def start(self) -> None: ...

    async def wait(self) -> int: ...

    async def shutdown(self) -> None: ...

    async def terminate(self) -> None: ...

    async def remove(self) -> None: ...

    def update(self, task: Task) -> None: ...


@runtime_checkable
class ContainerStatuser(Protocol):
    """A controller that can say which container and process run the task."""

    def status(self) -> ContainerStatus: ...


@dataclass(frozen=True, slots=True)
class LogOptions:
    """Which of a container's log lines to read (``docker service logs`` flags)."""

    follow: bool = False
    tail: int | None = None  # the last N lines only; None = all
    since: int = 0  # unix nanoseconds; 0 = from the start
    until: int = 0  # unix nanoseconds; 0 = no end
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True, slots=True)
class LogLine:
    stream: str  # "stdout" | "stderr"
    time: int  # unix nanoseconds, when the line was read from the container
    data: bytes  # the line, with its newline (a partial last line has none)


@runtime_checkable
class LogSource(Protocol):
    """A controller whose container's output can be read back."""

    def logs(self, options: LogOptions) -> AsyncIterator[LogLine]: ...


@runtime_checkable
class ProgressReporting(Protocol):
    """A controller that reports progress while preparing (image pull): the runner turns each
    message into a status update in the same state."""

    def on_progress(self, callback: Callable[[str], None]) -> None: ...


class Image(Protocol):
    """An image ready to run: its layers extracted on this node."""

    @property
    def id(self) -> str: ...  # "sha256:<config digest>"

    @property
    def layer_dirs(self) -> list[Path]: ...  # extracted layers, the bottom one first

    @property
    def config(self) -> dict[str, Any]: ...  # the image config's "config" object (Cmd, Env...)


class ImageProvider(Protocol):
    """Finds an image locally or pulls it (``registry_auth``: the X-Registry-Auth value from
    ``--with-registry-auth``). Raises shoal.errors.NotFound / a ShoalError with the registry's
    reason when it cannot."""

    async def ensure(self, image: str, *, registry_auth: str = "",
                     progress: Callable[[str], None] | None = None) -> Image: ...


class NetworkAttacher(Protocol):
    """The node's overlay networks and gateway bridge, as a container uses them. Every method
    is idempotent: after a daemon restart a running container is attached again."""

    async def attach(self, task: Task, container_id: str) -> str | None:
        """Make the container's network namespace, its interfaces and addresses on the task's
        networks and its way out (the gateway bridge), its DNS server and load-balancing
        rules; the namespace's path. Called for every container, with networks or not: None
        when it needs none of this (loopback only)."""
        ...

    async def announce(self, task: Task) -> None:
        """The task serves (running, and healthy if it has a check): add it to every node's
        backends and DNS answers."""
        ...

    async def withdraw(self, task: Task) -> None:
        """The task is about to stop: take it out of every node's backends first."""
        ...

    async def detach(self, task: Task, container_id: str) -> None:
        """Remove what attach made (after the container is gone)."""
        ...


class VolumeProvider(Protocol):
    """The node's named volumes (the daemon passes shoal.volume's VolumeService). Blocking
    calls; errors are ShoalErrors with dockerd's words."""

    def mount(self, name: str, *, driver: str = "", options: dict[str, str] | None = None,
              labels: dict[str, str] | None = None) -> Path:
        """The directory to bind for volume ``name``: made on first use with a mount's
        DriverConfig and labels, its device mounted when its options name one."""
        ...

    def release(self, name: str) -> None:
        """A container that used the volume is gone (its files removed)."""
        ...


class TaskFiles(Protocol):
    """The data of the secrets and configs one task references (swarmkit's restricted
    DependencyGetter), held by the agent in memory. None for an ID the task does not reference,
    or one whose data has not arrived yet (after a restart, until the manager sends it)."""

    def secret(self, secret_id: str) -> bytes | None: ...

    def config(self, config_id: str) -> bytes | None: ...

    def templating(self, kind: str, ref_id: str) -> str:
        """The template driver ("golang") of a secret or config (``kind``) the task
        references, "" for a plain one: its data is then a template the executor expands
        for the task (shoal.exec.templating)."""
        ...


@runtime_checkable
class TaskPruning(Protocol):
    """An executor whose containers can outlive the agent's record of their task (a daemon
    stopped in the middle of a removal) or its patience (a ``swarm leave`` whose tasks do
    not stop): it kills and removes the containers of every task not in ``keep``, with all
    they left on the host, and returns those tasks' IDs."""

    async def remove_tasks_except(self, keep: Collection[str]) -> list[str]: ...


class Executor(Protocol):
    """Describes the node and makes controllers."""

    def describe(self) -> NodeDescription: ...

    def controller(self, task: Task, files: TaskFiles | None = None) -> Controller: ...


def memory_bytes() -> int:
    """MemTotal from /proc/meminfo, in bytes (0 when unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def host_description(hostname: str, engine_labels: dict[str, str] | None = None,
                     *, engine_version: str = "") -> NodeDescription:
    """This machine as a NodeDescription: os.uname, CPUs in nano-CPUs, MemTotal in bytes."""
    uname = os.uname()
    return NodeDescription(
        hostname=hostname,
        platform=Platform(architecture=uname.machine, os=uname.sysname.lower()),
        resources=NodeResources(
            nano_cpus=(os.cpu_count() or 1) * 1_000_000_000, memory_bytes=memory_bytes()
        ),
        engine=EngineDescription(engine_version=engine_version,
                                 labels=dict(engine_labels or {})),
    )
