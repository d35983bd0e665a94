"""A manager: its etcd member, the store cache over it, the swarm listener (CA and dispatcher on
mutual TLS), the leader election, and the leader-only parts (swarmkit manager/manager.go).

Every manager serves the API from its own store; any of them writes to etcd. Only the leader
runs the gossip key manager, the root rotation reconciler, orchestrators, allocator, scheduler, dispatcher, role manager and CA
signing: they start when this manager wins the election, after its cache has caught up with etcd
(so their first reconciliation sees everything committed before), under the term's fence, and are
cancelled when the term ends.

Certificates: the daemon renews the node certificate and hands it over (``use_identity``: the
swarm listener presents it, and trusts the roots it came with, from the next handshake on); the manager renews its own etcd
certificate through ``/ca/raft`` on the same schedule (shoal.node.renewal), replaces the files
etcd re-reads on every handshake, and gives the new pair to its etcd clients and health checks.

Three ways to start: ``bootstrap`` (swarm init: a new one-member etcd, then the first objects),
``join`` (the client URLs of existing members: become a learner, start, promote; see
membership.py), or neither (a restart: etcd resumes from its data dir; with ``wait=False`` the
store comes up in the background, as a manager restarting without quorum must not block shoald).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509

from shoal.aio import Backoff, cancel_and_wait
from shoal.errors import ShoalError, Unavailable
from shoal.events import EventLog
from shoal.manager import membership, metrics
from shoal.manager.allocator import Allocator
from shoal.manager.ca.auth import MANAGER_ONLY, authorize, request_peer
from shoal.manager.ca.etcdtls import EtcdTLS
from shoal.manager.ca.reconciler import RootRotationReconciler
from shoal.manager.ca.server import CAServer
from shoal.manager.deks import ClusterKeys, StoreDEK
from shoal.manager.dispatcher.dispatcher import Dispatcher
from shoal.manager.dispatcher.orphans import Orphaner
from shoal.manager.etcdusers import EtcdUsers
from shoal.manager.keymanager import DEFAULT_ROTATION_INTERVAL, KeyManager
from shoal.manager.leadership import Elector, Term
from shoal.manager.logbroker import LogBroker, RemoteLogs
from shoal.manager.orchestrator import Part, orchestrators
from shoal.manager.roles import RoleManager
from shoal.manager.scheduler import Scheduler
from shoal.manager.swarmevents import SwarmEvents
from shoal.node.join import raft_certificate
from shoal.node.renewal import Renewer
from shoal.pki import ServingContext
from shoal.pki.identity import NodeIdentity
from shoal.store.etcd import EtcdBackend, EtcdMember, EtcdMemberSettings
from shoal.store.etcd.grpc_client import GrpcEtcdClient
from shoal.store.store import NO_LEADER, Store, Tx, fenced

__all__ = ["Manager", "ManagerSettings", "leader_parts"]

log = logging.getLogger(__name__)

_RETRY = Backoff(initial=1.0, cap=1.0)  # a failed manager step is tried again this often (fixed)
QUORUM_POLL = 0.5  # seconds between looks at the local member's view of the etcd leader
# Seconds between gossip key rotations, for tests that cannot wait the default 12 h (no flag:
# dockerd has none either).
KEY_ROTATION_ENV = "SHOAL_KEY_ROTATION_INTERVAL"


def _key_rotation_interval() -> float:
    value = os.environ.get(KEY_ROTATION_ENV, "")
    try:
        seconds = float(value) if value else DEFAULT_ROTATION_INTERVAL
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        log.warning("ignoring %s=%r: not a positive number of seconds", KEY_ROTATION_ENV, value)
        return DEFAULT_ROTATION_INTERVAL
    return seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerSettings:
    state_dir: Path  # <data-root>/swarm
    listen_ip: str
    listen_port: int = 2377  # the swarm port (CA, sessions)
    advertise_ip: str = "127.0.0.1"
    # etcd's ports sit next to the swarm port so several daemons can share one machine.
    etcd_client_offset: int = 2  # 2379 beside 2377
    etcd_peer_offset: int = 3  # 2380
    key_rotation_interval: float = field(default_factory=_key_rotation_interval)  # seconds

    @property
    def swarm_addr(self) -> str:
        return f"{self.advertise_ip}:{self.listen_port}"


def leader_parts(store: Store, dispatcher: Dispatcher, *,
                 key_rotation_interval: float = DEFAULT_ROTATION_INTERVAL) -> list[tuple[str, Part]]:
    """The pipeline that runs only on the leader, in pipeline order (the gossip keys first:
    the dispatcher sends them to every node), and the root CA rotation's reconciler."""
    parts: list[tuple[str, Part]] = [("keymanager", KeyManager(store, rotation_interval=key_rotation_interval)),
                                     ("rootrotation", RootRotationReconciler(store))]
    parts += [(type(p).__name__, p) for p in orchestrators(store)]
    parts += [("allocator", Allocator(store)), ("scheduler", Scheduler(store)), ("dispatcher", dispatcher),
              ("orphaner", Orphaner(store))]
    return parts


class Manager:
    def __init__(self, settings: ManagerSettings, identity: NodeIdentity, *,
                 keys: ClusterKeys | None = None, eligible: Callable[[], bool] = lambda: True,
                 events: EventLog | None = None) -> None:
        self.settings = settings
        self._events = events  # the node's event log: this manager's swarm events go there
        self.identity = identity
        # The swarm's keys in the store are sealed under the store DEK on this manager's disk
        # (given by the daemon, which unwraps it on an autolocked manager).
        self.keys = keys if keys is not None else ClusterKeys(StoreDEK.load(settings.state_dir))
        self._eligible = eligible  # may this manager lead (not while it is being demoted)
        self._member: EtcdMember | None = None
        self._backend: EtcdBackend | None = None
        self._etcd_users: EtcdUsers | None = None  # the managers' etcd users, kept by the leader
        self.store: Store | None = None  # set once the store serves
        self.elector: Elector | None = None
        self.dispatcher: Dispatcher | None = None
        self.log_broker = LogBroker()  # the sessions' logs, on the leader
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._server_tls: ServingContext | None = None  # the listener's: renewals replace it
        self._etcd_clients: weakref.WeakSet[GrpcEtcdClient] = weakref.WeakSet()  # to renew
        self._tasks: list[asyncio.Task[Any]] = []
        self.ready = asyncio.Event()
        self._metrics = metrics.ManagerSource(store=lambda: self.store if self.ready.is_set() else None,
                                              is_leader=lambda: self.is_leader, etcd=self._etcd_health)

    def _etcd_health(self) -> tuple[bool, int]:
        member = self._member
        if member is None:
            return False, 0
        return member.healthy, member.status.db_size if member.status is not None else 0

    @property
    def etcd_tls_dir(self) -> Path:
        return self.settings.state_dir / "etcd-tls"

    @property
    def etcd_dir(self) -> Path:
        return self.settings.state_dir / "etcd"

    @property
    def is_leader(self) -> bool:
        return self.elector is not None and self.elector.is_leader

    def _etcd_settings(self, **overrides: Any) -> EtcdMemberSettings:
        cert, key, ca = self._etcd_tls().files(self.etcd_tls_dir)
        ip, port = self.settings.advertise_ip, self.settings.listen_port
        return EtcdMemberSettings(
            name=self.identity.node_id,
            data_dir=self.etcd_dir,
            client_url=f"https://{ip}:{port + self.settings.etcd_client_offset}",
            peer_url=f"https://{ip}:{port + self.settings.etcd_peer_offset}",
            cert_file=cert, key_file=key, trusted_ca_file=ca,
            initial_cluster_token=self.identity.cluster_id,
            **overrides,
        )

    def _etcd_tls(self) -> EtcdTLS:
        tls = EtcdTLS.load(self.etcd_tls_dir)
        if tls is None:
            raise Unavailable(f"no etcd certificate in {self.etcd_tls_dir}: this manager cannot start its store")
        return tls

    def connect(self, *endpoints: str, timeout: float = 5.0) -> GrpcEtcdClient:
        """An etcd client (native gRPC) with this manager's etcd certificate (kept current)."""
        cert, key, ca = self._etcd_tls().files(self.etcd_tls_dir)
        client = GrpcEtcdClient(list(endpoints), cert_file=cert, key_file=key, ca_file=ca, timeout=timeout)
        self._etcd_clients.add(client)
        return client

    def use_identity(self, identity: NodeIdentity) -> None:
        """A renewed node certificate, or new roots to trust (a root rotation): new connections
        to the swarm port get them (sessions and calls already connected keep theirs), and so do
        this manager's own calls."""
        previous, self.identity = self.identity, identity
        tls = self._server_tls
        if tls is None:
            return
        if identity.ca_pem != previous.ca_pem:
            tls.use(identity.server_ssl_context())  # a context trusts no more than its roots
        else:
            identity.load_into(tls.current)

    def _etcd_certificate(self) -> x509.Certificate | None:
        tls = EtcdTLS.load(self.etcd_tls_dir)
        return tls.certificate if tls is not None else None

    async def _renew_etcd_certificate(self) -> None:
        """A new etcd certificate from the raft CA (``/ca/raft``: this manager's listener signs
        or sends it to the leader), then the files etcd reads on every handshake, then the
        clients: etcd needs no restart, and its quorum is never touched."""
        leader = self.elector.leader_addr if self.elector is not None else ""
        addrs = list(dict.fromkeys(a for a in (self.settings.swarm_addr, leader) if a))
        grant = await raft_certificate(addrs, self.identity)
        tls = EtcdTLS(grant.cert_pem, grant.key_pem, grant.ca_pem)
        tls.save(self.etcd_tls_dir)
        if self._member is not None:
            await self._member.reload_certificate()
        for client in list(self._etcd_clients):
            await client.use_certificate(cert_pem=tls.cert_pem, key_pem=tls.key_pem, ca_pem=tls.ca_pem)
        log.info("etcd certificate renewed, valid until %s",
                 tls.certificate.not_valid_after_utc.isoformat(timespec="seconds"))

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, *, bootstrap: Callable[[Tx], None] | None = None, join: list[str] | None = None,
                    force_new_cluster: bool = False, wait: bool = True) -> None:
        if join is not None:
            await self._join_etcd(join)
        else:
            self._member = EtcdMember(self._etcd_settings(force_new_cluster=force_new_cluster))
            if wait:
                await self._member.start()
        assert self._member is not None
        self._tasks.append(asyncio.create_task(self._member.run(), name="etcd-supervisor"))
        if wait:
            await self._serve(bootstrap)
        else:
            self._tasks.append(asyncio.create_task(self._serve_when_ready(), name="manager-start"))

    async def _join_etcd(self, endpoints: list[str]) -> None:
        settings = self._etcd_settings()
        async with self.connect(*endpoints) as client:
            me, members = await membership.add_learner(client, name=settings.name, peer_url=settings.peer_url)
            shutil.rmtree(self.etcd_dir, ignore_errors=True)  # a member starts from nothing
            settings = replace(settings, initial_cluster=membership.initial_cluster(me, settings.name, members),
                               initial_cluster_state="existing", start_timeout=60.0)
            self._member = EtcdMember(settings)
            await self._member.start()
            await membership.promote(client, me.id)

    async def _serve_when_ready(self) -> None:
        assert self._member is not None
        while True:
            await self._member.wait_healthy()
            try:
                await self._serve(None)
                return
            except ShoalError as exc:
                log.warning("manager store not ready yet: %s", exc.message)
                await self._close_serving()
                await _RETRY.sleep()

    async def _serve(self, bootstrap: Callable[[Tx], None] | None) -> None:
        assert self._member is not None
        settings = self._member.settings
        client = self.connect(settings.client_url)
        self._backend = EtcdBackend([settings.client_url], client=client)
        self._etcd_users = EtcdUsers(client)
        await self._backend.start()
        store = self.store = Store(self._backend)  # callers use it once ``ready`` is set
        await store.start()
        if bootstrap is not None:
            await store.update(bootstrap)
        # every manager, leader or not, publishes the swarm's changes (subscribed here, run below)
        swarm_events = SwarmEvents(store, self._events) if self._events is not None else None
        self.elector = Elector(self.connect(settings.client_url, timeout=2.0), node_id=self.identity.node_id,
                               addr=self.settings.swarm_addr, eligible=self._eligible,
                               connect=lambda url: self.connect(url, timeout=1.0))
        self.dispatcher = Dispatcher(store, cluster_id=self.identity.cluster_id, keys=self.keys,
                                     swarm_port=self.settings.listen_port, leadership=self.elector,
                                     logs=self.log_broker)
        await self._listen(store, self.elector)
        renewer = Renewer("etcd certificate", certificate=self._etcd_certificate,
                          renew=self._renew_etcd_certificate)
        self._tasks.append(asyncio.create_task(renewer.run(), name="etcd-cert-renewal"))
        self._tasks.append(asyncio.create_task(self._watch_quorum(store), name="quorum-watch"))
        self._tasks.append(asyncio.create_task(self.elector.run(), name="elector"))
        self._tasks.append(asyncio.create_task(self._lead(), name="leader"))
        if swarm_events is not None:
            self._tasks.append(asyncio.create_task(swarm_events.run(), name="swarm-events"))
        metrics.attach(self._metrics)
        self.ready.set()

    async def _listen(self, store: Store, elector: Elector) -> None:
        assert self.dispatcher is not None and self._backend is not None
        app = web.Application()
        CAServer(store, self.keys, swarm_port=self.settings.listen_port, leadership=elector,
                 etcd=self._backend.client, etcd_users=self._etcd_users,
                 identity=lambda: self.identity).add_routes(app)
        app.router.add_get("/session", self.dispatcher.session)
        app.router.add_get("/logs", self._serve_logs)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # An asyncio server of our own rather than aiohttp's TCPSite, so that closing it aborts
        # the connections still in their TLS handshake too (aiohttp knows a connection only once
        # it is made). Left to the garbage collector, each one makes Python 3.13 log
        # "TypeError: 'NoneType' object is not iterable" from the server it belonged to.
        handler = self._runner.server
        assert handler is not None  # set up above
        self._server_tls = ServingContext(self.identity.server_ssl_context())
        self._listener = await asyncio.get_running_loop().create_server(
            handler, self.settings.listen_ip, self.settings.listen_port,
            ssl=self._server_tls.listener, reuse_address=True)
        log.info("swarm listener on %s:%d", self.settings.listen_ip, self.settings.listen_port)

    def logs(self) -> LogBroker | RemoteLogs:
        """Where service logs are read: this manager's broker when it leads (it holds the
        agents' sessions), else the leader's, over the swarm port."""
        if self.is_leader or self.elector is None:
            return self.log_broker
        return RemoteLogs(self.elector.leader_addr, self.identity.client_ssl_context())

    async def _serve_logs(self, request: web.Request) -> web.StreamResponse:
        store = self.store
        try:
            if store is None:
                raise Unavailable(NO_LEADER)
            authorize(store.view(), request_peer(request), cluster_id=self.identity.cluster_id,
                      roles=MANAGER_ONLY)
        except ShoalError as exc:
            return web.json_response({"message": exc.message}, status=exc.status)
        return await self.log_broker.serve(request)

    async def _watch_quorum(self, store: Store) -> None:
        """Writes fail at once, with Docker's message, while the local member sees no leader."""
        member = self._member
        assert member is not None
        while True:
            status = member.status
            reason: str | None
            if not member.healthy:
                reason = member.trouble
            elif status is not None and status.leader == 0:
                reason = NO_LEADER
            else:
                reason = None
            if reason != store.unavailable:
                log.warning("store writes: %s", reason or "available again")
                store.unavailable = reason
            await asyncio.sleep(QUORUM_POLL)

    async def _lead(self) -> None:
        assert self.elector is not None
        while True:
            term = await self.elector.wait_for_term()
            with fenced(term.fence):
                parts = asyncio.create_task(self._run_term(term), name="leader-parts")
            lost = asyncio.create_task(term.lost.wait(), name="leader-term")
            try:
                await asyncio.wait({parts, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait(parts, lost)
            log.info("leader parts stopped (term %d)", term.leader.term)
            if not term.lost.is_set():
                await _RETRY.sleep()  # they could not start (no quorum to catch up): retry

    async def _run_term(self, term: Term) -> None:
        store, dispatcher, elector, backend = self.store, self.dispatcher, self.elector, self._backend
        assert store is not None and dispatcher is not None and elector is not None and backend is not None
        # A full pass first: the cache holds everything etcd committed before this term.
        try:
            await store.wait_for_revision(await backend.revision())
        except Unavailable as exc:
            log.warning("leader parts wait: cannot catch up with etcd: %s", exc.message)
            return
        roles = RoleManager(store, backend.client, node_id=self.identity.node_id,
                            swarm_port=self.settings.listen_port,
                            connect=lambda url: self.connect(url, timeout=1.0), resign=elector.resign,
                            users=self._etcd_users)
        while True:
            try:
                async with asyncio.TaskGroup() as tg:
                    parts = leader_parts(store, dispatcher,
                                         key_rotation_interval=self.settings.key_rotation_interval)
                    for name, part in [*parts, ("roles", roles)]:
                        tg.create_task(part.run(), name=name)
                    log.info("leader parts started (term %d)", term.leader.term)
            except ExceptionGroup as group:
                # A lost quorum or leadership stops the parts; the term ends or they restart.
                expected, unexpected = group.split(Unavailable)
                if unexpected is not None:
                    log.error("a leader part failed; restarting the leader parts", exc_info=unexpected)
                elif expected is not None:
                    log.warning("leader parts stopped: %s", "; ".join(str(e) for e in expected.exceptions))
                await _RETRY.sleep()

    async def leave(self) -> None:
        """Remove this manager's etcd member (swarm leave): through the other members."""
        member = self._member
        if member is None:
            return
        client = self.connect(member.settings.client_url)
        try:
            await membership.remove_self(client, member.settings.name)
        finally:
            await client.close()

    async def _close_serving(self) -> None:
        """Undo ``_serve`` (all of it, or what a failed attempt got to)."""
        metrics.detach(self._metrics)
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._listener is not None:
            abort = getattr(self._listener, "abort_clients", None)  # Python 3.13 and later
            if abort is not None:
                abort()
            self._listener = self._server_tls = None
        if self.elector is not None:
            await self.elector.close()
            self.elector = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        if self._backend is not None:
            await self._backend.close()
            self._backend = None
            self._etcd_users = None

    async def stop(self) -> None:
        await cancel_and_wait(*reversed(self._tasks))
        self._tasks.clear()
        self.ready.clear()
        await self._close_serving()
        if self._member is not None:
            await self._member.stop()
