"""The gossip node (shoal/net/gossip.py): in-process nodes on 127.0.0.1 with the fast intervals.

Membership through one seed, a set reaching everyone, failure detection and the removal of a dead
node's entries, a graceful leave, anti-entropy for a late or deaf node, the keyring (a wrong key
is never admitted, a rotation keeps the cluster converged), the merge rules (a tombstone wins over
an older set) and a restarted node (same ID) coming back without its past entries. Waits are
bounded (``wait_for_async``); nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from shoal.dev.wait import wait_for_async
from shoal.net.gossip import GossipConfig, GossipError, GossipNode, State
from shoal.net.gossip_members import Member, Membership
from shoal.net.gossip_tables import Tables
from shoal.net.gossip_wire import EntryMsg, Gossip, Keyring, MemberMsg, encode

KEY1 = bytes(range(16))
KEY2 = bytes(range(16, 32))
WRONG = b"\xee" * 16


@asynccontextmanager
async def swarm(n: int, keys: list[bytes] | None = None,
                **settings: Any) -> AsyncIterator[list[GossipNode]]:
    """``n`` started nodes, each joined through the first; all closed at the end."""
    nodes: list[GossipNode] = []
    try:
        for i in range(n):
            nodes.append(GossipNode(GossipConfig.fast(f"node{i}", **settings), keys or [KEY1]))
            await nodes[-1].start()
        for node in nodes[1:]:
            await node.join([nodes[0].addr])
        yield nodes
    finally:
        for node in nodes:
            await node.close()


@asynccontextmanager
async def solo(node_id: str, keys: list[bytes] | None = None) -> AsyncIterator[GossipNode]:
    node = GossipNode(GossipConfig.fast(node_id), keys or [KEY1])
    try:
        await node.start()
        yield node
    finally:
        await node.close()


def ids(nodes: list[GossipNode]) -> frozenset[str]:
    return frozenset(n.node_id for n in nodes)


def state_of(node: GossipNode, node_id: str) -> State | None:
    return next((m.state for m in node.members() if m.id == node_id), None)


def send_raw(keys: list[bytes], msg: Gossip, addr: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(Keyring(keys).seal(encode(msg)), addr)


async def test_members_join_through_one_seed_and_see_each_other() -> None:
    async with swarm(5) as nodes:
        await wait_for_async("every node sees all five",
                             lambda: all(n.live() == ids(nodes) for n in nodes))
        assert all(m.state == State.ALIVE for n in nodes for m in n.members())


async def test_a_set_reaches_every_node() -> None:
    async with swarm(5) as nodes:
        await wait_for_async("membership", lambda: all(n.live() == ids(nodes) for n in nodes))
        sub = nodes[4].subscribe()
        start = time.monotonic()
        nodes[2].set("net1", "task.1", b"10.0.0.5")
        await wait_for_async("the entry on every node",
                             lambda: all(n.get("net1", "task.1") == b"10.0.0.5" for n in nodes))
        print(f"set converged on 5 nodes in {(time.monotonic() - start) * 1000:.0f} ms")
        assert await asyncio.wait_for(anext(sub), 2) == ("net1", "task.1", b"10.0.0.5")
        nodes[3].set("net1", "task.1", b"10.0.0.6")  # another writer, a newer version
        await wait_for_async("the newer value everywhere",
                             lambda: all(n.table("net1") == {"task.1": b"10.0.0.6"} for n in nodes))
        assert await asyncio.wait_for(anext(sub), 2) == ("net1", "task.1", b"10.0.0.6")
        sub.close()
        assert [e async for e in sub] == []


async def test_an_abruptly_stopped_node_is_declared_dead_and_its_entries_go(
        ) -> None:
    async with swarm(4) as nodes:
        victim, rest = nodes[3], nodes[:3]
        victim.set("net1", "victim.task", b"10.0.0.9")
        rest[0].set("net1", "survivor.task", b"10.0.0.2")
        await wait_for_async("both entries", lambda: all(len(n.table("net1")) == 2 for n in nodes))
        subs = [n.subscribe() for n in rest]
        start = time.monotonic()
        await victim.close()  # no leave: the socket just goes away
        await wait_for_async("node3 declared dead everywhere",
                             lambda: all(state_of(n, "node3") == State.DEAD for n in rest), timeout=10)
        print(f"failure detected everywhere in {(time.monotonic() - start) * 1000:.0f} ms")
        assert all(n.table("net1") == {"survivor.task": b"10.0.0.2"} for n in rest)
        assert all(n.live() == ids(rest) for n in rest)
        for sub in subs:
            assert await asyncio.wait_for(anext(sub), 2) == ("net1", "victim.task", None)
            sub.close()


async def test_a_graceful_leave() -> None:
    async with swarm(4) as nodes:
        leaver, rest = nodes[1], [nodes[0], *nodes[2:]]
        await wait_for_async("membership", lambda: all(n.live() == ids(nodes) for n in nodes))
        leaver.set("net1", "leaver.task", b"10.0.0.3")
        await wait_for_async("the entry", lambda: all(n.get("net1", "leaver.task") for n in rest))
        await leaver.leave()
        await wait_for_async("node1 left, for everyone",
                             lambda: all(state_of(n, "node1") == State.LEFT for n in rest))
        assert all(n.table("net1") == {} for n in rest)
        assert all(n.live() == ids(rest) for n in rest)


async def test_a_restarted_node_comes_back_and_its_past_entries_go(
        ) -> None:
    async with swarm(3) as nodes:
        nodes[2].set("net1", "old.task", b"10.0.0.7")
        await wait_for_async("the entry", lambda: all(n.get("net1", "old.task") for n in nodes))
        await nodes[2].close()  # and it comes back at once, before anyone noticed, elsewhere
        async with solo("node2") as again:  # the same ID, a new port
            await again.join([nodes[0].addr])
            everyone = [nodes[0], nodes[1], again]
            await wait_for_async("the entry of its past life deleted",
                                 lambda: all(n.get("net1", "old.task") is None for n in everyone))
            await wait_for_async("node2 alive at its new address",
                                 lambda: all(n.live() == ids(nodes) for n in everyone)
                                 and all(m.addr == again.addr for n in nodes[:2]
                                     for m in n.members() if m.id == "node2"), timeout=10)
            again.set("net1", "new.task", b"10.0.0.8")
            await wait_for_async("a set", lambda: all(n.get("net1", "new.task") for n in everyone))
            await again.close()
            await wait_for_async("node2 dead",
                                 lambda: all(state_of(n, "node2") == State.DEAD for n in nodes[:2]), timeout=10)
        async with solo("node2") as third:  # back after it was declared dead
            await third.join([nodes[1].addr])
            await wait_for_async("node2 alive again",
                                 lambda: all(n.live() == ids(nodes) for n in [*nodes[:2], third]), timeout=10)
            assert all(n.get("net1", "new.task") is None for n in nodes[:2])


async def test_a_late_joiner_gets_the_existing_entries() -> None:
    async with swarm(3) as nodes:
        for i in range(60):  # ~5 kB of state: more than one datagram
            nodes[i % 3].set(f"net{i % 2}", f"task.{i}", b"x" * 60 + str(i).encode())
        nodes[0].delete("net0", "task.0")
        await wait_for_async("the entries everywhere", lambda: all(len(n.table("net0")) + len(n.table("net1")) == 59
                                     for n in nodes))
        await wait_for_async("gossip is quiet", lambda: all(len(n._queue) == 0 for n in nodes))
        async with solo("late") as late:
            await late.join([nodes[1].addr])  # one push-pull, no gossip left to hear
            assert late.table("net0") == nodes[0].table("net0")
            assert late.table("net1") == nodes[0].table("net1")
            assert late.get("net0", "task.0") is None
            await wait_for_async("the late node is a member", lambda: all(n.live() == ids(nodes) | {late.node_id}
                                         for n in [*nodes, late]))


async def test_a_node_that_missed_messages_converges_by_anti_entropy(
        ) -> None:
    async with swarm(4) as nodes:
        deaf = nodes[3]
        await wait_for_async("membership", lambda: all(n.live() == ids(nodes) for n in nodes))
        deaf.set_keys([WRONG])  # it hears nothing (and is not heard) for a while
        for i in range(20):
            nodes[i % 3].set("net1", f"task.{i}", b"10.0.1.%d" % i)
        await wait_for_async("gossip is quiet", lambda: all(len(n._queue) == 0 for n in nodes[:3]))
        assert len(deaf.table("net1")) < 20
        assert deaf.stats.dropped > 0
        deaf.set_keys([KEY1])
        await wait_for_async("the deaf node catches up", lambda: len(deaf.table("net1")) == 20,
                             timeout=10)
        await wait_for_async("all alive again", lambda: all(n.live() == ids(nodes) for n in nodes),
                             timeout=10)


async def test_a_node_with_a_wrong_key_is_never_admitted() -> None:
    async with swarm(3) as nodes, solo("intruder", [WRONG]) as intruder:
        with pytest.raises(GossipError):
            await intruder.join([nodes[0].addr])
        assert nodes[0].stats.dropped >= 1
        # Its datagrams claiming membership and entries are dropped too.
        claim = Gossip("intruder", [MemberMsg("intruder", "127.0.0.1", 9, 5, State.ALIVE)],
                       [EntryMsg("net1", "evil", b"1.2.3.4", "intruder", 99)])
        before = [n.stats.dropped for n in nodes]
        for n in nodes:
            send_raw([WRONG], claim, n.addr)
        await wait_for_async("the datagrams dropped",
                             lambda: all(n.stats.dropped > b for n, b in zip(nodes, before)))
        await asyncio.sleep(0.3)
        for n in nodes:
            assert n.live() == ids(nodes)
            assert "intruder" not in {m.id for m in n.members()}
            assert n.get("net1", "evil") is None
        assert intruder.live() == {"intruder"}


async def test_key_rotation_keeps_the_cluster_converged() -> None:
    async with swarm(4) as nodes:
        await wait_for_async("membership", lambda: all(n.live() == ids(nodes) for n in nodes))
        stop = asyncio.Event()

        async def traffic() -> None:
            i = 0
            while not stop.is_set():
                nodes[i % 4].set("net1", f"k{i % 8}", str(i).encode())
                i += 1
                await asyncio.sleep(0.02)

        writer = asyncio.create_task(traffic())
        try:
            for n in nodes:  # a new primary, one node after the other
                n.set_keys([KEY2, KEY1])
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
            for n in nodes:  # then the old key goes
                n.set_keys([KEY2])
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await writer
        nodes[0].set("net1", "after", b"rotation")
        await wait_for_async("all alive", lambda: all(n.live() == ids(nodes) for n in nodes),
                             timeout=10)
        await wait_for_async("the same tables everywhere",
                             lambda: all(n.table("net1") == nodes[0].table("net1") for n in nodes)
                             and nodes[0].get("net1", "after") == b"rotation", timeout=10)
        # The old key opens nothing any more.
        before = nodes[1].stats.dropped
        send_raw([KEY1], Gossip("node0"), nodes[1].addr)
        await wait_for_async("an old-key datagram dropped", lambda: nodes[1].stats.dropped > before)


async def test_a_tombstone_wins_over_an_older_set() -> None:
    async with swarm(3) as nodes:
        nodes[0].set("net1", "k", b"v1")
        await wait_for_async("the set", lambda: all(n.get("net1", "k") == b"v1" for n in nodes))
        nodes[1].delete("net1", "k")
        await wait_for_async("the delete", lambda: all(n.get("net1", "k") is None for n in nodes))
        # The old set arrives again (a late retransmission): it stays deleted.
        stale = Gossip("node0", [], [EntryMsg("net1", "k", b"v1", "node0", 1)])
        for n in nodes:
            send_raw([KEY1], stale, n.addr)
        await asyncio.sleep(0.3)
        assert all(n.get("net1", "k") is None for n in nodes)
        await asyncio.sleep(0.2)
        assert all(n.table("net1") == {} for n in nodes)


def test_merge_rules_are_order_independent() -> None:
    older = EntryMsg("t", "k", b"v1", "a", 3)
    tomb = EntryMsg("t", "k", None, "b", 4)
    for order in ([older, tomb], [tomb, older]):
        tables = Tables("c")
        for msg in order:
            tables.merge(msg, 0.0)
        assert tables.table("t") == {}
        assert tables.clock == 4
    tables = Tables("c")
    tables.merge(tomb, 0.0)
    assert tables.reap(before=1.0) == 1 and tables.get("t", "k") is None
    newer = EntryMsg("t", "k", b"v2", "a", 5)
    assert tables.merge(newer, 0.0) == (True, ("t", "k", b"v2"))


def test_membership_rules() -> None:
    me = Member("me", "h", 1, 0, State.ALIVE, 0.0)
    ms = Membership(me)
    assert ms.apply(MemberMsg("b", "h", 2, 0, State.ALIVE), 0.0) is not None
    assert ms.apply(MemberMsg("b", "h", 2, 0, State.ALIVE), 0.0) is None  # old news
    assert ms.apply(MemberMsg("b", "h", 2, 0, State.SUSPECT), 0.0) is not None
    assert ms.apply(MemberMsg("b", "h", 2, 0, State.ALIVE), 0.0) is None  # needs a higher inc
    assert ms.apply(MemberMsg("b", "h", 2, 1, State.ALIVE), 0.0) is not None  # refuted
    assert ms.apply(MemberMsg("b", "h", 2, 1, State.DEAD), 0.0) is not None
    assert ms.is_gone("b") and ms.live_count() == 1
    change = ms.apply(MemberMsg("me", "h", 1, 0, State.SUSPECT), 0.0)
    assert change is not None and change.refuted and me.inc == 1
    assert ms.reap(before=1.0) == ["b"]


async def test_closing_ends_subscriptions_and_is_idempotent() -> None:
    node = GossipNode(GossipConfig.fast("solo"), [KEY1])
    try:
        await node.start()
        sub = node.subscribe()
        node.set("t", "k", b"v")
        node.delete("t", "k")
        assert await node.join([node.addr]) == 0  # only itself: the first node
        with pytest.raises(ValueError):
            node.set("t", "k", b"x" * 2000)
    finally:
        await node.close()
        await node.close()
    assert [e async for e in sub] == [("t", "k", b"v"), ("t", "k", None)]
    with contextlib.suppress(ValueError):
        GossipNode(GossipConfig.fast("bad"), [b"short"])
