"""``GET /events``: the node's event log as dockerd 28 streams it (moby api/server/router/system
system_routes.go ``getEvents``, daemon/events/events.go).

``since``/``until`` are ``sec[.nanos]`` (the CLI turns durations and RFC 3339 times into these).
With either, the kept events (the ring of 256) from ``since`` (up to ``until``) come first; then
the live ones, until ``until`` if it is in the future, not at all if it is past. Neither: live
only. ``until`` before ``since``: 400 with dockerd's words. One JSON object per line, each
written (and so flushed) as it comes; API < 1.46 does not show image ``create`` events. A client
that hangs up ends its subscription; so does one that falls 1024 events behind (the stream
ends). Filters: shoal.api.eventfilter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from aiohttp import web

from shoal.aio import cancel_and_wait
from shoal.api.common import engine
from shoal.api.eventfilter import EventFilter, parse_filters
from shoal.api.server import API_VERSION_IN_USE, Router, parse_version
from shoal.errors import InvalidArgument
from shoal.events import Event, Subscription

__all__ = ["install", "parse_event_time", "register", "replay_window", "stream_window"]

log = logging.getLogger(__name__)

HANG_UP_POLL = 0.5  # seconds between checks that a client waiting for events is still there
# The live streams of an app, ended when it shuts down (dockerd closes its event streams as it
# stops; left open, aiohttp would wait for them until its shutdown timeout).
STREAMS: web.AppKey[set[Subscription]] = web.AppKey("event_streams")


def parse_event_time(name: str, value: str) -> int | None:
    """moby's ``ParseTimestamps(value, -1)``: ``sec[.frac]`` in nanoseconds since the epoch;
    None (no bound) for "" and -1. A bad value: 400, in moby's later words."""
    if value == "":
        return None
    secs, dot, frac = value.partition(".")
    try:
        seconds = int(secs, 10)
    except ValueError:
        raise _bad_time(name, value, f"invalid seconds {json.dumps(secs)}") from None
    if dot and not (frac.isascii() and frac.isdigit()):
        raise _bad_time(name, value, f"invalid nanoseconds {json.dumps(frac)}")
    if seconds == -1 and not dot:
        return None
    nanos = int((frac + "0" * 9)[:9]) if frac else 0
    return seconds * 1_000_000_000 + nanos


def _bad_time(name: str, value: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid value for '{name}': invalid timestamp {json.dumps(value)}: "
                           f"{why}: invalid syntax")


def stream_window(since: int | None, until: int | None, now: int) -> tuple[bool, float | None]:
    """(only past events, seconds to stream live before ``until``)."""
    if until is None:
        return False, None
    if until < now:
        return True, None
    return False, (until - now) / 1e9


def replay_window(since: int | None, until: int | None) -> tuple[int, int | None] | None:
    """moby's loadBufferedEvents: which kept events to send first, as (low, high) nanoseconds;
    None without since or until; a zero until bounds nothing."""
    if since is None and until is None:
        return None
    low = since if since is not None else 0
    high = until if until is not None and until > 0 else None
    return low, high


async def events(request: web.Request) -> web.StreamResponse:
    q = request.query
    raw_since, raw_until = q.get("since", ""), q.get("until", "")
    since = parse_event_time("since", raw_since)
    until = parse_event_time("until", raw_until)
    if until is not None and since is not None and until < since:
        raise InvalidArgument(f"`since` time ({raw_since}) cannot be after `until` time ({raw_until})")
    only_past, live_for = stream_window(since, until, time.time_ns())
    flt = EventFilter(parse_filters(q.get("filters", "")))
    include = flt.include if flt else None
    hide_image_create = parse_version(API_VERSION_IN_USE.get()) < (1, 46)

    def shown(ev: Event) -> bool:
        return not (hide_image_create and ev.type == "image" and ev.action == "create")

    log_ = engine(request).events
    # No await between the replay and the subscription: nothing falls between them.
    window = replay_window(since, until)
    buffered = [] if window is None else [e for e in log_.replay(*window) if include is None or include(e)]
    sub = None if only_past else log_.subscribe(include)
    streams = request.app.get(STREAMS)
    if sub is not None and streams is not None:
        streams.add(sub)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    try:
        await resp.prepare(request)
        for ev in buffered:
            if shown(ev):
                await resp.write(ev.encode())
        if sub is not None:
            await _live(request, resp, sub, shown, live_for)
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away: its subscription ends
    finally:
        if sub is not None:
            sub.close()
            if streams is not None:
                streams.discard(sub)
    return resp


async def _live(request: web.Request, resp: web.StreamResponse, sub: Subscription,
                shown: Callable[[Event], bool], live_for: float | None) -> None:
    """Live events until ``live_for`` seconds have passed (None: for ever), the client hangs
    up, or the subscription is dropped."""
    loop = asyncio.get_running_loop()
    deadline = None if live_for is None else loop.time() + live_for
    hung_up = asyncio.create_task(_hang_up(request), name="events-hang-up")
    try:
        while True:
            getter = asyncio.create_task(sub.get(), name="events-next")
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait({getter, hung_up}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                await cancel_and_wait(getter)
                return  # until reached, or the client went away
            ev = getter.result()
            if ev is None:
                return  # dropped (too slow) or closed
            if shown(ev):
                await resp.write(ev.encode())
    finally:
        await cancel_and_wait(hung_up)


async def _hang_up(request: web.Request) -> None:
    """Returns once the client has closed the connection (aiohttp does not cancel handlers)."""
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(HANG_UP_POLL)


def install(app: web.Application) -> None:
    """End the app's live event streams when it shuts down (before it waits for handlers)."""
    streams: set[Subscription] = set()
    app[STREAMS] = streams

    async def end_streams(app: web.Application) -> None:
        for sub in list(streams):
            sub.close()

    app.on_shutdown.append(end_streams)


def register(router: Router) -> None:
    # no read barrier: the log is the node's own, not the store's
    router.add("GET", "/events", events, reads_store=False)
