"""A manager: its etcd member, the store cache over it, the swarm listener (CA and dispatcher on
mutual TLS), and the leader-only parts run in one TaskGroup (swarmkit manager/manager.go).

One manager per swarm in this issue, so it is always the leader; the leader gate is the place
where leadership (an etcd lease) will start and stop the parts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from shoal.aio import cancel_and_wait
from shoal.errors import Unavailable
from shoal.manager.allocator import Allocator
from shoal.manager.ca.etcdtls import EtcdTLS
from shoal.manager.ca.server import CAServer
from shoal.manager.dispatcher.dispatcher import Dispatcher
from shoal.manager.orchestrator import Part, orchestrators
from shoal.manager.scheduler import Scheduler
from shoal.pki.identity import NodeIdentity
from shoal.store.etcd import EtcdBackend, EtcdMember, EtcdMemberSettings
from shoal.store.store import Store, Tx

__all__ = ["Manager", "ManagerSettings", "leader_parts"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerSettings:
    state_dir: Path  # <data-root>/swarm
    listen_ip: str
    listen_port: int = 2377  # the swarm port (CA, sessions)
    advertise_ip: str = "127.0.0.1"
    # etcd's ports sit next to the swarm port so several daemons can share one machine.
    etcd_client_offset: int = 2  # 2379 beside 2377
    etcd_peer_offset: int = 3  # 2380


def leader_parts(store: Store, dispatcher: Dispatcher) -> list[tuple[str, Part]]:
    """Everything that runs only on the leader, in pipeline order."""
    parts: list[tuple[str, Part]] = [(type(p).__name__, p) for p in orchestrators(store)]
    parts += [("allocator", Allocator(store)), ("scheduler", Scheduler(store)), ("dispatcher", dispatcher)]
    return parts


class Manager:
    def __init__(self, settings: ManagerSettings, identity: NodeIdentity) -> None:
        self.settings = settings
        self.identity = identity
        self._member: EtcdMember | None = None
        self._backend: EtcdBackend | None = None
        self.store: Store | None = None
        self.dispatcher: Dispatcher | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def etcd_tls_dir(self) -> Path:
        return self.settings.state_dir / "etcd-tls"

    def _etcd_settings(self) -> EtcdMemberSettings:
        cert, key, ca = self._etcd_tls().files(self.etcd_tls_dir)
        ip, port = self.settings.advertise_ip, self.settings.listen_port
        return EtcdMemberSettings(
            name=self.identity.node_id,
            data_dir=self.settings.state_dir / "etcd",
            client_url=f"https://{ip}:{port + self.settings.etcd_client_offset}",
            peer_url=f"https://{ip}:{port + self.settings.etcd_peer_offset}",
            cert_file=cert, key_file=key, trusted_ca_file=ca,
            initial_cluster_token=self.identity.cluster_id,
        )

    def _etcd_tls(self) -> EtcdTLS:
        tls = EtcdTLS.load(self.etcd_tls_dir)
        if tls is None:
            raise Unavailable(f"no etcd certificate in {self.etcd_tls_dir}: this manager cannot start its store")
        return tls

    async def start(self, bootstrap: Callable[[Tx], None] | None = None) -> None:
        settings = self._etcd_settings()
        self._member = EtcdMember(settings)
        await self._member.start()
        self._tasks.append(asyncio.create_task(self._member.run(), name="etcd-supervisor"))
        self._backend = EtcdBackend([settings.client_url],
                                    ssl_context=self._etcd_tls().client_ssl_context(self.etcd_tls_dir))
        await self._backend.start()
        self.store = Store(self._backend)
        await self.store.start()
        if bootstrap is not None:
            await self.store.update(bootstrap)
        self.dispatcher = Dispatcher(self.store, cluster_id=self.identity.cluster_id,
                                     swarm_port=self.settings.listen_port)
        await self._listen()
        self._tasks.append(asyncio.create_task(self._lead(), name="leader"))

    async def _listen(self) -> None:
        assert self.store is not None and self.dispatcher is not None
        app = web.Application()
        CAServer(self.store, swarm_port=self.settings.listen_port).add_routes(app)
        app.router.add_get("/session", self.dispatcher.session)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.listen_ip, self.settings.listen_port,
                           ssl_context=self.identity.server_ssl_context())
        await site.start()
        log.info("swarm listener on %s:%d", self.settings.listen_ip, self.settings.listen_port)

    async def _lead(self) -> None:
        assert self.store is not None and self.dispatcher is not None
        while True:
            try:
                async with asyncio.TaskGroup() as tg:
                    for name, part in leader_parts(self.store, self.dispatcher):
                        tg.create_task(part.run(), name=name)
                    log.info("leader parts started")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a leader part failed; restarting the leader parts")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        await cancel_and_wait(*reversed(self._tasks))
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.store is not None:
            await self.store.close()
        if self._backend is not None:
            await self._backend.close()
        if self._member is not None:
            await self._member.stop()
