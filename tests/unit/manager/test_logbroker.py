"""The log path without sockets: the manager's LogBroker asks two nodes' LogPublishers (wired
with in-process send functions, as the dispatcher and the agent session wire them), and the
lines, ends and cancellations go where they should."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from shoal.agent.logs import LogPublisher
from shoal.api.routes_logs import format_line, since_ns, timestamp
from shoal.exec.executor import Controller, LogLine, LogOptions
from shoal.manager.logbroker import LogBroker, LogEnded, LogLines, NodeLogs
from shoal.model.dispatch import (
    LogBatch,
    LogCancel,
    LogEnd,
    LogEntry,
    LogSelector,
    LogSubscribe,
    Message,
)
from shoal.model.objects import Task


class FakeSource:
    """A controller's log side: fixed lines, then (with follow) new ones until closed."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.more: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.asked: list[LogOptions] = []
        self.stopped = asyncio.Event()

    async def logs(self, options: LogOptions) -> AsyncIterator[LogLine]:
        self.asked.append(options)
        try:
            for i, data in enumerate(self.lines):
                yield LogLine(stream="stdout" if i % 2 == 0 else "stderr", time=1_000 + i, data=data)
            while options.follow:
                data = await self.more.get()
                if data is None:
                    return
                yield LogLine(stream="stdout", time=5_000, data=data)
        finally:
            self.stopped.set()


def _node(broker: LogBroker, node_id: str, sources: dict[str, FakeSource]) -> LogPublisher:
    publisher: LogPublisher

    async def to_agent(msg: Message) -> None:
        if isinstance(msg, LogSubscribe):
            publisher.subscribe(msg)
        elif isinstance(msg, LogCancel):
            publisher.cancel(msg.subscription_id)

    async def to_manager(msg: Message) -> None:
        assert isinstance(msg, (LogBatch, LogEnd))
        broker.deliver(node_id, msg)

    def lookup(task_id: str) -> Controller | None:
        return sources.get(task_id)  # type: ignore[return-value]

    publisher = LogPublisher(lookup, to_manager)
    broker.attach(node_id, to_agent)
    return publisher


async def _collect(items: AsyncIterator[NodeLogs]) -> tuple[list[tuple[str, bytes]], list[LogEnded]]:
    lines, ends = [], []
    async for item in items:
        if isinstance(item, LogLines):
            lines += [(e.task_id, e.data) for e in item.entries]
        else:
            ends.append(item)
    return lines, ends


async def test_lines_from_every_node_then_the_end() -> None:
    broker = LogBroker()
    a = {"t1": FakeSource([b"a1\n", b"a2\n"])}
    b = {"t2": FakeSource([b"b1\n"]), "t3": FakeSource([b"b3\n"])}
    pubs = [_node(broker, "n1", a), _node(broker, "n2", b)]
    selector = LogSelector(tail=5, since=7)
    async with broker.subscribe({"n1": ["t1"], "n2": ["t2", "t3", "gone"]}, selector) as items:
        lines, ends = await asyncio.wait_for(_collect(items), 5)
    assert sorted(lines) == [("t1", b"a1\n"), ("t1", b"a2\n"), ("t2", b"b1\n"), ("t3", b"b3\n")]
    assert sorted(e.node_id for e in ends) == ["n1", "n2"] and not any(e.error for e in ends)
    assert a["t1"].asked[0].tail == 5 and a["t1"].asked[0].since == 7
    for p in pubs:
        await p.close()


async def test_a_node_without_session_ends_with_an_error() -> None:
    broker = LogBroker()
    pub = _node(broker, "n1", {"t1": FakeSource([b"x\n"])})
    async with broker.subscribe({"n1": ["t1"], "n9": ["t9"]}, LogSelector()) as items:
        lines, ends = await asyncio.wait_for(_collect(items), 5)
    assert lines == [("t1", b"x\n")]
    errors = {e.node_id: e.error for e in ends}
    assert errors["n1"] == "" and "not connected" in errors["n9"]
    await pub.close()


async def test_follow_streams_until_the_subscriber_leaves() -> None:
    broker = LogBroker()
    src = FakeSource([b"first\n"])
    pub = _node(broker, "n1", {"t1": src})
    async with broker.subscribe({"n1": ["t1"]}, LogSelector(follow=True)) as items:
        got = []
        async for item in items:
            assert isinstance(item, LogLines)
            got += [e.data for e in item.entries]
            if got == [b"first\n"]:
                src.more.put_nowait(b"second\n")
            elif got[-1] == b"second\n":
                break
    # leaving sent LogCancel: the node stops reading
    await asyncio.wait_for(src.stopped.wait(), 5)
    assert got == [b"first\n", b"second\n"]
    await pub.close()


async def test_a_lost_session_ends_the_node_part() -> None:
    broker = LogBroker()
    src = FakeSource([])
    pub = _node(broker, "n1", {"t1": src})
    send = broker._senders["n1"]
    async with broker.subscribe({"n1": ["t1"]}, LogSelector(follow=True)) as items:
        broker.detach("n1", send)
        lines, ends = await asyncio.wait_for(_collect(items), 5)
    assert lines == [] and "lost its session" in ends[0].error
    await pub.close()


async def test_lines_of_a_task_not_asked_of_the_node_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    """A node publishes only its own tasks' lines: another node's task, or one never asked
    (the API asks each node for the tasks assigned to it), is dropped and logged."""
    broker = LogBroker()
    asked: list[LogSubscribe] = []

    async def to_agent(msg: Message) -> None:
        if isinstance(msg, LogSubscribe):
            asked.append(msg)

    broker.attach("n1", to_agent)
    broker.attach("n2", to_agent)
    line = b"secret of another node\n"
    async with broker.subscribe({"n1": ["t1"], "n2": ["t2"]}, LogSelector()) as items:
        sub_id = asked[0].subscription_id
        with caplog.at_level(logging.WARNING, logger="shoal.manager.logbroker"):
            broker.deliver("n1", LogBatch(subscription_id=sub_id, entries=[
                LogEntry(task_id="t2", stream=1, time=1, data=line),  # n2's task
                LogEntry(task_id="t9", stream=1, time=2, data=line),  # nobody asked
                LogEntry(task_id="t1", stream=1, time=3, data=b"mine\n"),
            ]))
        broker.deliver("n1", LogEnd(subscription_id=sub_id))
        broker.deliver("n2", LogEnd(subscription_id=sub_id))
        lines, _ = await asyncio.wait_for(_collect(items), 5)
    assert lines == [("t1", b"mine\n")]
    assert any("t2, t9" in r.message and "permission denied" in r.message for r in caplog.records)


def test_line_format_as_the_docker_cli_parses_it() -> None:
    task = Task(id="t1", service_id="s1", node_id="n1")
    entry = LogEntry(task_id="t1", stream=1, time=1_700_000_000_123_000_000, data=b"hello")
    line = format_line(entry, task, "n1", timestamps=True, details=True)
    assert line == (b"2023-11-14T22:13:20.123000000Z com.docker.swarm.node.id=n1,"
                    b"com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hello\n")
    assert format_line(entry, task, "n1", timestamps=False, details=False) == b"hello\n"
    assert timestamp(5) == "1970-01-01T00:00:00.000000005Z"
    assert since_ns("1700000000.5") == 1_700_000_000_500_000_000
    assert since_ns("12") == 12_000_000_000 and since_ns("") == 0


async def test_a_subscriber_that_reads_too_slowly_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: lines waiting for a slow client are bounded; past the bound the stream ends
    with an error and the nodes are told to stop, instead of the queue growing."""
    from shoal.manager import logbroker

    monkeypatch.setattr(logbroker, "MAX_WAITING_BYTES", 100)
    broker = LogBroker()
    sent: list[Message] = []

    async def to_agent(msg: Message) -> None:
        sent.append(msg)

    broker.attach("n1", to_agent)
    async with broker.subscribe({"n1": ["t1"]}, LogSelector(follow=True)) as items:
        (subscribe,) = sent
        assert isinstance(subscribe, LogSubscribe)
        sub_id = subscribe.subscription_id
        for i in range(50):  # 500 bytes of lines, nobody reading
            broker.deliver("n1", LogBatch(subscription_id=sub_id, entries=[
                LogEntry(task_id="t1", stream=1, time=i, data=b"123456789\n")]))
        assert broker._subs[sub_id].queue.qsize() == 1  # only the end is held
        lines, ends = await asyncio.wait_for(_collect(items), 5)
    assert lines == []
    assert [e.error for e in ends] == [(
        "log stream dropped: the client read more slowly than the nodes sent (more than 100 "
        "bytes of lines waiting)")]
    assert isinstance(sent[-1], LogCancel) and sent[-1].subscription_id == sub_id
