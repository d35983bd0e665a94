"""Node update and removal (swarmkit controlapi/node.go): availability, labels, desired role."""

from __future__ import annotations

from shoal.errors import FailedPrecondition, InvalidArgument, SequenceConflict
from shoal.model.objects import ManagerStatus, Node
from shoal.model.specs import NodeSpec
from shoal.model.states import Availability, NodeRole, NodeState
from shoal.store.store import Store, Tx, copy

__all__ = ["remove_node", "update_node"]


def _managers(tx: Tx) -> list[Node]:
    return [n for n in tx.view.all(Node) if n.spec.role == NodeRole.MANAGER]


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
        if node.spec.role == NodeRole.MANAGER and role == NodeRole.WORKER and len(_managers(tx)) <= 1:
            raise FailedPrecondition(
                "rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm"
            )
        node.spec = NodeSpec(name=spec.name, labels=spec.labels or {}, role=role,
                             availability=spec.availability or node.spec.availability)
        if role == NodeRole.MANAGER and node.manager_status is None:
            # Recorded now; the node joins the store's quorum once Raft membership exists, so its
            # reachability stays "unknown" until then.
            node.manager_status = ManagerStatus(reachability="unknown", addr=f"{node.status.addr}:2377")
        elif role == NodeRole.WORKER:
            node.manager_status = None
        tx.update(node)
        return node

    return await store.update(fn)


async def remove_node(store: Store, ref: str, *, force: bool) -> None:
    def fn(tx: Tx) -> None:
        node = tx.view.resolve(Node, ref)
        if node.spec.role == NodeRole.MANAGER or node.cert_role == NodeRole.MANAGER:
            raise FailedPrecondition(
                f"rpc error: code = FailedPrecondition desc = node {node.id} is a cluster manager and is a "
                "member of the raft cluster. It must be demoted to worker before removal"
            )
        if not force and node.status.state not in (NodeState.DOWN, NodeState.UNKNOWN):
            raise FailedPrecondition(
                f"rpc error: code = FailedPrecondition desc = node {node.id} is not down and can't be "
                "removed"
            )
        tx.delete(node)

    await store.update(fn, retries=3)
