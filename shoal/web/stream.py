"""``GET /api/events``: the swarm as the page draws it, live, from the manager's store watch.

Subscribe, then read the view with no ``await`` between (STYLE rule 5): the first event,
``snapshot``, is the whole state at one revision, and every later ``delta`` is the rows changed
since, batched (50 ms quiet, 250 ms at most) so a burst of task writes is one event. A
subscriber that fell too far behind gets a new snapshot. Without a ready store the stream says
why (``unavailable``) and ends; the browser reconnects by itself (the ``retry`` field), as it
does when the manager's store is replaced (a restart of the manager part).
"""

from __future__ import annotations

import logging

from aiohttp import web

from shoal.store.watch import SubscriptionOverflow
from shoal.web.snapshot import KINDS, delta, snapshot
from shoal.web.source import WebSource, unavailable_reason
from shoal.web.sse import Ended, Ends, event, open_stream

__all__ = ["BATCH_GAP", "BATCH_MAX", "KEEPALIVE", "SOURCE", "state_events"]

log = logging.getLogger(__name__)

SOURCE: web.AppKey[WebSource] = web.AppKey("web_source")
BATCH_GAP = 0.05  # seconds of quiet that close a batch of changes
BATCH_MAX = 0.25  # seconds a change may wait for its batch: what "live" means on the page
KEEPALIVE = 10.0  # seconds between comments on an idle stream (proxies, a client's hang-up)


async def state_events(request: web.Request) -> web.StreamResponse:
    source = request.app[SOURCE]
    resp = await open_stream(request)
    store = source.store
    try:
        if store is None:
            await resp.write(event("unavailable", {"message": unavailable_reason(source)}))
            return resp
        with store.subscribe(KINDS) as sub:
            first = event("snapshot", snapshot(store.view(), store.revision))  # no await before
            await resp.write(first)
            async with Ends(request) as ends:
                while source.store is store:
                    try:
                        batch = await ends.next(sub.next_batch(gap=BATCH_GAP, max_latency=BATCH_MAX,
                                                               idle=KEEPALIVE))
                    except SubscriptionOverflow:
                        await resp.write(event("snapshot", snapshot(store.view(), store.revision)))
                        continue
                    if not batch:
                        await resp.write(b": idle\n\n")
                        continue
                    changed = delta(batch, store.view())
                    if changed:
                        await resp.write(event("delta", changed.encode(store.revision)))
    except (Ended, ConnectionError):
        pass  # the client went away, or shoald is stopping
    return resp
