"""The dispatcher: agent sessions, heartbeats, assignment pushes, batched status writes.

Runs on the leader. Each agent holds one websocket session (protocol: shoal.model.dispatch).
SessionInfo carries the roots the node trusts (both during a root rotation) and, when a root
rotation asks for it, a request to renew the node's certificate now; the node's TLSReport (its
certificate's issuer) goes into its description. Each session also gets a NetworkUpdate (the cluster's gossip keys and the node's own network
attachments) right after its SessionInfo, and again whenever either changes.
A node that misses 3 heartbeats is marked DOWN; the orchestrators replace its tasks. Task status
reports are collected in a dict (latest wins) and written every 100 ms in one batch, never
moving a task's state backwards (swarmkit manager/dispatcher/dispatcher.go).
Assignments carry the data of the secrets and configs the node's tasks reference, each once per
session (dependencies.py): a node never gets the data of a task that is not its own.

Authorization (shoal.manager.ca.auth): the node is the one its certificate names. Its session
opens, and each of its messages is taken, only while the node is in the store and was not
removed; a node deleted from the store has its session closed at once (close code 4403). It
reports statuses only of tasks assigned to it: any other report is dropped and logged (swarmkit:
"cannot update a task not assigned this node"), the rest of the session goes on.
Standalone containers' network attachments (AttachNetwork, DetachNetwork) are answered by
attachments.py: a task for the calling node, deleted only by that node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from shoal import metrics
from shoal.errors import InvalidArgument, PermissionDenied, ShoalError
from shoal.manager.ca.auth import authorize, request_peer, was_removed
from shoal.manager.ca.rotation import trust_bundle
from shoal.manager.deks import ClusterKeys
from shoal.manager.dispatcher import attachments
from shoal.manager.dispatcher.dependencies import SentData
from shoal.manager.dispatcher.reports import check_addr, check_logs, check_register, check_status
from shoal.manager.logbroker import LogBroker
from shoal.manager.metrics import scheduling_delay
from shoal.model.dispatch import (
    CLOSE_NOT_LEADER,
    CLOSE_REMOVED,
    Assignments,
    AttachNetwork,
    DetachNetwork,
    Heartbeat,
    HeartbeatAck,
    LogBatch,
    LogEnd,
    ManagerAddr,
    Message,
    NetworkUpdate,
    Register,
    SessionInfo,
    StatusUpdate,
    TaskStatusUpdate,
    TLSReport,
    decode_message,
    encode_message,
)
from shoal.model.ids import new_id
from shoal.model.objects import Cluster, ManagerStatus, Node, NodeStatus, Task, TaskStatus
from shoal.model.states import NodeState, TaskState
from shoal.pki.subjects import PeerIdentity
from shoal.store.backend import Fence
from shoal.store.store import Store, Tx, copy, current_fence
from shoal.store.watch import Change, Subscription

__all__ = ["GRACE_MULTIPLIER", "Dispatcher", "Leadership"]

log = logging.getLogger(__name__)

GRACE_MULTIPLIER = 3  # missed heartbeats before a node is DOWN (swarmkit)
DEFAULT_PERIOD_NS = 5_000_000_000  # swarmkit's DefaultHeartBeatPeriod
LEADER_GRACE = 6  # heartbeats a new leader waits before judging nodes (swarmkit)
# ... and at least this many seconds: an agent that found no leader while there was none backs
# off its reconnects up to 8 s (+20% jitter); with a short period (1 s) six beats came before
# it tried again, and a new leader marked every node down and replaced its tasks.
LEADER_GRACE_MIN = 10.0
STATUS_FLUSH = 0.1  # seconds between status batch writes
PUSH_GAP = 0.05  # assignment pushes are debounced this long


def _assigned(task: Task | None) -> bool:
    return task is not None and bool(task.node_id) and task.state >= TaskState.ASSIGNED


class Leadership(Protocol):
    """Where agents should go when this manager is not the leader."""

    @property
    def leader_addr(self) -> str: ...


class _Session:
    def __init__(self, peer: PeerIdentity, ws: web.WebSocketResponse) -> None:
        self.peer = peer  # from its verified certificate
        self.node_id: str = peer.node_id
        self.ws = ws
        self.changed: dict[str, Task] = {}
        self.removed: set[str] = set()
        self.info: Node | None = None  # a SessionInfo is due (the node's role changed)
        self.registered = False  # its SessionInfo went out: other messages may follow
        self.network_due = False  # the keys or the node's attachments changed
        self.network_sent: NetworkUpdate | None = None  # the last one sent, to skip repeats
        self.sent = SentData()  # the secrets and configs whose data the node has
        self.refused = ""  # why the node may no longer hold a session: the pusher closes it
        self.wake = asyncio.Event()


class Dispatcher:
    def __init__(self, store: Store, *, cluster_id: str, keys: ClusterKeys, swarm_port: int = 2377,
                 leadership: Leadership | None = None, logs: LogBroker | None = None) -> None:
        self._store = store
        self._keys = keys  # opens the secrets key, for the secrets' data in assignments
        self._logs = logs if logs is not None else LogBroker()
        self._leadership = leadership
        self._fence: Fence | None = None  # the term's fence, for writes made from sessions
        self._managers_sent: set[tuple[str, str]] = set()  # the manager list agents last got
        self._cluster_id = cluster_id
        self._swarm_port = swarm_port
        self._sessions: dict[str, _Session] = {}
        # per node, when it is DOWN unless it heartbeats: set at each heartbeat from the period
        # that heartbeat's ack announced, so a shorter period never expires a node early
        self._expires: dict[str, float] = {}
        # task ID -> (the reporting node, its latest status); the node is checked again at write
        self._statuses: dict[str, tuple[str, TaskStatus]] = {}
        self._running = False

    # -- settings from the cluster object ---------------------------------------------------
    def period(self) -> float:
        cluster = self._store.view().cluster()
        ns = cluster.spec.dispatcher.heartbeat_period if cluster else 0
        return (ns or DEFAULT_PERIOD_NS) / 1e9

    def managers(self) -> list[ManagerAddr]:
        return [
            ManagerAddr(node_id=n.id, addr=n.manager_status.addr)
            for n in self._store.view().all(Node)
            if n.manager_status is not None and n.manager_status.addr
        ]

    # -- the leader part --------------------------------------------------------------------
    async def run(self) -> None:
        self._running = True
        self._fence = current_fence()
        self._managers_sent = {(m.node_id, m.addr) for m in self.managers()}
        start = time.monotonic()
        for node in self._store.view().all(Node):
            self._expires.setdefault(node.id, start + max(LEADER_GRACE * self.period(), LEADER_GRACE_MIN))
        sub = self._store.subscribe([Task, Node, Cluster])
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._flush_loop(), name="dispatcher-status")
                tg.create_task(self._expiry_loop(), name="dispatcher-heartbeats")
                tg.create_task(self._route_loop(sub), name="dispatcher-assignments")
        finally:
            sub.close()
            self._running = False
            for session in list(self._sessions.values()):
                await session.ws.close(code=1012, message=b"dispatcher stopped")

    async def _route_loop(self, sub: Subscription) -> None:
        while True:
            for change in await sub.next():
                if change.kind == "tasks":
                    self._route(change)
                elif change.kind == "nodes" and change.new is None and change.old is not None:
                    self._expires.pop(change.old.id, None)  # the table holds nodes in the store
                    self._refuse(change.old.id, f"node {change.old.id} was removed from the swarm")
                elif change.kind == "nodes" and change.new is not None and change.old is not None:
                    self._maybe_session_info(change)
                    self._maybe_network(change)
                elif change.kind == "clusters":
                    self._maybe_network(change)
                    self._maybe_trust(change)
                    self._maybe_period(change)
                    cluster = change.new
                    for node_id in list(self._sessions):
                        if isinstance(cluster, Cluster) and was_removed(cluster, node_id):
                            self._refuse(node_id, f"Permission denied: node {node_id} was "
                                                  "removed from swarm")

    def _refuse(self, node_id: str, reason: str) -> None:
        """Close the node's session now (its pusher does, with CLOSE_REMOVED)."""
        session = self._sessions.get(node_id)
        if session is not None and not session.refused:
            log.warning("closing the session of node %s: %s", node_id, reason)
            session.refused = reason
            session.wake.set()

    def _route(self, change: Change) -> None:
        old, new = change.old, change.new
        assert old is None or isinstance(old, Task)
        assert new is None or isinstance(new, Task)
        if new is not None and _assigned(new):
            decided = (old is None or not _assigned(old) or old.node_id != new.node_id
                       or old.desired_state != new.desired_state)
            session = self._sessions.get(new.node_id)
            # The agent's own status reports come back here too; only what the manager decides
            # (a new assignment, a desired state) is pushed.
            if session is not None and decided:
                session.changed[new.id] = new
                session.removed.discard(new.id)
                session.wake.set()
        if old is not None and _assigned(old) and (new is None or new.node_id != old.node_id):
            session = self._sessions.get(old.node_id)
            if session is not None:
                session.changed.pop(old.id, None)
                session.removed.add(old.id)
                session.wake.set()

    def _maybe_session_info(self, change: Change) -> None:
        old, new = change.old, change.new
        assert isinstance(old, Node) and isinstance(new, Node)
        session = self._sessions.get(new.id)
        if session is not None and (old.actual_role() != new.actual_role()
                                    or old.rotate_certificate != new.rotate_certificate):
            session.info = new  # sent by the session's pusher, in order with its assignments
            session.wake.set()
        managers = {(m.node_id, m.addr) for m in self.managers()}
        if managers != self._managers_sent:
            # Every agent learns the new set of managers, to fail over to any of them.
            self._managers_sent = managers
            for node_id, other in self._sessions.items():
                node = self._store.view().get(Node, node_id)
                if node is not None and other.info is None:
                    other.info = node
                    other.wake.set()

    def _maybe_trust(self, change: Change) -> None:
        """Every node gets a SessionInfo with the roots to trust when they change (a root
        rotation starts, ends or is abandoned)."""
        old, new = change.old, change.new
        if not isinstance(old, Cluster) or not isinstance(new, Cluster):
            return
        if self._trust(old) == self._trust(new):
            return
        for node_id, session in self._sessions.items():
            node = self._store.view().get(Node, node_id)
            if node is not None:
                session.info = node
                session.wake.set()

    def _maybe_period(self, change: Change) -> None:
        """A new heartbeat period goes to every node at once in a SessionInfo (an agent waits
        out the period it was given: after 28 days, 5 s would otherwise reach it only at its
        next beat, 28 days on, its node Down meanwhile: issue 16). A shorter one gives each
        node a grace of the old period plus the new grace, for a beat that was due by the old
        one; a node's next heartbeat, acknowledged with the new period, ends it."""
        old, new = change.old, change.new
        if not isinstance(old, Cluster) or not isinstance(new, Cluster):
            return
        before = (old.spec.dispatcher.heartbeat_period or DEFAULT_PERIOD_NS) / 1e9
        after = (new.spec.dispatcher.heartbeat_period or DEFAULT_PERIOD_NS) / 1e9
        if before == after:
            return
        log.info("heartbeat period %.1fs->%.1fs", before, after)
        if after < before:
            grace = time.monotonic() + before + GRACE_MULTIPLIER * after
            for node_id, expires in self._expires.items():
                self._expires[node_id] = max(expires, grace)
        for node_id, session in self._sessions.items():
            node = self._store.view().get(Node, node_id)
            if node is not None:
                session.info = node
                session.wake.set()

    @staticmethod
    def _trust(cluster: Cluster | None) -> str:
        return trust_bundle(cluster.root_ca) if cluster is not None and cluster.root_ca is not None else ""

    def _maybe_network(self, change: Change) -> None:
        """A NetworkUpdate is due to every node when the keys change, to one node when its
        attachments do (a few structs compared: keys are 3, attachments one per network)."""
        old, new = change.old, change.new
        if isinstance(old, Cluster) or isinstance(new, Cluster):
            old_keys = old.network_bootstrap_keys if isinstance(old, Cluster) else None
            new_keys = new.network_bootstrap_keys if isinstance(new, Cluster) else None
            if (old_keys or []) != (new_keys or []):
                for session in self._sessions.values():
                    session.network_due = True
                    session.wake.set()
        elif isinstance(old, Node) and isinstance(new, Node):
            mine = self._sessions.get(new.id)
            if mine is not None and (old.attachments or []) != (new.attachments or []):
                mine.network_due = True
                mine.wake.set()

    def network_update(self, node_id: str) -> NetworkUpdate | None:
        """What a node should have now: the cluster's keys (oldest first), its own
        attachments and the swarm's data path port; None while the cluster has no keys
        (gossip cannot start without one)."""
        view = self._store.view()
        cluster = view.cluster()
        keys = sorted(cluster.network_bootstrap_keys or [], key=lambda k: k.lamport_time) if cluster else []
        if cluster is None or not keys:
            return None
        node = view.get(Node, node_id)
        attachments = list(node.attachments or []) if node is not None else []
        return NetworkUpdate(keys=keys, attachments=attachments, data_path_port=cluster.data_path_port)

    async def _send_network(self, session: _Session) -> None:
        session.network_due = False
        update = self.network_update(session.node_id)
        if update is None or update == session.network_sent:
            return
        session.network_sent = update
        await session.ws.send_str(encode_message(update))

    async def _send_session_info(self, session: _Session, node: Node) -> None:
        info = SessionInfo(session_id=new_id(), node_id=node.id,
                           heartbeat_period=int(self.period() * 1e9), managers=self.managers(),
                           role=node.actual_role(), root_ca=self._trust(self._store.view().cluster()),
                           rotate_certificate=node.rotate_certificate)
        await session.ws.send_str(encode_message(info))

    async def _expiry_loop(self) -> None:
        while True:
            period = self.period()
            await asyncio.sleep(min(period / 4, 0.5))
            now = time.monotonic()
            expired = []
            for node in self._store.view().all(Node):
                # a node never seen starts its clock now
                expires = self._expires.setdefault(node.id, now + GRACE_MULTIPLIER * period)
                if node.status.state != NodeState.DOWN and expires < now:
                    expired.append(node.id)
            if expired:
                await self._set_node_state(expired, NodeState.DOWN, "heartbeat failure")

    async def _set_node_state(self, node_ids: list[str], state: str, message: str) -> None:
        def fn(tx: Tx) -> None:
            for node_id in node_ids:
                node = tx.view.get(Node, node_id)
                if node is None or node.status.state == state:
                    continue
                node = copy(node)
                log.info("node %s: %s->%s (%s)", node_id, node.status.state, state, message)
                node.status = NodeStatus(state=state, message=message, addr=node.status.addr)
                if node.manager_status is not None and state == NodeState.DOWN:
                    node.manager_status.reachability = "unreachable"
                elif node.manager_status is not None and node.manager_status.reachability == "unreachable":
                    node.manager_status.reachability = "reachable"
                tx.update(node)

        try:
            await self._store.update(fn, retries=3, atomic=False)
        except ShoalError as exc:
            log.warning("could not write node state: %s", exc.message)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_FLUSH)
            if not self._statuses:
                continue
            batch, self._statuses = self._statuses, {}
            delays: list[float] = []  # tasks reaching RUNNING: their scheduling delay

            def fn(tx: Tx, batch: dict[str, tuple[str, TaskStatus]] = batch,
                   delays: list[float] = delays) -> None:
                delays.clear()  # a retry runs fn again
                for task_id, (node_id, status) in batch.items():
                    task = tx.view.get(Task, task_id)
                    if task is None or task.node_id != node_id or status.state < task.state:
                        continue  # gone, not the reporter's, or stale: state never moves back
                    if task.status == status:
                        continue
                    if status.state == TaskState.RUNNING and task.state < TaskState.RUNNING:
                        delay = scheduling_delay(task)
                        if delay is not None:
                            delays.append(delay)
                    task = copy(task)
                    task.status = status
                    tx.update(task)

            try:
                await self._store.update(fn, retries=5, atomic=False)
                metrics.DISPATCHER_BATCH.observe(len(batch))
                for delay in delays:
                    metrics.SCHEDULING_DELAY.observe(delay)
            except ShoalError as exc:
                log.warning("could not write %d task statuses: %s", len(batch), exc.message)
                for task_id, report in batch.items():
                    self._statuses.setdefault(task_id, report)

    # -- sessions ---------------------------------------------------------------------------
    async def session(self, request: web.Request) -> web.StreamResponse:
        peer = request_peer(request)
        if peer is None or peer.cluster_id != self._cluster_id:
            return web.json_response({"message": "permission denied: a node certificate of this "
                                                 "swarm is required"}, status=403)
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        try:  # on every manager, the leader or not: a removed node learns it at once
            self._authorize(peer)
        except PermissionDenied as exc:
            log.warning("session of node %s refused: %s", peer.node_id, exc.message)
            await ws.close(code=CLOSE_REMOVED, message=exc.message.encode()[:120])
            return ws
        if not self._running:  # a follower: point the agent at the leader
            leader = self._leadership.leader_addr if self._leadership is not None else ""
            await ws.close(code=CLOSE_NOT_LEADER, message=leader.encode())
            return ws
        session = _Session(peer, ws)
        previous = self._sessions.pop(peer.node_id, None)
        if previous is not None:
            await previous.ws.close(code=1000, message=b"replaced by a new session")
        self._sessions[peer.node_id] = session

        async def send(msg: Message) -> None:
            await ws.send_str(encode_message(msg))

        self._logs.attach(peer.node_id, send)
        pusher = asyncio.create_task(self._push(session), name=f"dispatcher-push-{peer.node_id}")
        try:
            await self._serve(session, request.remote or "")
        except PermissionDenied as exc:  # removed while its session was open
            log.warning("session of node %s closed: %s", peer.node_id, exc.message)
            await ws.close(code=CLOSE_REMOVED, message=exc.message.encode()[:120])
        except InvalidArgument as exc:  # a message the protocol or Docker's types refuse
            log.warning("session of node %s closed: %s", peer.node_id, exc.message)
            reason = exc.message.encode()[:120].decode(errors="ignore").encode()  # whole characters
            await ws.close(code=WSCloseCode.INVALID_TEXT, message=reason)
        except ShoalError as exc:  # the store refused a write (no quorum, leadership lost)
            log.warning("session of node %s ends: %s", peer.node_id, exc.message)
            await ws.close(code=1013, message=b"try again later")
        except ConnectionError as exc:  # the agent went away while we wrote to it
            log.info("session of node %s lost: %s", peer.node_id, exc)
        finally:
            pusher.cancel()
            self._logs.detach(peer.node_id, send)
            if self._sessions.get(peer.node_id) is session:
                del self._sessions[peer.node_id]
        return ws

    def _authorize(self, peer: PeerIdentity) -> Node:
        """The node, while it may hold a session; else PermissionDenied."""
        return authorize(self._store.view(), peer, cluster_id=self._cluster_id)

    def _take_statuses(self, session: _Session, updates: list[TaskStatusUpdate]) -> None:
        """Queue the reports of tasks assigned to this node; refuse the others, alone."""
        view = self._store.view()
        for update in updates:
            task = view.get(Task, update.task_id)
            if task is None:
                continue  # deleted meanwhile: nothing to update (swarmkit)
            if task.node_id != session.node_id:
                log.warning("node %s: status of task %s refused: permission denied: cannot update "
                            "a task not assigned this node", session.node_id, update.task_id)
                continue
            try:
                check_status(update.status)
            except InvalidArgument as exc:
                log.warning("node %s: status of task %s refused: %s", session.node_id, update.task_id,
                            exc.message)
                continue
            self._statuses[update.task_id] = (session.node_id, update.status)

    async def _serve(self, session: _Session, remote: str) -> None:
        ws = session.ws
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                raise InvalidArgument("invalid message: the session protocol is JSON text frames")
            if msg.type != WSMsgType.TEXT:
                break
            try:
                message = decode_message(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise InvalidArgument(f"invalid message: {exc}") from exc
            self._authorize(session.peer)  # removed meanwhile: PermissionDenied ends it
            period = self.period()
            # A heartbeat re-arms the node's clock by the period its ack announces; any other
            # message only pushes it later (a grace given for a shortened period stays).
            expires = time.monotonic() + GRACE_MULTIPLIER * period
            if not isinstance(message, Heartbeat):
                expires = max(expires, self._expires.get(session.node_id, expires))
            self._expires[session.node_id] = expires
            if isinstance(message, Heartbeat):
                await ws.send_str(encode_message(HeartbeatAck(period=int(period * 1e9))))
                node = self._store.view().get(Node, session.node_id)
                if node is not None and node.status.state == NodeState.DOWN:
                    # marked down while its session lived on (a missed beat): it is back
                    await self._set_node_state([session.node_id], NodeState.READY, "")
            elif isinstance(message, StatusUpdate):
                self._take_statuses(session, message.updates)
            elif isinstance(message, (LogBatch, LogEnd)):
                if isinstance(message, LogBatch):
                    check_logs(message.entries)
                self._logs.deliver(session.node_id, message)
            elif isinstance(message, TLSReport):
                await self._update_tls_info(session.node_id, message)
            elif isinstance(message, AttachNetwork):
                reply = await attachments.attach(self._store, session.node_id, message,
                                                 fence=self._fence)
                await ws.send_str(encode_message(reply))
            elif isinstance(message, DetachNetwork):
                await attachments.detach(self._store, session.node_id, message, fence=self._fence)
            elif isinstance(message, Register):
                check_register(message.description)
                check_addr(message.addr)
                node = await self._register(session.node_id, message, remote)
                await self._send_session_info(session, node)
                session.registered = True
                await self._send_network(session)  # before the tasks, which may need it
                full = [t for t in self._store.view().tasks_of_node(session.node_id) if _assigned(t)]
                session.changed.clear()
                session.removed.clear()
                await ws.send_str(encode_message(self._assignments(session, full, full=True)))

    async def _register(self, node_id: str, reg: Register, remote: str) -> Node:
        def fn(tx: Tx) -> Node:
            current = tx.view.get(Node, node_id)
            if current is None:
                raise PermissionDenied(f"node {node_id} was removed from the swarm")
            node = copy(current)
            node.description = reg.description
            addr = reg.addr or remote
            node.status = NodeStatus(state=NodeState.READY, addr=addr)
            ms = node.manager_status
            if ms is not None and ms.reachability == "unreachable":  # it was marked down; it is back
                node.manager_status = ManagerStatus(leader=ms.leader, reachability="reachable", addr=ms.addr)
            tx.update(node)
            return node

        node = await self._store.update(fn, retries=5, fence=self._fence)
        log.info("node %s (%s) registered from %s", node_id, reg.description.hostname, reg.addr or remote)
        return node

    async def _update_tls_info(self, node_id: str, report: TLSReport) -> None:
        """What the node says of its certificate and roots, in its description (a root rotation
        is done with a node once its issuer is the new root)."""
        def fn(tx: Tx) -> None:
            current = tx.view.get(Node, node_id)
            if current is None or current.description.tls_info == report.tls_info:
                return
            node = copy(current)
            node.description.tls_info = report.tls_info
            tx.update(node)

        await self._store.update(fn, retries=5, fence=self._fence)
        log.info("node %s: TLS info updated", node_id)

    async def _push(self, session: _Session) -> None:
        while True:
            await session.wake.wait()
            if session.refused:
                await session.ws.close(code=CLOSE_REMOVED, message=session.refused.encode()[:120])
                return
            await asyncio.sleep(PUSH_GAP)
            session.wake.clear()
            if session.info is not None:
                node, session.info = session.info, None
                await self._send_session_info(session, node)
            if session.network_due and session.registered:
                await self._send_network(session)
            changed, session.changed = list(session.changed.values()), {}
            removed, session.removed = sorted(session.removed), set()
            if changed or removed:
                msg = self._assignments(session, changed, removed=removed, full=False)
                await session.ws.send_str(encode_message(msg))

    def _assignments(self, session: _Session, tasks: list[Task], *, full: bool,
                     removed: list[str] | None = None) -> Assignments:
        """The message for these tasks, with the data of what they reference that the node
        does not hold yet (all of it when full)."""
        view = self._store.view()
        held = [t for t in view.tasks_of_node(session.node_id) if _assigned(t)]
        secrets, configs = session.sent.collect(view, tasks, held, full=full, keys=self._keys)
        return Assignments(full=full, tasks=tasks, removed=removed or [], secrets=secrets,
                           configs=configs)
