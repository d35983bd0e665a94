"""The node's event log: the bounded ring, replays, subscribers (filtered, dropped when slow),
publishing from other threads, and the EventMessage shape."""

from __future__ import annotations

import asyncio
import json
import threading

from shoal.events import QUEUE_SIZE, RING_SIZE, Event, EventLog


def test_ring_keeps_the_last_256_and_replays_a_window() -> None:
    log = EventLog()
    for i in range(RING_SIZE + 10):
        log.publish("volume", "create", f"v{i}", time_nano=1_000 + i)
    kept = log.replay(0)
    assert len(kept) == RING_SIZE and kept[0].actor_id == "v10"
    window = log.replay(1_000 + 100, 1_000 + 102)
    assert [e.actor_id for e in window] == ["v100", "v101", "v102"]


async def test_subscriber_gets_only_what_it_includes() -> None:
    log = EventLog()
    sub = log.subscribe(lambda e: e.type == "service")
    log.publish("volume", "create", "v")
    log.publish("service", "create", "s", scope="swarm")
    got = await sub.get()
    assert got is not None and got.actor_id == "s"
    sub.close()
    assert await sub.get() is None
    assert log.subscribers == 0


async def test_slow_subscriber_is_dropped_not_waited_on() -> None:
    log = EventLog()
    slow = log.subscribe()
    for i in range(QUEUE_SIZE + 5):
        log.publish("volume", "create", f"v{i}")
    assert slow.dropped and log.subscribers == 0
    received = 0
    while (await slow.get()) is not None:  # what it had queued, then the end
        received += 1
    assert received == QUEUE_SIZE
    log.publish("volume", "create", "later")  # no longer offered to it
    assert await slow.get() is None


async def test_publish_threadsafe_from_a_thread_and_from_the_loop() -> None:
    log = EventLog()
    log.bind(asyncio.get_running_loop())
    sub = log.subscribe()
    log.publish_threadsafe("image", "tag", "sha256:1", {"name": "a:1"})  # on the loop: at once
    assert len(log.replay(0)) == 1
    thread = threading.Thread(target=log.publish_threadsafe, args=("image", "untag", "sha256:1"))
    thread.start()
    thread.join()
    first, second = await sub.get(), await sub.get()
    assert first is not None and second is not None
    assert (first.action, second.action) == ("tag", "untag")
    assert second.time_nano >= first.time_nano
    sub.close()


def test_publish_threadsafe_unbound_publishes_and_after_the_loop_closed_is_lost() -> None:
    log = EventLog()
    log.publish_threadsafe("volume", "create", "v")  # one thread, no loop: at once
    assert [e.actor_id for e in log.replay(0)] == ["v"]
    loop = asyncio.new_event_loop()
    log.bind(loop)
    loop.close()
    log.publish_threadsafe("volume", "create", "w")
    assert [e.actor_id for e in log.replay(0)] == ["v"]


def test_message_shape_as_dockerd_28() -> None:
    ev = Event("container", "start", "c1", {"image": "busybox", "name": "x", "a": "<&>"},
               "local", 1_700_000_000_123_456_789)
    line = ev.encode()
    assert line.endswith(b"\n")
    assert b"\\u003c\\u0026\\u003e" in line  # Go's encoder escapes HTML characters
    doc = json.loads(line)
    assert list(doc) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert doc["status"] == "start" and doc["id"] == "c1" and doc["from"] == "busybox"
    assert doc["time"] == 1_700_000_000 and doc["timeNano"] == 1_700_000_000_123_456_789
    assert list(doc["Actor"]["Attributes"]) == ["a", "image", "name"]  # a Go map: sorted
    image = Event("image", "pull", "busybox:latest", {"name": "busybox"}, "local", 5).to_json()
    assert image["status"] == "pull" and image["id"] == "busybox:latest" and "from" not in image
    swarm = Event("service", "update", "s1", {"name": "web"}, "swarm", 5).to_json()
    assert "status" not in swarm and swarm["scope"] == "swarm"
