"""Commit: compare-and-set per task; a task changed under the scheduler goes back in the queue."""

from __future__ import annotations

from conftest import create, make_node, make_task
from parts import FAST_SCHED

from shoal.manager.scheduler import Scheduler
from shoal.model.objects import Task
from shoal.model.states import TaskState
from shoal.store.store import Store, copy


async def _change(store: Store, task_id: str, **fields: str) -> None:
    current = store.view().get(Task, task_id)
    assert current is not None
    task = copy(current)
    for name, value in fields.items():
        setattr(task, name, value)
    await store.update(lambda tx: tx.update(task))


async def test_conflict_requeues_the_task_and_frees_the_node(store: Store) -> None:
    await create(store, [make_node("n1"), make_task("t0")])
    sched = Scheduler(store, FAST_SCHED)
    sched._tracker.load(store.view())
    decided = sched.decide(0.0)
    assert decided.assigned == 1 and sched._tracker.nodes["n1"].active_total == 1
    await _change(store, "t0", name="renamed")  # someone else writes t0 first
    written, conflicts = await sched._commit(decided.decisions)
    assert (written, conflicts) == (0, 1)
    assert "t0" in sched._tracker.unassigned
    assert sched._tracker.nodes["n1"].active_total == 0
    await sched._commit(sched.decide(0.0).decisions)
    t0 = store.view().get(Task, "t0")
    assert t0 is not None and t0.status.state == TaskState.ASSIGNED and t0.node_id == "n1"


async def test_task_no_longer_wanted_before_commit_is_left_alone(store: Store) -> None:
    await create(store, [make_node("n1"), make_task("t0")])
    sched = Scheduler(store, FAST_SCHED)
    sched._tracker.load(store.view())
    decided = sched.decide(0.0)
    await _change(store, "t0", desired_state=TaskState.SHUTDOWN)
    await sched._commit(decided.decisions)
    t0 = store.view().get(Task, "t0")
    assert t0 is not None and t0.status.state == TaskState.PENDING and t0.node_id == ""
    assert not sched._tracker.unassigned and sched._tracker.nodes["n1"].active_total == 0
