"""Attachments: the node's standalone containers on attachable overlays, as the agent sees them
(swarmkit's ResourceAllocator on the agent, with dockerd's waiting for the attachment).

``attach(container_id, network)`` sends AttachNetwork over the session (queued while there is
none), takes the manager's reply (the attachment task's ID, or its refusal as a ShoalError
with the manager's words), then waits until that task is assigned to this node with its
address, and returns it; all within ``ATTACH_TIMEOUT`` (dockerd's 20 s swarm request timeout,
with its message). A failure after the manager made the task sends DetachNetwork for it, so no
attachment is left behind. ``detach(task_id)`` queues DetachNetwork; it is sent by this
session or the next, never lost to a dropped one.

The worker hands assigned attachment tasks here (``assigned``, ``removed``) instead of starting
a runner: no executor runs them. Their status goes to the manager as RUNNING once assigned.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

from shoal import aio
from shoal.agent.reporter import Reporter
from shoal.agent.task import transition
from shoal.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ShoalError,
    Unavailable,
)
from shoal.model.dispatch import AttachNetwork, AttachNetworkReply, DetachNetwork, Message
from shoal.model.objects import Task
from shoal.model.states import TaskState

__all__ = ["ATTACH_TIMEOUT", "Attachments"]

log = logging.getLogger(__name__)

ATTACH_TIMEOUT = 20.0  # seconds: dockerd's swarmRequestTimeout for AttachNetwork
TIMEOUT_MESSAGE = ("attaching to network failed, make sure your network options are correct "
                   "and check manager logs: context deadline exceeded")
MAX_QUEUED = 1024  # requests waiting for a session (each a container's)

_ERRORS: dict[str, type[ShoalError]] = {"PermissionDenied": PermissionDenied,
                                        "NotFound": NotFound, "InvalidArgument": InvalidArgument}

OnRemoved = Callable[[Task], None]


class Attachments:
    def __init__(self, reporter: Reporter, *, timeout: float = ATTACH_TIMEOUT) -> None:
        self._reporter = reporter
        self.timeout = timeout
        self._outbox: collections.deque[Message] = collections.deque()
        self._queued = asyncio.Event()
        self._replies: dict[str, asyncio.Future[AttachNetworkReply]] = {}
        self.tasks: dict[str, Task] = {}  # the node's assigned attachment tasks, by ID
        self._changed = asyncio.Event()
        self.on_removed: OnRemoved | None = None  # the manager took one away (not asked)

    # -- from the daemon ---------------------------------------------------------------------

    async def attach(self, container_id: str, network: str,
                     addresses: Sequence[str] = ()) -> Task:
        """The assigned attachment task of ``container_id`` on ``network`` (its address in
        ``networks_attachments``)."""
        request_id = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        reply_f: asyncio.Future[AttachNetworkReply] = loop.create_future()
        self._replies[request_id] = reply_f
        task_id = ""
        try:
            async with aio.timeout(self.timeout):
                self._queue(AttachNetwork(request_id=request_id, container_id=container_id,
                                          network=network, addresses=list(addresses)))
                reply = await reply_f
                if reply.error:
                    raise _ERRORS.get(reply.code, Unavailable)(reply.error)
                task_id = reply.task_id
                while True:
                    task = self.tasks.get(task_id)
                    if task is not None and _addressed(task):
                        return task
                    self._changed.clear()
                    await self._changed.wait()
        except BaseException as exc:
            if task_id:
                self.detach(task_id)  # no attachment left behind by a failed attach
            if isinstance(exc, TimeoutError):
                raise Unavailable(TIMEOUT_MESSAGE) from None
            raise
        finally:
            self._replies.pop(request_id, None)

    def detach(self, task_id: str) -> None:
        """Ask the managers to remove the attachment task (sent now or with the next session);
        asking again for one already queued adds nothing."""
        self.tasks.pop(task_id, None)
        if any(isinstance(m, DetachNetwork) and m.task_id == task_id for m in self._outbox):
            return
        self._queue(DetachNetwork(task_id=task_id))

    def _queue(self, msg: Message) -> None:
        if len(self._outbox) >= MAX_QUEUED:
            raise Unavailable("too many network attachment requests waiting for a manager")
        self._outbox.append(msg)
        self._queued.set()

    # -- from the session ----------------------------------------------------------------------

    async def send_loop(self, send: Callable[[Message], Awaitable[None]]) -> None:
        """Send the queued requests while the session lives; a failed send keeps its request
        for the next session (an attach still waiting; a detach always)."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._outbox:
                msg = self._outbox[0]
                if isinstance(msg, AttachNetwork) and msg.request_id not in self._replies:
                    self._outbox.popleft()  # its caller gave up meanwhile
                    continue
                await send(msg)
                self._outbox.popleft()

    def reply(self, msg: AttachNetworkReply) -> None:
        f = self._replies.get(msg.request_id)
        if f is not None and not f.done():
            f.set_result(msg)
        elif msg.task_id:  # its caller gave up before the reply: not wanted any more
            self._queue(DetachNetwork(task_id=msg.task_id))

    # -- from the worker -----------------------------------------------------------------------

    def assigned(self, task: Task) -> None:
        self.tasks[task.id] = task
        if _addressed(task) and task.state < TaskState.RUNNING \
                and task.desired_state <= TaskState.RUNNING:
            self._reporter.report(task.id, transition(task.status, TaskState.RUNNING,
                                                      "network attachment"))
        self._changed.set()

    def removed(self, task_id: str) -> None:
        task = self.tasks.pop(task_id, None)
        self._reporter.forget(task_id)
        if task is not None and self.on_removed is not None:
            try:
                self.on_removed(task)
            except Exception:
                log.exception("attachment %s: the removal handler failed", task_id)
        self._changed.set()

    def keep_only(self, wanted: set[str]) -> None:
        """A full assignment: the attachment tasks not in it are gone."""
        for task_id in [t for t in self.tasks if t not in wanted]:
            self.removed(task_id)


def _addressed(task: Task) -> bool:
    return task.state >= TaskState.ASSIGNED and any(
        a.addresses for a in task.networks_attachments or [])
