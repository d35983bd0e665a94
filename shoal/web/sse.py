"""Server-sent events: the response, one event's framing, and what ends a stream.

A stream ends when the client hangs up (aiohttp does not cancel a handler whose client left,
so the transport is looked at every ``HANG_UP_POLL`` s) or when the app shuts down (its
``STOPPING`` event, set before aiohttp waits for handlers), whichever comes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Self, TypeVar

import msgspec
from aiohttp import web

from shoal import aio

__all__ = ["HANG_UP_POLL", "STOPPING", "Ended", "Ends", "event", "open_stream"]

_T = TypeVar("_T")
HANG_UP_POLL = 0.5  # seconds between looks at whether a client is still there
RETRY_MS = 2000  # the browser's EventSource reconnects after this when a stream ends
STOPPING: web.AppKey[asyncio.Event] = web.AppKey("web_stopping")
_encoder = msgspec.json.Encoder()


def event(name: str, data: Any) -> bytes:
    """One event: its JSON on one ``data:`` line (JSON has no raw newline)."""
    return b"event: " + name.encode() + b"\ndata: " + _encoder.encode(data) + b"\n\n"


async def open_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    await resp.write(f"retry: {RETRY_MS}\n\n".encode())
    return resp


class Ended(Exception):
    """The client has gone, or the app is stopping."""


class Ends:
    """Use as ``async with Ends(request) as ends``; ``await ends.next(aw)`` is ``aw``'s result,
    or raises Ended (``aw`` cancelled) once the client has gone or the app is stopping."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._stop = request.app[STOPPING]
        self.task: asyncio.Task[None] = asyncio.create_task(self._watch(), name="web-stream-end")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await aio.cancel_and_wait(self.task)

    async def _watch(self) -> None:
        while not self._stop.is_set():
            transport = self._request.transport
            if transport is None or transport.is_closing():
                return
            try:
                async with aio.timeout(HANG_UP_POLL):
                    await self._stop.wait()
            except TimeoutError:
                pass

    async def next(self, aw: Awaitable[_T]) -> _T:
        getter = asyncio.ensure_future(aw)
        try:
            await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the handler itself is cancelled (the server closing)
            if not getter.done():
                getter.cancel()
                await asyncio.wait({getter})
        if getter.cancelled():
            raise Ended
        return getter.result()
