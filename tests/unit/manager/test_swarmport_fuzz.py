"""Bad input on the swarm port (issue 16): the real ``CAServer`` and ``Dispatcher`` on one
mutual-TLS listener on 127.0.0.1 (``swarmport.py``), fed malformed, truncated, wrong-type and
oversized requests by ``tests/fuzz/portfuzz.py`` (hypothesis), from a stranger (``/ca/join``)
and from a worker's certificate (``/ca/renew``, ``/ca/raft``, sessions). Every one gets a 4xx
with a message, or its session closed with 1007; nothing is logged as an error (a handler
that crashed), nothing invalid is stored, and a real node's session heartbeats throughout."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import pytest
from parts import Parts
from swarmport import Session, SwarmPort, swarm_port

from shoal.dev.wait import wait_for_async
from shoal.model.dispatch import (
    Heartbeat,
    HeartbeatAck,
    LogBatch,
    LogEntry,
    Register,
    StatusUpdate,
    TaskStatusUpdate,
)
from shoal.model.ids import new_id
from shoal.model.objects import (
    ContainerStatus,
    Node,
    NodeDescription,
    NodeResources,
    Task,
    TaskStatus,
)
from shoal.model.states import TaskState
from shoal.pki import generate_key_and_csr
from shoal.store.store import Store
from tests.fuzz.portfuzz import Report, fuzz_ca, fuzz_sessions, slow_senders

# the fuzzer draws its cases (hypothesis, seconds of CPU cold) on the loop the servers share;
# in a thread it would see the servers' use of `random` and refuse
pytestmark = pytest.mark.blocks_loop

N = 60  # hypothesis inputs per kind: a few seconds


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def _acks(session: Session) -> int:
    return sum(isinstance(m, HeartbeatAck) for m in session.got)


async def _heartbeat(session: Session) -> None:
    acks = _acks(session)
    await session.send(Heartbeat())
    await wait_for_async("a heartbeat ack", lambda: _acks(session) > acks)


async def _heartbeats(port: SwarmPort, beats: list[int]) -> None:
    """A real node's session: a heartbeat every 50 ms, each acked."""
    session = await port.session(await port.add_node())
    while True:
        await _heartbeat(session)
        beats.append(1)
        await asyncio.sleep(0.05)


async def test_the_swarm_port_refuses_bad_input_and_keeps_serving(
        store: Store, parts: Parts, caplog: pytest.LogCaptureFixture) -> None:
    async with swarm_port(store, parts) as port:
        worker = await port.add_node()
        beats: list[int] = []
        beating = asyncio.create_task(_heartbeats(port, beats), name="test-heartbeats")
        report = Report()
        try:
            await fuzz_ca(port.addr, port.swarm.cluster.join_tokens.worker, worker, report, n=N)
            await fuzz_sessions(port.addr, worker, report, n=N)
            before = len(beats)
            await wait_for_async("the real node still heartbeats", lambda: len(beats) > before + 2)
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
        print(report.summary())
        assert not report.failures, "\n".join(report.failures)
        assert report.sent["swarm"] > 2 * N
        assert not _errors(caplog)
        nodes = store.view().all(Node)
        assert len(nodes) == 3  # the manager, the worker, the heartbeating node: no join succeeded
        for node in nodes:
            assert not node.status.addr or ipaddress.ip_address(node.status.addr)


@pytest.mark.parametrize("body", [b"[]", b"null", b"1", b'"x"', b"{", b"\xff", b'{"Token": ["a"]}',
                                  b'{"Token": "\\ud800"}'])
async def test_a_join_body_that_is_not_an_object_of_strings_is_a_400(
        store: Store, parts: Parts, body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async with swarm_port(store, parts) as port, \
            port.http.post(f"https://{port.addr}/ca/join", data=body, ssl=False) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["message"].startswith("invalid request body")
    assert not _errors(caplog)


@pytest.mark.parametrize("path", ["/ca/renew", "/ca/raft"])
async def test_a_renew_body_that_is_not_json_is_a_400(store: Store, parts: Parts, path: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    async with swarm_port(store, parts) as port:
        ident = await port.add_node("manager" if path == "/ca/raft" else "worker")
        for body in (b"", b"[]", b"{", b'{"CSR": 5}'):
            async with port.http.post(f"https://{port.addr}{path}", data=body, server_hostname="swarm-manager",
                                      ssl=ident.client_ssl_context()) as r:
                assert r.status == 400, (body, await r.text())
    assert not _errors(caplog)


async def test_a_join_with_an_advertise_address_that_is_not_an_ip_stores_nothing(
        store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        _, csr = generate_key_and_csr()
        body = {"Token": port.swarm.cluster.join_tokens.worker, "CSR": csr, "AdvertiseAddr": "evil; rm -rf"}
        async with port.http.post(f"https://{port.addr}/ca/join", json=body, ssl=False) as r:
            assert r.status == 400
            assert "not an IP address" in (await r.json())["message"]
        assert len(store.view().all(Node)) == 1


@pytest.mark.parametrize("frame", ["garbage", "[]", '{"Type": "register"}', b"\x00binary"])
async def test_a_session_message_that_does_not_decode_closes_the_session_with_1007(
        store: Store, parts: Parts, frame: str | bytes, caplog: pytest.LogCaptureFixture) -> None:
    async with swarm_port(store, parts) as port:
        session = await port.session(await port.add_node(), register=False)
        if isinstance(frame, bytes):
            await session.ws.send_bytes(frame)
        else:
            await session.ws.send_str(frame)
        code, reason = await session.closed()
        assert code == 1007  # invalid payload data
        assert reason.startswith("invalid message")
    assert not _errors(caplog)


async def test_a_register_with_an_int64_overflow_or_a_bad_address_is_refused(store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        for register in (Register(description=NodeDescription(resources=NodeResources(nano_cpus=2**64 - 1))),
                         Register(description=NodeDescription(hostname="h"), addr="not-an-ip")):
            ident = await port.add_node()
            session = await port.session(ident, register=False)
            await session.send(register)
            code, reason = await session.closed()
            assert code == 1007, reason
            node = store.view().get(Node, ident.node_id)
            assert node is not None and node.description.resources.nano_cpus == 0 and not node.status.addr


async def test_a_task_status_docker_cannot_read_is_dropped_and_the_session_goes_on(
        store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        ident = await port.add_node()
        bad, good = (Task(id=new_id(), service_id="s", node_id=ident.node_id, desired_state=TaskState.RUNNING,
                          status=TaskStatus(state=TaskState.ASSIGNED)) for _ in range(2))
        await store.update(lambda tx: (tx.create(bad), tx.create(good)))
        session = await port.session(ident)
        for status in (TaskStatus(timestamp="yesterday", state=TaskState.RUNNING),
                       TaskStatus(timestamp="2026-13-45T99:00:00Z", state=TaskState.RUNNING),
                       TaskStatus(state=TaskState.RUNNING, port_status={"Ports": "none"}),
                       TaskStatus(state=TaskState.RUNNING, port_status={"Ports": [{"TargetPort": 2**40}]}),
                       TaskStatus(state=TaskState.RUNNING, container_status=ContainerStatus(exit_code=2**63))):
            await session.send(StatusUpdate(updates=[TaskStatusUpdate(task_id=bad.id, status=status)]))
        valid = TaskStatus(timestamp="2026-01-01T00:00:00.123456789Z", state=TaskState.RUNNING, message="started")
        await session.send(StatusUpdate(updates=[TaskStatusUpdate(task_id=good.id, status=valid)]))

        def status_of(task_id: str) -> TaskStatus:
            t = store.view().get(Task, task_id)
            assert t is not None
            return t.status

        # written in the same batch as the refused ones, or a later one
        await wait_for_async("the valid status stored", lambda: status_of(good.id).message == "started")
        assert status_of(bad.id).state == TaskState.ASSIGNED
        await _heartbeat(session)


async def test_a_log_line_with_a_time_no_timestamp_can_show_closes_the_session(store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts) as port:
        session = await port.session(await port.add_node())
        await session.send(LogBatch(subscription_id="s", entries=[LogEntry(task_id="t", stream=1, time=10**30,
                                                                           data=b"x")]))
        code, reason = await session.closed()
        assert code == 1007 and "time" in reason


async def test_a_stranger_that_never_finishes_its_body_is_cut_off(store: Store, parts: Parts) -> None:
    async with swarm_port(store, parts, body_wait=0.2) as port:
        report = Report()
        assert await slow_senders(port.addr, report, count=5, hold=0.5) == 5
        assert report.outcomes["swarm:slow:400"] == 5, report.outcomes
        # aiohttp lingers on an unread body, then lets go once the peer has closed
        await wait_for_async("the handlers done", lambda: not [
            t for t in asyncio.all_tasks() if "RequestHandler" in repr(t.get_coro()) and not t.done()])
