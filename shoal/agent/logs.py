"""LogPublisher: answers the manager's log subscriptions on this node (swarmkit's agent-side
log publisher).

A ``LogSubscribe`` names tasks; the publisher reads each one's container output through its
controller (``LogSource``; a task whose controller keeps no output, like the sim executor's,
has no lines), merges the tasks' lines as they come, and sends them in ``LogBatch`` messages of
at most BATCH_LINES lines / BATCH_BYTES bytes, flushed every BATCH_GAP seconds. ``LogEnd``
follows once every task is read to the end (with ``follow``: once every container has exited).
``LogCancel`` or the session's end stops it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shoal import aio
from shoal.exec.executor import Controller, LogLine, LogOptions, LogSource
from shoal.model.dispatch import LogBatch, LogEnd, LogEntry, LogSelector, LogSubscribe, Message

__all__ = ["LogPublisher"]

log = logging.getLogger(__name__)

BATCH_LINES = 500
BATCH_BYTES = 256 * 1024
BATCH_GAP = 0.05  # seconds a partial batch waits for more lines
_STREAMS = {"stdout": 1, "stderr": 2}

Send = Callable[[Message], Awaitable[None]]
Lookup = Callable[[str], Controller | None]


def options_of(selector: LogSelector) -> LogOptions:
    return LogOptions(follow=selector.follow, tail=None if selector.tail < 0 else selector.tail,
                      since=selector.since, until=selector.until, stdout=selector.stdout,
                      stderr=selector.stderr)


class LogPublisher:
    def __init__(self, controller_of: Lookup, send: Send) -> None:
        self._controller_of = controller_of
        self._send = send
        self._jobs: dict[str, asyncio.Task[None]] = {}

    def subscribe(self, msg: LogSubscribe) -> None:
        sub_id = msg.subscription_id
        if sub_id not in self._jobs:
            job = asyncio.create_task(self._publish(sub_id, msg.selector), name=f"logs-{sub_id}")
            self._jobs[sub_id] = job
            job.add_done_callback(lambda _: self._jobs.pop(sub_id, None))

    def cancel(self, sub_id: str) -> None:
        job = self._jobs.get(sub_id)
        if job is not None:
            job.cancel()

    async def close(self) -> None:
        jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    async def _publish(self, sub_id: str, selector: LogSelector) -> None:
        options = options_of(selector)
        queue: asyncio.Queue[tuple[str, LogLine] | None] = asyncio.Queue(maxsize=4 * BATCH_LINES)
        readers: list[asyncio.Task[None]] = []
        errors: list[str] = []
        for task_id in selector.task_ids:
            controller = self._controller_of(task_id)
            if isinstance(controller, LogSource):
                readers.append(asyncio.create_task(_read(task_id, controller, options, queue, errors)))
        try:
            left = len(readers)
            while left:
                batch, size = [], 0
                item = await queue.get()
                loop = asyncio.get_running_loop()
                deadline = loop.time() + BATCH_GAP
                while True:
                    if item is None:
                        left -= 1
                    else:
                        task_id, line = item
                        batch.append(LogEntry(task_id=task_id, stream=_STREAMS.get(line.stream, 1),
                                              time=line.time, data=line.data))
                        size += len(line.data)
                    if not left or len(batch) >= BATCH_LINES or size >= BATCH_BYTES:
                        break
                    try:
                        async with aio.timeout(max(0.0, deadline - loop.time())):
                            item = await queue.get()
                    except TimeoutError:
                        break
                if batch:
                    await self._send(LogBatch(subscription_id=sub_id, entries=batch))
            await self._send(LogEnd(subscription_id=sub_id, error="; ".join(errors)))
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


async def _read(task_id: str, source: LogSource, options: LogOptions,
                queue: asyncio.Queue[tuple[str, LogLine] | None], errors: list[str]) -> None:
    try:
        async for line in source.logs(options):
            await queue.put((task_id, line))
    except asyncio.CancelledError:
        raise  # the subscription is over: nobody reads the queue any more
    except Exception as exc:  # noqa: BLE001 - reported to the reader, the others go on
        log.warning("task %s: reading its logs failed: %s", task_id, exc)
        errors.append(f"task {task_id}: {exc}")
    await queue.put(None)
