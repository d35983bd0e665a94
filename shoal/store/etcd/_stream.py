"""Helpers for ``client.py``: a call deadline, and the reader of streaming gateway answers.

``Deadline`` turns an expired ``asyncio.timeout`` into ``Unavailable`` naming the call and the
endpoint; ``LineReader`` splits a newline-delimited answer (the watch stream) without aiohttp's
line-size limit, since one watch message can carry many revisions of 1.5 MiB transactions;
``watch_result`` decodes one message and raises ``Compacted``/``Unavailable`` for the end states.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import aiohttp

from shoal import aio
from shoal.errors import ShoalError, Unavailable
from shoal.store.backend import Compacted
from shoal.store.etcd._errors import error_from_stream
from shoal.store.etcd.messages import StreamLine, WatchResult, decode

# Errors of a connection that was made and then failed (reset, TLS alert, payload cut short).
BROKEN = (aiohttp.ClientError, OSError)


class Deadline:
    """``async with``: bound a call by ``timeout``; on expiry raise Unavailable naming it."""

    def __init__(self, path: str, timeout: float, on_expiry: Callable[[], str]) -> None:
        self._path, self._timeout, self._on_expiry = path, timeout, on_expiry
        self._scope = aio.timeout(timeout)

    async def __aenter__(self) -> None:
        await self._scope.__aenter__()

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._scope.__aexit__(t, e, tb)
        except TimeoutError as timeout:
            url = self._on_expiry()
            raise Unavailable(f"etcd {self._path} at {url}: no answer within "
                              f"{self._timeout:g} s") from timeout


class LineReader:
    """Newline-delimited messages of a streaming gateway answer, without a line-size limit."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._buffer = bytearray()
        self._scanned = 0

    async def next(self, timeout: float | None) -> bytes:
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._scanned = 0
                if line.strip():
                    return line
                continue
            self._scanned = len(self._buffer)
            try:
                async with aio.timeout(timeout):
                    chunk = await self._response.content.readany()
            except TimeoutError as e:
                raise Unavailable(f"etcd watch: nothing received for {timeout:g} s") from e
            except BROKEN as e:
                raise Unavailable(f"etcd watch: the stream broke: {e or type(e).__name__}") from e
            if not chunk:
                raise Unavailable("etcd watch: the server ended the stream")
            self._buffer += chunk


def watch_result(line: bytes, start_revision: int) -> WatchResult:
    message = decode(line, StreamLine)
    if message.error is not None:
        raise error_from_stream(message.error, "watch")
    result = message.result
    if result is None:
        raise ShoalError(f"etcd watch: unexpected message {line[:200]!r}")
    if result.compact_revision:
        raise Compacted(f"etcd watch: revision {start_revision} is compacted "
                        f"(oldest kept: {result.compact_revision})")
    if result.canceled:
        raise Unavailable(f"etcd watch: canceled by the server: {result.cancel_reason or '?'}")
    return result
