"""``GET /api/tasks/{id}/logs``: one task's output, followed, as server-sent events.

Read through the manager's log source as ``docker service logs -f`` is (the leader's broker,
or the leader's over the swarm port on a follower): the last ``TAIL`` lines, then new ones as
the node sends them. Events: ``lines`` (a list of ``[unix ns, stream, text]``; stream 1 is
stdout, 2 stderr), ``error`` (a node could not give its part, or no log source), ``end`` (the
task's node has no more to send). After ``error`` or ``end`` the page closes its EventSource,
so the tail is not read again.
"""

from __future__ import annotations

from aiohttp import web

from shoal.errors import ShoalError
from shoal.manager.logbroker import LogLines, until
from shoal.model.dispatch import LogSelector
from shoal.model.objects import Task
from shoal.model.states import TaskState
from shoal.web.source import unavailable_reason
from shoal.web.sse import Ends, event, open_stream
from shoal.web.stream import SOURCE

__all__ = ["TAIL", "task_logs"]

TAIL = 200  # lines of history a task's page opens with


async def task_logs(request: web.Request) -> web.StreamResponse:
    source = request.app[SOURCE]
    task_id = request.match_info["id"]
    resp = await open_stream(request)
    try:
        store, broker = source.store, source.logs()
        if store is None or broker is None:
            await resp.write(event("error", {"message": unavailable_reason(source)}))
            return resp
        task = store.view().get(Task, task_id)
        if task is None:
            await resp.write(event("error", {"message": f"task {task_id} not found"}))
            return resp
        if not task.node_id or task.status.state < TaskState.ASSIGNED:
            await resp.write(event("end", {"message": "this task has not reached a node: no logs"}))
            return resp
        selector = LogSelector(follow=True, tail=TAIL)
        async with Ends(request) as ends, \
                broker.subscribe({task.node_id: [task.id]}, selector) as items:
            async for item in until(items, ends.task):
                if isinstance(item, LogLines):
                    rows = [[e.time, e.stream, e.data.decode(errors="replace").rstrip("\n")]
                            for e in item.entries]
                    await resp.write(event("lines", rows))
                elif item.error:
                    await resp.write(event("error", {"message": item.error}))
            if not ends.task.done():
                await resp.write(event("end", {"message": "no more output"}))
    except ShoalError as exc:  # no leader to read through, a node that refused
        try:
            await resp.write(event("error", {"message": exc.message}))
        except ConnectionError:
            pass
    except ConnectionError:
        pass  # the client went away: the subscription ends
    return resp
