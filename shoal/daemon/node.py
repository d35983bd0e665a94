"""SwarmNode: this machine's membership in a swarm (swarmkit node/node.go).

It owns the swarm lifecycle the API exposes (init, join, leave), the node's identity on disk
(renewed by ``certs.py``), the roots it trusts (sent over its session), the agent (every node)
and the manager (manager nodes); the node as an engine on its own is ``localengine.py``. State
lives under ``<data-root>/swarm``: ``certificates/`` (the identity), ``state.json`` (addresses,
managers), ``etcd/`` (the manager's etcd member), ``manager/`` (its store DEK), ``worker/`` (the
agent's tasks). An autolocked manager's key files are wrapped (``autolock.py``): a restart
leaves it locked, with nothing running, until ``unlock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal import aio
from shoal.agent import Agent, NodeRemoved
from shoal.api.engine import SwarmState
from shoal.daemon.autolock import Autolock
from shoal.daemon.certs import NodeCertificates
from shoal.daemon.localengine import LocalEngine
from shoal.daemon.overlays import SwarmSide
from shoal.daemon.refusals import ALREADY, LEAVE_LOCKED, leave_refusal
from shoal.daemon.state import LocalState, addresses
from shoal.errors import Conflict, InvalidArgument, NotFound, ShoalError, Unavailable
from shoal.exec.executor import Executor
from shoal.exec.localnet import LocalNetworks
from shoal.exec.runc import RuncExecutor
from shoal.exec.runc.engine import ContainerEngine
from shoal.exec.sim import SimExecutor
from shoal.fsutil import write_atomic
from shoal.manager.bootstrap import FIRST_WRITES_WAIT, await_first_writes, new_swarm
from shoal.manager.ca.etcdtls import EtcdTLS
from shoal.manager.deks import DEK_DIR, ClusterKeys, StoreDEK
from shoal.manager.logbroker import LogBroker, RemoteLogs
from shoal.manager.manager import Manager, ManagerSettings
from shoal.model.dispatch import ManagerAddr, NetworkUpdate, SessionInfo
from shoal.model.objects import Cluster, Network, Node
from shoal.model.requests import InitRequest, JoinRequest
from shoal.model.states import NodeRole
from shoal.net.dns import read_resolv_conf
from shoal.net.netagent import NetworkAgent
from shoal.net.records import Directory
from shoal.node.join import join as join_swarm
from shoal.node.join import raft_certificate
from shoal.pki.identity import NodeIdentity
from shoal.pki.unlockkey import LOCKED, SwarmLocked, UnlockKey
from shoal.store.store import NO_LEADER, Store, Tx
from shoal.store.watch import SubscriptionOverflow

__all__ = ["NodeSettings", "SwarmNode"]

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 20.0  # seconds a join waits for the first session, as dockerd's join timeout
AUTOLOCK_IDLE = 5.0  # seconds between looks at whether the unlock key follower's manager is still ours
_NO_RECORDS = Directory()  # the overlays' names out of a swarm: none


@dataclass(kw_only=True)
class NodeSettings:
    data_root: Path
    exec_root: Path
    hostname: str
    engine_labels: dict[str, str] = field(default_factory=dict)
    executor: str = "sim"
    insecure_registries: list[str] = field(default_factory=list)  # --insecure-registry
    registry_mirrors: list[str] = field(default_factory=list)  # --registry-mirror, validated
    cgroup_parent: str = "/shoal"
    log_max_size: int = 10 * 1024 * 1024  # --log-opt max-size, per container log file
    log_max_files: int = 3
    default_bridge: bool = True  # --bridge none: tasks on no network get loopback only


class SwarmNode:
    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.hostname = settings.hostname
        self.engine_labels = settings.engine_labels
        self.data_root = str(settings.data_root)
        self._executor: RuncExecutor | None = None  # which containers use which volume
        # the node as an engine on its own (images, volumes, local networks, containers)
        self.local = LocalEngine(
            settings, volume_users=self._volume_users, swarm_network=self._swarm_network,
            swarm_side=self._swarm_side,
            overlay_records=lambda: self._network.directory if self._network is not None else _NO_RECORDS)
        self.events, self.images, self.volumes = self.local.events, self.local.images, self.local.volumes
        self.bridge_networks, self.standalone = self.local.bridge_networks, self.local.standalone
        self.local_networks: LocalNetworks = self.local.local_networks
        self._dir = settings.data_root / "swarm"
        self._autolock = Autolock(self._dir)
        self._locked = False  # an autolocked manager restarted: nothing runs until unlock
        self._identity: NodeIdentity | None = None
        self._state: LocalState | None = None  # in a swarm: set with _identity
        self._manager: Manager | None = None
        self._agent: Agent | None = None
        self._agent_task: asyncio.Task[None] | None = None
        self._network: NetworkAgent | None = None  # with the runc executor only
        self._session = asyncio.Event()
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._role_change = False  # a certificate renewal for a new role is under way
        self._wanted_role = ""  # the role the last SessionInfo gave this node
        self._removed = ""  # why the managers refused this node's session for good
        self._certs = NodeCertificates(
            identity=lambda: self._identity, install=self._install, spawn=self._spawn,
            managers=lambda: self._state.manager_addrs if self._state is not None else None)
        self._applying_role = asyncio.Lock()  # one manager start or stop at a time

    # -- Engine protocol ------------------------------------------------------------------
    @property
    def store(self) -> Store | None:
        manager = self._manager
        return manager.store if manager is not None and manager.ready.is_set() else None

    def cluster_keys(self) -> ClusterKeys:
        if self._manager is None:
            raise Unavailable("This node is not a swarm manager.")
        return self._manager.keys

    def swarm_state(self) -> SwarmState:
        if self._locked and self._state is not None:
            return SwarmState(local_node_state="locked", node_addr=self._state.advertise_ip, error=LOCKED)
        if self._identity is None:
            return SwarmState(local_node_state="pending" if self._lock.locked() else "inactive")
        state = self._state
        assert state is not None  # set with _identity
        managers = [(m.node_id, m.addr) for m in state.managers]
        error = ""
        if self._identity.role == NodeRole.MANAGER and self.store is None:
            error = ("This manager's copy of the swarm state is not ready yet: " + NO_LEADER
                     if self._manager is not None else "This node is becoming a manager; try again shortly.")
        if self._removed:
            error = self._removed
        return SwarmState(local_node_state="error" if self._removed else "active",
                          node_id=self._identity.node_id, cluster_id=self._identity.cluster_id,
                          node_addr=state.advertise_ip,
                          control_available=self.store is not None, role=self._identity.role,
                          remote_managers=managers, error=error)

    def _swarm_side(self) -> SwarmSide | None:
        """The agent's attachments and the NetworkAgent, for standalone containers on
        attachable overlays; None out of a swarm."""
        if self._agent is None:
            return None
        return SwarmSide(self._agent.attachments, self._network)

    def _swarm_network(self, ref: str) -> Network | None:
        """A swarm network by name or ID, on a manager (standalone containers' refusals)."""
        st = self.store
        if st is None:
            return None
        try:
            return st.view().resolve(Network, ref, what="network")
        except NotFound:
            return None

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        await self.local.start(self._spawn)
        state_file = self._dir / "state.json"
        if not state_file.exists():
            return
        if self._autolock.locked_on_disk():
            self._state = LocalState.load(state_file)
            self._locked = True
            log.warning("this manager is locked: use \"docker swarm unlock\" to unlock it")
            return
        identity = self._autolock.open(None)
        if identity is None:
            return
        self._state = LocalState.load(state_file)
        await self._resume(identity)

    async def unlock(self, key: str) -> None:
        """``swarm unlock``: open the key files with ``key``, then start as ``start`` would
        have (dockerd's UnlockSwarm: its refusals, in its order)."""
        async with self._lock:
            if not self._locked:
                if self._identity is None:
                    raise Unavailable("This node is not part of a swarm")
                raise Conflict("swarm is not locked")
            kek = UnlockKey.parse(key)
            identity = self._autolock.open(kek)  # InvalidUnlockKey: stays locked
            if identity is None:
                raise Unavailable("This node is not part of a swarm")
            self._locked = False
            log.info("unlocked")
            await self._resume(identity)

    async def _resume(self, identity: NodeIdentity) -> None:
        self._identity = identity
        log.info("resuming swarm membership as node %s (%s)", identity.node_id, identity.role)
        if identity.role != NodeRole.MANAGER and (self._dir / DEK_DIR).exists():
            self._autolock.forget(identity)  # a demotion cut short: finish it
            shutil.rmtree(self._dir / DEK_DIR, ignore_errors=True)
        if identity.role == NodeRole.MANAGER:
            if (self._dir / "etcd").exists():
                # In the background: without a quorum yet (all managers restarting) the store
                # waits for the others, and shoald serves meanwhile.
                await self._start_manager(wait=False)
            else:
                self._spawn(self._apply_role(), "become-manager")  # a join cut short
        self._start_agent()
        self._certs.start_schedule()

    async def stop(self) -> None:
        """Daemon shutdown: tasks keep their state on disk; nothing is shut down."""
        await aio.cancel_and_wait(*self._background)
        await self._stop_parts(shutdown_tasks=False)
        await self.local.close()

    def _save_state(self) -> None:
        assert self._state is not None
        self._dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._dir / "state.json", self._state.encode(), durable=True)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _eligible(self) -> bool:
        """This manager may lead unless it is being demoted."""
        store, identity = self.store, self._identity
        node = store.view().get(Node, identity.node_id) if store is not None and identity is not None else None
        return node is None or node.spec.role != NodeRole.WORKER

    async def _start_manager(self, *, bootstrap: Callable[[Tx], None] | None = None, join: list[str] | None = None,
                             force_new_cluster: bool = False, wait: bool = True) -> None:
        state = self._state
        assert self._identity is not None and state is not None
        manager = Manager(ManagerSettings(state_dir=self._dir, listen_ip=state.listen_ip,
                                          listen_port=state.listen_port, advertise_ip=state.advertise_ip),
                          self._identity, keys=ClusterKeys(self._autolock.dek),
                          eligible=self._eligible, events=self.events)
        self._manager = manager
        try:
            await manager.start(bootstrap=bootstrap, join=join, force_new_cluster=force_new_cluster, wait=wait)
        except BaseException:
            await manager.stop()
            self._manager = None
            raise
        self._spawn(self._follow_unlock_key(manager), "autolock")

    async def _follow_unlock_key(self, manager: Manager) -> None:
        """Re-wrap this manager's key files whenever the cluster's unlock key changes, for as
        long as ``manager`` is this node's."""
        while not manager.ready.is_set():
            if self._manager is not manager:
                return  # stopped before its store was ever ready
            with contextlib.suppress(TimeoutError):
                async with aio.timeout(AUTOLOCK_IDLE):
                    await manager.ready.wait()
        store = manager.store
        assert store is not None  # set before ready
        with store.subscribe([Cluster]) as changes:
            while self._manager is manager:
                self._sync_unlock_key(manager)
                with contextlib.suppress(SubscriptionOverflow):  # the view is read again
                    await changes.next_batch(idle=AUTOLOCK_IDLE)

    def _sync_unlock_key(self, manager: Manager) -> None:
        store, identity = manager.store, self._identity
        cluster = store.view().cluster() if store is not None else None
        if cluster is None or identity is None or identity.role != NodeRole.MANAGER:
            return
        try:
            kek = manager.keys.unlock_key(cluster)
        except ShoalError as exc:
            log.error("cannot read the swarm's unlock key: %s", exc.message)
            return
        self._autolock.apply(identity, kek, cluster.version.index)

    async def rewrap_local_keys(self) -> None:
        """After a swarm update on this manager: its own files follow at once (the others when
        their stores show it), so the answer means the new unlock key is in use here."""
        if self._manager is not None:
            self._sync_unlock_key(self._manager)

    async def _join_managers(self) -> None:
        """Get an etcd certificate from the leader and join the etcd membership."""
        assert self._identity is not None and self._state is not None
        grant = await raft_certificate(self._state.manager_addrs, self._identity)
        EtcdTLS(grant.cert_pem, grant.key_pem, grant.ca_pem).save(self._dir / "etcd-tls")
        if grant.store_dek:
            kek = UnlockKey.parse(grant.unlock_key) if grant.unlock_key else None
            self._autolock.adopt(StoreDEK.from_text(grant.store_dek), kek, self._identity)
        await self._start_manager(join=grant.endpoints)
        log.info("this node is a manager now")

    async def _become_manager(self) -> None:
        """After a promotion: retry until this node is a manager (or is demoted again)."""
        backoff = aio.Backoff(initial=1.0, cap=10.0)
        while self._manager is None and self._identity is not None and self._identity.role == NodeRole.MANAGER:
            try:
                await self._join_managers()
            except (ShoalError, OSError) as exc:
                log.warning("could not join the managers yet: %s", exc)
                await backoff.sleep()

    async def _stop_managing(self) -> None:
        """After a demotion (the leader removed our etcd member first): a worker from now on."""
        manager, self._manager = self._manager, None
        if manager is not None:
            await manager.stop()
        shutil.rmtree(self._dir / "etcd", ignore_errors=True)
        shutil.rmtree(self._dir / "etcd-tls", ignore_errors=True)
        self._autolock.forget(self._identity)  # workers are never locked
        shutil.rmtree(self._dir / DEK_DIR, ignore_errors=True)
        log.info("this node is a worker now")

    def _start_agent(self) -> None:
        state = self._state
        assert self._identity is not None and state is not None
        executor: Executor
        if self.settings.executor == "runc":
            # overlay networks need real containers: the sim executor runs without them
            upstreams, search = read_resolv_conf()
            self._network = NetworkAgent(node_id=self._identity.node_id,
                                         advertise_ip=state.advertise_ip,
                                         netns_dir=self.settings.exec_root / "netns",
                                         upstreams=upstreams, search=search,
                                         default_bridge=self.settings.default_bridge,
                                         data_path_port=state.data_path_port)
            executor = RuncExecutor(self.hostname, self.engine_labels, self.settings.data_root,
                                    self.settings.exec_root, self.images,
                                    cgroup_parent=self.settings.cgroup_parent,
                                    log_max_size=self.settings.log_max_size,
                                    log_max_files=self.settings.log_max_files,
                                    network=self._network, volumes=self.volumes,
                                    events=self.events)
            self._executor = executor
        else:
            executor = SimExecutor(hostname=self.hostname, engine_labels=self.engine_labels,
                                   state_dir=self.settings.exec_root)
        managers = state.manager_addrs
        if self._network is not None:
            self._network.set_managers(managers)
        # The context is built per connection, so a renewed certificate (promote/demote) is used
        # from the next session on.
        self._agent = Agent(executor=executor, state_dir=self._dir, ssl_context=self._client_ctx,
                            managers=managers, addr=state.advertise_ip, on_session=self._on_session,
                            on_network=self._on_network,
                            tls_info=lambda: self._identity.tls_info() if self._identity else None)
        self._agent.attachments.on_removed = self.standalone.overlays.lost
        self._agent_task = asyncio.create_task(self._run_agent(self._agent), name="agent")
        # standalone containers' overlay joins of a previous run, adopted again
        self._spawn(self.standalone.overlays.readopt(), "overlay-readopt")

    async def _run_agent(self, agent: Agent) -> None:
        """The agent until it stops; a node the swarm removed keeps its state (``docker info``
        shows the error) until ``swarm leave``, as dockerd's does."""
        try:
            await agent.run()
        except NodeRemoved as exc:
            log.error("this node was removed from the swarm: %s; leave the swarm and join "
                      "again with a join token to come back", exc.message)
            self._removed = exc.message

    def _install(self, new: NodeIdentity) -> None:
        """Save a renewed identity (or new roots), then use it: the agent's next session, the
        swarm listener's next handshakes and the manager's own calls present it (and trust its
        roots) at once; the manager hears of it (the node's TLS info)."""
        old = self._identity
        self._autolock.save_identity(new)
        self._identity = new
        if self._manager is not None:
            self._manager.use_identity(new)
        if self._agent is not None:
            self._agent.report_tls()
        if old is not None and new.role != old.role and not self._role_change:
            self._spawn(self._apply_role(), "role-apply")  # the swarm changed it; follow

    def _follow_trust(self, roots: str) -> None:
        """Trust the roots the swarm sends (both while its root CA rotates, then the new one);
        a certificate that does not chain to them is replaced first, by a renewal that brings
        both."""
        identity = self._identity
        if identity is None or identity.ca_pem == roots:
            return
        try:
            new = identity.with_trust(roots)
        except InvalidArgument as exc:
            log.warning("the swarm's new root CA does not verify this node's certificate (%s); "
                        "renewing it", exc.message)
            self._certs.start_rotation()
            return
        self._install(new)
        log.info("trusting the swarm's root CA certificates: %d", new.ca_pem.count("BEGIN CERTIFICATE"))

    def container_runtime(self) -> ContainerEngine | None:
        return self.local.containers

    def _volume_users(self) -> dict[str, list[str]]:
        return self._executor.volume_users() if self._executor is not None else {}

    def _client_ctx(self) -> ssl.SSLContext:
        assert self._identity is not None
        return self._identity.client_ssl_context()

    def _on_network(self, msg: NetworkUpdate) -> None:
        state = self._state
        if state is not None and state.data_path_port != msg.data_path_port:
            state.data_path_port = msg.data_path_port
            self._save_state()
        if self._network is not None:
            self._spawn(self._network.update(msg), "network-update")

    async def _on_session(self, info: SessionInfo) -> None:
        self._session.set()
        state = self._state
        if state is None:
            return  # left the swarm meanwhile
        if info.managers:
            state.managers = [ManagerAddr(node_id=m.node_id, addr=m.addr) for m in info.managers]
        self._save_state()
        if self._network is not None:
            self._network.set_managers(state.manager_addrs)
        assert self._identity is not None
        if info.root_ca:
            self._follow_trust(info.root_ca)
        if info.rotate_certificate:
            self._certs.start_rotation()
        if info.role:
            self._wanted_role = info.role
        if self._wanted_role and self._wanted_role != self._identity.role and not self._role_change:
            self._role_change = True
            self._spawn(self._follow_role(), "role-change")

    async def _follow_role(self) -> None:
        """Renew the certificate until it carries the role the swarm gives this node, then start
        or stop this node's manager. Retried until it works; a session drop does not stop it."""
        backoff = aio.Backoff(initial=0.5, cap=5.0)
        try:
            while self._identity is not None and self._identity.role != self._wanted_role:
                try:
                    await self._certs.renew()
                except ShoalError as exc:
                    log.info("certificate renewal for role %s: %s", self._wanted_role, exc.message)
                    await backoff.sleep()
                    continue
                if self._identity is not None and self._identity.role != self._wanted_role:
                    await backoff.sleep()  # the swarm changed the role again meanwhile
        finally:
            self._role_change = False
        await self._apply_role()

    async def _apply_role(self) -> None:
        """Start or stop this node's manager to match its certificate's role."""
        async with self._applying_role:
            identity = self._identity
            if identity is None:
                return
            if identity.role == NodeRole.MANAGER and self._manager is None:
                await self._become_manager()
            elif identity.role == NodeRole.WORKER and self._manager is not None:
                await self._stop_managing()

    async def _stop_parts(self, *, shutdown_tasks: bool) -> None:
        if self._agent is not None:
            if shutdown_tasks:  # bounded: what does not stop in time is killed
                try:
                    await self._agent.shutdown_all()
                except Exception:
                    log.exception("could not shut every task down")
            await aio.cancel_and_wait(self._agent_task)
        self._agent = self._agent_task = None
        if self._network is not None:
            if shutdown_tasks:  # leaving: nothing of the networks may stay behind
                self.standalone.overlays.forget_all()
                await self._network.cleanup_all()
            else:
                await self._network.close()
            self._network = None
        if self._manager is not None:
            await self._manager.stop()
            self._manager = None

    # -- init / join / leave --------------------------------------------------------------
    async def init(self, req: InitRequest) -> str:
        if self._locked:
            if req.force_new_cluster:
                raise SwarmLocked()
            raise Unavailable(ALREADY)
        if self._identity is not None and req.force_new_cluster:
            return await self._force_new_cluster()
        if self._identity is not None:
            raise Unavailable(ALREADY)
        async with self._lock:
            state = addresses(req.listen_addr, req.advertise_addr)
            addr = f"{state.advertise_ip}:{state.listen_port}"
            swarm = await new_swarm(req, hostname=self.hostname, advertise_ip=state.advertise_ip, manager_addr=addr)
            state.managers = [ManagerAddr(node_id=swarm.node_id, addr=addr)]
            self._dir.mkdir(parents=True, exist_ok=True)
            swarm.etcd_tls.save(self._dir / "etcd-tls")
            self._autolock.adopt(swarm.dek, swarm.unlock_key, swarm.identity)
            try:
                self._identity, self._state = swarm.identity, state
                await self._start_manager(bootstrap=swarm.write)
            except BaseException:
                self._identity = self._state = None
                shutil.rmtree(self._dir, ignore_errors=True)
                raise
            self._save_state()
            self._start_agent()
            self._certs.start_schedule()
            # Docker's init answers once the node and the cluster are settled: an update made
            # at once with the version just read must not be "out of sequence".
            store = self.store
            if store is not None and not await await_first_writes(store, swarm.node_id):
                log.warning("swarm init: the first node and the cluster are still changing after "
                            "%.0f s; answering anyway", FIRST_WRITES_WAIT)
        log.info("swarm initialised: cluster %s, node %s", swarm.cluster_id, swarm.node_id)
        return swarm.node_id
    async def join(self, req: JoinRequest) -> None:
        if self._identity is not None or self._locked:
            raise Unavailable(ALREADY)
        if not req.remote_addrs:
            raise InvalidArgument("at least 1 RemoteAddr is required to join")
        async with self._lock:
            state = addresses(req.listen_addr, req.advertise_addr)
            remotes = [a if ":" in a else f"{a}:2377" for a in req.remote_addrs]
            identity = await join_swarm(remotes, req.join_token, hostname=self.hostname,
                                        availability=req.availability or "active",
                                        advertise_addr=state.advertise_ip)
            state.managers = [ManagerAddr(addr=a) for a in remotes]
            self._identity, self._state = identity, state
            self._autolock.save_identity(identity)
            self._save_state()
            self._session.clear()
            self._start_agent()  # first, so the node heartbeats while it joins etcd
            try:
                async with aio.timeout(JOIN_TIMEOUT):
                    await self._session.wait()
            except TimeoutError:
                if identity.role == NodeRole.MANAGER:
                    self._spawn(self._apply_role(), "become-manager")
                self._certs.start_schedule()
                raise Unavailable("Timeout was reached before node joined. The attempt to join the swarm will "
                                  "continue in the background. Use the \"docker info\" command to see the "
                                  "current swarm status of your node.") from None
            if identity.role == NodeRole.MANAGER:
                try:
                    await self._join_managers()
                except ShoalError as exc:
                    log.warning("joining the managers failed (%s); retrying in the background", exc.message)
                    self._spawn(self._apply_role(), "become-manager")
            self._certs.start_schedule()
        log.info("joined swarm as node %s (%s)", identity.node_id, identity.role)

    async def _force_new_cluster(self) -> str:
        """``swarm init --force-new-cluster`` on a manager: etcd's own force-new-cluster on this
        manager's data, so it goes on alone with every service, task and node it had."""
        identity = self._identity
        assert identity is not None
        if identity.role != NodeRole.MANAGER or not (self._dir / "etcd").exists():
            raise Unavailable("This node is not a manager: --force-new-cluster needs a manager's copy of the swarm state")
        async with self._lock:
            manager, self._manager = self._manager, None
            if manager is not None:
                await manager.stop()
            await self._start_manager(force_new_cluster=True)
        log.warning("forced a new one-manager cluster from this manager's data")
        return identity.node_id

    def logs(self) -> LogBroker | RemoteLogs | None:
        return self._manager.logs() if self._manager is not None else None

    async def leave(self, force: bool) -> None:
        if self._locked and not force:
            raise Unavailable(LEAVE_LOCKED)
        if self._identity is None and not self._locked:
            raise Unavailable("This node is not part of a swarm")
        refusal = None if force else leave_refusal(self._identity, self.store)
        if refusal is not None:
            raise Unavailable(refusal)
        async with self._lock:
            await aio.cancel_and_wait(*self._background)
            if self._manager is not None:
                try:
                    await self._manager.leave()
                except ShoalError as exc:
                    log.warning("could not remove this manager from the etcd membership: %s", exc.message)
            await self._stop_parts(shutdown_tasks=True)
            self._identity = self._state = None
            self._autolock.forget(None)
            self._locked = False
            self._removed = ""
            shutil.rmtree(self._dir, ignore_errors=True)
        log.info("left the swarm")
