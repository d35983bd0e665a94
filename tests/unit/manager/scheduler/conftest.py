"""Fixtures for the scheduler and allocator: a real Store over MemoryBackend, the parts
running over it (``parts.py``), and nodes and tasks to feed them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest
from parts import FAST_ALLOC, FAST_SCHED, Parts

from shoal.manager.allocator import Allocator
from shoal.manager.scheduler import Scheduler
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


@pytest.fixture
async def scheduler(store: Store, parts: Parts) -> Scheduler:
    return parts.start(Scheduler(store, FAST_SCHED))


@pytest.fixture
async def allocator(store: Store, parts: Parts) -> Allocator:
    return parts.start(Allocator(store, FAST_ALLOC))


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
