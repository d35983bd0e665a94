"""The node's event log (what ``GET /events`` serves): Docker's event messages, a ring of the
last 256 kept for ``since`` replays, and live subscribers that are dropped, not waited on,
when they fall behind (moby daemon/events/events.go; dockerd's publisher skips an event for a
subscriber that does not take it in 100 ms, Shoal ends that subscriber's stream instead, so
that neither memory nor the publisher ever waits on a slow reader).

Any part may publish (the runc executor's containers, the image and volume services, the
networks, the manager's swarm events): ``publish`` on the daemon's event loop,
``publish_threadsafe`` from anywhere (a worker thread, or the loop itself); only the API reads
(``replay`` then ``subscribe``, with no ``await`` between, misses nothing and repeats nothing).
It sits at the bottom of the layers so that every publisher can import it; it imports nothing
of Shoal's.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shoal import metrics

__all__ = ["QUEUE_SIZE", "RING_SIZE", "Event", "EventLog", "Include", "Subscription"]

RING_SIZE = 256  # moby daemon/events: eventsLimit
QUEUE_SIZE = 1024  # moby: the buffer of one subscriber; a subscriber this far behind is dropped

Include = Callable[["Event"], bool]  # a subscriber's filter (moby's pubsub topic)

# Go's encoding/json escapes these (HTML safety, and the two JavaScript line separators).
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


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
        """moby's ``events.Message``, its fields in Go's order; the deprecated ``status``,
        ``id`` (container and image events) and ``from`` (container events) that dockerd 28
        still fills for local events; empty ``scope``/``time``/``timeNano`` left out."""
        out: dict[str, Any] = {}
        if self.scope == "local" and self.type in ("container", "image"):
            out["status"] = self.action
            if self.actor_id:
                out["id"] = self.actor_id
            if self.type == "container" and self.attributes.get("image"):
                out["from"] = self.attributes["image"]
        out["Type"] = self.type
        out["Action"] = self.action
        out["Actor"] = {"ID": self.actor_id, "Attributes": dict(sorted(self.attributes.items()))}
        if self.scope:
            out["scope"] = self.scope
        if self.time_nano:
            out["time"] = self.time_nano // 1_000_000_000
            out["timeNano"] = self.time_nano
        return out

    def encode(self) -> bytes:
        """One line of the stream, as Go's ``json.Encoder`` writes it."""
        text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        for char, escaped in _GO_ESCAPES.items():
            text = text.replace(char, escaped)
        return text.encode() + b"\n"


class Subscription:
    """A live reader: ``get`` the next event, None once dropped (too slow) or closed."""

    def __init__(self, log: EventLog, include: Include | None = None) -> None:
        self._log = log
        self._include = include
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self.dropped = False
        self.closed = False

    def _offer(self, event: Event) -> None:
        if self._include is not None and not self._include(event):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            self._log.unsubscribe(self)

    async def get(self) -> Event | None:
        if (self.dropped or self.closed) and self._queue.empty():
            return None
        return await self._queue.get()

    def close(self) -> None:
        self._log.unsubscribe(self)
        self.closed = True
        if not self._queue.full():
            self._queue.put_nowait(None)  # wakes a reader waiting in get


class EventLog:
    """The ring and the subscribers. Publish from the event loop's thread (``publish``) or
    from any thread (``publish_threadsafe``, once ``bind`` named the loop: the daemon binds
    its own)."""

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
        """Keep and hand out one event (its time now unless ``time_nano``). Call on the loop."""
        event = Event(type_, action, actor_id, dict(attributes or {}), scope,
                      time_nano or time.time_ns())
        self._ring.append(event)
        metrics.EVENTS.inc()
        for sub in list(self._subs):
            sub._offer(event)
        return event

    def publish_threadsafe(self, type_: str, action: str, actor_id: str,
                           attributes: Mapping[str, str] | None = None, *,
                           scope: str = "local") -> None:
        """``publish`` from any thread: at once on the bound loop's thread (or anywhere while
        no loop is bound: a log used by one thread, as in tests), else handed to the bound
        loop (lost once it has closed: nobody can be listening any more)."""
        stamp = time.time_ns()  # when it happened, not when the loop gets to it
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self.publish(type_, action, actor_id, attributes, scope=scope, time_nano=stamp)
            return
        if loop.is_closed():
            return
        attrs = dict(attributes or {})
        try:
            loop.call_soon_threadsafe(
                lambda: self.publish(type_, action, actor_id, attrs, scope=scope, time_nano=stamp))
        except RuntimeError:  # closed between the check and the call
            return

    def replay(self, since_nano: int, until_nano: int | None = None) -> list[Event]:
        """The kept events with since <= timeNano (<= until), oldest first."""
        return [e for e in self._ring
                if e.time_nano >= since_nano and (until_nano is None or e.time_nano <= until_nano)]

    def subscribe(self, include: Include | None = None) -> Subscription:
        """A live reader of the events ``include`` accepts (all without one): only those
        count against its queue."""
        sub = Subscription(self, include)
        self._subs.add(sub)
        metrics.EVENT_SUBSCRIBERS.inc()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.discard(sub)
            metrics.EVENT_SUBSCRIBERS.dec()

    @property
    def subscribers(self) -> int:
        return len(self._subs)
