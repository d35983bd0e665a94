"""The sim executor: tasks go through their states with no process (see _knobs for knobs)."""

from shoal.exec.sim._knobs import CONTROL_POLL
from shoal.exec.sim.controller import SimController
from shoal.exec.sim.executor import SimExecutor

__all__ = ["CONTROL_POLL", "SimController", "SimExecutor"]
