"""Rolling updates and rollbacks through the orchestrators, with a fake cluster running tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from orch_helpers import FAST, Cluster, spec
from parts import Parts

from shoal.dev.wait import wait_for_async
from shoal.manager.orchestrator import GlobalOrchestrator, ReplicatedOrchestrator
from shoal.manager.orchestrator.common import clone
from shoal.model.objects import Service, Task, UpdateStatus
from shoal.model.specs import SECOND, UpdateConfig
from shoal.model.states import TaskState
from shoal.store.store import Store

MONITOR = 0.15


class Recorder:
    """Every UpdateStatus state the service went through, with the loop time it was seen."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.states: list[tuple[float, str]] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        with self.store.subscribe([Service]) as sub:
            while True:
                for change in await sub.next():
                    svc = change.new
                    if isinstance(svc, Service) and svc.update_status is not None:
                        state = svc.update_status.state
                        if not self.states or self.states[-1][1] != state:
                            self.states.append((loop.time(), state))

    def names(self) -> list[str]:
        return [s for _, s in self.states]


@pytest.fixture
async def rec(store: Store, parts: Parts) -> AsyncIterator[Recorder]:
    yield parts.start(Recorder(store))


def cfg(**kw: object) -> UpdateConfig:
    return UpdateConfig(parallelism=1, monitor=int(MONITOR * SECOND), **kw)  # type: ignore[arg-type]


async def start(store: Store, parts: Parts, cluster: Cluster, *, replicas: int | None = 3,
                update: UpdateConfig | None = None) -> None:
    await cluster.node("n1")
    await cluster.node("n2")
    parts.start(cluster)
    parts.start(ReplicatedOrchestrator(store, FAST))
    parts.start(GlobalOrchestrator(store, FAST))
    await cluster.service(spec(replicas=replicas, update=update or cfg()))
    n = replicas or 2
    await wait_for_async(f"{n} tasks running",
                         lambda: sum(t.status.state == TaskState.RUNNING for t in cluster.live()) == n, timeout=3)


def set_image(image: str) -> Callable[[Service], None]:
    def fn(svc: Service) -> None:
        svc.previous_spec = clone(svc.spec)
        svc.spec.task_template.container_spec = {"Image": image}
        svc.update_status = None  # controlapi resets it on a non-rollback update

    return fn


def status(cluster: Cluster) -> UpdateStatus:
    st = cluster.get().update_status
    return st if st is not None else UpdateStatus()


async def test_rolling_update_completes_after_monitor(
    store: Store, parts: Parts, cluster: Cluster, rec: Recorder
) -> None:
    await start(store, parts, cluster)
    old = {t.id for t in cluster.live()}
    await cluster.update_service("svc1", set_image("nginx:2"))
    await wait_for_async("update completed", lambda: status(cluster).state == "completed", 5)
    st = status(cluster)
    assert st.message == "update completed" and st.started_at and st.completed_at
    # The recorder reads the same changes from its own subscription: let it catch up.
    await wait_for_async("recorder saw completed", lambda: rec.names()[-1:] == ["completed"], 5)
    assert rec.names() == ["updating", "completed"]
    live = cluster.live()
    assert sorted(t.slot for t in live) == [1, 2, 3]
    assert all(t.spec.image == "nginx:2" and t.status.state == TaskState.RUNNING for t in live)
    assert all(t.desired_state == TaskState.SHUTDOWN for t in cluster.tasks() if t.id in old)
    # "completed" only after the last new task ran for Monitor.
    last_running = max(t.status.timestamp for t in live)
    assert st.completed_at is not None and st.completed_at > last_running
    started = rec.states[0][0]
    assert rec.states[1][0] - started >= MONITOR


async def test_scaling_does_not_touch_update_status(
    store: Store, parts: Parts, cluster: Cluster, rec: Recorder
) -> None:
    await start(store, parts, cluster, replicas=2)

    def scale(svc: Service) -> None:
        assert svc.spec.mode.replicated is not None
        svc.spec.mode.replicated.replicas = 4

    await cluster.update_service("svc1", scale)
    await wait_for_async("4 running",
                         lambda: sum(t.status.state == TaskState.RUNNING for t in cluster.live()) == 4)
    assert cluster.get().update_status is None and rec.names() == []


async def test_failure_pauses_update(store: Store, parts: Parts, cluster: Cluster) -> None:
    await start(store, parts, cluster)
    cluster.failing.add("bad:1")
    await cluster.update_service("svc1", set_image("bad:1"))
    await wait_for_async("update paused", lambda: status(cluster).state == "paused", 5)
    msg = status(cluster).message
    assert msg.startswith("update paused due to failure or early termination of task ")
    failed_id = msg.rsplit(" ", 1)[1]
    failed = store.view().get(Task, failed_id)
    assert failed is not None and failed.spec.image == "bad:1"
    await asyncio.sleep(0.1)
    # Parallelism 1: only one slot was touched; the others still run the old image.
    old = [t for t in cluster.live() if t.spec.image == "nginx:1"]
    assert len(old) == 2 and all(t.status.state == TaskState.RUNNING for t in old)
    assert status(cluster).state == "paused"


async def test_failure_rolls_back(store: Store, parts: Parts, cluster: Cluster,
                                 rec: Recorder) -> None:
    await start(store, parts, cluster, update=cfg(failure_action="rollback"))
    cluster.failing.add("bad:1")
    await cluster.update_service("svc1", set_image("bad:1"))
    await wait_for_async("rolled back", lambda: status(cluster).state == "rollback_completed", 5)
    assert status(cluster).message == "rollback completed"
    await wait_for_async("recorder saw rollback_completed", lambda: rec.names()[-1:] == ["rollback_completed"], 5)
    assert rec.names() == ["updating", "rollback_started", "rollback_completed"]
    svc = cluster.get()
    assert svc.spec.task_template.image == "nginx:1"
    live = cluster.live()
    assert len(live) == 3 and all(t.spec.image == "nginx:1" for t in live)
    assert all(t.desired_state <= TaskState.RUNNING for t in live)


async def test_manual_rollback(store: Store, parts: Parts, cluster: Cluster,
                              rec: Recorder) -> None:
    await start(store, parts, cluster, replicas=2)
    await cluster.update_service("svc1", set_image("nginx:2"))
    await wait_for_async("update completed", lambda: status(cluster).state == "completed", 5)

    def rollback(svc: Service) -> None:  # what controlapi does for rollback=previous
        assert svc.previous_spec is not None
        svc.spec, svc.previous_spec = svc.previous_spec, svc.spec
        svc.update_status = UpdateStatus(state="rollback_started",
                                         message="manually requested rollback")

    await cluster.update_service("svc1", rollback)
    await wait_for_async("rolled back", lambda: status(cluster).state == "rollback_completed", 5)
    assert status(cluster).message == "rollback completed"
    assert all(t.spec.image == "nginx:1" and t.status.state == TaskState.RUNNING for t in cluster.live())


async def test_global_rolling_update(store: Store, parts: Parts, cluster: Cluster) -> None:
    await start(store, parts, cluster, replicas=None)
    await cluster.update_service("svc1", set_image("nginx:2"))
    await wait_for_async("global update completed", lambda: status(cluster).state == "completed", 5)
    live = cluster.live()
    assert sorted(t.node_id for t in live) == ["n1", "n2"]
    assert all(t.spec.image == "nginx:2" and t.status.state == TaskState.RUNNING for t in live)


async def test_start_first_update(store: Store, parts: Parts, cluster: Cluster) -> None:
    await start(store, parts, cluster, replicas=2, update=cfg(order="start-first"))
    await cluster.update_service("svc1", set_image("nginx:2"))
    await wait_for_async("update completed", lambda: status(cluster).state == "completed", 5)
    live = cluster.live()
    assert len(live) == 2 and all(t.spec.image == "nginx:2" for t in live)


def secret_ref(secret_id: str, name: str, target: str = "db_pw") -> dict[str, object]:
    return {"File": {"Name": target, "UID": "0", "GID": "0", "Mode": 0o444},
            "SecretID": secret_id, "SecretName": name}


async def test_secret_rotation_replaces_the_tasks(store: Store, parts: Parts, cluster: Cluster) -> None:
    """``service update --secret-rm db_pw --secret-add source=db_pw.v2,target=db_pw``: a change
    of ContainerSpec.Secrets only, which makes every task dirty; the new tasks reference the
    new secret at the same target."""
    await start(store, parts, cluster)

    def with_secret(ref: dict[str, object]) -> Callable[[Service], None]:
        def fn(svc: Service) -> None:
            svc.previous_spec = clone(svc.spec)
            cs = dict(svc.spec.task_template.container_spec or {})
            cs["Secrets"] = [ref]
            svc.spec.task_template.container_spec = cs
            svc.update_status = None
        return fn

    await cluster.update_service("svc1", with_secret(secret_ref("sid1", "db_pw")))
    await wait_for_async("first update completed", lambda: status(cluster).state == "completed", 5)
    old = {t.id for t in cluster.live()}
    await cluster.update_service("svc1", with_secret(secret_ref("sid2", "db_pw.v2")))
    await wait_for_async("rotation completed", lambda: status(cluster).state == "completed", 5)
    live = cluster.live()
    assert len(live) == 3 and not {t.id for t in live} & old
    for t in live:
        assert (t.spec.container_spec or {})["Secrets"] == [secret_ref("sid2", "db_pw.v2")]
        assert t.status.state == TaskState.RUNNING
    assert all(t.desired_state == TaskState.SHUTDOWN for t in cluster.tasks() if t.id in old)
