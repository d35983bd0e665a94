"""SimExecutor: an Executor that runs no process, for unit tests and scale runs.

Tasks pass through the states as a real container would; knobs in the task's environment and
a control file steer each task (see shoal.exec.sim._knobs). Fake containers are records under
``<state_dir>/sim/`` so a restarted agent re-attaches to its running tasks.
"""

from __future__ import annotations

from pathlib import Path

from shoal import __version__
from shoal.exec.executor import TaskFiles, host_description
from shoal.exec.sim.controller import SimController
from shoal.model.objects import NodeDescription, Task

__all__ = ["SimExecutor"]

ENGINE_VERSION = __version__  # the node runs this Shoal release; the executor shows in Plugins


class SimExecutor:
    """Implements shoal.exec.Executor."""

    def __init__(self, *, hostname: str, engine_labels: dict[str, str] | None = None,
                 state_dir: Path) -> None:
        self._hostname = hostname
        self._labels = dict(engine_labels or {})
        self._root = Path(state_dir) / "sim"

    def describe(self) -> NodeDescription:
        return host_description(self._hostname, self._labels, engine_version=ENGINE_VERSION)

    def controller(self, task: Task, files: TaskFiles | None = None) -> SimController:
        del files  # no process, no files to mount
        return SimController(task, self._root / task.id)

    def control_path(self, task_id: str) -> Path:
        """Where to write ``exit N`` / ``fail`` / ``unhealthy`` for a running task."""
        return self._root / task_id / "control"

    def containers(self) -> list[str]:
        """Task IDs that have a sim container on disk (running or not)."""
        if not self._root.is_dir():
            return []
        return sorted(p.name for p in self._root.iterdir() if (p / "container.json").exists())
