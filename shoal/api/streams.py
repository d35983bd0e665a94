"""Docker's container streams: the multiplexed framing (``[stream, 0, 0, 0, len BE32]`` then the
payload; 1 = stdout, 2 = stderr) and the hijacked connection of ``/exec/{id}/start`` and
``/containers/{id}/attach``: with ``Upgrade: tcp`` the server answers ``101 UPGRADED`` and the
connection becomes a raw duplex stream (without it, ``200 OK`` and the output as the body).

The hijack takes the connection from aiohttp (``transport.set_protocol``) after the 101 is
written, so that a client's half-close (the CLI's CloseWrite at the end of its stdin) is read as
the end of stdin and not the end of the connection.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aiohttp import web

__all__ = ["MULTIPLEXED", "RAW", "Hijacked", "frame", "hijack"]

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
STDOUT, STDERR = 1, 2


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


class Hijacked(asyncio.Protocol):
    """The connection after the upgrade: ``read`` what the client sends (b"" at its EOF),
    ``write`` to it, ``close`` it."""

    def __init__(self, transport: asyncio.Transport, tail: bytes,
                 response: web.StreamResponse) -> None:
        self._transport = transport
        self.response = response  # what the handler returns (its headers are sent)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.lost = asyncio.Event()
        if tail:
            self._queue.put_nowait(tail)

    def data_received(self, data: bytes) -> None:
        self._queue.put_nowait(data)

    def eof_received(self) -> bool:
        self._queue.put_nowait(b"")
        return True  # half-closed: the output still goes out

    def connection_lost(self, exc: Exception | None) -> None:
        self._queue.put_nowait(b"")
        self.lost.set()

    async def read(self) -> bytes:
        return await self._queue.get()

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()


class _Plain:
    """No upgrade asked: the output is the response's body; nothing is read."""

    def __init__(self, response: web.StreamResponse) -> None:
        self._response = self.response = response
        self.lost = asyncio.Event()
        self._pending: list[bytes] = []

    async def read(self) -> bytes:
        await self.lost.wait()
        return b""

    def write(self, data: bytes) -> None:
        self._pending.append(data)

    async def drain(self) -> None:
        pending, self._pending = self._pending, []
        for data in pending:
            try:
                await self._response.write(data)
            except (ConnectionError, RuntimeError):
                self.lost.set()
                return

    def close(self) -> None:
        self.lost.set()


async def hijack(request: web.Request, content_type: str) -> Hijacked | _Plain:
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp" and \
        "upgrade" in request.headers.get("Connection", "").lower()
    if not upgrade:
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        await response.prepare(request)
        return _Plain(response)
    response = web.StreamResponse(status=101, reason="UPGRADED", headers={
        "Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"})
    response.force_close()
    await response.prepare(request)
    transport = request.transport
    assert isinstance(transport, asyncio.Transport)
    protocol: Any = request.protocol
    tail = bytes(getattr(protocol, "_message_tail", b"") or b"")
    hijacked = Hijacked(transport, tail, response)
    transport.set_protocol(hijacked)
    if not transport.is_reading():
        transport.resume_reading()
    return hijacked
