"""Docker's words when ``swarm init|join|leave`` is refused (moby daemon/cluster/swarm.go)."""

from __future__ import annotations

from shoal.model.objects import Node
from shoal.model.states import NodeRole
from shoal.pki.identity import NodeIdentity
from shoal.store.store import Store

__all__ = ["ALREADY", "LAST_MANAGER", "LEAVE_LOCKED", "leave_refusal"]

ALREADY = 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.'
LAST_MANAGER = (
    "You are attempting to leave the swarm on a node that is participating as a manager. Removing the "
    "last manager erases all current state of the swarm. Use `--force` to ignore this message. "
)
LEAVE_LOCKED = "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message."


def leave_refusal(identity: NodeIdentity | None, store: Store | None) -> str | None:
    """Why a manager may not leave without --force (None: it may): the quorum it would break."""
    if identity is None or identity.role != NodeRole.MANAGER:
        return None
    msg = "You are attempting to leave the swarm on a node that is participating as a manager. "
    if store is None:
        msg += "Doing so may lose the consensus of your cluster. "
    else:
        managers = [n for n in store.view().all(Node) if n.actual_role() == NodeRole.MANAGER]
        reachable = sum(1 for n in managers if n.manager_status is not None
                        and n.manager_status.reachability == "reachable")
        unreachable = len(managers) - reachable
        if reachable - 1 <= unreachable:
            if reachable <= 1 and unreachable == 0:
                return LAST_MANAGER
            msg += (f"Removing this node leaves {reachable - 1} managers out of {reachable + unreachable}. "
                    "Without a Raft quorum your swarm will be inaccessible. ")
    return msg + ("The only way to restore a swarm that has lost consensus is to reinitialize it with "
                  "`--force-new-cluster`. Use `--force` to suppress this message.")
