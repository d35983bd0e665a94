"""The store cache over the in-memory backend: writes, conflicts, indexes, watches."""

from __future__ import annotations

import pytest

from shoal.errors import InvalidArgument, NotFound, SequenceConflict, Unavailable
from shoal.model.objects import Node, Service, Task
from shoal.model.specs import ServiceSpec
from shoal.model.states import TaskState
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store, copy
from shoal.store.watch import Subscription, SubscriptionOverflow


async def test_create_read_your_write_and_version(store: Store) -> None:
    svc = Service(id="s1", spec=ServiceSpec(name="web"))
    await store.update(lambda tx: tx.create(svc))
    got = store.view().get(Service, "s1")
    assert got is not None and got.spec.name == "web"
    assert got.version.index == store.revision > 0
    assert store.view().resolve(Service, "web").id == "s1"


async def test_stale_version_is_refused_and_nothing_written(store: Store) -> None:
    await store.update(lambda tx: tx.create(Service(id="s1", spec=ServiceSpec(name="web"))))
    stale = copy(store.view().get(Service, "s1"))
    fresh = copy(stale)
    fresh.spec.labels = {"a": "b"}
    await store.update(lambda tx: tx.update(fresh))
    stale.spec.labels = {"x": "y"}
    with pytest.raises(SequenceConflict):
        await store.update(lambda tx: tx.update(stale))
    assert store.view().get(Service, "s1").spec.labels == {"a": "b"}


async def test_create_twice_conflicts(store: Store) -> None:
    await store.update(lambda tx: tx.create(Node(id="n1")))
    with pytest.raises(SequenceConflict):
        await store.update(lambda tx: tx.create(Node(id="n1")))


async def test_task_indexes_follow_updates_and_deletes(store: Store) -> None:
    def make(tx):
        for i in range(300):
            tx.create(Task(id=f"t{i:03}", service_id="s1", node_id=f"n{i % 3}"))

    await store.update(make, atomic=False)
    view = store.view()
    assert len(view.tasks_of_service("s1")) == 300
    assert len(view.tasks_of_node("n1")) == 100
    moved = copy(view.get(Task, "t001"))
    moved.desired_state = TaskState.SHUTDOWN
    await store.update(lambda tx: tx.update(moved))
    assert [t.id for t in store.view().tasks_by_desired_state(TaskState.SHUTDOWN)] == ["t001"]
    await store.update(lambda tx: tx.delete(store.view().get(Task, "t001")))
    assert len(store.view().tasks_of_service("s1")) == 299
    assert store.view().tasks_by_desired_state(TaskState.SHUTDOWN) == []


async def test_too_large_atomic_write_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.update(lambda tx: [tx.create(Task(id=f"t{i}")) for i in range(500)])
    assert store.view().count(Task) == 0


async def test_resolve_prefix_ambiguous_and_missing(store: Store) -> None:
    def make(tx):
        tx.create(Service(id="abc1", spec=ServiceSpec(name="one")))
        tx.create(Service(id="abc2", spec=ServiceSpec(name="two")))

    await store.update(make)
    view = store.view()
    assert view.resolve(Service, "abc2").spec.name == "two"
    with pytest.raises(InvalidArgument, match="ambiguous"):
        view.resolve(Service, "abc")
    with pytest.raises(NotFound, match="service nosuch not found"):
        view.resolve(Service, "nosuch")


async def test_watch_delivers_batches(store: Store) -> None:
    sub = store.subscribe([Service])
    await store.update(lambda tx: tx.create(Service(id="s1", spec=ServiceSpec(name="a"))))
    await store.update(lambda tx: tx.create(Node(id="n1")))
    await store.update(lambda tx: tx.create(Service(id="s2", spec=ServiceSpec(name="b"))))
    batch = await sub.next_batch(gap=0.01, max_latency=0.1, idle=1)
    assert [c.obj.id for c in batch] == ["s1", "s2"]
    assert await sub.next_batch(gap=0.01, idle=0.05) == []
    sub.close()


async def test_restart_relists_from_backend() -> None:
    backend = MemoryBackend()
    first = Store(backend)
    await first.start()
    await first.update(lambda tx: tx.create(Service(id="s1", spec=ServiceSpec(name="web"))))
    await first.close()
    second = Store(backend)
    await second.start()
    try:
        assert second.view().resolve(Service, "web").id == "s1"
    finally:
        await second.close()


async def test_a_subscriber_that_falls_behind_is_dropped_then_resyncs(store: Store) -> None:
    """Issue 16: a subscription's queue is bounded; past the bound its changes are dropped and
    the next read raises SubscriptionOverflow, after which the changes from then on arrive."""
    sub = Subscription(frozenset({"services"}), lambda _: None, limit=3)
    store._subs.append(sub)
    try:
        for i in range(5):  # nobody reads
            await store.update(lambda tx, i=i: tx.create(Service(id=f"s{i}", spec=ServiceSpec(name=f"n{i}"))))
        assert sub._queue.qsize() == 1 and sub._pending == 0  # only the wake-up is held
        with pytest.raises(SubscriptionOverflow, match="fell more than"):
            await sub.next()
        assert isinstance(SubscriptionOverflow(frozenset()), Unavailable)
        await store.update(lambda tx: tx.create(Service(id="s9", spec=ServiceSpec(name="n9"))))
        assert [c.obj.id for c in await sub.next_batch(gap=0.01, idle=1)] == ["s9"]
    finally:
        store._subs.remove(sub)
