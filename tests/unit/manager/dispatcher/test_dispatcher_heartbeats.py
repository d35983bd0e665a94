"""Heartbeat periods changed by `swarm update` (issue 16): every session hears the new period at
once, a shorter one gives each node a grace of the old one, and a removed node leaves the
expiry table. Real Dispatcher over mutual TLS."""

from __future__ import annotations

import time

from parts import Parts
from swarmport import swarm_port

from shoal.dev.wait import wait_for_async
from shoal.manager.dispatcher.dispatcher import GRACE_MULTIPLIER
from shoal.model.dispatch import Heartbeat, HeartbeatAck, SessionInfo
from shoal.model.objects import Cluster, Node
from shoal.model.specs import SECOND
from shoal.store.store import Store, Tx, copy

DAYS_28 = 28 * 24 * 3600 * SECOND


async def _set_period(store: Store, ns: int) -> None:
    def fn(tx: Tx) -> None:
        cluster = tx.view.cluster()
        assert cluster is not None
        cluster = copy(cluster)
        cluster.spec.dispatcher.heartbeat_period = ns
        tx.update(cluster)
    await store.update(fn)


async def test_a_new_period_reaches_every_session_and_a_shorter_one_has_a_grace(
        store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        node = await port.add_node()
        session = await port.session(node)
        await _set_period(store, DAYS_28)
        await wait_for_async("a SessionInfo with 28 days", lambda: any(
            isinstance(m, SessionInfo) and m.heartbeat_period == DAYS_28 for m in session.got))
        await session.send(Heartbeat())
        await wait_for_async("the ack with 28 days", lambda: any(
            isinstance(m, HeartbeatAck) and m.period == DAYS_28 for m in session.got))

        before = time.monotonic()
        await _set_period(store, 5 * SECOND)
        # The agent, asleep for 28 days, is told at once...
        await wait_for_async("a SessionInfo with 5 s", lambda: any(
            isinstance(m, SessionInfo) and m.heartbeat_period == 5 * SECOND for m in session.got))
        # ...and its node is not judged by 5 s until a beat due by the old period could come.
        expires = port.dispatcher._expires[node.node_id]
        assert expires >= before + DAYS_28 / SECOND
        # Its next heartbeat, acknowledged with the new period, ends the grace.
        await session.send(Heartbeat())
        await wait_for_async("the ack with 5 s", lambda: any(
            isinstance(m, HeartbeatAck) and m.period == 5 * SECOND for m in session.got))
        assert port.dispatcher._expires[node.node_id] <= time.monotonic() + GRACE_MULTIPLIER * 5


async def test_a_deleted_node_leaves_the_expiry_table(store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        node = await port.add_node()
        session = await port.session(node)
        await session.send(Heartbeat())
        await wait_for_async("the node's clock", lambda: node.node_id in port.dispatcher._expires)

        def delete(tx: Tx) -> None:
            stored = tx.view.get(Node, node.node_id)
            assert stored is not None
            tx.delete(stored)
        await store.update(delete)
        await wait_for_async("the node's clock gone",
                             lambda: node.node_id not in port.dispatcher._expires)
        assert store.view().get(Cluster, port.swarm.cluster_id) is not None
