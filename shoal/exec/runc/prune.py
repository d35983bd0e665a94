"""The containers of tasks the agent no longer holds, killed and removed with everything they
left (mounts, cgroups, network namespace, files): what a shoald stopped or killed in the middle
of a task's removal leaves (its task file gone, or its container never found again), and the
tasks a ``swarm leave`` could not stop in time. Standalone containers (``docker run``) are
never touched: their ``by-task`` record says so, or their ``run.json``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from shoal.exec.runc.controller import RuncController
from shoal.exec.runc.standalone import RUN_FILE
from shoal.exec.runc.state import RuncConfig, read_json
from shoal.model.objects import Task

__all__ = ["remove_task_containers", "task_containers"]

log = logging.getLogger(__name__)


def task_containers(cfg: RuncConfig) -> dict[str, str]:
    """Task ID -> container ID of every task container on disk."""
    out: dict[str, str] = {}
    by_task = cfg.containers / "by-task"
    for path in sorted(by_task.glob("*.json")) if by_task.is_dir() else []:
        rec = read_json(path) or {}
        cid = str(rec.get("id") or "")
        if rec.get("standalone") or (cid and (cfg.containers / cid / RUN_FILE).exists()):
            continue
        out[path.stem] = cid
    return out


async def remove_task_containers(cfg: RuncConfig, keep: Collection[str]) -> list[str]:
    """Kill and remove the containers of every task not in ``keep``; the task IDs removed."""
    gone = [task_id for task_id in task_containers(cfg) if task_id not in keep]

    async def remove(task_id: str) -> None:
        # The controller's own removal (SIGKILL to a live container, runc delete, the network
        # namespace, mounts, cgroups, files, named volumes released), for a task known only
        # by its ID: nothing of its spec is needed for that.
        try:
            await RuncController(Task(id=task_id), cfg).remove()
        except Exception:
            log.exception("task %s: removing its leftover container failed", task_id)

    if gone:
        log.info("removing the containers of %d tasks this node no longer has: %s", len(gone),
                 ", ".join(gone))
        await asyncio.gather(*(remove(t) for t in gone))
    return gone
