"""The runc executor: tasks as real containers (runc, overlayfs, cgroups), each under a shim
that keeps its output and exit code across daemon restarts. Needs root."""

from shoal.exec.runc.controller import RuncController
from shoal.exec.runc.executor import RuncExecutor
from shoal.exec.runc.state import RuncConfig

__all__ = ["RuncConfig", "RuncController", "RuncExecutor"]
