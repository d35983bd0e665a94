"""``shoal events`` against a fake daemon: the query docker sends (times, filters), docker's
text line, ``--format`` with ``json`` and templates, and docker's refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from shoal.cli.commands.events import event_line, event_time
from shoal.cli.errors import CliError

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon

UPDATE = {"Type": "service", "Action": "update",
          "Actor": {"ID": "svc1", "Attributes": {"replicas.new": "3", "name": "web", "replicas.old": "1"}},
          "scope": "swarm", "time": 1704063600, "timeNano": 1704063600000000001}
PULL = {"status": "pull", "id": "busybox:latest", "Type": "image", "Action": "pull",
        "Actor": {"ID": "busybox:latest", "Attributes": {"name": "busybox", "x": "<a&b>"}},
        "scope": "local", "time": 1704063601, "timeNano": 1704063601000000000}


class EventsDaemon(FakeDaemon):
    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            self.requests.append(("GET", "/events", dict(request.url.params), None))
            body = b"".join(json.dumps(m).encode() + b"\n" for m in (UPDATE, PULL))
            return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
        return super().handle(request)


@pytest.fixture
def daemon() -> EventsDaemon:
    return EventsDaemon()


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the local time zone (POSIX TZ) for the test, restored after."""
    def set_zone(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    try:
        yield set_zone
    finally:
        monkeypatch.undo()
        time.tzset()


def test_times_as_docker_sends_them(zone: Callable[[str], None]) -> None:
    zone("UTC0")
    assert event_time("1m", now=1000.7) == "940"  # a duration: whole seconds ago
    assert event_time("0s", now=1000.7) == "1000"
    assert event_time("0", now=1000.7) == "0"
    assert event_time("1700000000.5") == "1700000000.5"
    assert event_time("2024-01-01T00:00:00Z") == "1704067200.000000000"
    assert event_time("2024-01-01T01:00:00.5+01:00") == "1704067200.500000000"
    with pytest.raises(CliError, match='failed to parse value as time or duration: "soon"'):
        event_time("soon")


def test_text_line(zone: Callable[[str], None]) -> None:
    zone("UTC0")
    assert event_line(UPDATE) == ("2023-12-31T23:00:00.000000001Z service update svc1 "
                                  "(name=web, replicas.new=3, replicas.old=1)")
    zone("CET-1")  # docker prints local time: 2024-01-01T00:00:00.000000000+01:00 ...
    assert event_line(UPDATE).startswith("2024-01-01T00:00:00.000000001+01:00 service update svc1 ")
    assert event_time("2024-01-01T00:00:00") == "1704063600.000000000"  # no zone: the local one
    assert event_line({"Type": "volume", "Action": "prune", "Actor": {"ID": ""}, "time": 1}) == \
        "1970-01-01T01:00:01.000000000+01:00 volume prune "


def test_events_prints_lines_and_sends_the_query(shoal: Shoal, daemon: EventsDaemon) -> None:
    shoal.time = 1000.0
    result = shoal("events", "--since", "1700000000", "--until", "1700000100", "--filter", "type=service",
                   "-f", "type=image")
    assert result.status == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 2 and " service update svc1 (name=web, replicas.new=3, replicas.old=1)" in lines[0]
    _, _, query, _ = daemon.calls("GET", "/events")[-1]
    assert query["since"] == "1700000000" and query["until"] == "1700000100"
    assert json.loads(query["filters"]) == {"type": {"image": True, "service": True}}


def test_format_json_and_templates(shoal: Shoal) -> None:
    out = shoal("events", "--format", "{{json .}}").out.splitlines()
    first: dict[str, Any] = json.loads(out[0])
    assert list(first) == ["Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert list(json.loads(out[1])) == ["status", "id", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert "<a&b>" in out[1]  # docker's json function does not escape HTML
    assert shoal("events", "--format", "json").out.splitlines() == out
    text = shoal("events", "--format", "{{.Type}} {{.Actor.Attributes.name}} {{.Scope}}").out
    assert text.splitlines() == ["service web swarm", "image busybox local"]
    bad = shoal("events", "--format", "{{.Nope}}")
    assert bad.status == 64 and bad.err.startswith("Error parsing format: ")
