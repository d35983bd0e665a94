"""The web view's server in-process, over a real store on the in-memory backend: the snapshot
and the deltas of /api/events as the store changes, the JSON endpoints, the task log stream,
what a worker's page says, and the listener's rules (read-only, Host, --web-addr)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from shoal.errors import InvalidArgument
from shoal.manager.logbroker import LogEnded, LogLines
from shoal.model.dispatch import LogEntry, LogSelector
from shoal.model.objects import (
    Endpoint,
    ManagerStatus,
    Network,
    Node,
    NodeDescription,
    NodeStatus,
    Service,
    Task,
    UpdateStatus,
)
from shoal.model.specs import (
    NetworkAttachmentConfig,
    NetworkSpec,
    NodeSpec,
    PortConfig,
    Replicated,
    ServiceMode,
    ServiceSpec,
    TaskSpec,
)
from shoal.model.states import TaskState
from shoal.store.store import Store, Tx, copy
from shoal.web import build_web_app, parse_web_addr

SPEC = TaskSpec(container_spec={"Image": "busybox:1"}, networks=[NetworkAttachmentConfig(target="net1")])


@dataclass
class State:
    local_node_state: str = "active"
    role: str = "manager"
    error: str = ""


class FakeLogs:
    """A node's lines for the task asked, then its end (or an error)."""

    def __init__(self, error: str = "") -> None:
        self.error = error
        self.asked: list[tuple[dict[str, list[str]], LogSelector]] = []

    @asynccontextmanager
    async def subscribe(self, by_node: dict[str, list[str]],
                        selector: LogSelector) -> AsyncIterator[AsyncIterator[Any]]:
        self.asked.append((by_node, selector))

        async def items() -> AsyncIterator[Any]:
            for node, tasks in by_node.items():
                yield LogLines(node, [LogEntry(task_id=tasks[0], stream=1, time=5, data=b"hello\n"),
                                      LogEntry(task_id=tasks[0], stream=2, time=6, data=b"oops\n")])
                yield LogEnded(node, self.error)
        yield items()


class FakeSource:
    def __init__(self, store: Store | None, state: State | None = None,
                 logs: FakeLogs | None = None) -> None:
        self._store = store
        self.state = state or State()
        self.broker = logs

    @property
    def store(self) -> Store | None:
        return self._store

    def swarm_state(self) -> State:
        return self.state

    def logs(self) -> Any:
        return self.broker


def _node(node_id: str, hostname: str, *, manager: bool = False) -> Node:
    return Node(id=node_id, spec=NodeSpec(role="manager" if manager else "worker", availability="active"),
                description=NodeDescription(hostname=hostname), status=NodeStatus(state="ready", addr="127.0.0.9"),
                manager_status=ManagerStatus(leader=True, reachability="reachable") if manager else None,
                role="manager" if manager else "worker", cert_expiry="2030-01-02T03:04:05Z")


def _task(task_id: str, node_id: str, slot: int, state: TaskState = TaskState.RUNNING) -> Task:
    task = Task(id=task_id, service_id="s1", node_id=node_id, slot=slot, spec=SPEC, service_name="web")
    task.status.state = state
    return task


async def _seed(store: Store) -> None:
    def fn(tx: Tx) -> None:
        tx.create(Network(id="net1", spec=NetworkSpec(name="front", driver="overlay")))
        tx.create(_node("n1", "alpha", manager=True))
        tx.create(_node("n2", "beta"))
        tx.create(Service(id="s1", spec=ServiceSpec(
            name="web", task_template=SPEC, mode=ServiceMode(replicated=Replicated(replicas=2))),
            endpoint=Endpoint(ports=[PortConfig(target_port=80, published_port=8080)])))
        tx.create(_task("t1", "n1", 1))
        tx.create(_task("t2", "n2", 2))
        old = _task("t0", "n2", 1, TaskState.SHUTDOWN)
        old.desired_state = TaskState.SHUTDOWN
        tx.create(old)  # history: not on the grid

    await store.update(fn)


@asynccontextmanager
async def _client(source: FakeSource, *, loopback: bool = True) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(build_web_app(source, loopback=loopback), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def _next_event(resp: ClientResponse) -> tuple[str, Any]:
    """The next named event of a server-sent-events stream (comments and retry skipped)."""
    name, data = "", ""
    for _ in range(1000):
        line = (await resp.content.readline()).decode()
        assert line, "the stream ended"
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data = line[len("data: "):]
        elif line == "" and name:
            return name, json.loads(data)
    raise AssertionError("no event in 1000 lines")


async def test_snapshot_then_a_task_moving_as_a_delta(store: Store) -> None:
    await _seed(store)
    async with _client(FakeSource(store)) as client:
        resp = await client.get("/api/events")
        assert resp.headers["Content-Type"] == "text/event-stream"
        name, snap = await _next_event(resp)
        assert name == "snapshot"
        assert {n["hostname"] for n in snap["nodes"]} == {"alpha", "beta"}
        assert sorted((t["id"], t["node"]) for t in snap["tasks"]) == [("t1", "n1"), ("t2", "n2")]
        (svc,) = snap["services"]
        assert (svc["name"], svc["replicas"], svc["networks"], svc["mode"]) == ("web", 2, ["front"], "replicated")
        assert svc["ports"] == [{"protocol": "tcp", "target": 80, "published": 8080, "mode": "ingress"}]
        alpha = next(n for n in snap["nodes"] if n["hostname"] == "alpha")
        assert (alpha["role"], alpha["leader"], alpha["cert_expiry"]) == ("manager", True, "2030-01-02T03:04:05Z")

        def node_down(tx: Tx) -> None:  # what the orchestrator does when n1 dies
            old = copy(tx.view.get(Task, "t1"))  # type: ignore[type-var]
            old.desired_state = TaskState.SHUTDOWN
            old.status.state = TaskState.ORPHANED
            tx.update(old)
            tx.create(_task("t3", "n2", 1, TaskState.ASSIGNED))

        await store.update(node_down)
        name, change = await _next_event(resp)
        assert name == "delta"
        assert change["drop"]["tasks"] == ["t1"]
        assert [(t["id"], t["node"], t["slot"], t["state"]) for t in change["put"]["tasks"]] == [
            ("t3", "n2", 1, "assigned")]
        assert change["revision"] == store.revision
        resp.close()


async def test_a_service_update_resends_its_tasks_not_fresh(store: Store) -> None:
    await _seed(store)
    async with _client(FakeSource(store)) as client:
        resp = await client.get("/api/events")
        _, snap = await _next_event(resp)
        assert all(t["fresh"] for t in snap["tasks"])

        def update(tx: Tx) -> None:
            svc = copy(tx.view.get(Service, "s1"))  # type: ignore[type-var]
            svc.spec.task_template = TaskSpec(container_spec={"Image": "busybox:2"})
            svc.update_status = UpdateStatus(state="updating", message="update in progress")
            tx.update(svc)

        await store.update(update)
        name, change = await _next_event(resp)
        assert name == "delta"
        (svc,) = change["put"]["services"]
        assert (svc["image"], svc["update"]["state"]) == ("busybox:2", "updating")
        assert sorted((t["id"], t["fresh"]) for t in change["put"]["tasks"]) == [("t1", False), ("t2", False)]
        resp.close()


async def test_a_worker_says_so_on_the_stream_and_in_json() -> None:
    source = FakeSource(None, State(role="worker"))
    async with _client(source) as client:
        resp = await client.get("/api/events")
        name, data = await _next_event(resp)
        assert name == "unavailable"
        assert "worker" in data["message"]
        state = await client.get("/api/state")
        assert state.status == 503
        assert "worker" in (await state.json())["message"]
        source.state = State(role="manager", error="not ready: no leader")
        state = await client.get("/api/state")
        assert (state.status, (await state.json())["message"]) == (503, "not ready: no leader")


async def test_state_and_task_json(store: Store) -> None:
    await _seed(store)
    async with _client(FakeSource(store)) as client:
        state = await (await client.get("/api/state")).json()
        assert len(state["tasks"]) == 2
        detail = await client.get("/api/tasks/t1")
        body = await detail.json()
        assert (detail.status, body["node_hostname"], body["image"], body["service_name"]) == (
            200, "alpha", "busybox:1", "web")
        missing = await client.get("/api/tasks/nope")
        assert missing.status == 404
        assert (await missing.json())["message"] == "task nope not found"


async def test_the_page_and_its_files(store: Store) -> None:
    async with _client(FakeSource(store)) as client:
        page = await client.get("/")
        text = await page.text()
        assert page.status == 200 and page.content_type == "text/html"
        assert '<script defer src="/static/app.js">' in text
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for path, ctype in (("/static/app.js", "text/javascript"), ("/static/app.css", "text/css")):
            r = await client.get(path)
            assert (r.status, r.content_type) == (200, ctype)
        assert (await client.get("/static/other.js")).status == 404


async def test_read_only_and_the_host_check(store: Store) -> None:
    async with _client(FakeSource(store)) as client:
        r = await client.post("/api/state")
        assert (r.status, r.headers["Allow"]) == (405, "GET, HEAD")
        rebound = await client.get("/api/state", headers={"Host": "evil.example:8080"})
        assert rebound.status == 421
        assert (await client.get("/", headers={"Host": "localhost:1"})).status == 200
        assert (await client.get("/", headers={"Host": "[::1]:1"})).status == 200
    async with _client(FakeSource(store), loopback=False) as client:  # TLS off loopback: names ok
        assert (await client.get("/", headers={"Host": "swarm.example:8443"})).status == 200


async def test_a_tasks_logs_stream(store: Store) -> None:
    await _seed(store)
    logs = FakeLogs()
    async with _client(FakeSource(store, logs=logs)) as client:
        resp = await client.get("/api/tasks/t2/logs")
        assert await _next_event(resp) == ("lines", [[5, 1, "hello"], [6, 2, "oops"]])
        assert await _next_event(resp) == ("end", {"message": "no more output"})
        (by_node, selector), = logs.asked
        assert by_node == {"n2": ["t2"]}
        assert (selector.follow, selector.tail) == (True, 200)
        logs.error = "node n2 is not connected to the manager"
        resp = await client.get("/api/tasks/t2/logs")
        await _next_event(resp)
        assert await _next_event(resp) == ("error", {"message": logs.error})
        resp = await client.get("/api/tasks/nope/logs")
        assert await _next_event(resp) == ("error", {"message": "task nope not found"})


async def test_open_streams_end_when_the_server_stops(store: Store) -> None:
    await _seed(store)
    async with _client(FakeSource(store)) as client:
        resp = await client.get("/api/events")
        await _next_event(resp)
    # the no_leaked_tasks fixture fails the test if the stream's tasks outlived the server


@pytest.mark.parametrize(("text", "tls", "want"), [
    ("127.0.0.1:8080", False, ("127.0.0.1", 8080)),
    ("[::1]:9000", False, ("::1", 9000)),
    ("10.1.2.3:443", True, ("10.1.2.3", 443)),
])
def test_web_addr(text: str, tls: bool, want: tuple[str, int]) -> None:
    assert parse_web_addr(text, tls=tls) == want


@pytest.mark.parametrize(("text", "words"), [
    ("10.1.2.3:8080", "refusing to serve the web view off loopback without TLS"),
    ("localhost:8080", "use IP:PORT"),
    ("127.0.0.1", "use IP:PORT"),
    ("127.0.0.1:99999", "use IP:PORT"),
])
def test_web_addr_refused(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words) as exc:
        parse_web_addr(text, tls=False)
    assert "\n" not in exc.value.message


async def test_served_with_tls(store: Store, tmp_path: Any, unused_tcp_port: int) -> None:
    """Off loopback the daemon hands ``serve_web`` the API's TLS context: the page is HTTPS
    (checked here on 127.0.0.1, where the Host rule is on as well)."""
    import ssl

    import aiohttp

    from shoal.manager.ca import RootCA
    from shoal.pki import generate_key_and_csr
    from shoal.web import serve_web

    root = RootCA.create()
    key, csr = generate_key_and_csr()
    cert = root.sign(csr, node_id="n1", role="manager", cluster_id="c1", san_ips=["127.0.0.1"])
    (tmp_path / "cert.pem").write_text(cert)
    (tmp_path / "key.pem").write_text(key)
    (tmp_path / "ca.pem").write_text(root.cert_pem)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    runner = await serve_web(FakeSource(store), "127.0.0.1", unused_tcp_port, ssl_context=server_ctx)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{unused_tcp_port}/", ssl=client_ctx) as r:
                assert r.status == 200 and "Shoal" in await r.text()
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{unused_tcp_port}/") as r:
                    await r.read()
    finally:
        await runner.cleanup()


async def test_a_busy_port_is_one_line(store: Store, unused_tcp_port: int) -> None:
    from shoal.web import serve_web

    runner = await serve_web(FakeSource(store), "127.0.0.1", unused_tcp_port, ssl_context=None)
    try:
        with pytest.raises(InvalidArgument, match=f"--web-addr 127.0.0.1:{unused_tcp_port}: .*in use"):
            await serve_web(FakeSource(store), "127.0.0.1", unused_tcp_port, ssl_context=None)
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("name", ["shoal.web", "shoal.web.server", "shoal.web.snapshot", "shoal.web.source",
                                  "shoal.web.sse", "shoal.web.stream", "shoal.web.logs"])
def test_all_is_honest(name: str) -> None:
    import importlib

    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert all(hasattr(module, n) for n in exported)
    defined = {n for n, obj in vars(module).items()
               if not n.startswith("_") and getattr(obj, "__module__", None) == name}
    assert defined <= exported, f"public but not in __all__: {defined - exported}"
