"""What the web view needs from the daemon: the manager's store once it is ready, the swarm
state to say why it is not, and the manager's log source. ``SwarmNode`` has all three; the
unit tests give a small fake."""

from __future__ import annotations

from typing import Protocol

from shoal.manager.logbroker import LogBroker, RemoteLogs
from shoal.store.store import Store

__all__ = ["NodeState", "WebSource", "unavailable_reason"]


class NodeState(Protocol):
    """The part of the API's ``SwarmState`` the page reads."""

    local_node_state: str  # inactive | pending | active | error | locked
    role: str
    error: str


class WebSource(Protocol):
    @property
    def store(self) -> Store | None: ...

    def swarm_state(self) -> NodeState: ...

    def logs(self) -> LogBroker | RemoteLogs | None: ...


def unavailable_reason(source: WebSource) -> str:
    """One sentence for the page when this node has no store to show."""
    state = source.swarm_state()
    if state.local_node_state == "locked":
        return "This manager is locked: unlock it (docker swarm unlock) to see the swarm."
    if state.local_node_state != "active":
        return "This node is not part of a swarm yet."
    if state.role != "manager":
        return ("This node is a worker: workers do not hold the swarm's state. Open the web view "
                "of a manager.")
    return state.error or "This manager's copy of the swarm state is not ready yet."
