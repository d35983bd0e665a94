"""Helpers for the orchestrator tests: specs, and a fake cluster that plays the
allocator, scheduler and agents by writing tasks directly through the store."""


from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from shoal.errors import ShoalError
from shoal.manager.orchestrator import OrchestratorSettings
from shoal.model.objects import Node, NodeStatus, Service, Task, now
from shoal.model.specs import (
    SECOND,
    NodeSpec,
    Replicated,
    RestartPolicy,
    ServiceMode,
    ServiceSpec,
    TaskSpec,
    UpdateConfig,
)
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx, copy

FAST = OrchestratorSettings(gap=0.01, max_latency=0.1, resync=5.0, reaper_interval=0.02)


def spec(
    name: str = "web",
    *,
    replicas: int | None = 1,
    image: str = "nginx:1",
    delay: float = 0.0,
    condition: str | None = None,
    max_attempts: int | None = None,
    update: UpdateConfig | None = None,
    constraints: list[str] | None = None,
) -> ServiceSpec:
    from shoal.model.specs import Placement

    mode = ServiceMode(replicated=Replicated(replicas=replicas)) if replicas is not None \
        else ServiceMode(global_={})
    return ServiceSpec(
        name=name,
        mode=mode,
        task_template=TaskSpec(
            container_spec={"Image": image},
            restart_policy=RestartPolicy(condition=condition, delay=int(delay * SECOND),
                                         max_attempts=max_attempts),
            placement=Placement(constraints=constraints) if constraints else None,
        ),
        update_config=update,
        rollback_config=update,
    )


class Cluster:
    """Test helper: writes services and nodes, and plays scheduler + agents when ``auto``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.failing: set[str] = set()  # images whose tasks fail right after starting
        self.completing: set[str] = set()  # images whose tasks exit 0 right after starting
        self._ids = itertools.count(1)

    # -- objects ---------------------------------------------------------------------------
    async def node(self, node_id: str, *, state: str = "ready", availability: str = "active",
                   labels: dict[str, str] | None = None) -> None:
        n = Node(id=node_id, spec=NodeSpec(role="worker", availability=availability, labels=labels),
                 status=NodeStatus(state=state))
        await self.store.update(lambda tx: tx.create(n))

    async def set_node(self, node_id: str, **changes: Any) -> None:
        def fn(tx: Tx) -> None:
            n = copy(tx.view.get(Node, node_id))
            assert n is not None
            if "state" in changes:
                n.status.state = changes["state"]
            if "availability" in changes:
                n.spec.availability = changes["availability"]
            if "labels" in changes:
                n.spec.labels = changes["labels"]
            tx.update(n)

        await self.store.update(fn, retries=5)

    async def service(self, s: ServiceSpec, service_id: str = "svc1") -> str:
        if self.store.view().by_name(Service, s.name):
            s.name = service_id  # names are unique swarm-wide
        await self.store.update(lambda tx: tx.create(Service(id=service_id, spec=s)))
        return service_id

    async def update_service(self, service_id: str, fn: Callable[[Service], None]) -> None:
        def write(tx: Tx) -> None:
            svc = copy(tx.view.get(Service, service_id))
            assert svc is not None
            fn(svc)
            tx.update(svc)

        await self.store.update(write, retries=5)

    async def delete_service(self, service_id: str) -> None:
        await self.store.update(lambda tx: tx.delete(tx.view.get(Service, service_id)))

    async def set_task(self, task_id: str, state: TaskState, node_id: str | None = None) -> None:
        def fn(tx: Tx) -> None:
            t = copy(tx.view.get(Task, task_id))
            assert t is not None
            t.status.state = state
            t.status.timestamp = now()
            if node_id is not None:
                t.node_id = node_id
            tx.update(t)

        await self.store.update(fn, retries=5)

    # -- reads -----------------------------------------------------------------------------
    def tasks(self, service_id: str = "svc1") -> list[Task]:
        return sorted(self.store.view().tasks_of_service(service_id),
                      key=lambda t: (t.slot, t.created_at))

    def live(self, service_id: str = "svc1") -> list[Task]:
        return [t for t in self.tasks(service_id) if t.desired_state <= TaskState.COMPLETE]

    def get(self, service_id: str = "svc1") -> Service:
        svc = self.store.view().get(Service, service_id)
        assert svc is not None
        return svc

    # -- fake scheduler + agents -----------------------------------------------------------
    async def run(self) -> None:
        """Assign new tasks to ready nodes, run what is desired running (or complete), stop
        what is not."""
        with self.store.subscribe([Task, Node]) as sub:
            while True:
                try:
                    await self.store.update(self._step, atomic=False)
                except ShoalError:
                    pass
                await sub.next_batch(gap=0.005, max_latency=0.05, idle=0.2)

    def _step(self, tx: Tx) -> None:
        view = tx.view
        nodes = [n for n in view.all(Node)
                 if n.status.state == "ready" and n.spec.availability == "active"]
        load = {n.id: len(view.tasks_of_node(n.id)) for n in nodes}
        for task in view.all(Task):
            node = view.get(Node, task.node_id)
            state, desired = task.state, task.desired_state
            new = copy(task)
            if desired > TaskState.COMPLETE:
                if state <= TaskState.RUNNING and (node is None or node.status.state != "down"):
                    new.status.state = TaskState.SHUTDOWN
                else:
                    continue
            elif state == TaskState.NEW and not task.node_id:
                if not load:
                    continue
                pick = min(load, key=lambda n: (load[n], n))
                load[pick] += 1
                new.node_id = pick
                new.status.state = TaskState.ASSIGNED
            elif state < TaskState.READY and node is not None and node.status.state == "ready":
                new.status.state = TaskState.READY
            elif (state == TaskState.READY and desired in (TaskState.RUNNING, TaskState.COMPLETE)
                  and node is not None and node.status.state == "ready"):
                new.status.state = TaskState.FAILED if task.spec.image in self.failing else TaskState.RUNNING
            elif (state == TaskState.RUNNING and task.spec.image in self.completing
                  and node is not None and node.status.state == "ready"):
                new.status.state = TaskState.COMPLETE
            else:
                continue
            new.status.timestamp = now()
            tx.update(new)
