"""GET /events in process, as the docker CLI and docker-py call it: replay with since/until,
the live stream until ``until``, filters, dockerd's refusals, API < 1.46, and a client that
hangs up ending its subscription."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.api import SwarmState, build_app
from shoal.api.routes_events import parse_event_time, replay_window, stream_window
from shoal.dev.wait import wait_for_async
from shoal.errors import InvalidArgument
from shoal.events import EventLog

SEC = 1_000_000_000


class Engine:
    hostname = "evttest"
    data_root = "/nonexistent"
    store = None
    def __init__(self, events: EventLog) -> None:
        self.events = events
        self.engine_labels: dict[str, str] = {}

    def swarm_state(self) -> SwarmState:
        return SwarmState()


@pytest.fixture
def log() -> EventLog:
    return EventLog()


@pytest.fixture
async def api(log: EventLog) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(build_app(Engine(log))))  # type: ignore[arg-type]
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def lines(api: TestClient, path: str, **params: str) -> list[dict[str, Any]]:
    r = await api.get(path, params=params)
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"] == "application/json"
    return [json.loads(line) for line in (await r.text()).splitlines()]


def test_time_parameters() -> None:
    assert parse_event_time("since", "") is None and parse_event_time("since", "-1") is None
    assert parse_event_time("since", "12") == 12 * SEC
    assert parse_event_time("since", "12.5") == 12 * SEC + 500_000_000
    assert parse_event_time("since", "12.000000001") == 12 * SEC + 1
    assert parse_event_time("since", "0") == 0
    with pytest.raises(InvalidArgument, match="invalid value for 'since': invalid timestamp \"1m\""):
        parse_event_time("since", "1m")
    with pytest.raises(InvalidArgument, match="invalid nanoseconds"):
        parse_event_time("until", "1.x")
    assert replay_window(None, None) is None
    assert replay_window(None, 5 * SEC) == (0, 5 * SEC)
    assert replay_window(3, 0) == (3, None)  # moby: a zero until bounds nothing
    assert stream_window(None, None, 10) == (False, None)
    assert stream_window(None, 5, 10) == (True, None)
    assert stream_window(None, 10 + 2 * SEC, 10) == (False, 2.0)


async def test_replay_between_since_and_until_then_end(api: TestClient, log: EventLog) -> None:
    for i in range(5):
        log.publish("volume", "create", f"v{i}", {"driver": "local"}, time_nano=(100 + i) * SEC)
    got = await lines(api, "/v1.50/events", since="101", until="103")
    assert [e["Actor"]["ID"] for e in got] == ["v1", "v2", "v3"]
    assert got[0] == {"Type": "volume", "Action": "create",
                      "Actor": {"ID": "v1", "Attributes": {"driver": "local"}},
                      "scope": "local", "time": 101, "timeNano": 101 * SEC}
    assert [e["Actor"]["ID"] for e in await lines(api, "/events", until="102")] == ["v0", "v1", "v2"]


async def test_until_before_since_is_refused(api: TestClient) -> None:
    r = await api.get("/v1.50/events", params={"since": "20", "until": "10"})
    assert r.status == 400
    assert (await r.json())["message"] == "`since` time (20) cannot be after `until` time (10)"
    r = await api.get("/v1.50/events", params={"since": "soon"})
    assert r.status == 400


async def test_filters_in_both_forms_and_image_create_hidden_before_1_46(api: TestClient, log: EventLog) -> None:
    log.publish("service", "create", "s1", {"name": "web"}, scope="swarm", time_nano=100 * SEC)
    log.publish("image", "create", "sha256:1", {"name": "sha256:1"}, time_nano=101 * SEC)
    log.publish("image", "tag", "sha256:1", {"name": "a:1"}, time_nano=102 * SEC)
    until = str(time.time_ns() // SEC - 1)
    for raw in ('{"type":{"service":true}}', '{"type":["service"]}'):
        got = await lines(api, "/v1.50/events", since="0", until=until, filters=raw)
        assert [e["Type"] for e in got] == ["service"]
    assert [e["Action"] for e in await lines(api, "/v1.45/events", since="0", until=until)] == ["create", "tag"]
    assert [e["Action"] for e in await lines(api, "/v1.46/events", since="0", until=until)] == \
        ["create", "create", "tag"]
    bad = await api.get("/v1.50/events", params={"filters": '{"type":"service"}'})
    assert bad.status == 400 and (await bad.json())["message"] == "invalid filter"


async def test_live_until_in_the_future_streams_then_ends(api: TestClient, log: EventLog) -> None:
    until = time.time_ns() + 3 * SEC
    r = await api.get("/v1.50/events", params={"until": f"{until // SEC}.{until % SEC:09d}",
                                               "filters": '{"type":["volume"]}'})
    assert r.status == 200
    await wait_for_async("the subscription", lambda: log.subscribers == 1, timeout=5)
    log.publish("service", "create", "s1", scope="swarm")
    log.publish("volume", "create", "live")
    line = await asyncio.wait_for(r.content.readline(), 5)  # flushed as it happened
    assert json.loads(line)["Actor"]["ID"] == "live"
    assert await asyncio.wait_for(r.content.read(), 10) == b""  # ended at until
    await wait_for_async("the subscription gone", lambda: log.subscribers == 0, timeout=5)


async def test_a_client_hanging_up_ends_its_subscription(api: TestClient, log: EventLog) -> None:
    r = await api.get("/events")
    await wait_for_async("the subscription", lambda: log.subscribers == 1, timeout=5)
    log.publish("volume", "create", "v")
    assert json.loads(await asyncio.wait_for(r.content.readline(), 5))["Actor"]["ID"] == "v"
    r.close()
    await wait_for_async("the subscription gone", lambda: log.subscribers == 0, timeout=5)


async def test_shutting_down_ends_the_live_streams(log: EventLog) -> None:
    client = TestClient(TestServer(build_app(Engine(log))))  # type: ignore[arg-type]
    await client.start_server()
    try:
        r = await client.get("/events")
        await wait_for_async("the subscription", lambda: log.subscribers == 1, timeout=5)
    finally:
        await asyncio.wait_for(client.close(), 10)  # aiohttp would wait 60 s for an open stream
    assert log.subscribers == 0
    r.close()
