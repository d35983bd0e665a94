"""The dispatcher trusts only the node its certificate names: statuses only of that node's
tasks, sessions only while the node is in the store and was not removed; a node removed while
its session is open loses it at once. Real Dispatcher and CAServer over mutual TLS."""

from __future__ import annotations

import asyncio
import logging

import pytest
from parts import Parts
from swarmport import Session, SwarmPort, swarm_port

from shoal.dev.wait import wait_for_async
from shoal.manager.ca.auth import blacklist
from shoal.manager.controlapi.node import remove_node
from shoal.model.dispatch import (
    CLOSE_NOT_LEADER,
    CLOSE_REMOVED,
    Heartbeat,
    HeartbeatAck,
    StatusUpdate,
    TaskStatusUpdate,
)
from shoal.model.objects import Node, Task, TaskStatus
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx, copy


def _task(task_id: str, node_id: str) -> Task:
    return Task(id=task_id, node_id=node_id, status=TaskStatus(state=TaskState.ASSIGNED))


def _state(store: Store, task_id: str) -> TaskState:
    task = store.view().get(Task, task_id)
    assert task is not None
    return task.state


async def test_a_status_for_another_nodes_task_is_refused_alone(
        store: Store, parts: Parts, caplog: pytest.LogCaptureFixture) -> None:
    async with swarm_port(store, parts) as port:
        a, b = await port.add_node(), await port.add_node()

        def tasks(tx: Tx) -> None:
            tx.create(_task("task-of-a", a.node_id))
            tx.create(_task("task-of-b", b.node_id))
        await store.update(tasks)
        session = await port.session(a)
        running = TaskStatus(state=TaskState.RUNNING, message="started")
        with caplog.at_level(logging.WARNING, logger="shoal.manager.dispatcher.dispatcher"):
            await session.send(StatusUpdate(updates=[
                TaskStatusUpdate(task_id="task-of-b", status=running),
                TaskStatusUpdate(task_id="task-of-a", status=running),
            ]))
            await wait_for_async("A's own task running",
                                 lambda: _state(store, "task-of-a") == TaskState.RUNNING)
            await asyncio.sleep(0.3)  # past the next status flushes
        assert _state(store, "task-of-b") == TaskState.ASSIGNED
        assert any("task-of-b" in r.message and "cannot update a task not assigned this node"
                   in r.message for r in caplog.records)
        # The session goes on: the next heartbeat is answered.
        await session.send(Heartbeat())
        await wait_for_async("a heartbeat ack", lambda: any(isinstance(m, HeartbeatAck) for m in session.got))
        assert session.close_code is None


async def test_removing_a_node_closes_its_open_session_at_once(store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        worker = await port.add_node()
        session = await port.session(worker)
        await remove_node(store, worker.node_id, force=True)
        code, reason = await session.closed()
        assert code == CLOSE_REMOVED and f"node {worker.node_id} was removed" in reason
        cluster = store.view().cluster()
        assert cluster is not None and worker.node_id in (cluster.blacklisted_certificates or {})


async def test_a_node_deleted_from_the_store_loses_its_session(store: Store, parts: Parts) -> None:
    """The store's deletion alone is watched too (not only the removal's blacklist entry)."""
    async with swarm_port(store, parts) as port:
        worker = await port.add_node()
        session = await port.session(worker)

        def delete(tx: Tx) -> None:
            node = tx.view.get(Node, worker.node_id)
            assert node is not None
            tx.delete(node)
        await store.update(delete)
        code, reason = await session.closed()
        assert code == CLOSE_REMOVED and reason == f"node {worker.node_id} was removed from the swarm"


async def _refused(port: SwarmPort, session: Session) -> str:
    code, reason = await session.closed()
    assert code == CLOSE_REMOVED, (code, reason)
    return reason


@pytest.mark.parametrize("leader", [True, False], ids=["leader", "follower"])
async def test_a_removed_node_cannot_open_a_session_on_any_manager(
        store: Store, parts: Parts, leader: bool) -> None:
    async with swarm_port(store, parts, leader=leader) as port:
        worker = await port.add_node()
        await remove_node(store, worker.node_id, force=True)
        reason = await _refused(port, await port.session(worker, register=False))
        assert reason == f"Permission denied: node {worker.node_id} was removed from swarm"

        # Even a node made again with its ID: the ID is remembered as removed.
        await store.update(lambda tx: tx.create(Node(id=worker.node_id)))
        reason = await _refused(port, await port.session(worker, register=False))
        assert "was removed from swarm" in reason

        # A certificate for an ID the store never had.
        stranger = port.identity("strangerxxxxxxxxxxxxxxxxx1")
        reason = await _refused(port, await port.session(stranger, register=False))
        assert reason == "permission denied: node strangerxxxxxxxxxxxxxxxxx1 is not part of this swarm"

        if not leader:  # a node that may call is sent to the leader
            other = await port.add_node()
            session = await port.session(other, register=False)
            code, _ = await session.closed()
            assert code == CLOSE_NOT_LEADER


async def test_a_blacklisted_node_loses_its_session_when_the_cluster_says_so(
        store: Store, parts: Parts) -> None:
    """The cluster object alone (a removal written by another manager's older code, or a
    restore) closes the session too."""
    async with swarm_port(store, parts) as port:
        worker = await port.add_node()
        session = await port.session(worker)

        def remember(tx: Tx) -> None:
            cluster = tx.view.cluster()
            assert cluster is not None
            cluster = copy(cluster)
            blacklist(cluster, worker.node_id)
            tx.update(cluster)
        await store.update(remember)
        reason = await _refused(port, session)
        assert reason == f"Permission denied: node {worker.node_id} was removed from swarm"
