"""A gossip node: SWIM membership and replicated tables between nodes, over encrypted UDP.

The network state of issue 5 (which tasks are where, with which addresses, on which networks)
changes with every task and is only eventually consistent, so it is not written through the Raft
store: nodes exchange it directly, the way libnetwork's NetworkDB does over memberlist.

- Membership (SWIM): every probe interval a node pings the next member of a shuffled round;
  without an ack within the probe timeout it asks ``indirect_checks`` others to ping it
  (``PingReq``), and without any ack by the end of the interval it declares the member SUSPECT.
  A suspect that does not refute (with a higher incarnation) within the suspicion timeout is
  declared DEAD. ``leave()`` announces LEFT. Member news rides on every datagram.
- Tables: ``set``/``delete`` write an entry (owner = this node, a Lamport version) and queue it
  for gossip: every gossip interval up to ``gossip_nodes`` members get a ``Gossip`` datagram with
  the least-sent queued updates; each update is sent about ``4 * log10(n)`` times, and every node
  that learns something new queues it again (epidemic). Entries of a DEAD or LEFT member are
  dropped everywhere: that is how a dead host's task addresses go away.
- Anti-entropy: every push-pull interval, and on ``join``, a node opens a TCP connection to one
  member (same port number as UDP) and exchanges members and a digest of entry versions, then
  each side sends the entries the other lacks, in length-prefixed frames. Big states do not have
  to be split into datagrams and a join gets everything in one round trip.
- Encryption: everything (datagrams and TCP frames) is AES-GCM under a keyring whose first key
  encrypts and all keys decrypt (gossip_wire.py); ``set_keys`` rotates at run time. What does
  not decrypt is dropped and counted in ``stats.dropped``, so a node with a wrong key is never
  admitted.

Everything runs on one event loop, so the state needs no locks. Settings: gossip_config.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Self

from shoal import aio, metrics
from shoal.errors import Unavailable
from shoal.net.gossip_config import GossipConfig
from shoal.net.gossip_members import GONE, Member, Membership
from shoal.net.gossip_queue import BroadcastQueue, retransmit_limit
from shoal.net.gossip_tables import Event, Tables
from shoal.net.gossip_wire import (
    MAX_FRAME,
    MAX_NAME,
    MAX_REQUEST_FRAME,
    MAX_VALUE,
    OVERHEAD,
    Ack,
    EntryMsg,
    Gossip,
    Keyring,
    MemberMsg,
    Message,
    Ping,
    PingReq,
    State,
    SyncEntries,
    SyncReply,
    SyncRequest,
    decode,
    encode,
    frame_header,
    read_frame_length,
)

__all__ = ["GossipConfig", "GossipError", "GossipNode", "GossipStats", "Member", "State",
           "Subscription"]

log = logging.getLogger(__name__)

Addr = tuple[str, int]


class GossipError(Unavailable):
    """A join found no seed, or a push-pull peer answered with nothing this node can read."""


@dataclass(slots=True)
class GossipStats:
    sent: int = 0  # datagrams
    received: int = 0  # datagrams and frames that decrypted and decoded
    dropped: int = 0  # datagrams and frames no key opens
    malformed: int = 0  # opened but did not decode
    push_pulls: int = 0  # completed, either side
    push_pull_failures: int = 0
    refused: int = 0  # connections closed at once: ``max_push_pulls`` were being served


class Subscription:
    """Changes to the tables as ``(table, key, value or None)``, from the moment it was made;
    read the current state with ``GossipNode.table`` after subscribing. Ends when the node
    closes or ``close()`` is called."""

    def __init__(self, unsubscribe: Callable[[Subscription], None]) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._unsubscribe = unsubscribe
        self._ended = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._ended and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    def put(self, event: Event) -> None:
        if not self._ended:
            self._queue.put_nowait(event)

    def close(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)
            self._unsubscribe(self)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Addr], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("gossip socket error: %s", exc)  # e.g. ICMP unreachable from a dead member


class GossipNode:
    def __init__(self, config: GossipConfig, keys: list[bytes]) -> None:
        self.config = config
        self.stats = GossipStats()
        self._keyring = Keyring(keys)
        self._members: Membership | None = None
        self._tables = Tables(config.node_id)
        self._queue = BroadcastQueue()
        self._subs: set[Subscription] = set()
        self._acks: dict[int, Callable[[], None]] = {}
        self._seq = random.randrange(1 << 30)
        self._suspicions: dict[str, asyncio.TimerHandle] = {}
        self._round: list[str] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._serving = 0  # push-pull connections being served (at most max_push_pulls)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind UDP and TCP on the same port (with port 0: one free for both) and start."""
        cfg, loop = self.config, asyncio.get_running_loop()
        for attempt in range(20):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self._on_datagram), local_addr=(cfg.bind_host, cfg.bind_port))
            port = int(transport.get_extra_info("sockname")[1])
            try:
                self._server = await asyncio.start_server(self._on_connection, cfg.bind_host, port)
            except OSError:
                transport.close()
                if cfg.bind_port or attempt == 19:
                    raise
                continue
            self._transport = transport
            break
        me = Member(cfg.node_id, cfg.host, port, 0, State.ALIVE, loop.time())
        self._members = Membership(me)
        self._queue.push(me.msg())
        for name, loop_fn in (("probe", self._probe_loop), ("gossip", self._gossip_loop),
                              ("push-pull", self._push_pull_loop), ("reap", self._reap_loop)):
            self._spawn(loop_fn(), f"gossip-{name}-{cfg.node_id}")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def join(self, seeds: Sequence[Addr]) -> int:
        """Push-pull with each seed (not this node); how many answered. Raises GossipError when
        there were other seeds and none answered."""
        others = [s for s in seeds if s != self.addr]
        ok = 0
        for seed in others:
            try:
                await self._push_pull(seed)
                ok += 1
            except (OSError, TimeoutError, GossipError) as e:
                log.info("gossip: cannot join through %s:%s: %s", *seed, e)
        if others and not ok:
            raise GossipError(f"gossip: no seed answered ({', '.join(map(str, others))})")
        return ok

    async def leave(self) -> None:
        """Tell every member this node leaves (their tables drop its entries), then close."""
        if self._members is None or self._closed:
            return
        m = self._members
        m.leaving = True
        m.me.state = State.LEFT
        note = Gossip(m.me.id, [m.me.msg()])
        for member in m.others(State.ALIVE, State.SUSPECT):
            self._send(note, member.addr)
        self._queue.push(m.me.msg())
        await asyncio.sleep(min(1.0, 2 * self.config.gossip_interval))
        for member in m.others(State.ALIVE, State.SUSPECT):
            self._send(note, member.addr)
        await self.close()

    async def close(self) -> None:
        """Stop at once, telling no one (the others will find this node dead)."""
        if self._closed:
            return
        self._closed = True
        await aio.cancel_and_wait(*self._tasks)
        for handle in self._suspicions.values():
            handle.cancel()
        self._suspicions.clear()
        self._acks.clear()
        if self._transport is not None:
            self._transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for sub in list(self._subs):
            sub.close()

    # -- the API ------------------------------------------------------------------------------

    @property
    def addr(self) -> Addr:
        return self._me.addr

    @property
    def node_id(self) -> str:
        return self.config.node_id

    def set_keys(self, keys: list[bytes]) -> None:
        """Replace the keyring: ``keys[0]`` encrypts from now on, all decrypt."""
        self._keyring.set_keys(keys)

    def set(self, table: str, key: str, value: bytes) -> None:
        if len(value) > MAX_VALUE:
            raise ValueError(f"a gossip value is at most {MAX_VALUE} bytes")
        self._write(table, key, value)

    def delete(self, table: str, key: str) -> None:
        if self._tables.table(table).get(key) is not None:
            self._write(table, key, None)

    def get(self, table: str, key: str) -> bytes | None:
        entry = self._tables.get(table, key)
        return None if entry is None else entry.value

    def table(self, table: str) -> dict[str, bytes]:
        """The live entries of ``table`` (a copy)."""
        return self._tables.table(table)

    def tables(self) -> list[str]:
        return self._tables.names()

    def members(self) -> list[Member]:
        """Every member this node knows of, itself first (copies)."""
        return [replace(m) for m in self._ms.all()]

    def live(self) -> frozenset[str]:
        """IDs of the members believed up (alive or suspect), this node included."""
        return frozenset(m.id for m in self._ms.all() if m.state not in GONE)

    def subscribe(self) -> Subscription:
        sub = Subscription(self._subs.discard)
        self._subs.add(sub)
        return sub

    # -- state changes ------------------------------------------------------------------------

    @property
    def _ms(self) -> Membership:
        if self._members is None:
            raise RuntimeError("gossip node not started")
        return self._members

    @property
    def _me(self) -> Member:
        return self._ms.me

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _write(self, table: str, key: str, value: bytes | None) -> None:
        if not table or not key or len(table) > MAX_NAME or len(key) > MAX_NAME:
            raise ValueError(f"gossip table and key names are 1 to {MAX_NAME} characters")
        msg, event = self._tables.local(table, key, value, self._now())
        self._queue.push(msg)
        self._publish(event)

    def _publish(self, event: Event | None) -> None:
        if event is not None:
            for sub in self._subs:
                sub.put(event)

    def _apply_member(self, msg: MemberMsg) -> None:
        change = self._ms.apply(msg, self._now())
        if change is None:
            return
        m = change.member
        if change.refuted:
            log.info("gossip: %s refutes %s at incarnation %d", m.id, msg.state.name, m.inc)
            self._queue.push(m.msg())
            if msg.state in GONE:  # the others dropped my entries: send them again
                for entry in self._tables.owned_by(m.id):
                    self._queue.push(entry)
            return
        self._queue.push(m.msg())
        if change.old != m.state:
            log.debug("gossip %s: %s is %s (incarnation %d)", self.node_id, m.id, m.state.name,
                      m.inc)
        timer = self._suspicions.pop(m.id, None)
        if timer is not None:
            timer.cancel()
        if m.state == State.SUSPECT:
            n = self._ms.live_count()
            timeout = (self.config.suspicion_mult * max(1.0, math.log10(n))
                       * self.config.probe_interval)
            self._suspicions[m.id] = asyncio.get_running_loop().call_later(
                timeout, self._suspicion_over, m.id, m.inc)
        if m.state in GONE and change.old not in GONE:
            for event in self._tables.drop_owner(m.id):
                self._publish(event)

    def _suspicion_over(self, node_id: str, inc: int) -> None:
        self._suspicions.pop(node_id, None)
        m = self._ms.get(node_id)
        if m is not None and m.state == State.SUSPECT and m.inc == inc:
            self._apply_member(replace(m, state=State.DEAD).msg())

    def _merge_entry(self, msg: EntryMsg) -> None:
        if self._ms.is_gone(msg.owner):
            return  # a dead member's entries stay gone
        if msg.owner == self.node_id and msg.value is not None and self._tables.newer(msg):
            # An entry of a past life of this node (before a restart): delete it everywhere
            # with a tombstone of a higher version.
            self._tables.clock = max(self._tables.clock, msg.version)
            self._write(msg.table, msg.key, None)
            return
        stored, event = self._tables.merge(msg, self._now())
        if stored:
            self._queue.push(msg)
        self._publish(event)

    def _merge(self, members: list[MemberMsg], entries: list[EntryMsg]) -> None:
        for m in members:
            self._apply_member(m)
        for e in entries:
            self._merge_entry(e)

    # -- datagrams ----------------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return self._seq

    def _send(self, msg: Message, addr: Addr) -> None:
        if self._transport is None or self._closed:
            return
        self._transport.sendto(self._keyring.seal(encode(msg)), addr)
        self.stats.sent += 1
        metrics.GOSSIP_MESSAGES.labels("sent").inc()

    def _piggyback(self, msg: Ping | Ack | Gossip) -> Ping | Ack | Gossip:
        budget = self.config.packet_size - OVERHEAD - len(encode(msg))
        limit = retransmit_limit(self.config.retransmit_mult, self._ms.live_count())
        members, entries = self._queue.take(budget, limit)
        msg.members = [*msg.members, *members]
        msg.entries = [*msg.entries, *entries]
        return msg

    def _on_datagram(self, data: bytes, addr: Addr) -> None:
        if self._closed or self._members is None:
            return
        plain = self._keyring.open(data)
        if plain is None:
            self.stats.dropped += 1
            metrics.GOSSIP_MESSAGES.labels("dropped").inc()
            return
        msg = decode(plain)
        if msg is None:
            self.stats.malformed += 1
            metrics.GOSSIP_MESSAGES.labels("malformed").inc()
            return
        self.stats.received += 1
        metrics.GOSSIP_MESSAGES.labels("received").inc()
        if isinstance(msg, Ping):
            if msg.target != self.node_id:
                return  # meant for an earlier owner of this address
            self._merge(msg.members, msg.entries)
            ack = Ack(msg.seq, self.node_id)
            src = self._ms.get(msg.src)
            if src is not None and src.state in GONE:
                ack.members = [src.msg()]  # it should know, and refute
            self._send(self._piggyback(ack), addr)
        elif isinstance(msg, Ack):
            self._merge(msg.members, msg.entries)
            done = self._acks.pop(msg.seq, None)
            if done is not None:
                done()
        elif isinstance(msg, PingReq):
            self._relay(msg, addr)
        elif isinstance(msg, Gossip):
            self._merge(msg.members, msg.entries)

    def _relay(self, req: PingReq, requester: Addr) -> None:
        seq = self._next_seq()

        def acked() -> None:
            self._send(Ack(req.seq, self.node_id), requester)

        self._acks[seq] = acked
        asyncio.get_running_loop().call_later(self.config.probe_interval, self._acks.pop, seq,
                                              None)
        self._send(self._piggyback(Ping(seq, self.node_id, req.target)), (req.host, req.port))

    # -- loops --------------------------------------------------------------------------------

    def _next_probe(self) -> Member | None:
        for _ in range(2):
            while self._round:
                m = self._ms.get(self._round.pop())
                if m is not None and m.state not in GONE and m is not self._me:
                    return m
            self._round = [m.id for m in self._ms.others(State.ALIVE, State.SUSPECT)]
            random.shuffle(self._round)
        return None

    async def _probe_loop(self) -> None:
        cfg, loop = self.config, asyncio.get_running_loop()
        while True:
            start = loop.time()
            target = self._next_probe()
            if target is not None:
                await self._probe(target)
            await asyncio.sleep(max(0.0, cfg.probe_interval - (loop.time() - start)))

    async def _probe(self, target: Member) -> None:
        cfg, loop = self.config, asyncio.get_running_loop()
        seq, acked = self._next_seq(), loop.create_future()

        def ack() -> None:
            if not acked.done():
                acked.set_result(None)

        self._acks[seq] = ack
        try:
            self._send(self._piggyback(Ping(seq, self.node_id, target.id)), target.addr)
            await asyncio.wait([acked], timeout=cfg.probe_timeout)
            if acked.done():
                return
            helpers = [m for m in self._ms.others(State.ALIVE) if m.id != target.id]
            for helper in random.sample(helpers, min(cfg.indirect_checks, len(helpers))):
                self._send(PingReq(seq, self.node_id, target.id, target.host, target.port),
                           helper.addr)
            await asyncio.wait([acked], timeout=max(0.0, cfg.probe_interval - cfg.probe_timeout))
            if acked.done():
                return
            m = self._ms.get(target.id)
            if m is not None and m.state == State.ALIVE:
                self._apply_member(replace(m, state=State.SUSPECT).msg())
        finally:
            self._acks.pop(seq, None)
            acked.cancel()

    async def _gossip_loop(self) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.gossip_interval)
            if not len(self._queue):
                continue
            since = self._now() - cfg.gossip_to_dead
            targets = [m for m in self._ms.others()
                       if m.state not in GONE or m.since > since]
            for member in random.sample(targets, min(cfg.gossip_nodes, len(targets))):
                msg = self._piggyback(Gossip(self.node_id))
                if not msg.members and not msg.entries:
                    break
                self._send(msg, member.addr)

    async def _push_pull_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.push_pull_interval * random.uniform(0.75, 1.25))
            peers = self._ms.others(State.ALIVE)
            if not peers:
                continue
            peer = random.choice(peers)
            try:
                await self._push_pull(peer.addr)
            except (OSError, TimeoutError, GossipError) as e:
                log.debug("gossip %s: push-pull with %s failed: %s", self.node_id, peer.id, e)

    async def _reap_loop(self) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.reap_interval)
            now = self._now()
            self._tables.reap(now - cfg.tombstone_ttl)
            self._ms.reap(now - cfg.dead_member_ttl)

    # -- push-pull over TCP -------------------------------------------------------------------

    def _member_msgs(self) -> list[MemberMsg]:
        return [m.msg() for m in self._ms.all()]

    async def _write_frame(self, writer: asyncio.StreamWriter, msg: Message) -> None:
        sealed = self._keyring.seal(encode(msg))
        if len(sealed) > MAX_FRAME:
            raise GossipError(f"gossip state of {len(sealed)} bytes: more than a push-pull "
                              f"frame carries ({MAX_FRAME})")
        writer.write(frame_header(len(sealed)) + sealed)
        await writer.drain()

    async def _read_frame(self, reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> Message:
        """One frame, refused unread past ``limit`` bytes (the peer's length prefix is read
        before anything is decrypted, so it is bounded before it is believed)."""
        size = read_frame_length(await reader.readexactly(4))
        if size > limit:
            self.stats.malformed += 1
            metrics.GOSSIP_MESSAGES.labels("malformed").inc()
            raise GossipError(f"gossip frame of {size} bytes (at most {limit})")
        plain = self._keyring.open(await reader.readexactly(size))
        if plain is None:
            self.stats.dropped += 1
            metrics.GOSSIP_MESSAGES.labels("dropped").inc()
            raise GossipError("gossip frame that no key opens")
        msg = decode(plain)
        if msg is None:
            self.stats.malformed += 1
            metrics.GOSSIP_MESSAGES.labels("malformed").inc()
            raise GossipError("gossip frame that does not decode")
        self.stats.received += 1
        metrics.GOSSIP_MESSAGES.labels("received").inc()
        return msg

    async def _push_pull(self, addr: Addr) -> None:
        try:
            async with aio.timeout(self.config.tcp_timeout):
                reader, writer = await asyncio.open_connection(*addr)
                try:
                    await self._write_frame(writer, SyncRequest(
                        self.node_id, self._member_msgs(), self._tables.digest()))
                    reply = await self._read_frame(reader)
                    if not isinstance(reply, SyncReply):
                        raise GossipError(f"gossip: {type(reply).__name__} instead of a reply")
                    self._merge(reply.members, reply.entries)
                    entries = [e for t, k in reply.want if (e := self._tables.msg(t, k))]
                    await self._write_frame(writer, SyncEntries(self.node_id, entries))
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except asyncio.IncompleteReadError as e:
            self.stats.push_pull_failures += 1
            metrics.GOSSIP_MESSAGES.labels("push_pull_failures").inc()
            raise GossipError("gossip: the peer closed the connection") from e
        except BaseException:
            self.stats.push_pull_failures += 1
            metrics.GOSSIP_MESSAGES.labels("push_pull_failures").inc()
            raise
        self.stats.push_pulls += 1
        metrics.GOSSIP_MESSAGES.labels("push_pulls").inc()

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed:
            writer.close()
            return
        if self._serving >= self.config.max_push_pulls:
            self.stats.refused += 1
            metrics.GOSSIP_MESSAGES.labels("refused").inc()
            log.debug("gossip %s: %d push-pulls served already, connection closed",
                      self.node_id, self._serving)
            writer.close()
            return
        self._serving += 1
        self._spawn(self._serve_push_pull(reader, writer), f"gossip-sync-{self.node_id}")

    async def _serve_push_pull(self, reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
        try:
            async with aio.timeout(self.config.tcp_timeout):
                req = await self._read_frame(reader, MAX_REQUEST_FRAME)
                if not isinstance(req, SyncRequest):
                    return
                self._merge(req.members, [])
                digest = [d for d in req.digest if not self._ms.is_gone(d.owner)]
                send, want = self._tables.diff(digest)
                await self._write_frame(writer, SyncReply(
                    self.node_id, self._member_msgs(), send, want))
                last = await self._read_frame(reader)
                if isinstance(last, SyncEntries):
                    self._merge([], last.entries)
                    self.stats.push_pulls += 1
                    metrics.GOSSIP_MESSAGES.labels("push_pulls").inc()
        except (OSError, TimeoutError, GossipError, asyncio.IncompleteReadError) as e:
            self.stats.push_pull_failures += 1
            metrics.GOSSIP_MESSAGES.labels("push_pull_failures").inc()
            log.debug("gossip %s: push-pull served badly: %s", self.node_id, e)
        finally:
            self._serving -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
