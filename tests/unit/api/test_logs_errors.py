"""A node that cannot give its part of a service's logs (its tasks' log driver keeps none) is
not silent: after the other lines, the stream ends with dockerd's ``Error grabbing logs: ...``
on stream 3 (systemerr), which the docker CLI prints and exits 1 on; raw for a TTY service."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from shoal.api import build_app
from shoal.manager.logbroker import LogEnded, LogLines
from shoal.model.dispatch import LogEntry
from shoal.model.objects import Service, Task
from shoal.model.specs import ServiceSpec, TaskSpec
from shoal.model.states import TaskState
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store
from tests.unit.api.test_api_server import FakeEngine

NONE_DRIVER = "task t2: configured logging driver does not support reading"


class FakeLogs:
    """One node with a line, another whose part failed."""

    @asynccontextmanager
    async def subscribe(self, by_node: dict[str, list[str]],
                        selector: Any) -> AsyncIterator[AsyncIterator[Any]]:
        async def items() -> AsyncIterator[Any]:
            yield LogLines("n1", [LogEntry(task_id="t1", stream=1, time=1, data=b"hello\n")])
            yield LogEnded("n1")
            yield LogEnded("n2", NONE_DRIVER)
        yield items()


class LogsEngine(FakeEngine):
    def logs(self) -> FakeLogs:
        return FakeLogs()


async def _client(tty: bool) -> tuple[TestClient, Store]:
    store = Store(MemoryBackend())
    await store.start()
    spec = TaskSpec(container_spec={"Image": "x", "TTY": tty})

    def seed(tx: Any) -> None:
        tx.create(Service(id="s1", spec=ServiceSpec(name="web", task_template=spec)))
        for tid, node in (("t1", "n1"), ("t2", "n2")):
            task = Task(id=tid, service_id="s1", node_id=node, slot=1, spec=spec)
            task.status.state = TaskState.RUNNING
            tx.create(task)

    await store.update(seed)
    client = TestClient(TestServer(build_app(LogsEngine(store))))
    await client.start_server()
    return client, store


def _frames(body: bytes) -> list[tuple[int, bytes]]:
    out = []
    while body:
        stream, size = struct.unpack(">BxxxL", body[:8])
        out.append((stream, body[8:8 + size]))
        body = body[8 + size:]
    return out


async def test_error_on_stream_3_after_the_lines() -> None:
    client, store = await _client(tty=False)
    try:
        r = await client.get("/v1.50/services/web/logs", params={"stdout": "1"})
        assert r.status == 200
        assert _frames(await r.read()) == [
            (1, b"hello\n"), (3, f"Error grabbing logs: {NONE_DRIVER}\n".encode())]
    finally:
        await client.close()
        await store.close()


async def test_raw_for_a_tty_service() -> None:
    client, store = await _client(tty=True)
    try:
        r = await client.get("/v1.50/services/web/logs", params={"stdout": "1"})
        assert await r.read() == f"hello\nError grabbing logs: {NONE_DRIVER}\n".encode()
    finally:
        await client.close()
        await store.close()
