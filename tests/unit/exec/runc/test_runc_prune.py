"""The runc executor's prune: the containers of tasks the agent no longer holds are killed and
removed with their mounts, cgroups and files; kept tasks' and standalone containers stay.
Real containers (needs root and runc), the fixtures of test_runc_executor."""

from __future__ import annotations

import asyncio

from shoal.exec.executor import TaskPruning
from shoal.exec.runc import RuncController
from shoal.exec.runc.mounts import mounts_under
from shoal.exec.runc.prune import task_containers
from tests.unit.exec.runc.test_runc_executor import Env, env, leftovers, pytestmark, rootfs

__all__ = ["env", "pytestmark", "rootfs"]


async def test_remove_tasks_except_kills_and_removes_the_others(env: Env) -> None:
    assert isinstance(env.executor, TaskPruning)
    kept, gone, prepared = (env.task(["sleep", "100"]) for _ in range(3))
    ctls = [env.controller(t) for t in (kept, gone, prepared)]
    standalone = RuncController(env.task(["sleep", "100"]), env.executor.config, standalone=True)
    for ctl in [*ctls, standalone]:
        await ctl.prepare()
    for ctl in (ctls[0], ctls[1], standalone):
        await ctl.start()
    gone_dir = ctls[1].directory
    assert set(task_containers(env.executor.config)) == {kept.id, gone.id, prepared.id}

    removed = await asyncio.wait_for(env.executor.remove_tasks_except({kept.id}), 30)

    assert sorted(removed) == sorted([gone.id, prepared.id])
    assert not gone_dir.exists() and not any(str(gone_dir) in m for m in mounts_under(env.base))
    assert set(task_containers(env.executor.config)) == {kept.id}
    assert ctls[0].status().pid and standalone.status().pid  # still running
    assert await env.executor.remove_tasks_except({kept.id}) == []  # again: nothing to do
    for ctl in (ctls[0], standalone):
        await ctl.remove()
    assert [x for x in leftovers(env, parent=False) if not x.endswith("/by-task")] == []
