"""The store's feeder (the etcd watch into the cache) under faults: supervised, re-listing,
never frozen silently (issue 16: it used to die for good on a failed re-list or any error other
than Compacted or Unavailable, leaving a frozen cache and every write timing out)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

import pytest

from shoal import aio
from shoal.dev.wait import wait_for_async
from shoal.errors import Unavailable
from shoal.model.objects import Service
from shoal.model.specs import ServiceSpec
from shoal.store.backend import KV, Compacted, Event
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store

FAST = aio.Backoff(initial=0.001, cap=0.001)


class FaultyBackend(MemoryBackend):
    """A MemoryBackend whose watches fail as told when opened, and whose lists after the first
    (the store's start) fail as told."""

    def __init__(self, *, watch_faults: builtins.list[Exception] | None = None,
                 list_faults: builtins.list[Exception] | None = None) -> None:
        super().__init__()
        self.watch_faults = watch_faults or []
        self.list_faults = list_faults or []
        self.lists = 0
        self.forever: Exception | None = None  # raised by every watch while set

    async def list(self, prefix: str) -> tuple[int, builtins.list[KV]]:
        self.lists += 1
        if self.lists > 1 and self.list_faults:
            raise self.list_faults.pop(0)
        return await super().list(prefix)

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[builtins.list[Event]]:
        if self.forever is not None:
            raise self.forever
        if self.watch_faults:
            raise self.watch_faults.pop(0)
        async for events in super().watch(prefix, start_revision):
            yield events


async def _write(store: Store, name: str) -> None:
    await store.update(lambda tx: tx.create(Service(id=name, spec=ServiceSpec(name=name))))


async def test_an_unexpected_watch_error_is_retried() -> None:
    backend = FaultyBackend(watch_faults=[RuntimeError("boom"), KeyError("x")])
    store = Store(backend, feed_backoff=FAST)
    await store.start()
    try:
        await _write(store, "s1")  # applied: the feeder came back
        assert store.view().get(Service, "s1") is not None
        assert store._feeder is not None and not store._feeder.done()
    finally:
        await store.close()


async def test_a_failed_relist_after_compaction_is_retried() -> None:
    backend = FaultyBackend(watch_faults=[Compacted("compacted")],
                            list_faults=[Unavailable("etcd down"), RuntimeError("bad")])
    store = Store(backend, feed_backoff=FAST)
    await store.start()
    try:
        await _write(store, "s1")
        assert store.view().get(Service, "s1") is not None
        assert backend.lists == 4  # the start, two failed re-lists, the one that worked
    finally:
        await store.close()


async def test_a_write_fails_clearly_when_the_feeder_stays_down() -> None:
    backend = FaultyBackend()
    backend.forever = Unavailable("etcd: connection refused")
    store = Store(backend, feed_backoff=FAST, feed_stall=0.0)
    await store.start()
    try:
        with pytest.raises(Unavailable, match=r"store did not apply revision \d+: the store's "
                           r"watch of etcd has been failing for \d+s \(etcd: connection refused\)"):
            await _write(store, "s1")  # committed while the feeder was still in its grace
        with pytest.raises(Unavailable, match=r"this manager's store cache is stale: the store's "
                           r"watch of etcd has been failing"):
            await _write(store, "s3")  # down past its grace: refused before it is written
        assert await backend.revision() == 2  # s1 only
        backend.forever = None
        await wait_for_async("the feeder watching again", lambda: store._feed_watching)
        await _write(store, "s2")  # recovered: the cache has both
        assert {s.id for s in store.view().all(Service)} == {"s1", "s2"}  # no s3
    finally:
        await store.close()
