"""The node's event log (what ``GET /events`` serves): Docker's event messages, a ring of the
last 256 kept for ``since`` replays, and live subscribers that are dropped, not waited on,
when they fall behind (dockerd's publisher does the same after 100 ms).

Any part may publish (the runc executor's containers, the image and volume services, the
networks, the manager's swarm events); only the API reads. It sits at the bottom of the layers
so that every publisher can import it; it imports nothing of Shoal's.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RING_SIZE", "Event", "EventLog", "Subscription"]

RING_SIZE = 256  # moby daemon/events: eventsLimit
QUEUE_SIZE = 1024  # moby: the buffer of one subscriber


@dataclass(frozen=True, slots=True)
class Event:
    """One event, in the shape of the Engine API's EventMessage."""

    type: str  # container image volume network daemon plugin node service secret config
    action: str  # create start die destroy pull ... ; "health_status: healthy"
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    scope: str = "local"  # "local" or "swarm"
    time_nano: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Type": self.type, "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope, "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano}
        if self.type in ("container", "image"):  # the deprecated fields Docker still sends
            out["status"] = self.action
            out["id"] = self.actor_id
            if "image" in self.attributes:
                out["from"] = self.attributes["image"]
        return out


class Subscription:
    """A live reader: ``get`` the next event, None once dropped (too slow) or closed."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self.dropped = False

    def _offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            self._log.unsubscribe(self)

    async def get(self) -> Event | None:
        if self.dropped and self._queue.empty():
            return None
        return await self._queue.get()

    def close(self) -> None:
        self._log.unsubscribe(self)
        if not self._queue.full():
            self._queue.put_nowait(None)


class EventLog:
    """The ring and the subscribers. Publish from the event loop's thread (``publish``) or
    from any thread (``publish_threadsafe``)."""

    def __init__(self, ring_size: int = RING_SIZE) -> None:
        self._ring: collections.deque[Event] = collections.deque(maxlen=ring_size)
        self._subs: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop subscribers wait on (the daemon's), for publishes from other threads."""
        self._loop = loop

    def publish(self, type_: str, action: str, actor_id: str,
                attributes: Mapping[str, str] | None = None, *, scope: str = "local",
                time_nano: int = 0) -> Event:
        event = Event(type_, action, actor_id, dict(attributes or {}), scope,
                      time_nano or time.time_ns())
        self._ring.append(event)
        for sub in list(self._subs):
            sub._offer(event)
        return event

    def publish_threadsafe(self, type_: str, action: str, actor_id: str,
                           attributes: Mapping[str, str] | None = None, *,
                           scope: str = "local") -> None:
        stamp = time.time_ns()  # when it happened, not when the loop gets to it
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(
            lambda: self.publish(type_, action, actor_id, attributes, scope=scope,
                                 time_nano=stamp))

    def replay(self, since_nano: int, until_nano: int | None = None) -> list[Event]:
        """The kept events with since <= timeNano (<= until), oldest first."""
        return [e for e in self._ring
                if e.time_nano >= since_nano and (until_nano is None or e.time_nano <= until_nano)]

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
