"""Leader election and fencing against a real, throwaway etcd member: one leader at a time, a
resignation hands over, and a deposed leader's writes are refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.dev.wait import wait_for_async
from shoal.manager.leadership import Elector, Term
from shoal.model.objects import Service
from shoal.model.specs import ServiceSpec
from shoal.store.etcd import EtcdBackend, EtcdMember
from shoal.store.etcd.client import EtcdClient
from shoal.store.etcd.testing import client_context, throwaway_member
from shoal.store.store import LostLeadership, Store, fenced


@pytest.fixture
async def member(tmp_path: Path) -> AsyncIterator[EtcdMember]:
    async with throwaway_member(tmp_path) as started:
        yield started


def _client(member: EtcdMember) -> EtcdClient:
    return EtcdClient([member.settings.client_url], ssl_context=client_context(member.settings), timeout=2.0)


async def _leading(elector: Elector) -> Term:
    async with asyncio.timeout(15):
        return await elector.wait_for_term()


async def test_one_leader_and_a_resignation_hands_over(member: EtcdMember) -> None:
    a = Elector(_client(member), node_id="a", addr="10.0.0.1:2377", ttl=2)
    b = Elector(_client(member), node_id="b", addr="10.0.0.2:2377", ttl=2)
    runs = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        first = await asyncio.wait_for(asyncio.wait(
            [asyncio.create_task(_leading(e)) for e in (a, b)], return_when=asyncio.FIRST_COMPLETED), 15)
        assert len(first[0]) == 1
        winner, loser = (a, b) if a.is_leader else (b, a)
        assert not loser.is_leader
        await wait_for_async("the loser sees the winner", lambda: loser.leader_addr == winner.addr, 10,
                             interval=0.05)
        term = winner.term
        assert term is not None
        winner.resign()
        new = await _leading(loser)
        assert term.lost.is_set() and new.leader.term > term.leader.term
        assert new.leader.node_id == loser.node_id
    finally:
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await a.close()
        await b.close()


async def test_a_deposed_leaders_writes_are_refused(member: EtcdMember) -> None:
    backend = EtcdBackend([member.settings.client_url], ssl_context=client_context(member.settings))
    store = Store(backend)
    a = Elector(_client(member), node_id="a", addr="10.0.0.1:2377", ttl=2)
    b = Elector(_client(member), node_id="b", addr="10.0.0.2:2377", ttl=2)
    run_a = asyncio.create_task(a.run())
    run_b: asyncio.Task[None] | None = None
    try:
        await backend.start()
        await store.start()
        old = await _leading(a)
        with fenced(old.fence):
            await store.update(lambda tx: tx.create(Service(id="s1", spec=ServiceSpec(name="one"))))
        run_b = asyncio.create_task(b.run())
        a.resign()
        await _leading(b)
        with fenced(old.fence), pytest.raises(LostLeadership):
            await store.update(lambda tx: tx.create(Service(id="s2", spec=ServiceSpec(name="two"))))
        assert store.view().get(Service, "s2") is None
        # Writes without a fence (the API's) are not affected.
        await store.update(lambda tx: tx.create(Service(id="s3", spec=ServiceSpec(name="three"))))
    finally:
        for task in (run_a, run_b):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (run_a, run_b) if t is not None), return_exceptions=True)
        await a.close()
        await b.close()
        await store.close()
        await backend.close()


async def test_names_are_reserved_across_writers(member: EtcdMember) -> None:
    """Two stores (two managers) cannot both create a service with one name."""
    backends = [EtcdBackend([member.settings.client_url], ssl_context=client_context(member.settings))
                for _ in range(2)]
    stores = [Store(b) for b in backends]
    try:
        for b, s in zip(backends, stores, strict=True):
            await b.start()
            await s.start()
        results = await asyncio.gather(
            *(s.update(lambda tx, i=i: tx.create(Service(id=f"id{i}", spec=ServiceSpec(name="same"))))
              for i, s in enumerate(stores)), return_exceptions=True)
        assert sum(1 for r in results if not isinstance(r, BaseException)) == 1, results
        await stores[0].sync()
        assert len(stores[0].view().by_name(Service, "same")) == 1
        # The name is free again once the service is gone.
        winner = stores[0].view().by_name(Service, "same")[0]
        await stores[0].update(lambda tx: tx.delete(winner))
        await stores[1].sync()
        await stores[1].update(lambda tx: tx.create(Service(id="id9", spec=ServiceSpec(name="same"))))
    finally:
        for s in stores:
            await s.close()
        for b in backends:
            await b.close()
