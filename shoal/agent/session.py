"""Session: one websocket session with one manager's dispatcher (swarmkit agent/session.go).

Order (shoal.model.dispatch): connect ``wss://MANAGER/session`` (server name swarm-manager),
send Register, read SessionInfo (within REGISTER_TIMEOUT), then three loops side by side until
one fails: the reader (SessionInfo, Assignments, HeartbeatAck, NetworkUpdate for the agent's
``on_network``, log subscriptions for the LogPublisher, AttachNetworkReply for the worker's
attachments), the heartbeat (send one every period; no ack within the period drops the
session), the reporter (StatusUpdates), the attachments' requests (AttachNetwork,
DetachNetwork) and the node's TLSReports. The
session ends only by an error: ``SessionDropped`` (reconnect elsewhere) or ``NodeRemoved``
(close code 4403: stop the agent). Agent (agent.py) owns reconnects and backoff.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp
import msgspec

from shoal import aio, metrics
from shoal.agent.logs import LogPublisher
from shoal.agent.reporter import Reporter
from shoal.agent.worker import Worker
from shoal.errors import PermissionDenied, Unavailable
from shoal.model.dispatch import (
    CLOSE_NOT_LEADER,
    CLOSE_REMOVED,
    Assignments,
    AttachNetworkReply,
    Heartbeat,
    HeartbeatAck,
    LogCancel,
    LogSubscribe,
    Message,
    NetworkUpdate,
    Register,
    SessionInfo,
    TLSReport,
    decode_message,
    encode_message,
)
from shoal.model.objects import TLSInfo

__all__ = ["CLOSE_TIMEOUT", "CONNECT_TIMEOUT_CAP", "DEFAULT_PERIOD", "SERVER_NAME", "NodeRemoved", "NotLeader", "Session", "SessionDropped", "TLSReports"]

log = logging.getLogger(__name__)

SERVER_NAME = "swarm-manager"  # every manager's certificate carries this DNS name
REGISTER_TIMEOUT = 10.0  # seconds for the manager to answer Register with SessionInfo
CONNECT_TIMEOUT_CAP = 5.0  # seconds a connect may take at most (see agent.connect_timeout)
CLOSE_TIMEOUT = 1.0  # seconds to wait for the manager's close frame: a broken session's peer
# may be unreachable, and aiohttp's default (10 s) kept the agent from the next manager
DEFAULT_PERIOD = 5.0  # seconds between heartbeats until the manager says otherwise


class SessionDropped(Unavailable):
    """The session broke (connect failed, socket closed, heartbeat not acknowledged)."""


class NotLeader(SessionDropped):
    """The manager is not the leader; ``leader`` is the leader's address when it knows it."""

    def __init__(self, manager: str, leader: str) -> None:
        super().__init__(f"{manager} is not the leader" + (f"; the leader is {leader}" if leader else ""))
        self.leader = leader


class NodeRemoved(PermissionDenied):
    """The manager closed the session with CLOSE_REMOVED: this node is no longer in the swarm."""


OnInfo = Callable[[SessionInfo], Awaitable[None]]
OnNetwork = Callable[[NetworkUpdate], None]


@dataclass(frozen=True, slots=True)
class TLSReports:
    """When the node's TLS info changed (``due``, set by the agent) and what it is now."""

    due: asyncio.Event
    current: Callable[[], TLSInfo | None]


class Session:
    def __init__(self, manager: str, *, http: aiohttp.ClientSession, ssl_context: ssl.SSLContext,
                 register: Register, worker: Worker, reporter: Reporter,
                 on_info: OnInfo, on_network: OnNetwork | None = None,
                 tls: TLSReports | None = None, connect_timeout: float = CONNECT_TIMEOUT_CAP) -> None:
        self.manager = manager
        self._connect_timeout = connect_timeout
        self.established = False  # SessionInfo received
        self._http = http
        self._ssl = ssl_context
        self._register = register
        self._worker = worker
        self._reporter = reporter
        self._on_info = on_info
        self._on_network = on_network
        self._tls = tls
        self._period = DEFAULT_PERIOD
        self._period_changed = asyncio.Event()  # wakes the heartbeat loop's wait
        self._acked = asyncio.Event()

    async def run(self) -> NoReturn:
        url = f"wss://{self.manager}/session"
        try:
            async with aio.timeout(self._connect_timeout):
                ws = await self._http.ws_connect(
                    url, ssl=self._ssl, server_hostname=SERVER_NAME, autoping=True,
                    max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT))
        except TimeoutError:
            metrics.AGENT_SESSIONS.labels("connect_failed").inc()
            raise SessionDropped(f"cannot connect to {url}: no answer within "
                                 f"{self._connect_timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            metrics.AGENT_SESSIONS.labels("connect_failed").inc()
            raise SessionDropped(f"cannot connect to {url}: {exc}") from exc
        try:
            await self._send(ws, self._register)
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for loses a cancellation that
                # arrives as the inner call completes (the agent then never stopped).
                async with aio.timeout(REGISTER_TIMEOUT):
                    first = await self._receive(ws)
            except TimeoutError:
                raise SessionDropped(f"{self.manager}: no SessionInfo after Register") from None
            if not isinstance(first, SessionInfo):
                raise SessionDropped(f"{self.manager}: expected SessionInfo, got {first!r}")
            await self._handle_info(first)
            self.established = True
            metrics.AGENT_SESSIONS.labels("established").inc()
            log.info("session %s with %s established", first.session_id, self.manager)
            logs = LogPublisher(self._worker.controller_of, lambda m: self._send(ws, m))
            try:
                jobs = [
                    (self._read(ws, logs), "agent-session-read"),
                    (self._heartbeat(ws), "agent-session-heartbeat"),
                    (self._reporter.run(lambda m: self._send(ws, m)), "agent-session-report"),
                    (self._worker.attachments.send_loop(lambda m: self._send(ws, m)),
                     "agent-session-attachments"),
                ]
                if self._tls is not None:
                    jobs.append((self._report_tls(ws, self._tls), "agent-session-tls"))
                await _first_error(*jobs)
            finally:
                await logs.close()
        finally:
            await ws.close()

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, msg: Message) -> None:
        try:
            await ws.send_str(encode_message(msg))
        except (aiohttp.ClientError, ConnectionError, OSError) as exc:
            raise SessionDropped(f"{self.manager}: send failed: {exc}") from exc

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> Message:
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                try:
                    return decode_message(msg.data)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    log.warning("%s: ignoring an undecodable message: %s", self.manager, exc)
                    continue
            if msg.type == aiohttp.WSMsgType.ERROR:
                raise SessionDropped(f"{self.manager}: {ws.exception()}")
            code = ws.close_code
            if msg.type == aiohttp.WSMsgType.CLOSE:
                code = msg.data
            reason = msg.extra if isinstance(msg.extra, str) and msg.extra else ""
            if code == CLOSE_REMOVED:
                raise NodeRemoved(reason or "this node was removed from the swarm")
            if code == CLOSE_NOT_LEADER:
                raise NotLeader(self.manager, reason)
            raise SessionDropped(f"{self.manager} closed the session (code {code})")

    def _set_period(self, ns: int) -> None:
        """A period the manager announced (SessionInfo, HeartbeatAck); a change wakes the
        heartbeat loop, so a period shortened after a long one is kept at once (issue 16)."""
        if ns > 0 and ns / 1e9 != self._period:
            log.info("%s: heartbeat period %.1fs->%.1fs", self.manager, self._period, ns / 1e9)
            self._period = ns / 1e9
            self._period_changed.set()

    async def _handle_info(self, info: SessionInfo) -> None:
        self._set_period(info.heartbeat_period)
        await self._on_info(info)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, logs: LogPublisher) -> None:
        while True:
            msg = await self._receive(ws)
            if isinstance(msg, SessionInfo):
                await self._handle_info(msg)
            elif isinstance(msg, Assignments):
                if msg.full:
                    await self._worker.assign(msg.tasks, msg.secrets, msg.configs)
                else:
                    await self._worker.update(msg.tasks, msg.removed, msg.secrets, msg.configs)
            elif isinstance(msg, HeartbeatAck):
                self._set_period(msg.period)
                self._acked.set()
            elif isinstance(msg, NetworkUpdate):
                if self._on_network is not None:
                    self._on_network(msg)
            elif isinstance(msg, AttachNetworkReply):
                self._worker.attachments.reply(msg)
            elif isinstance(msg, LogSubscribe):
                logs.subscribe(msg)
            elif isinstance(msg, LogCancel):
                logs.cancel(msg.subscription_id)
            else:
                log.debug("%s: ignoring %s", self.manager, type(msg).__name__)

    async def _report_tls(self, ws: aiohttp.ClientWebSocketResponse, tls: TLSReports) -> None:
        """Send the node's TLS info each time it changes (Register carried it at the start)."""
        while True:
            await tls.due.wait()
            tls.due.clear()
            info = tls.current()
            if info is not None:
                await self._send(ws, TLSReport(tls_info=info))

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        while True:
            period = self._period
            sent = loop.time()
            self._acked.clear()
            await self._send(ws, Heartbeat())
            try:
                async with aio.timeout(period):
                    await self._acked.wait()
            except TimeoutError:
                raise SessionDropped(
                    f"{self.manager}: no heartbeat ack within {period:.1f} s") from None
            metrics.AGENT_HEARTBEAT.observe(loop.time() - sent)
            # The next beat is due one period after this one, by the period in force: the ack,
            # or a SessionInfo while waiting, may announce a new one (swarm update
            # --dispatcher-heartbeat), which the manager expects from then on.
            while True:
                self._period_changed.clear()
                delay = sent + self._period - loop.time()
                if delay <= 0:
                    break
                try:
                    async with aio.timeout(delay):
                        await self._period_changed.wait()
                except TimeoutError:
                    break


async def _first_error(*jobs: tuple[Coroutine[Any, Any, None], str]) -> NoReturn:
    """Run the loops side by side; when one ends, cancel the others and raise its error."""
    tasks = [asyncio.create_task(coro, name=name) for coro, name in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = next(iter(done))
    exc = first.exception()
    if exc is None:
        raise SessionDropped(f"session loop {first.get_name()} ended")
    raise exc
