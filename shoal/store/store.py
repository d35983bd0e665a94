"""The store: in-memory tables that are a cache of the replicated backend, and transactions.

Reads (``view()``) are local and immediate. Writes (``update(fn)``) run ``fn`` against the
current view, which records creates/updates/deletes in a ``Tx``; the store commits them as one
backend transaction that compares every touched key's revision (optimistic concurrency), then
waits until its own cache has applied that revision, so a caller reads its own writes.
The cache is fed only by the backend's watch (list, then watch from that revision); a watch that
falls behind compaction re-lists.

Several managers write to the same backend, so what one process's lock cannot guarantee is kept in
the backend: names of services, networks, secrets and configs are reserved by a key of their own
(created only if absent), and the leader's parts write under a fence (``fenced``): the leader
key's create_revision, so a deposed leader's writes are refused (``LostLeadership``) instead of
applied.

Called by controlapi, orchestrators, scheduler, dispatcher; see docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import msgspec

from shoal import aio
from shoal.errors import SequenceConflict, Unavailable
from shoal.model.objects import KINDS, StoredObject, now
from shoal.store.backend import (
    KV,
    MAX_TXN_BYTES,
    MAX_TXN_OPS,
    Backend,
    Compacted,
    Compare,
    Event,
    EventType,
    Fence,
    Op,
)
from shoal.store.tables import Tables
from shoal.store.watch import Change, Subscription

__all__ = ["NO_LEADER", "LostLeadership", "Store", "Tx", "copy", "current_fence", "fenced"]

log = logging.getLogger(__name__)
T = TypeVar("T")
O = TypeVar("O", bound=StoredObject)

ROOT = "/shoal/"  # every key shoal writes; the cache watches all of it, so its revision
# follows every commit (the leader key's too), which the read barrier relies on
PREFIX = "/shoal/v1/"  # the objects
NAMES = "/shoal/names/"  # name reservations: outside PREFIX, so never loaded as objects
_NAMED = frozenset({"services", "networks", "secrets", "configs"})  # names unique swarm-wide
NO_LEADER = ("The swarm does not have a leader. It's possible that too few managers are online. "
             "Make sure more than half of the managers are online.")

FEED_STALL = 5.0  # seconds a failing feeder may lag before writes waiting on it fail
STALE_READS_AFTER = 5.0  # seconds without a quorum after which reads skip the barrier

_FENCE: contextvars.ContextVar[Fence | None] = contextvars.ContextVar("shoal_store_fence", default=None)


class LostLeadership(Unavailable):
    """A fenced write was refused: another manager holds the leadership now."""

    def __init__(self) -> None:
        super().__init__("this manager is no longer the leader; the write was refused")


@contextmanager
def fenced(fence: Fence) -> Iterator[None]:
    """Writes from this context (and tasks created in it) carry ``fence``."""
    token = _FENCE.set(fence)
    try:
        yield
    finally:
        _FENCE.reset(token)


def current_fence() -> Fence | None:
    return _FENCE.get()
_decoders = {kind: msgspec.json.Decoder(cls) for kind, cls in KINDS.items()}
_encoder = msgspec.json.Encoder()


def copy(obj: O) -> O:
    """A deep copy to modify: cached objects are shared and never mutated."""
    return msgspec.json.decode(_encoder.encode(obj), type=type(obj))


def _pack(obj: StoredObject) -> bytes:
    """An object as stored in etcd: its JSON. Over gRPC, deflating (half the bytes) cost more
    CPU than it saved: 20 us to compress a task and 6 us per manager to inflate it, against
    etcd's per-byte cost of raft, WAL and TLS. Deflated values (from older versions) still load."""
    return _encoder.encode(obj)


def _unpack(value: bytes) -> bytes:
    return value if value[:1] == b"{" else zlib.decompress(value)


def _key(kind: str, obj_id: str) -> str:
    return f"{PREFIX}{kind}/{obj_id}"


def _name_key(obj: StoredObject) -> str:
    return f"{NAMES}{obj.kind}/{getattr(getattr(obj, 'spec', None), 'name', '')}"


class Tx:
    """The writes of one ``Store.update`` call, with the revision each write expects."""

    def __init__(self, view: Tables) -> None:
        self.view = view
        self._writes: dict[str, tuple[int, StoredObject | None]] = {}
        self._names: dict[str, bytes | None] = {}  # name key -> owner ID (create) or None (delete)

    def create(self, obj: StoredObject) -> None:
        obj.created_at = obj.updated_at = now()
        self._writes[_key(obj.kind, obj.id)] = (0, obj)
        if obj.kind in _NAMED:
            self._names[_name_key(obj)] = obj.id.encode()

    def update(self, obj: StoredObject) -> None:
        """Write ``obj``; fails with SequenceConflict unless its Version.Index is the stored one."""
        obj.updated_at = now()
        self._writes[_key(obj.kind, obj.id)] = (obj.version.index, obj)

    def delete(self, obj: StoredObject) -> None:
        self._writes[_key(obj.kind, obj.id)] = (obj.version.index, None)
        if obj.kind in _NAMED:
            self._names[_name_key(obj)] = None

    def __len__(self) -> int:
        return len(self._writes)

    def chunks(self) -> list[tuple[list[Compare], list[Op]]]:
        """The writes split within the backend's per-transaction limits."""
        out: list[tuple[list[Compare], list[Op]]] = []
        compares: list[Compare] = []
        ops: list[Op] = []
        size = 0
        writes: list[tuple[str, int | None, bytes | None]] = [
            (key, expected, None if obj is None else _pack(obj)) for key, (expected, obj) in self._writes.items()]
        # A new name must be free (compare: absent); a freed name is deleted without a compare.
        writes += [(key, 0 if owner is not None else None, owner) for key, owner in self._names.items()]
        for key, expected, value in writes:
            n = len(key) + (len(value) if value else 0)
            if ops and (len(ops) >= MAX_TXN_OPS or len(compares) >= MAX_TXN_OPS
                        or size + n > MAX_TXN_BYTES):
                out.append((compares, ops))
                compares, ops, size = [], [], 0
            if expected is not None:
                compares.append(Compare(key, expected))
            ops.append(Op(key, value))
            size += n
        if ops:
            out.append((compares, ops))
        return out


class Store:
    def __init__(self, backend: Backend, *, feed_backoff: aio.Backoff | None = None,
                 feed_stall: float = FEED_STALL) -> None:
        self.backend = backend
        # A broken watch is retried after 0.1 s, doubling to 2 s (etcd restarting, an election).
        self._feed_backoff = feed_backoff or aio.Backoff(initial=0.1, cap=2.0, jitter=0.2)
        self._feed_stall = feed_stall
        self._feed_error: str | None = None  # the feeder's last failure, until it recovers
        self._feed_failing_since = 0.0
        self._feed_watching = False
        self._feed_stall_logged = False
        self._feed_opened_at = 0.0
        self._tables = Tables()
        self.revision = 0
        self._subs: list[Subscription] = []
        self._applied = asyncio.Condition()
        self._feeder: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one writer at a time, as swarmkit's update lock
        self._unavailable: str | None = None
        self._unavailable_since = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self._load()
        self._feeder = asyncio.create_task(self._feed(), name="store-feed")

    async def close(self) -> None:
        await aio.cancel_and_wait(self._feeder)
        self._feeder = None

    async def _load(self) -> None:
        revision, kvs = await self.backend.list(PREFIX)
        tables = Tables()
        for kv in kvs:
            obj = self._decode(kv)
            if obj is not None:
                tables.put(obj)
        old, self._tables = self._tables, tables
        self.revision = revision
        changes = [Change(k, o, None, revision) for k, t in old.by_id.items() for o in t.values()]
        changes += [Change(k, None, o, revision) for k, t in tables.by_id.items() for o in t.values()]
        self._publish(changes)

    async def _feed(self) -> None:
        """The watch into the cache, supervised: it ends only when cancelled. A compacted
        revision re-lists; any other failure (etcd down, a broken stream, a bad value, a bug)
        is logged and retried with backoff, re-listing after anything but a broken stream (the
        cache may hold half a batch). While it fails, writes waiting for their revision fail
        once it has failed for ``feed_stall`` seconds (``wait_for_revision``), never frozen."""
        relist = False
        while True:
            try:
                if relist:
                    await self._load()
                    relist = False
                    async with self._applied:  # writes waiting for what the list brought
                        self._applied.notify_all()
                self._feed_watching, self._feed_opened_at = True, time.monotonic()
                async for events in self.backend.watch(ROOT, self.revision + 1):
                    self._feed_recovered()
                    await self._apply(events)
                raise Unavailable("store watch ended")
            except asyncio.CancelledError:
                raise
            except Compacted:
                log.warning("store watch compacted at revision %d; re-listing", self.revision)
                relist = True
                if self._feed_error is None:
                    continue  # at once the first time; a re-list that keeps failing backs off
                await self._feed_failed("watch compacted", relist=True)
            except Unavailable as exc:
                await self._feed_failed(exc.message, relist=relist)
            except Exception as exc:
                log.exception("store watch failed; re-listing")
                relist = True
                await self._feed_failed(f"{type(exc).__name__}: {exc}", relist=True)

    async def _feed_failed(self, reason: str, *, relist: bool) -> None:
        """Record a failure of the feeder, wake the writes waiting on it, then back off."""
        now_ = time.monotonic()
        # A watch that stayed open a while before breaking starts a new outage.
        lived = self._feed_watching and now_ - self._feed_opened_at >= self._feed_stall
        if self._feed_error is None or lived:
            self._feed_failing_since, self._feed_stall_logged = now_, False
            self._feed_backoff.reset()
        self._feed_error, self._feed_watching = reason, False
        delay = self._feed_backoff.next()
        down = now_ - self._feed_failing_since
        if down >= self._feed_stall and not self._feed_stall_logged:
            self._feed_stall_logged = True
            log.error("store watch down for %.0fs (%s): this manager's cache is stale and its "
                      "writes fail until it recovers", down, reason)
        else:
            log.warning("store watch broken (%s); %s in %.1fs", reason,
                        "re-listing" if relist else "retrying", delay)
        async with self._applied:
            self._applied.notify_all()
        await asyncio.sleep(delay)

    def _feed_recovered(self) -> None:
        if self._feed_error is not None:
            log.info("store watch recovered at revision %d after %d attempts (was: %s)",
                     self.revision, self._feed_backoff.attempt, self._feed_error)
            self._feed_error, self._feed_stall_logged = None, False
            self._feed_backoff.reset()

    def _feed_down(self) -> str | None:
        """Why the cache is stale, once the feeder has been failing for ``feed_stall`` seconds
        and is not watching (backing off or re-listing); else None."""
        if self._feed_error is None or self._feed_watching:
            return None
        down = time.monotonic() - self._feed_failing_since
        if down < self._feed_stall:
            return None
        return f"the store's watch of etcd has been failing for {down:.0f}s ({self._feed_error})"

    def _decode(self, kv: KV) -> StoredObject | None:
        kind = kv.key[len(PREFIX) :].split("/", 1)[0]
        decoder = _decoders.get(kind)
        if decoder is None:
            return None
        obj = decoder.decode(_unpack(kv.value))
        obj.version.index = kv.mod_revision
        return obj

    async def _apply(self, events: list[Event]) -> None:
        changes: list[Change] = []
        for ev in events:
            if not ev.kv.key.startswith(PREFIX):
                continue
            kind, _, obj_id = ev.kv.key[len(PREFIX) :].partition("/")
            if kind not in KINDS:
                continue
            if ev.type is EventType.DELETE:
                old = self._tables.delete(kind, obj_id)
                if old is not None:
                    changes.append(Change(kind, old, None, ev.revision))
            else:
                new = self._decode(ev.kv)
                if new is not None:
                    changes.append(Change(kind, self._tables.put(new), new, ev.revision))
        self.revision = max(self.revision, events[-1].revision) if events else self.revision
        self._publish(changes)
        async with self._applied:
            self._applied.notify_all()

    def _publish(self, changes: list[Change]) -> None:
        if changes:
            for sub in list(self._subs):
                sub.publish(changes)

    # -- reads -----------------------------------------------------------------------------
    def view(self) -> Tables:
        return self._tables

    def subscribe(self, kinds: Iterable[type[StoredObject]]) -> Subscription:
        sub = Subscription(frozenset(k.kind for k in kinds), self._subs.remove)
        self._subs.append(sub)
        return sub

    async def wait_for_revision(self, revision: int, timeout: float = 10.0) -> None:
        """Until the cache has applied ``revision``; Unavailable after ``timeout``, or at once
        while the feeder has been failing too long (the cache is stale, not slow)."""
        async def _wait() -> None:
            async with self._applied:
                await self._applied.wait_for(lambda: self.revision >= revision
                                             or self._feed_down() is not None)

        try:
            async with aio.timeout(timeout):
                await _wait()
        except TimeoutError as exc:
            why = f": {self._feed_error}" if self._feed_error is not None else ""
            raise Unavailable(f"store did not apply revision {revision} in {timeout}s{why}") from exc
        down = self._feed_down()
        if self.revision < revision and down is not None:
            raise Unavailable(f"store did not apply revision {revision}: {down}")

    @property
    def unavailable(self) -> str | None:
        """Why writes fail at once (set by the manager while its etcd member sees no leader)."""
        return self._unavailable

    @unavailable.setter
    def unavailable(self, reason: str | None) -> None:
        if reason is not None and self._unavailable is None:
            self._unavailable_since = time.monotonic()
        self._unavailable = reason

    async def sync(self, timeout: float = 2.0) -> str | None:
        """Wait until the cache holds every write committed before this call (a read barrier,
        like etcd's ReadIndex), so a read on any manager sees what another acknowledged; None
        then. Without a quorum the barrier cannot be had: reads are then served from the cache
        as it is (at once when the quorum has been gone for a while, after ``timeout`` during an
        election), a choice Docker does not make (its reads fail without a leader): see
        design/store.md. The answer is then why the read may be stale, for the API to say so."""
        if self._unavailable is not None and time.monotonic() - self._unavailable_since > STALE_READS_AFTER:
            return f"no quorum for {time.monotonic() - self._unavailable_since:.0f}s"
        try:
            async with aio.timeout(timeout):
                revision = await self.backend.revision()
        except (Unavailable, TimeoutError) as exc:
            log.debug("read barrier skipped: %s", exc)
            return f"no read barrier: {exc or 'timed out'}"
        await self.wait_for_revision(revision, timeout)
        return None

    # -- writes ----------------------------------------------------------------------------
    async def update(
        self, fn: Callable[[Tx], T], *, retries: int = 0, atomic: bool = True,
        fence: Fence | None = None,
    ) -> T:
        """Run ``fn`` on the current view and commit what it wrote.

        A revision conflict re-runs ``fn`` on the refreshed view up to ``retries`` times, then
        raises SequenceConflict. With ``atomic=False`` large write sets are split into several
        transactions (each atomic on its own), like swarmkit's ``Batch``. The fence is ``fence``
        or the one of the calling context (``fenced``); a write it refuses raises LostLeadership.
        """
        fence = fence or _FENCE.get()
        for attempt in range(retries + 1):
            if self.unavailable is not None:
                raise Unavailable(self.unavailable)
            if (down := self._feed_down()) is not None:  # nothing written it could not see
                raise Unavailable(f"this manager's store cache is stale: {down}")
            async with self._lock:
                tx = Tx(self._tables)
                result = fn(tx)
                chunks = tx.chunks()
                if len(chunks) > 1 and atomic:
                    raise ValueError(f"transaction too large: {len(tx)} writes")
                # Chunks touch distinct keys, so they go out together rather than one round
                # trip after another (a 1,000-task fan-out is 9 of them).
                try:
                    results = await asyncio.gather(*(self.backend.txn(c, o, fence) for c, o in chunks))
                except Unavailable as exc:
                    log.warning("store write failed: %s", exc.message)
                    raise Unavailable(NO_LEADER) from exc
                if any(r.fenced for r in results):
                    raise LostLeadership()
                ok = all(r.succeeded for r in results)
                await self.wait_for_revision(max((r.revision for r in results), default=self.revision))
            if ok:
                return result
            if attempt < retries:
                log.debug("store conflict, retry %d", attempt + 1)
        raise SequenceConflict()
