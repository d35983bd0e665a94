"""Node update and removal (swarmkit controlapi/node.go): availability, labels, desired role.

A removed node's ID goes into the cluster's blacklisted certificates in the same transaction:
every manager refuses its certificate from then on (shoal.manager.ca.auth); it can come back
only by joining again with a token, as a new node."""

from __future__ import annotations

from shoal.errors import FailedPrecondition, InvalidArgument, SequenceConflict
from shoal.manager.ca.auth import blacklist
from shoal.model.objects import Node
from shoal.model.specs import NodeSpec
from shoal.model.states import Availability, NodeRole, NodeState
from shoal.store.store import Store, Tx, copy

__all__ = ["QUORUM_LOSS", "can_remove_manager", "remove_node", "update_node"]


QUORUM_LOSS = ("rpc error: code = FailedPrecondition desc = can't remove member from the raft: "
               "this would result in a loss of quorum")


def _managers(tx: Tx) -> list[Node]:
    return [n for n in tx.view.all(Node) if n.spec.role == NodeRole.MANAGER]


def can_remove_manager(managers: list[Node], node_id: str) -> bool:
    """Whether the managers left once ``node_id`` is gone still make a quorum of the smaller
    membership (swarmkit raft.CanRemoveMember), judged by the reachability the role manager keeps."""
    members = [n for n in managers if n.actual_role() == NodeRole.MANAGER and n.etcd_member]
    if all(n.id != node_id for n in members):
        return True
    reachable = sum(1 for n in members if n.id != node_id and n.manager_status is not None
                    and n.manager_status.reachability == "reachable")
    return reachable >= (len(members) - 1) // 2 + 1


async def update_node(store: Store, ref: str, version: int, spec: NodeSpec) -> Node:
    if spec.availability and spec.availability not in Availability.ALL:
        raise InvalidArgument(f"invalid availability {spec.availability!r}")
    if spec.role and spec.role not in (NodeRole.MANAGER, NodeRole.WORKER):
        raise InvalidArgument(f"invalid role {spec.role!r}")

    def fn(tx: Tx) -> Node:
        current = tx.view.resolve(Node, ref)
        if current.version.index != version:
            raise SequenceConflict()
        node = copy(current)
        role = spec.role or node.spec.role
        if node.spec.role == NodeRole.MANAGER and role == NodeRole.WORKER:
            if len(_managers(tx)) <= 1:
                raise FailedPrecondition(
                    "rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm"
                )
            if not can_remove_manager(list(tx.view.all(Node)), node.id):
                raise FailedPrecondition(QUORUM_LOSS)
        # Only the desired role changes here; the role manager (on the leader) changes the etcd
        # membership and then the node's role, one change at a time.
        node.spec = NodeSpec(name=spec.name, labels=spec.labels or {}, role=role,
                             availability=spec.availability or node.spec.availability)
        tx.update(node)
        return node

    return await store.update(fn)


async def remove_node(store: Store, ref: str, *, force: bool) -> None:
    def fn(tx: Tx) -> None:
        node = tx.view.resolve(Node, ref)
        if NodeRole.MANAGER in (node.spec.role, node.actual_role()):
            raise FailedPrecondition(
                f"rpc error: code = FailedPrecondition desc = node {node.id} is a cluster manager and is a "
                "member of the raft cluster. It must be demoted to worker before removal"
            )
        if not force and node.status.state not in (NodeState.DOWN, NodeState.UNKNOWN):
            raise FailedPrecondition(
                f"rpc error: code = FailedPrecondition desc = node {node.id} is not down and can't be "
                "removed"
            )
        cluster = tx.view.cluster()
        if cluster is not None:
            cluster = copy(cluster)
            blacklist(cluster, node.id)
            tx.update(cluster)
        for task in tx.view.tasks_of_node(node.id):
            if task.is_attachment:
                tx.delete(task)  # its standalone containers' attachments go with it
        tx.delete(node)

    await store.update(fn, retries=3)
