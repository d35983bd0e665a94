"""/services/{id}/logs and /tasks/{id}/logs: the log stream of engine-api.md section 7.

The tasks are looked up in the store and grouped by the node that ran them; the manager's log
source (its broker on the leader, the leader's over the swarm port elsewhere) reads them on
those nodes. Every line is one frame of the multiplexed stream (no TTY, any API version), as
``[timestamp ]details message\\n``, where the details carry the node, service and task IDs the
docker CLI needs to print ``name.slot.task@node | line``.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from datetime import UTC, datetime

from aiohttp import web

from shoal.api.common import engine, param, store
from shoal.api.params import parse_bool
from shoal.api.server import API_VERSION_IN_USE, Router, parse_version
from shoal.errors import InvalidArgument, NotFound
from shoal.manager.logbroker import LogLines, until
from shoal.model.dispatch import LogEntry, LogSelector
from shoal.model.objects import Service, Task
from shoal.model.states import TaskState
from shoal.store.tables import Tables

__all__ = ["format_line", "register", "since_ns"]

log = logging.getLogger(__name__)

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
HANG_UP_POLL = 0.5  # seconds between checks that a following client is still there


def since_ns(value: str) -> int:
    """``since``/``until`` as the docker CLI sends them: unix seconds, with an optional
    ``.nanoseconds`` part (0 or empty: no bound)."""
    if not value:
        return 0
    secs, _, frac = value.partition(".")
    try:
        return int(secs) * 1_000_000_000 + int((frac + "000000000")[:9] if frac else 0)
    except ValueError:
        raise InvalidArgument(f"invalid value for since: {value!r}") from None


def _tail(value: str) -> int:
    if value in ("", "all"):
        return -1
    try:
        n = int(value)
    except ValueError:
        return -1  # docker: a non-integer tail means all
    return n if n >= 0 else -1


def timestamp(ns: int) -> str:
    """Docker's RFC3339NanoFixed in UTC: nine fraction digits, always."""
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def format_line(entry: LogEntry, task: Task | None, node_id: str, *, timestamps: bool,
                details: bool) -> bytes:
    prefix = timestamp(entry.time) + " " if timestamps else ""
    if details:
        service_id = task.service_id if task is not None else ""
        prefix += (f"com.docker.swarm.node.id={node_id},com.docker.swarm.service.id={service_id},"
                   f"com.docker.swarm.task.id={entry.task_id} ")
    data = entry.data if entry.data.endswith(b"\n") else entry.data + b"\n"
    return prefix.encode() + data


def _tasks_by_node(tasks: list[Task]) -> dict[str, list[str]]:
    by_node: dict[str, list[str]] = {}
    for task in tasks:
        # a task that never reached a node has no output; one that got there has, even if gone
        if task.node_id and task.state >= TaskState.ASSIGNED:
            by_node.setdefault(task.node_id, []).append(task.id)
    return by_node


def _targets(view: Tables, ref: str, kind: str) -> tuple[list[Task], bool]:
    """The tasks to read and whether any has a TTY."""
    if kind == "service":
        svc = view.resolve(Service, ref)
        tasks = view.tasks_of_service(svc.id)
        spec = svc.spec.task_template.container_spec or {}
        return sorted(tasks, key=lambda t: (t.slot, t.created_at)), bool(spec.get("TTY"))
    task = view.resolve(Task, ref)
    spec = task.spec.container_spec or {}
    return [task], bool(spec.get("TTY"))


async def _logs(request: web.Request, kind: str) -> web.StreamResponse:
    st = store(request)
    source = engine(request).logs()
    if source is None:
        raise NotFound("logs are read through a manager")
    view = st.view()
    tasks, tty = _targets(view, param(request, "id"), kind)
    stdout, stderr = parse_bool(request, "stdout"), parse_bool(request, "stderr")
    if not stdout and not stderr:
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    q = request.query
    selector = LogSelector(follow=parse_bool(request, "follow"), tail=_tail(q.get("tail", "")),
                           since=since_ns(q.get("since", "")), until=since_ns(q.get("until", "")),
                           stdout=stdout, stderr=stderr)
    timestamps, details = parse_bool(request, "timestamps"), parse_bool(request, "details")
    # Without a TTY the stream is multiplexed at every API version (as dockerd's: Debian 12's
    # docker CLI 20.10 demultiplexes it); 1.42 only added the content type that says so.
    muxed = not tty
    labelled = muxed and parse_version(API_VERSION_IN_USE.get()) >= (1, 42)
    by_id = {t.id: t for t in tasks}
    by_node = _tasks_by_node(tasks)
    resp = web.StreamResponse(headers={"Content-Type": MULTIPLEXED if labelled else RAW})
    hung_up = asyncio.create_task(_hang_up(request))
    errors: list[str] = []  # nodes that could not give their part (a log driver that keeps none)
    try:
        async with source.subscribe(by_node, selector) as items:
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            async for item in until(items, hung_up):
                if isinstance(item, LogLines):
                    chunks = []
                    for entry in item.entries:
                        line = format_line(entry, by_id.get(entry.task_id), item.node_id,
                                           timestamps=timestamps, details=details)
                        chunks.append(struct.pack(">BxxxL", entry.stream, len(line)) + line
                                      if muxed else line)
                    await resp.write(b"".join(chunks))
                elif item.error:
                    log.warning("logs from node %s: %s", item.node_id, item.error)
                    errors.append(item.error)
            if errors and not hung_up.done():  # dockerd's WriteLogStream: on stream 3 (systemerr)
                text = f"Error grabbing logs: {'; '.join(errors)}\n".encode()
                await resp.write(struct.pack(">BxxxL", 3, len(text)) + text if muxed else text)
            if not hung_up.done():
                await resp.write_eof()
    except ConnectionError:
        pass  # the client went away (docker service logs -f ended with ^C): the subscription ends
    finally:
        hung_up.cancel()
    return resp


async def _hang_up(request: web.Request) -> None:
    """Returns once the client has closed the connection (aiohttp does not cancel handlers)."""
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(HANG_UP_POLL)


async def service_logs(request: web.Request) -> web.StreamResponse:
    return await _logs(request, "service")


async def task_logs(request: web.Request) -> web.StreamResponse:
    return await _logs(request, "task")


def register(router: Router) -> None:
    router.add("GET", "/services/{id}/logs", service_logs)
    router.add("GET", "/tasks/{id}/logs", task_logs)
