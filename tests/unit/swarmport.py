"""A manager's swarm port in the test process: the real ``CAServer`` and ``Dispatcher`` on one
mutual-TLS listener on 127.0.0.1, over a store holding what ``swarm init`` writes (``new_swarm``),
and nodes with real certificates from that swarm's root CA. Used by the authorization tests of
the CA and the dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from parts import Parts

from shoal.dev.wait import wait_for_async
from shoal.manager.bootstrap import NewSwarm, new_swarm
from shoal.manager.ca import RootCA
from shoal.manager.ca.server import BODY_WAIT, CAServer
from shoal.manager.deks import ClusterKeys
from shoal.manager.dispatcher.dispatcher import Dispatcher
from shoal.model.dispatch import Message, Register, decode_message, encode_message
from shoal.model.ids import new_id
from shoal.model.objects import Node, NodeDescription
from shoal.model.requests import InitRequest
from shoal.model.specs import NodeSpec
from shoal.pki import NodeIdentity, Role, generate_key_and_csr
from shoal.store.store import Store

__all__ = ["FOLLOWER_LEADS_TO", "Session", "SwarmPort", "swarm_port"]


@dataclass
class Session:
    """A node's raw websocket session: what it got, and how the manager closed it."""

    ws: aiohttp.ClientWebSocketResponse
    got: list[Message] = field(default_factory=list)
    close_code: int | None = None
    reason: str = ""
    reader: asyncio.Task[None] | None = None

    async def send(self, msg: Message) -> None:
        await self.ws.send_str(encode_message(msg))

    async def read(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.got.append(decode_message(msg.data))
            elif msg.type == aiohttp.WSMsgType.CLOSE:
                self.close_code, self.reason = msg.data, str(msg.extra or "")
                return
            elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                              aiohttp.WSMsgType.ERROR):
                return

    async def closed(self) -> tuple[int | None, str]:
        """The close code and reason, once the manager has closed the session (5 s at most)."""
        assert self.reader is not None
        await asyncio.wait_for(asyncio.shield(self.reader), timeout=5)
        return self.close_code, self.reason


@dataclass
class SwarmPort:
    store: Store
    swarm: NewSwarm
    dispatcher: Dispatcher
    addr: str
    http: aiohttp.ClientSession
    sessions: list[Session] = field(default_factory=list)

    @property
    def root(self) -> RootCA:
        return ClusterKeys(self.swarm.dek).root_ca(self.swarm.cluster)

    def identity(self, node_id: str, role: Role = "worker") -> NodeIdentity:
        """A certificate of this swarm for ``node_id`` (whether the store knows it or not)."""
        key_pem, csr_pem = generate_key_and_csr()
        cert = self.root.sign(csr_pem, node_id=node_id, role=role, cluster_id=self.swarm.cluster_id,
                              san_ips=["127.0.0.1"])
        return NodeIdentity(cert_pem=cert, key_pem=key_pem, ca_pem=self.root.cert_pem)

    async def add_node(self, role: Role = "worker") -> NodeIdentity:
        node = Node(id=new_id(), spec=NodeSpec(role=role), role=role, cert_role=role,
                    description=NodeDescription(hostname=f"{role}-node"))
        await self.store.update(lambda tx: tx.create(node))
        return self.identity(node.id, role)

    async def post(self, path: str, ident: NodeIdentity, body: dict[str, str]) -> tuple[int, Any]:
        """The status and JSON answer (a redirect is not followed: its Location)."""
        async with self.http.post(f"https://{self.addr}{path}", json=body, server_hostname="swarm-manager",
                                  ssl=ident.client_ssl_context(), allow_redirects=False) as r:
            if r.status == 307:
                return r.status, r.headers["Location"]
            return r.status, await r.json()

    async def session(self, ident: NodeIdentity, *, register: bool = True) -> Session:
        ws = await self.http.ws_connect(f"wss://{self.addr}/session", server_hostname="swarm-manager",
                                        ssl=ident.client_ssl_context(), max_msg_size=0)
        session = Session(ws)
        reader = session.reader = asyncio.create_task(session.read(), name=f"test-session-{ident.node_id}")
        self.sessions.append(session)
        if register:
            await session.send(Register(description=NodeDescription(hostname=ident.node_id)))
            await wait_for_async("the session's SessionInfo", lambda: bool(session.got) or reader.done())
        return session


FOLLOWER_LEADS_TO = "127.0.0.9:2377"


class _Follower:
    """A manager that is not the leader: it redirects to this address."""

    is_leader = False
    leader_addr = FOLLOWER_LEADS_TO


@asynccontextmanager
async def swarm_port(store: Store, parts: Parts, *, leader: bool = True,
                     body_wait: float = BODY_WAIT) -> AsyncIterator[SwarmPort]:
    """The listener over ``store`` (seeded here); ``leader=False``: a follower's (sessions and
    signing calls are redirected to ``FOLLOWER_LEADS_TO``, after the caller is checked)."""
    swarm = await new_swarm(InitRequest(), hostname="manager-node", advertise_ip="127.0.0.1",
                            manager_addr="127.0.0.1:2377")
    await store.update(swarm.write)
    keys = ClusterKeys(swarm.dek)
    dispatcher = Dispatcher(store, cluster_id=swarm.cluster_id, keys=keys,
                            leadership=None if leader else _Follower())
    app = web.Application()
    CAServer(store, keys, leadership=None if leader else _Follower(), body_wait=body_wait).add_routes(app)
    app.router.add_get("/session", dispatcher.session)
    # lingering_time: how long aiohttp drains a body left unread (10 s by default), short here
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5, lingering_time=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=swarm.identity.server_ssl_context())
    await site.start()
    if leader:
        parts.start(dispatcher)
        await wait_for_async("the dispatcher running", lambda: dispatcher._running)
    async with aiohttp.ClientSession() as http:
        port = SwarmPort(store, swarm, dispatcher, f"127.0.0.1:{runner.addresses[0][1]}", http)
        try:
            yield port
        finally:
            await parts.close()
            for s in port.sessions:
                await s.ws.close()
                if s.reader is not None:
                    s.reader.cancel()
            await asyncio.gather(*(s.reader for s in port.sessions if s.reader), return_exceptions=True)
            await runner.cleanup()

