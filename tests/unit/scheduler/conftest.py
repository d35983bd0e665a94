"""Fixtures for the scheduler and allocator: a real Store over MemoryBackend, running parts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any

import pytest

from shoal.manager.allocator import Allocator, AllocatorSettings
from shoal.manager.scheduler import Scheduler, SchedulerSettings
from shoal.model.objects import (
    EngineDescription,
    Node,
    NodeDescription,
    NodeResources,
    NodeStatus,
    Task,
    TaskStatus,
)
from shoal.model.specs import NodeSpec, Platform, TaskSpec
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx

FAST_SCHED = SchedulerSettings(commit_debounce_gap=0.005, max_latency=0.05, resync_interval=5)
FAST_ALLOC = AllocatorSettings(commit_debounce_gap=0.005, max_latency=0.05, resync_interval=5)


async def _run(coro: Awaitable[None], name: str) -> AsyncIterator[asyncio.Task[None]]:
    task: asyncio.Task[None] = asyncio.ensure_future(coro)
    task.set_name(name)
    try:
        yield task
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


@pytest.fixture
async def scheduler(store: Store) -> AsyncIterator[Scheduler]:
    sched = Scheduler(store, FAST_SCHED)
    async for _ in _run(sched.run(), "test-scheduler"):
        yield sched


@pytest.fixture
async def allocator(store: Store) -> AsyncIterator[Allocator]:
    alloc = Allocator(store, FAST_ALLOC)
    async for _ in _run(alloc.run(), "test-allocator"):
        yield alloc


def make_node(
    node_id: str,
    *,
    state: str = "ready",
    availability: str = "active",
    labels: dict[str, str] | None = None,
    engine_labels: dict[str, str] | None = None,
    role: str = "worker",
    cpus: int = 4_000_000_000,
    memory: int = 8 << 30,
    arch: str = "x86_64",
) -> Node:
    return Node(
        id=node_id,
        spec=NodeSpec(labels=labels, role=role, availability=availability),
        description=NodeDescription(
            hostname=f"host-{node_id}",
            platform=Platform(architecture=arch, os="linux"),
            resources=NodeResources(nano_cpus=cpus, memory_bytes=memory),
            engine=EngineDescription(labels=engine_labels),
        ),
        status=NodeStatus(state=state),
    )


def make_task(
    task_id: str,
    *,
    service: str = "svc",
    spec: TaskSpec | None = None,
    state: TaskState = TaskState.PENDING,
    node: str = "",
    desired: TaskState = TaskState.RUNNING,
    slot: int = 0,
    **extra: Any,
) -> Task:
    return Task(
        id=task_id,
        service_id=service,
        spec=spec or TaskSpec(container_spec={"Image": "busybox"}),
        slot=slot,
        node_id=node,
        status=TaskStatus(state=state),
        desired_state=desired,
        **extra,
    )


async def create(store: Store, objs: Iterable[Node | Task]) -> None:
    items = list(objs)

    def fn(tx: Tx) -> None:
        for obj in items:
            tx.create(obj)

    await store.update(fn, atomic=False)


async def settle(store: Store, seconds: float = 0.15) -> None:
    """Let a few debounced passes run (used only to check that nothing happens)."""
    await asyncio.sleep(seconds)


def tasks(store: Store, service: str = "svc") -> list[Task]:
    return store.view().tasks_of_service(service)


def assigned(store: Store, service: str = "svc") -> list[Task]:
    return [t for t in tasks(store, service) if t.status.state == TaskState.ASSIGNED]


def per_node(store: Store, service: str = "svc") -> dict[str, int]:
    out: dict[str, int] = {}
    for t in assigned(store, service):
        out[t.node_id] = out.get(t.node_id, 0) + 1
    return out
