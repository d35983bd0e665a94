"""LogBroker: service and task logs, read on the nodes that ran the tasks (swarmkit's
manager/logbroker).

The API hands the broker the tasks to read, grouped by node. The broker sends each node a
``LogSubscribe`` over its agent session (the dispatcher attaches every session here), and the
agents answer with ``LogBatch`` messages and one ``LogEnd``. The subscriber reads the lines as
they arrive, from every node at once; without ``follow`` the subscription ends when every node
has sent ``LogEnd``. Leaving early (or a client that hangs up) sends ``LogCancel`` to the nodes
still reading. A node without a session, or whose session drops, ends its part with an error.
A node publishes lines only of the tasks asked of it, which are the tasks assigned to it (the
API groups them by ``Task.NodeID``): any other line is dropped and logged, as swarmkit's
PublishLogs refuses a message for another node ("permission denied").

Sessions live on the leader only, so a follower's API reads through the leader's broker over
the swarm port (``RemoteLogs`` / ``serve``).

A subscriber that reads more slowly than the nodes send (a stuck ``service logs -f`` client)
is not let grow (issue 16): past ``MAX_WAITING_BYTES`` of lines waiting, its lines are dropped,
its stream ends with an error ("Error grabbing logs: ..."), and the nodes are told to stop.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import msgspec
from aiohttp import WSMsgType, web

from shoal.errors import Unavailable
from shoal.model.dispatch import (
    LogBatch,
    LogCancel,
    LogEnd,
    LogEntry,
    LogSelector,
    LogSubscribe,
    Message,
)
from shoal.model.ids import new_id

__all__ = ["LogBroker", "LogEnded", "LogLines", "NodeLogs", "RemoteLogs", "Sender", "until"]

log = logging.getLogger(__name__)

Sender = Callable[[Message], Awaitable[None]]
SERVER_NAME = "swarm-manager"
# Lines one subscription may hold unread (their bytes): seconds of a busy service's output,
# while the dispatcher's session reader, which delivers them, must never wait on a client.
MAX_WAITING_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LogLines:
    node_id: str
    entries: list[LogEntry]


@dataclass(frozen=True, slots=True)
class LogEnded:
    node_id: str
    error: str = ""


NodeLogs = LogLines | LogEnded


class _Subscription:
    def __init__(self, sub_id: str, tasks_by_node: dict[str, list[str]]) -> None:
        self.id = sub_id
        self.tasks = {node_id: set(tasks) for node_id, tasks in tasks_by_node.items()}
        self.pending = set(tasks_by_node)  # nodes that have not sent LogEnd yet
        self.queue: asyncio.Queue[NodeLogs] = asyncio.Queue()
        self.waiting = 0  # bytes of lines queued
        self.dropped = ""  # why the subscription was dropped (its reader too slow)

    def lines(self, node_id: str, entries: list[LogEntry]) -> None:
        if self.dropped:
            return
        size = sum(len(e.data) for e in entries)
        if self.waiting + size > MAX_WAITING_BYTES:
            self.dropped = (f"log stream dropped: the client read more slowly than the nodes "
                            f"sent (more than {_size(MAX_WAITING_BYTES)} of lines waiting)")
            log.warning("log subscription %s: %s", self.id, self.dropped)
            while not self.queue.empty():
                self.queue.get_nowait()
            self.waiting = 0
            self.queue.put_nowait(LogEnded("", self.dropped))  # wakes the reader
            return
        self.waiting += size
        self.queue.put_nowait(LogLines(node_id, entries))

    def allowed(self, node_id: str, entries: list[LogEntry]) -> list[LogEntry]:
        """The entries of tasks asked of ``node_id``; the others are refused, and logged."""
        mine = self.tasks.get(node_id, set())
        kept = [e for e in entries if e.task_id in mine]
        if len(kept) < len(entries):
            others = sorted({e.task_id for e in entries} - mine)
            log.warning("node %s: log lines of task(s) %s refused: permission denied: not "
                        "assigned to this node", node_id, ", ".join(others))
        return kept

    def end(self, node_id: str, error: str = "") -> None:
        if node_id in self.pending and not self.dropped:
            self.pending.discard(node_id)
            self.queue.put_nowait(LogEnded(node_id, error))


class LogBroker:
    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}
        self._subs: dict[str, _Subscription] = {}

    # -- the dispatcher's side ----------------------------------------------------------------
    def attach(self, node_id: str, send: Sender) -> None:
        self._senders[node_id] = send

    def detach(self, node_id: str, send: Sender) -> None:
        if self._senders.get(node_id) is not send:
            return  # a newer session of the node took over
        del self._senders[node_id]
        for sub in self._subs.values():
            sub.end(node_id, f"node {node_id} lost its session with the manager")

    def deliver(self, node_id: str, msg: LogBatch | LogEnd) -> None:
        sub = self._subs.get(msg.subscription_id)
        if sub is None or node_id not in sub.pending:
            return  # cancelled, or not asked of this node
        if isinstance(msg, LogBatch):
            entries = sub.allowed(node_id, msg.entries)
            if entries:
                sub.lines(node_id, entries)
        else:
            sub.end(node_id, msg.error)

    # -- the API's side -----------------------------------------------------------------------
    @asynccontextmanager
    async def subscribe(self, tasks_by_node: dict[str, list[str]],
                        selector: LogSelector) -> AsyncIterator[AsyncIterator[NodeLogs]]:
        """Yields an iterator over the nodes' lines and ends (LogEnded per node)."""
        sub = _Subscription(new_id(), tasks_by_node)
        self._subs[sub.id] = sub
        try:
            for node_id, task_ids in tasks_by_node.items():
                send = self._senders.get(node_id)
                if send is None:
                    sub.end(node_id, f"node {node_id} is not connected to the manager")
                    continue
                asked = msgspec.structs.replace(selector, task_ids=task_ids)
                try:
                    await send(LogSubscribe(subscription_id=sub.id, selector=asked))
                except (ConnectionError, Unavailable, RuntimeError) as exc:
                    sub.end(node_id, f"node {node_id}: {exc}")
            yield _drain(sub)
        finally:
            del self._subs[sub.id]
            for node_id in sub.pending:
                send = self._senders.get(node_id)
                if send is not None:
                    try:
                        await send(LogCancel(subscription_id=sub.id))
                    except (ConnectionError, Unavailable, RuntimeError):
                        pass  # the session is going away; the agent stops reading with it

    # -- followers read through the leader ------------------------------------------------
    async def serve(self, request: web.Request) -> web.StreamResponse:
        """``GET /logs`` (websocket) on the leader's swarm listener, for other managers: one
        JSON request (tasks by node, selector), then one JSON frame per batch or end."""
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        first = await ws.receive()
        if first.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            await ws.close()
            return ws
        req = msgspec.json.decode(first.data, type=_RemoteRequest)
        reader = asyncio.create_task(ws.receive())  # the caller hanging up ends the stream
        try:
            async with self.subscribe(req.tasks_by_node, req.selector) as lines:
                async for item in until(lines, reader):
                    await ws.send_bytes(_encode_item(item))
        finally:
            reader.cancel()
            await ws.close()
        return ws


class _RemoteRequest(msgspec.Struct, kw_only=True):
    tasks_by_node: dict[str, list[str]]
    selector: LogSelector


class _RemoteItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    node_id: str
    entries: list[LogEntry] = []
    ended: bool = False
    error: str = ""


def _encode_item(item: NodeLogs) -> bytes:
    if isinstance(item, LogLines):
        return msgspec.json.encode(_RemoteItem(node_id=item.node_id, entries=item.entries))
    return msgspec.json.encode(_RemoteItem(node_id=item.node_id, ended=True, error=item.error))


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n} bytes"


async def _drain(sub: _Subscription) -> AsyncIterator[NodeLogs]:
    while sub.pending or not sub.queue.empty():
        item = await sub.queue.get()
        if sub.dropped:  # ends here; the nodes still reading get LogCancel (subscribe)
            yield LogEnded("", sub.dropped)
            return
        if isinstance(item, LogLines):
            sub.waiting -= sum(len(e.data) for e in item.entries)
        yield item


async def until(items: AsyncIterator[NodeLogs], stop: asyncio.Task[object]) -> AsyncIterator[NodeLogs]:
    """``items`` until ``stop`` finishes first."""
    while True:
        nxt = asyncio.ensure_future(anext(items))
        done, _ = await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
        if nxt not in done:
            nxt.cancel()
            await asyncio.gather(nxt, return_exceptions=True)
            return
        try:
            yield nxt.result()
        except StopAsyncIteration:
            return


class RemoteLogs:
    """A follower's way to the leader's broker (the same ``subscribe`` shape)."""

    def __init__(self, leader_addr: str, ssl_context: ssl.SSLContext) -> None:
        self._addr = leader_addr
        self._ssl = ssl_context

    @asynccontextmanager
    async def subscribe(self, tasks_by_node: dict[str, list[str]],
                        selector: LogSelector) -> AsyncIterator[AsyncIterator[NodeLogs]]:
        if not self._addr:
            raise Unavailable("The swarm does not have a leader. It's possible that too few "
                              "managers are online. Make sure more than half of the managers "
                              "are online.")
        async with aiohttp.ClientSession() as http:
            try:
                ws = await http.ws_connect(f"wss://{self._addr}/logs", ssl=self._ssl,
                                           server_hostname=SERVER_NAME, max_msg_size=0)
            except (aiohttp.ClientError, OSError) as exc:
                raise Unavailable(f"cannot reach the leader {self._addr} for logs: {exc}") from exc
            async with ws:
                request = _RemoteRequest(tasks_by_node=tasks_by_node, selector=selector)
                await ws.send_bytes(msgspec.json.encode(request))
                yield _remote_items(ws, set(tasks_by_node))


async def _remote_items(ws: aiohttp.ClientWebSocketResponse, nodes: set[str]) -> AsyncIterator[NodeLogs]:
    pending = set(nodes)
    async for msg in ws:
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            break
        item = msgspec.json.decode(msg.data, type=_RemoteItem)
        if item.ended:
            pending.discard(item.node_id)
            yield LogEnded(item.node_id, item.error)
        else:
            yield LogLines(item.node_id, item.entries)
    for node_id in pending:
        yield LogEnded(node_id, "the leader ended the log stream")
