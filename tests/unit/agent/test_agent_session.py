"""The agent end to end against a fake dispatcher (aiohttp websocket server with mutual TLS)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.agent import Agent, NodeRemoved
from shoal.agent.agent import connect_timeout
from shoal.agent.reporter import Reporter
from shoal.dev.wait import wait_for_async
from shoal.errors import PermissionDenied, Unavailable
from shoal.exec.sim import SimExecutor
from shoal.model.dispatch import (
    CLOSE_REMOVED,
    Assignments,
    AttachNetwork,
    AttachNetworkReply,
    DetachNetwork,
    Heartbeat,
    HeartbeatAck,
    ManagerAddr,
    Message,
    Register,
    SecretData,
    SessionInfo,
    StatusUpdate,
    TLSReport,
    decode_message,
    encode_message,
)
from shoal.model.objects import Network, NetworkAttachment, Task, TaskStatus, TLSInfo
from shoal.model.specs import NetworkAttachmentConfig, NetworkSpec, TaskSpec
from shoal.model.states import TaskState

PERIOD_NS = 200_000_000  # 200 ms heartbeats keep the test quick


def _cert(subject: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
          *, ca: bool = False, dns: list[str] | None = None
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer else (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(tmp: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
           ) -> tuple[str, str]:
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Callable[[], ssl.SSLContext]]:
    tmp = tmp_path_factory.mktemp("tls")
    ca_cert, ca_key = _cert("swarm-ca", None, ca=True)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    issuer = (ca_cert.subject, ca_key)
    server = _write(tmp, "server", *_cert("manager-1", issuer, dns=["swarm-manager"]))
    client = _write(tmp, "client", *_cert("node-1", issuer))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*server)
    server_ctx.load_verify_locations(cadata=ca_pem)
    server_ctx.verify_mode = ssl.CERT_REQUIRED

    def client_ctx() -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=ca_pem)
        ctx.load_cert_chain(*client)
        return ctx
    return server_ctx, client_ctx


class FakeDispatcher:
    """Answers Register with SessionInfo + full Assignments; acks heartbeats; keeps statuses."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = tasks
        self.registers: list[Register] = []
        self.heartbeats = 0
        self.sessions = 0
        self.statuses: dict[str, TaskStatus] = {}
        self.history: dict[str, list[str]] = {}
        self.ws: web.WebSocketResponse | None = None
        self.addr = ""
        self.ack = True
        self.tls_reports: list[TLSInfo] = []
        self.period_ns = PERIOD_NS
        self.detached: list[str] = []
        self.assign_attachments = True

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        assert request.transport is not None
        assert request.transport.get_extra_info("peercert") is not None  # mutual TLS
        self.ws = ws
        self.sessions += 1
        try:
            async for raw in ws:
                if raw.type != aiohttp.WSMsgType.TEXT:
                    break
                await self._handle(ws, decode_message(raw.data))
        finally:
            if self.ws is ws:
                self.ws = None
        return ws

    async def _handle(self, ws: web.WebSocketResponse, msg: Message) -> None:
        if isinstance(msg, Register):
            self.registers.append(msg)
            await self.send(SessionInfo(
                session_id=f"s{self.sessions}", node_id="node-1", heartbeat_period=self.period_ns,
                managers=[ManagerAddr(node_id="m1", addr=self.addr)], role="worker"))
            await self.send(Assignments(full=True, tasks=self.tasks))
        elif isinstance(msg, Heartbeat):
            self.heartbeats += 1
            if self.ack:
                await self.send(HeartbeatAck(period=self.period_ns))
        elif isinstance(msg, StatusUpdate):
            for u in msg.updates:
                self.statuses[u.task_id] = u.status
                self.history.setdefault(u.task_id, []).append(u.status.state)
        elif isinstance(msg, TLSReport):
            self.tls_reports.append(msg.tls_info)
        elif isinstance(msg, AttachNetwork):
            if msg.network == "plain":
                await self.send(AttachNetworkReply(
                    request_id=msg.request_id, code="PermissionDenied",
                    error="rpc error: code = PermissionDenied desc = network plain not manually "
                          "attachable"))
                return
            task_id = f"att-{msg.container_id[:4]}"
            await self.send(AttachNetworkReply(request_id=msg.request_id, task_id=task_id))
            if self.assign_attachments:
                net = Network(id="net1", spec=NetworkSpec(name=msg.network, attachable=True))
                await self.send(Assignments(full=False, tasks=[Task(
                    id=task_id, node_id="node-1",
                    spec=TaskSpec(network_attachment_spec={"ContainerID": msg.container_id},
                                  networks=[NetworkAttachmentConfig(target="net1")]),
                    networks_attachments=[NetworkAttachment(network=net,
                                                            addresses=["10.0.9.2/24"])],
                    status=TaskStatus(state=TaskState.ASSIGNED))]))
        elif isinstance(msg, DetachNetwork):
            self.detached.append(msg.task_id)
            await self.send(Assignments(full=False, tasks=[], removed=[msg.task_id]))

    async def send(self, msg: Any) -> None:
        assert self.ws is not None, "no session"
        await self.ws.send_str(encode_message(msg))

    def state(self, task_id: str) -> str:
        st = self.statuses.get(task_id)
        return st.state if st else "<none>"


def make_task(task_id: str, *env: str, desired: TaskState = TaskState.RUNNING) -> Task:
    return Task(id=task_id, node_id="node-1", desired_state=desired,
                spec=TaskSpec(container_spec={"Image": "busybox", "Env": list(env)}),
                status=TaskStatus(state=TaskState.ASSIGNED))


@pytest.fixture
async def dispatcher(tls: tuple[ssl.SSLContext, Any]) -> AsyncIterator[FakeDispatcher]:
    fake = FakeDispatcher([make_task("run"), make_task("fail", "SIM_EXIT_CODE=1",
                                                       "SIM_EXIT_AFTER=0.05")])
    app = web.Application()
    app.router.add_get("/session", fake.handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls[0])
    await site.start()
    try:
        fake.addr = f"127.0.0.1:{runner.addresses[0][1]}"
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def agent(tmp_path: Path, dispatcher: FakeDispatcher,
                tls: tuple[Any, Callable[[], ssl.SSLContext]]) -> AsyncIterator[Agent]:
    infos: list[SessionInfo] = []

    async def on_session(info: SessionInfo) -> None:
        infos.append(info)

    a = Agent(executor=SimExecutor(hostname="node-1", state_dir=tmp_path), state_dir=tmp_path,
              ssl_context=tls[1], managers=[dispatcher.addr], addr="10.0.0.5",
              on_session=on_session)
    a.infos = infos  # type: ignore[attr-defined]
    job = asyncio.create_task(a.run(), name="test-agent")
    try:
        yield a
    finally:
        await a.stop()
        await asyncio.wait_for(job, 5)


async def test_session_runs_tasks_and_heartbeats(agent: Agent, dispatcher: FakeDispatcher,
                                                 tmp_path: Path) -> None:
    await wait_for_async("task 'run' reported running", lambda: dispatcher.state("run") == TaskState.RUNNING)
    await wait_for_async("task 'fail' reported failed", lambda: dispatcher.state("fail") == TaskState.FAILED)
    assert dispatcher.statuses["fail"].err == "task: non-zero exit (1)"
    assert dispatcher.history["run"][-1] == "running"
    reg = dispatcher.registers[0]
    assert reg.addr == "10.0.0.5" and reg.description.hostname == "node-1"
    assert agent.infos and agent.infos[0].role == "worker"  # type: ignore[attr-defined]
    # the managers go to the agent's owner (the daemon keeps them in its state.json), not to disk
    assert [m.addr for m in agent.infos[0].managers] == [dispatcher.addr]  # type: ignore[attr-defined]
    assert not (tmp_path / "state.json").exists()
    await wait_for_async("three heartbeats", lambda: dispatcher.heartbeats >= 3)


async def test_removed_assignment_is_shut_down_and_removed(
        agent: Agent, dispatcher: FakeDispatcher, tmp_path: Path) -> None:
    await wait_for_async("task 'run' reported running", lambda: dispatcher.state("run") == TaskState.RUNNING)
    await dispatcher.send(Assignments(full=False, tasks=[], removed=["run"]))
    await wait_for_async("task 'run' shut down", lambda: dispatcher.state("run") == TaskState.SHUTDOWN)
    await wait_for_async("container removed", lambda: not (tmp_path / "sim" / "run").exists())
    assert not (tmp_path / "worker" / "run.json").exists()


async def test_desired_shutdown(agent: Agent, dispatcher: FakeDispatcher) -> None:
    await wait_for_async("task 'run' reported running", lambda: dispatcher.state("run") == TaskState.RUNNING)
    await dispatcher.send(Assignments(full=False, tasks=[make_task("run", desired=TaskState.SHUTDOWN)]))
    await wait_for_async("task 'run' shut down", lambda: dispatcher.state("run") == TaskState.SHUTDOWN)


async def test_dropped_connection_reconnects(agent: Agent, dispatcher: FakeDispatcher) -> None:
    await wait_for_async("task 'run' reported running", lambda: dispatcher.state("run") == TaskState.RUNNING)
    assert dispatcher.ws is not None
    dispatcher.statuses.clear()  # statuses are re-sent on the new session
    await dispatcher.ws.close()
    await wait_for_async("a second session",
                         lambda: dispatcher.sessions == 2 and dispatcher.ws is not None)
    await wait_for_async("status re-sent", lambda: dispatcher.state("run") == TaskState.RUNNING)


async def test_missing_heartbeat_ack_drops_session(agent: Agent, dispatcher: FakeDispatcher) -> None:
    await wait_for_async("a session", lambda: dispatcher.sessions == 1 and agent.connected.is_set())
    dispatcher.ack = False
    await wait_for_async("a new session after missed acks", lambda: dispatcher.sessions >= 2)


async def test_a_shorter_period_is_kept_at_once(tmp_path: Path, dispatcher: FakeDispatcher,
                                               tls: tuple[Any, Callable[[], ssl.SSLContext]]
                                               ) -> None:
    """Issue 16: after a period of 28 days, `swarm update --dispatcher-heartbeat 5s` used to
    leave the agent asleep for 28 days (and its node Down for good)."""
    dispatcher.period_ns = 28 * 24 * 3600 * 10**9
    a = Agent(executor=SimExecutor(hostname="node-1", state_dir=tmp_path), state_dir=tmp_path,
              ssl_context=tls[1], managers=[dispatcher.addr], addr="10.0.0.5")
    job = asyncio.create_task(a.run(), name="test-agent")
    try:
        await wait_for_async("the first heartbeat", lambda: dispatcher.heartbeats == 1)
        dispatcher.period_ns = PERIOD_NS
        await dispatcher.send(SessionInfo(session_id="s1", node_id="node-1",
                                          heartbeat_period=PERIOD_NS, role="worker",
                                          managers=[ManagerAddr(node_id="m1", addr=dispatcher.addr)]))
        await wait_for_async("heartbeats by the new period", lambda: dispatcher.heartbeats >= 3)
        assert dispatcher.sessions == 1
    finally:
        await a.stop()
        await asyncio.wait_for(job, 5)


async def test_node_removed_stops_agent(tmp_path: Path, dispatcher: FakeDispatcher,
                                        tls: tuple[Any, Callable[[], ssl.SSLContext]]) -> None:
    executor = SimExecutor(hostname="node-1", state_dir=tmp_path)
    agent = Agent(executor=executor, state_dir=tmp_path, ssl_context=tls[1],
                  managers=[dispatcher.addr], addr="10.0.0.5")
    job = asyncio.create_task(agent.run(), name="test-agent")
    try:
        await wait_for_async("task 'run' running", lambda: dispatcher.state("run") == TaskState.RUNNING)
        assert dispatcher.ws is not None
        await dispatcher.ws.close(code=CLOSE_REMOVED, message=b"node node-1 was removed")
        with pytest.raises(NodeRemoved, match="node node-1 was removed"):
            await asyncio.wait_for(job, 5)
        assert executor.containers() == ["fail", "run"]  # tasks are left running
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        await agent.shutdown_all()
    assert executor.containers() == []


async def test_reconnect_to_unreachable_then_known_manager(
        tmp_path: Path, dispatcher: FakeDispatcher,
        tls: tuple[Any, Callable[[], ssl.SSLContext]]) -> None:
    agent = Agent(executor=SimExecutor(hostname="node-1", state_dir=tmp_path),
                  state_dir=tmp_path, ssl_context=tls[1],
                  managers=["127.0.0.1:1", dispatcher.addr], addr="10.0.0.5")
    job = asyncio.create_task(agent.run(), name="test-agent")
    try:
        await wait_for_async("task 'run' running", lambda: dispatcher.state("run") == TaskState.RUNNING)
        assert agent.managers == [dispatcher.addr]
    finally:
        await agent.stop()
        await asyncio.wait_for(job, 5)


async def test_reporter_latest_wins_and_resends() -> None:
    reporter = Reporter(interval=0.01)
    reporter.report("a", TaskStatus(state=TaskState.PREPARING))
    reporter.report("a", TaskStatus(state=TaskState.RUNNING))
    sent: list[StatusUpdate] = []

    async def broken(msg: StatusUpdate) -> None:
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        await reporter.run(broken)
    assert reporter.pending["a"].state == "running"

    async def send(msg: StatusUpdate) -> None:
        sent.append(msg)

    job = asyncio.create_task(reporter.run(send))
    await asyncio.sleep(0.05)
    job.cancel()
    await asyncio.gather(job, return_exceptions=True)
    assert [[u.status.state for u in m.updates] for m in sent] == [["running"]]


async def test_secret_data_held_until_the_last_task_goes(
        agent: Agent, dispatcher: FakeDispatcher, tmp_path: Path) -> None:
    await wait_for_async("task 'run' reported running", lambda: dispatcher.state("run") == TaskState.RUNNING)
    ref = [{"File": {"Name": "db_pw"}, "SecretID": "s1", "SecretName": "db_pw"}]
    spec = TaskSpec(container_spec={"Image": "busybox", "Secrets": ref})
    tasks = [Task(id=i, node_id="node-1", spec=spec, status=TaskStatus(state=TaskState.ASSIGNED))
             for i in ("sa", "sb")]
    data = SecretData(id="s1", name="db_pw", data=b"pw-xyzzy-123")
    await dispatcher.send(Assignments(full=False, tasks=tasks, secrets=[data]))
    deps = agent.worker.dependencies
    await wait_for_async("secret held", lambda: deps.ids() == ({"s1"}, set()))
    await wait_for_async("task 'sa' running", lambda: dispatcher.state("sa") == TaskState.RUNNING)
    agent.worker.persist()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and data.data in p.read_bytes()]
    await dispatcher.send(Assignments(full=False, tasks=[], removed=["sa"]))
    await wait_for_async("task 'sa' removed", lambda: "sa" not in deps.held_tasks())
    assert deps.ids() == ({"s1"}, set())  # 'sb' still references it
    await dispatcher.send(Assignments(full=False, tasks=[], removed=["sb"]))
    await wait_for_async("secret forgotten", lambda: len(deps) == 0)


async def test_the_nodes_tls_info_goes_with_register_and_each_change(
        tmp_path: Path, dispatcher: FakeDispatcher,
        tls: tuple[Any, Callable[[], ssl.SSLContext]]) -> None:
    current = [TLSInfo(trust_root="root one", cert_issuer_subject="c3ViamVjdA==")]
    agent = Agent(executor=SimExecutor(hostname="node-1", state_dir=tmp_path), state_dir=tmp_path,
                  ssl_context=tls[1], managers=[dispatcher.addr], addr="10.0.0.5",
                  tls_info=lambda: current[0])
    job = asyncio.create_task(agent.run(), name="test-agent")
    try:
        await wait_for_async("a session", lambda: agent.connected.is_set())
        assert dispatcher.registers[0].description.tls_info == current[0]
        current[0] = TLSInfo(trust_root="root one, root two", cert_issuer_subject="c3ViamVjdA==")
        agent.report_tls()  # the daemon renewed its certificate, or got new roots
        await wait_for_async("the new TLS info reported", lambda: dispatcher.tls_reports == [current[0]])
        assert dispatcher.ws is not None
        await dispatcher.ws.close()  # the next session's Register carries it
        await wait_for_async("a second Register", lambda: len(dispatcher.registers) == 2)
        assert dispatcher.registers[1].description.tls_info == current[0]
        assert dispatcher.tls_reports == [current[0]]  # and no report again
    finally:
        await agent.stop()
        await asyncio.wait_for(job, 5)


async def test_an_attachment_is_asked_for_assigned_and_given_back(
        agent: Agent, dispatcher: FakeDispatcher, tmp_path: Path) -> None:
    task = await agent.attachments.attach("c0ffee" + "0" * 58, "att")
    assert task.id == "att-c0ff" and task.networks_attachments
    assert task.networks_attachments[0].addresses == ["10.0.9.2/24"]
    # no runner, no container: reported running as an attachment, nothing on disk
    await wait_for_async("attachment running", lambda: dispatcher.state(task.id) == "running")
    assert not (tmp_path / "sim" / task.id).exists()
    assert agent.worker.controller_of(task.id) is None
    agent.attachments.detach(task.id)
    await wait_for_async("detach sent", lambda: dispatcher.detached == [task.id])
    assert task.id not in agent.attachments.tasks


async def test_an_attachment_refused_by_the_manager(agent: Agent) -> None:
    with pytest.raises(PermissionDenied) as err:
        await agent.attachments.attach("c" * 64, "plain")
    assert err.value.message == ("rpc error: code = PermissionDenied desc = network plain not "
                                 "manually attachable")


async def test_an_attachment_never_assigned_times_out_and_is_given_back(
        agent: Agent, dispatcher: FakeDispatcher) -> None:
    dispatcher.assign_attachments = False
    agent.attachments.timeout = 0.3  # dockerd's 20 s, shortened
    with pytest.raises(Unavailable) as err:
        await agent.attachments.attach("beef" + "0" * 60, "att")
    assert err.value.message == ("attaching to network failed, make sure your network options "
                                 "are correct and check manager logs: context deadline exceeded")
    await wait_for_async("the made task given back", lambda: dispatcher.detached == ["att-beef"])


async def test_a_manager_that_never_answers_does_not_hold_the_agent(
        tmp_path: Path, dispatcher: FakeDispatcher,
        tls: tuple[Any, Callable[[], ssl.SSLContext]]) -> None:
    """A manager cut off by the network: the connection is never answered (here: accepted, and
    the TLS handshake never answered). The agent gives up on it within its connect timeout and
    reaches the next manager, instead of TCP's two minutes (the new leader would have marked the
    node down and replaced its tasks meanwhile)."""
    silent: list[asyncio.StreamWriter] = []

    async def never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    agent = Agent(executor=SimExecutor(hostname="node-1", state_dir=tmp_path),
                  state_dir=tmp_path, ssl_context=tls[1], connect_timeout=0.5,
                  managers=[f"127.0.0.1:{port}", dispatcher.addr], addr="10.0.0.5")
    job = asyncio.create_task(agent.run(), name="test-agent")
    try:
        await wait_for_async("a session with the answering manager",
                             lambda: dispatcher.sessions == 1, timeout=3)
        assert silent, "the silent manager was never tried"
    finally:
        await agent.stop()
        await asyncio.wait_for(job, 5)
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()


def test_the_connect_timeout_follows_the_heartbeat_period() -> None:
    assert connect_timeout(None) == 5.0  # no period known yet: the 5 s default's 2x, capped
    info = SessionInfo(session_id="s", node_id="n", heartbeat_period=1_000_000_000, managers=[],
                       role="worker")
    assert connect_timeout(info) == 2.0
    info.heartbeat_period = 100_000_000
    assert connect_timeout(info) == 1.0
