"""The agent: a session with the managers, the worker, one runner per task (see agent.py)."""

from shoal.agent.agent import Agent
from shoal.agent.reporter import Reporter
from shoal.agent.runner import TaskRunner
from shoal.agent.session import NodeRemoved, SessionDropped
from shoal.agent.task import StateRegression, step, transition
from shoal.agent.worker import Worker

__all__ = [
    "Agent",
    "NodeRemoved",
    "Reporter",
    "SessionDropped",
    "StateRegression",
    "TaskRunner",
    "Worker",
    "step",
    "transition",
]
