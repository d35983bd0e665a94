"""Leader election among the managers: an etcd lease plus one key (etcd's election recipe).

Every manager runs an ``Elector``. While no one leads, an eligible manager grants a lease and
creates ``/shoal/leader`` bound to it, if absent, in one transaction. The winner's term is the
key's create_revision: the leader parts write under that fence (shoal.store.store.fenced), so once
the key is gone or belongs to another term their writes are refused. The leader keeps the lease
alive every ttl/3 and steps down on its own once it could not renew for most of the TTL, so a
paused or partitioned leader stops acting before a successor can exist. Followers watch the key
and campaign when it is deleted (resignation) or expires (the leader died). A leader whose
process died takes its etcd member with it (PR_SET_PDEATHSIG), so followers also probe the
leader's member: when it has not answered for ``DEAD_AFTER`` they revoke the leader's lease
rather than wait out the TTL, which etcd restarts in full on its own leader change. That is
always safe: the fence refuses any write of a leader whose key is gone.

Callers: the Manager (gates the leader parts on ``wait_for_term``), the dispatcher and CA server
(``leader_addr``: where to send agents and joining nodes), the role manager (``resign``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextlib import aclosing, suppress
from dataclasses import dataclass, field

from shoal import aio, metrics
from shoal.errors import NotFound, ShoalError, Unavailable
from shoal.manager.membership import MemberProbe
from shoal.store.backend import Fence
from shoal.store.etcd import EtcdAPI
from shoal.store.etcd.messages import DeleteOp, KeyValue, PutOp, RangeOp, TxnCompare

__all__ = ["LEADER_KEY", "Elector", "Leader", "Term"]

log = logging.getLogger(__name__)

LEADER_KEY = "/shoal/leader"
LEASE_TTL = 3  # seconds; etcd's minimum is 1.5 election timeouts (2 s with the 1 s default)
RETRY = 0.5  # seconds between attempts while etcd cannot be reached
_RETRY = aio.Backoff(initial=RETRY, cap=RETRY)  # fixed: no growth, no jitter
PROBE_PERIOD = 0.4  # seconds between probes of the leader's etcd member
DEAD_AFTER = 3  # failed probes in a row before the leader is taken for dead (about 1.5 s)


@dataclass(frozen=True, slots=True)
class Leader:
    node_id: str
    addr: str  # the leader's swarm address, host:port
    term: int  # the leader key's create_revision
    lease: int = 0  # the lease the key is bound to


@dataclass(slots=True)
class Term:
    """One leadership of this manager; ``lost`` is set when it ends."""

    leader: Leader
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def fence(self) -> Fence:
        return Fence(LEADER_KEY, self.leader.term)


class Elector:
    def __init__(self, client: EtcdAPI, *, node_id: str, addr: str, ttl: int = LEASE_TTL,
                 eligible: Callable[[], bool] = lambda: True,
                 connect: Callable[[str], EtcdAPI] | None = None) -> None:
        self._client = client
        # Probes of the leader's etcd member, when given a client factory for one member's URL.
        self._probe = MemberProbe(connect) if connect is not None else None
        self.node_id = node_id
        self.addr = addr
        self._ttl = ttl
        self._eligible = eligible
        self.leader: Leader | None = None  # as last seen; None while unknown
        self.term: Term | None = None  # set while this manager leads
        self._changed = asyncio.Event()
        self._resign = asyncio.Event()
        self._quiet_until = 0.0  # after resigning, leave the election to the others for a while

    @property
    def is_leader(self) -> bool:
        return self.term is not None and not self.term.lost.is_set()

    @property
    def leader_addr(self) -> str:
        """The current leader's swarm address ("" while unknown)."""
        return self.leader.addr if self.leader is not None else ""

    async def wait_for_term(self) -> Term:
        while True:
            term = self.term
            if term is not None and not term.lost.is_set():
                return term
            self._changed.clear()
            await self._changed.wait()

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.close()
        await self._client.close()

    def resign(self) -> None:
        """Give the leadership up now (the lease is revoked, so a successor need not wait)."""
        self._resign.set()

    async def run(self) -> None:
        while True:
            try:
                await self._round()
            except ShoalError as exc:
                log.warning("leader election: %s", exc.message)
                self._observe(None)
                await _RETRY.sleep()

    async def _round(self) -> None:
        found = await self._client.range(LEADER_KEY.encode())
        if found.kvs and _decode(found.kvs[0]).node_id == self.node_id:
            # Left by this manager before a restart: its lease is not ours to renew any more.
            key = LEADER_KEY.encode()
            await self._client.txn([TxnCompare(key, "CREATE", found.kvs[0].create_revision)], [DeleteOp(key)])
            log.info("removed the leader key left by this manager's previous run")
            return
        if found.kvs:
            self._observe(_decode(found.kvs[0]))
            await self._watch_until_gone(found.header.revision)
            return
        if not self._eligible() or asyncio.get_running_loop().time() < self._quiet_until:
            self._observe(None)
            await _RETRY.sleep()  # not a candidate now (resigned, being demoted): look again later
            return
        await self._campaign()

    async def _campaign(self) -> None:
        lease = await self._client.lease_grant(self._ttl)
        value = json.dumps({"NodeID": self.node_id, "Addr": self.addr}).encode()
        key = LEADER_KEY.encode()
        try:
            answer = await self._client.txn([TxnCompare(key, "CREATE", 0)],
                                            [PutOp(key, value, lease.id)], [RangeOp(key)])
        except BaseException:
            await self._revoke(lease.id)
            raise
        if not answer.succeeded:
            await self._revoke(lease.id)
            found = answer.responses[0].response_range if answer.responses else None
            if found is not None and found.kvs:
                self._observe(_decode(found.kvs[0]))
                await self._watch_until_gone(answer.header.revision)
            return
        term = Term(Leader(self.node_id, self.addr, answer.header.revision, lease.id))
        self._resign.clear()
        self.term = term
        self._observe(term.leader)
        log.info("this manager is the leader (term %d)", term.leader.term)
        try:
            await self._hold(lease.id, lease.ttl or self._ttl)
        finally:
            term.lost.set()
            self.term = None
            self._observe(None)
            log.warning("this manager is no longer the leader (term %d)", term.leader.term)
            await self._revoke(lease.id)

    async def _hold(self, lease_id: int, ttl: int) -> None:
        """Renew until the lease is lost, cannot be renewed in time, or we resign."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        # Step down before the lease can expire in etcd, so two leaders never act at once.
        margin = min(1.0, ttl / 3)
        while True:
            with suppress(TimeoutError):
                async with aio.timeout(ttl / 3):
                    await self._resign.wait()
            if self._resign.is_set():
                log.info("resigning the leadership")
                self._quiet_until = loop.time() + 2 * ttl
                return
            try:
                async with aio.timeout(max(0.1, renewed + ttl - margin - loop.time())):
                    await self._client.lease_keepalive(lease_id)
                renewed = loop.time()
            except NotFound:
                log.warning("the leader lease expired")
                return
            except (Unavailable, TimeoutError) as exc:
                if loop.time() >= renewed + ttl - margin:
                    log.warning("could not renew the leader lease for %.1f s (%s)",
                                loop.time() - renewed, exc)
                    return

    async def _watch_until_gone(self, revision: int) -> None:
        leader = self.leader
        if self._probe is None or leader is None or leader.node_id == self.node_id or not leader.lease:
            await self._watch_key(revision)
            return
        watch = asyncio.create_task(self._watch_key(revision), name="elector-watch")
        probe = asyncio.create_task(self._until_dead(leader), name="elector-probe")
        try:
            done, _ = await asyncio.wait({watch, probe}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, probe):
                task.cancel()
            await asyncio.gather(watch, probe, return_exceptions=True)
        if watch in done:
            watch.result()  # re-raise a broken watch

    async def _until_dead(self, leader: Leader) -> None:
        """Return once the leader's etcd member stopped answering and its lease is revoked."""
        misses = 0
        while True:
            await asyncio.sleep(PROBE_PERIOD)
            misses = 0 if await self._member_answers(leader.node_id) else misses + 1
            if misses < DEAD_AFTER:
                continue
            log.warning("the leader's etcd member (%s) does not answer: revoking its lease", leader.node_id)
            try:
                async with aio.timeout(0.5):  # fails fast while etcd elects; tried again
                    await self._client.lease_revoke(leader.lease)
                return
            except (ShoalError, TimeoutError) as exc:
                log.info("revoking the dead leader's lease: %s", exc)

    async def _member_answers(self, name: str) -> bool:
        """Whether the etcd member called ``name`` answers; True when that cannot be judged."""
        assert self._probe is not None
        try:
            async with aio.timeout(1.0):
                members = await self._client.member_list()
        except (ShoalError, TimeoutError):
            return True  # our own member does not answer: judge nothing
        member = next((m for m in members if m.name == name and m.client_urls), None)
        return member is None or await self._probe.answers(member, PROBE_PERIOD)

    async def _watch_key(self, revision: int) -> None:
        stream = self._client.watch(LEADER_KEY.encode(), start_revision=revision + 1,
                                    progress_notify=True, idle_timeout=30.0)
        async with aclosing(stream):
            async for events in stream:
                for event in events:
                    if event.type == "DELETE":
                        self._observe(None)
                        return
                    self._observe(_decode(event.kv))

    async def _revoke(self, lease_id: int) -> None:
        with suppress(ShoalError, TimeoutError):
            async with aio.timeout(1.0):
                await self._client.lease_revoke(lease_id)

    def _observe(self, leader: Leader | None) -> None:
        if leader != self.leader:
            if leader is not None:
                log.info("leader: %s at %s (term %d)", leader.node_id, leader.addr, leader.term)
                metrics.LEADER_CHANGES.inc()
            self.leader = leader
        self._changed.set()


def _decode(kv: KeyValue) -> Leader:
    try:
        doc = json.loads(kv.value)
        return Leader(str(doc["NodeID"]), str(doc["Addr"]), kv.create_revision, kv.lease)
    except (ValueError, KeyError, TypeError):
        return Leader("", "", kv.create_revision, kv.lease)
