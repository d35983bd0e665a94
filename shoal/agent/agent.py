"""Agent: keeps exactly one session with a manager and runs the worker (swarmkit agent.go).

The daemon builds an Agent with its executor, state dir, TLS context factory and the managers
it joined through, and runs ``run()`` in its task group. The agent restores the worker's tasks
from disk first (they keep running without a manager), then loops: one Session at a time,
rotating through the known managers (the list learnt from SessionInfo is persisted in
``state.json`` and used after a restart) with backoff 100 ms doubling to 8 s, with jitter,
reset once a session is established. A manager that is not the leader names the leader, and the
next attempt goes there. ``NodeRemoved`` (close code 4403) ends ``run()`` with that
error. ``stop()`` or cancellation ends the sessions and leaves tasks running; only
``shutdown_all()`` (swarm leave) stops and removes them. The manager's NetworkUpdates (gossip
keys, the node's own network attachments) are kept as ``network`` and handed to ``on_network``.
The node's TLS info (``tls_info``) goes with each Register, and again when the daemon says it
changed (``report_tls``: a renewed certificate, new roots).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from shoal.agent.attachments import Attachments
from shoal.agent.reporter import Reporter
from shoal.agent.session import (
    CONNECT_TIMEOUT_CAP,
    DEFAULT_PERIOD,
    NodeRemoved,
    NotLeader,
    Session,
    SessionDropped,
    TLSReports,
)
from shoal.agent.worker import Worker
from shoal.aio import Backoff
from shoal.exec.executor import Executor
from shoal.model.dispatch import NetworkUpdate, Register, SessionInfo
from shoal.model.objects import TLSInfo

__all__ = ["Agent"]

log = logging.getLogger(__name__)


def connect_timeout(info: SessionInfo | None) -> float:
    """How long a session's connect (TCP, TLS, websocket upgrade) may take: two heartbeat
    periods, 1 to 5 s. A manager cut off by the network drops the SYN silently, and TCP gives
    up only after about two minutes; meanwhile the new leader marks this node down (after
    LEADER_GRACE periods) and replaces its tasks, though the agent had live managers to try."""
    period = info.heartbeat_period / 1e9 if info is not None and info.heartbeat_period > 0 \
        else DEFAULT_PERIOD
    return min(CONNECT_TIMEOUT_CAP, max(1.0, 2 * period))


class Agent:
    def __init__(self, *, executor: Executor, state_dir: Path,
                 ssl_context: Callable[[], ssl.SSLContext], managers: list[str], addr: str,
                 on_session: Callable[[SessionInfo], Awaitable[None]] | None = None,
                 on_network: Callable[[NetworkUpdate], None] | None = None,
                 tls_info: Callable[[], TLSInfo | None] = lambda: None,
                 connect_timeout: float | None = None) -> None:
        self._executor = executor
        self._connect_timeout = connect_timeout  # None: from the heartbeat period (connect_timeout)
        self._state_dir = Path(state_dir)
        self._ssl_context = ssl_context
        self._addr = addr
        self._on_session = on_session
        self._on_network = on_network
        self._tls_info = tls_info  # what the node's certificate and roots are now
        self._tls_due = asyncio.Event()  # they changed: the session reports them
        self._managers = list(dict.fromkeys(managers))
        self._next = 0
        self._current = ""
        self.reporter = Reporter()
        self.worker = Worker(executor, self._state_dir, self.reporter)
        self.session_info: SessionInfo | None = None
        # The last NetworkUpdate: it outlives sessions (a new leader sends the same keys), so a
        # part that starts late reads the keys here.
        self.network: NetworkUpdate | None = None
        self.connected = asyncio.Event()  # set while a session is established
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def managers(self) -> list[str]:
        return list(self._managers)

    async def run(self) -> None:
        """Run until cancelled or ``stop()``; raises NodeRemoved if the swarm removed us."""
        self._loop_task = asyncio.create_task(self._loop(), name="agent-sessions")
        try:
            await self._loop_task
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # run() itself was cancelled
            # stop() cancelled the loop: a normal end
        finally:
            if not self._loop_task.done():
                self._loop_task.cancel()
                await asyncio.gather(self._loop_task, return_exceptions=True)

    async def stop(self) -> None:
        """End the session; tasks keep running."""
        task = self._loop_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def report_tls(self) -> None:
        """The node's certificate or roots changed: tell the manager (now, or with the next
        session's Register)."""
        self._tls_due.set()

    @property
    def attachments(self) -> Attachments:
        """The node's standalone containers' overlay attachments (attachments.py): ``attach``
        waits for one (20 s), ``detach`` gives one back."""
        return self.worker.attachments

    async def shutdown_all(self) -> None:
        """Shut down and remove every task of this node (swarm leave)."""
        await self.worker.shutdown_all()

    async def _loop(self) -> None:
        await self.worker.init()
        backoff = Backoff(initial=0.1, cap=8.0, jitter=0.2)  # swarmkit's reconnect
        try:
            async with aiohttp.ClientSession() as http:
                while True:
                    if not self._managers:
                        raise SessionDropped("no manager address known")
                    manager = self._managers[self._next % len(self._managers)]
                    self._next += 1
                    self._current = manager
                    self._tls_due.clear()  # the Register below carries the current TLS info
                    description = self._executor.describe()
                    description.tls_info = self._tls_info()
                    session = Session(
                        manager, http=http, ssl_context=self._ssl_context(),
                        register=Register(description=description, addr=self._addr),
                        worker=self.worker, reporter=self.reporter, on_info=self._handle_info,
                        on_network=self._handle_network,
                        tls=TLSReports(due=self._tls_due, current=self._tls_info),
                        connect_timeout=self._connect_timeout or connect_timeout(self.session_info))
                    try:
                        await session.run()
                    except NodeRemoved:
                        log.error("the manager removed this node from the swarm")
                        raise
                    except NotLeader as exc:
                        log.info("%s", exc.message)
                        if exc.leader:  # go straight to the leader
                            if exc.leader not in self._managers:
                                self._managers.append(exc.leader)
                            self._next = self._managers.index(exc.leader)
                        # The managers are up and electing: ask again soon, without backing off.
                        backoff.reset()
                    except SessionDropped as exc:
                        log.warning("session with %s dropped: %s", manager, exc)
                    finally:
                        self.connected.clear()
                    if session.established:
                        backoff.reset()
                    await backoff.sleep()
        finally:
            await self.worker.close()

    async def _handle_info(self, info: SessionInfo) -> None:
        self.session_info = info
        addrs = [m.addr for m in info.managers if m.addr]
        if addrs:
            if set(addrs) != set(self._managers):
                log.info("managers: %s", ", ".join(addrs))
            self._managers = addrs
            # after this session drops, the rotation tries the others before this one again
            current = self._current
            self._next = addrs.index(current) + 1 if current in addrs else 0
        self.connected.set()
        if self._on_session is not None:
            await self._on_session(info)

    def _handle_network(self, update: NetworkUpdate) -> None:
        newest = max((k.lamport_time for k in update.keys), default=0)
        log.info("network keys: %d (lamport %d), attachments: %d", len(update.keys), newest,
                 len(update.attachments))  # never the keys themselves
        self.network = update
        if self._on_network is not None:
            try:
                self._on_network(update)
            except Exception:
                # the session (tasks, heartbeats) must not end for the network side's bug
                log.exception("the network update handler failed")
