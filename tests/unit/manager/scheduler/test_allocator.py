"""The allocator moves NEW tasks to PENDING; with the scheduler, they end ASSIGNED."""

from __future__ import annotations

from conftest import assigned, create, make_node, make_task, settle, tasks

from shoal.dev.wait import wait_for_async
from shoal.manager.allocator import PENDING_MESSAGE, Allocator
from shoal.manager.scheduler import Scheduler
from shoal.model.objects import Task
from shoal.model.states import TaskState
from shoal.store.store import Store


async def test_new_tasks_become_pending(store: Store, allocator: Allocator) -> None:
    await create(store, [make_task("before", state=TaskState.NEW)])
    await create(store, [make_task(f"t{i}", state=TaskState.NEW) for i in range(300)])
    await create(store, [make_task("unwanted", state=TaskState.NEW, desired=TaskState.SHUTDOWN)])
    await wait_for_async(
        "301 tasks pending",
        lambda: sum(t.status.state == TaskState.PENDING for t in tasks(store)) == 301,
    )
    t = store.view().get(Task, "t7")
    assert t is not None and t.status.message == PENDING_MESSAGE and t.node_id == ""
    await settle(store)
    unwanted = store.view().get(Task, "unwanted")
    assert unwanted is not None and unwanted.status.state == TaskState.NEW


async def test_pipeline_new_to_assigned(
    store: Store, allocator: Allocator, scheduler: Scheduler
) -> None:
    await create(store, [make_node("n1"), make_node("n2")])
    await create(store, [make_task(f"t{i}", state=TaskState.NEW) for i in range(10)])
    await wait_for_async("10 assigned", lambda: len(assigned(store)) == 10)


async def test_job_tasks_desired_complete_go_through(
    store: Store, allocator: Allocator, scheduler: Scheduler
) -> None:
    """A job's task is desired COMPLETE (not RUNNING): still wanted, so allocated and placed."""
    await create(store, [make_node("n1")])
    await create(store, [make_task(f"j{i}", state=TaskState.NEW, desired=TaskState.COMPLETE)
                         for i in range(3)])
    await wait_for_async("3 assigned", lambda: len(assigned(store)) == 3)
