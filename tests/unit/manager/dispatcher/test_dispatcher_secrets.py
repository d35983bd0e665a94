"""Secrets' and configs' data in assignments, through a real Dispatcher served over mutual TLS
(certificates from a real root CA) to two raw websocket sessions: only for the secrets a node's
tasks reference, only to that node, once per session, again once forgotten."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from parts import Parts

from shoal.dev.wait import wait_for_async
from shoal.manager.ca import RootCA
from shoal.manager.deks import ClusterKeys
from shoal.manager.dispatcher.dependencies import SentData
from shoal.manager.dispatcher.dispatcher import Dispatcher
from shoal.manager.secretbox import new_key, seal
from shoal.model.dispatch import Assignments, Message, Register, decode_message, encode_message
from shoal.model.objects import Cluster, Config, Node, NodeDescription, Secret, Task, TaskStatus
from shoal.model.specs import ConfigSpec, SecretSpec, TaskSpec
from shoal.model.states import TaskState
from shoal.pki import NodeIdentity, Role, generate_key_and_csr
from shoal.store.store import Store, Tx

CLUSTER_ID = "clustershoaltest0000000001"
A, B = "nodeashoaltest000000000001", "nodebshoaltest000000000001"
DATA = {"s1": b"pw-one", "s2": b"pw-two", "s3": b"pw-three"}
KEYS = ClusterKeys(None)  # the secrets key in clear (test_deks.py covers it sealed)


def task(task_id: str, node_id: str, secrets: Sequence[str] = (), configs: Sequence[str] = ()) -> Task:
    spec: dict[str, Any] = {
        "Image": "busybox",
        "Secrets": [{"File": {"Name": s, "UID": "0", "GID": "0", "Mode": 0o444},
                     "SecretID": s, "SecretName": s} for s in secrets],
        "Configs": [{"File": {"Name": c, "UID": "0", "GID": "0", "Mode": 0o444},
                     "ConfigID": c, "ConfigName": c} for c in configs],
    }
    return Task(id=task_id, node_id=node_id, spec=TaskSpec(container_spec=spec),
                status=TaskStatus(state=TaskState.ASSIGNED))


@pytest.fixture
async def seeded(store: Store) -> Store:
    key = new_key()

    def fn(tx: Tx) -> None:
        tx.create(Cluster(id=CLUSTER_ID, secrets_key=key))
        tx.create(Node(id=A))
        tx.create(Node(id=B))
        for sid, data in DATA.items():
            tx.create(Secret(id=sid, spec=SecretSpec(name=sid), sealed=seal(key, data, secret_id=sid)))
        tx.create(Config(id="c1", spec=ConfigSpec(name="c1", data=base64.b64encode(b"cfg").decode())))
        tx.create(task("ta1", A, ["s1"], ["c1"]))
        tx.create(task("ta0", A))
        tx.create(task("tb1", B, ["s2"]))
    await store.update(fn)
    return store


def _identity(root: RootCA, node_id: str, role: Role) -> NodeIdentity:
    key_pem, csr_pem = generate_key_and_csr()
    cert = root.sign(csr_pem, node_id=node_id, role=role, cluster_id=CLUSTER_ID, san_ips=["127.0.0.1"])
    return NodeIdentity(cert_pem=cert, key_pem=key_pem, ca_pem=root.cert_pem)


@dataclass
class Client:
    """A node's raw session: what it received."""

    got: list[Message] = field(default_factory=list)

    def assignments(self) -> list[Assignments]:
        return [m for m in self.got if isinstance(m, Assignments)]

    def secrets(self) -> list[dict[str, bytes]]:
        return [{d.id: d.data for d in m.secrets} for m in self.assignments()]


@dataclass
class Swarm:
    addr: str
    root: RootCA
    http: aiohttp.ClientSession
    jobs: list[asyncio.Task[None]] = field(default_factory=list)

    async def connect(self, node_id: str) -> tuple[Client, Callable[[], Any]]:
        ident = _identity(self.root, node_id, "worker")
        ws = await self.http.ws_connect(f"wss://{self.addr}/session", server_hostname="swarm-manager",
                                        ssl=ident.client_ssl_context(), max_msg_size=0)
        await ws.send_str(encode_message(Register(description=NodeDescription(hostname=node_id))))
        client = Client()

        async def read() -> None:
            async for msg in ws:
                client.got.append(decode_message(msg.data))

        self.jobs.append(asyncio.create_task(read(), name=f"test-session-{node_id}"))
        return client, ws.close


@pytest.fixture
async def swarm(seeded: Store, parts: Parts) -> AsyncIterator[Swarm]:
    root = RootCA.create()
    dispatcher = Dispatcher(seeded, cluster_id=CLUSTER_ID, keys=KEYS)
    app = web.Application()
    app.router.add_get("/session", dispatcher.session)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0,
                       ssl_context=_identity(root, "managershoaltest0000000001", "manager").server_ssl_context())
    await site.start()
    parts.start(dispatcher)
    async with aiohttp.ClientSession() as http:
        s = Swarm(f"127.0.0.1:{runner.addresses[0][1]}", root, http)
        try:
            yield s
        finally:
            await parts.close()
            for job in s.jobs:
                job.cancel()
            await asyncio.gather(*s.jobs, return_exceptions=True)
            await runner.cleanup()


async def test_each_node_gets_only_what_its_tasks_reference_once(swarm: Swarm, seeded: Store) -> None:
    a, close_a = await swarm.connect(A)
    b, _ = await swarm.connect(B)
    await wait_for_async("full assignments", lambda: bool(a.assignments() and b.assignments()))
    first_a, first_b = a.assignments()[0], b.assignments()[0]
    assert first_a.full and sorted(t.id for t in first_a.tasks) == ["ta0", "ta1"]
    assert a.secrets() == [{"s1": b"pw-one"}]
    assert [(d.id, d.data) for d in first_a.configs] == [("c1", b"cfg")]
    assert b.secrets() == [{"s2": b"pw-two"}] and first_b.configs == []

    # A new task on A references s1 (sent already) and s2 (not yet, to A): only s2 goes, to A.
    await seeded.update(lambda tx: tx.create(task("ta2", A, ["s1", "s2"], ["c1"])))
    await wait_for_async("A's increment", lambda: len(a.assignments()) == 2)
    inc = a.assignments()[1]
    assert not inc.full and [t.id for t in inc.tasks] == ["ta2"]
    assert a.secrets()[1] == {"s2": b"pw-two"} and inc.configs == []
    await asyncio.sleep(0.2)  # past the pusher's debounce
    assert len(b.assignments()) == 1  # B was told nothing

    # A's referencing tasks go: the next one that references s1 gets its data again.
    def drop(tx: Tx) -> None:
        for tid in ("ta1", "ta2"):
            t = tx.view.get(Task, tid)
            assert t is not None
            tx.delete(t)
    await seeded.update(drop)
    await wait_for_async("A's removal", lambda: len(a.assignments()) == 3)
    assert sorted(a.assignments()[2].removed) == ["ta1", "ta2"] and a.secrets()[2] == {}
    await seeded.update(lambda tx: tx.create(task("ta3", A, ["s1"])))
    await wait_for_async("A's next task", lambda: len(a.assignments()) == 4)
    assert a.secrets()[3] == {"s1": b"pw-one"}

    # A new session starts over: its full assignments carry everything its tasks reference.
    await close_a()
    again, _ = await swarm.connect(A)
    await wait_for_async("A's new full assignments", lambda: bool(again.assignments()))
    assert again.assignments()[0].full and again.secrets() == [{"s1": b"pw-one"}]
    assert not any("s3" in s for c in (a, b, again) for s in c.secrets())  # referenced by none


async def test_sent_set_stays_bounded(seeded: Store) -> None:
    sent = SentData()
    view = seeded.view()
    t1, t2 = task("x1", A, ["s1", "s3"], ["c1"]), task("x2", A, ["s2"])
    secrets, configs = sent.collect(view, [t1, t2], [t1, t2], full=True, keys=KEYS)
    assert [d.id for d in secrets] == ["s1", "s2", "s3"] and [d.id for d in configs] == ["c1"]
    secrets, configs = sent.collect(view, [t2], [t2], full=False, keys=KEYS)  # x1 went
    assert secrets == [] and configs == []
    assert sent.secrets == {"s2"} and sent.configs == set()
    unknown = task("x3", A, ["nosuch"])
    assert sent.collect(view, [unknown], [t2, unknown], full=False, keys=KEYS) == ([], [])
    assert sent.secrets == {"s2"}
    # a task that ended, or is being stopped, needs no files
    done, stopping = task("x4", A, ["s1"]), task("x5", A, ["s3"])
    done.status = TaskStatus(state=TaskState.FAILED)
    stopping.desired_state = TaskState.SHUTDOWN
    assert sent.collect(view, [done, stopping], [t2, done, stopping], full=True, keys=KEYS) == ([], [])
