"""Network attachments of standalone containers (swarmkit manager/resourceapi/allocator.go).

A node's agent sends ``AttachNetwork`` over its session when one of its standalone containers
(``docker run --network X``, ``docker network connect X``) joins an attachable overlay. The
dispatcher answers here, in one store transaction: the network is resolved (by ID, name or
prefix), it must be an overlay made ``--attachable`` (else PermissionDenied, dockerd's words),
and a task is created for the calling node:

    {NodeID: caller, Spec.NetworkAttachmentSpec: {ContainerID}, Spec.Networks: [{Target}],
     DesiredState: RUNNING, Status: NEW}

A fixed address (``--ip``) is refused: the allocator hands out addresses in order only.

From then on it is an ordinary task: the allocator gives it its address (NEW -> PENDING), the
scheduler's preassigned path takes it to ASSIGNED, the dispatcher sends it to its node. No
service owns it, so the orchestrators and the task reaper leave it alone. ``DetachNetwork``
deletes it, only when it is the caller's own attachment task; the allocator then releases the
address. Tasks of a node removed from the swarm go with the node (controlapi).
"""

from __future__ import annotations

import logging

from shoal.errors import InvalidArgument, NotFound, PermissionDenied, ShoalError
from shoal.model.dispatch import AttachNetwork, AttachNetworkReply, DetachNetwork
from shoal.model.ids import new_id
from shoal.model.objects import Network, Task, TaskStatus
from shoal.model.specs import NetworkAttachmentConfig, TaskSpec
from shoal.model.states import TaskState
from shoal.store.backend import Fence
from shoal.store.store import Store, Tx

__all__ = ["attach", "detach"]

log = logging.getLogger(__name__)

def _error_code(exc: ShoalError) -> str:
    return type(exc).__name__


async def attach(store: Store, node_id: str, msg: AttachNetwork, *,
                 fence: Fence | None = None) -> AttachNetworkReply:
    """The reply to one AttachNetwork of ``node_id``: the new task's ID, or the refusal."""
    def fn(tx: Tx) -> str:
        try:
            net = tx.view.resolve(Network, msg.network, what="network")
        except NotFound:
            raise NotFound(f"network {msg.network} not found") from None
        if net.spec.ingress or not net.spec.attachable:
            raise PermissionDenied(f"network {net.spec.name} not manually attachable")
        if not msg.container_id:
            raise InvalidArgument("no container ID given")
        if msg.addresses:
            raise InvalidArgument("fixed addresses on swarm overlays are not supported by Shoal")
        task = Task(id=new_id(), node_id=node_id, desired_state=TaskState.RUNNING,
                    spec=TaskSpec(network_attachment_spec={"ContainerID": msg.container_id},
                                  networks=[NetworkAttachmentConfig(target=net.id)]),
                    status=TaskStatus(state=TaskState.NEW, message="created"))
        tx.create(task)
        return task.id

    try:
        task_id = await store.update(fn, retries=5, fence=fence)
    except ShoalError as exc:
        log.info("node %s: attachment of container %s to %s refused: %s", node_id,
                 msg.container_id[:12], msg.network, exc.message)
        desc = exc.message
        if isinstance(exc, PermissionDenied):
            desc = f"rpc error: code = PermissionDenied desc = {exc.message}"
        return AttachNetworkReply(request_id=msg.request_id, error=desc, code=_error_code(exc))
    log.info("node %s: attachment task %s for container %s on %s", node_id, task_id,
             msg.container_id[:12], msg.network)
    return AttachNetworkReply(request_id=msg.request_id, task_id=task_id)


async def detach(store: Store, node_id: str, msg: DetachNetwork, *,
                 fence: Fence | None = None) -> None:
    """Delete the caller's attachment task; another node's, or a service's task, is refused
    (logged: the message has no reply)."""
    def fn(tx: Tx) -> None:
        task = tx.view.get(Task, msg.task_id)
        if task is None:
            return  # gone already: detaching is idempotent
        if task.node_id != node_id or not task.is_attachment:
            raise PermissionDenied(f"node {node_id} may not remove task {msg.task_id}")
        tx.delete(task)

    try:
        await store.update(fn, retries=5, fence=fence)
    except PermissionDenied as exc:
        log.warning("detach refused: %s", exc.message)
        return
    log.info("node %s: attachment task %s removed", node_id, msg.task_id)
