"""``EtcdBackend``: the store's Backend contract (shoal.store.backend) implemented on etcd.

Called by the store (shoal.store.store) on managers; shoald starts the local ``EtcdMember`` first.
The backend owns an ``EtcdClient`` (exposed as ``client`` for leases and membership) and closes it.

* ``list``: a paged range; the first page fixes the revision, later pages read at that revision,
  so the result is one consistent snapshot (re-listed from scratch if compacted in between).
* ``watch``: etcd's watch on ``[prefix, prefix+1)`` from ``start_revision`` (inclusive); each
  response's events are split by ``mod_revision`` into one list per revision. etcd never splits one
  revision across watch responses (we do not ask for ``fragment``).
* ``txn``: compares on ``mod_revision`` (0: the key must not exist, i.e. ``create_revision == 0``),
  plus the fence's ``create_revision``; puts and deletes in ``success``; in ``failure`` nothing,
  or a read of the fence key to tell a lost leadership from a conflict.
"""

from __future__ import annotations

import builtins
import ssl
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from shoal import metrics
from shoal.errors import InvalidArgument
from shoal.store.backend import (
    KV,
    MAX_TXN_OPS,
    Backend,
    Compacted,
    Compare,
    Event,
    EventType,
    Fence,
    Op,
    TxnResult,
)
from shoal.store.etcd.client import EtcdClient
from shoal.store.etcd.grpc_client import GrpcEtcdClient
from shoal.store.etcd.messages import DeleteOp, PutOp, RangeOp, TxnCompare, WatchEvent, prefix_end

__all__ = ["EtcdBackend"]

_LIST_ATTEMPTS = 3  # a list restarts if auto-compaction removes its revision between pages


class EtcdBackend(Backend):
    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        ssl_context: ssl.SSLContext | None = None,
        client: EtcdClient | GrpcEtcdClient | None = None,  # instead of endpoints + ssl_context
        timeout: float = 5.0,  # per call; the contract's time bound
        # A write in flight when etcd's leader dies is lost and would wait out etcd's own 7 s;
        # bounding it lets the next write go through the new leader (failover, bench_quorum).
        txn_timeout: float = 2.0,
        page_size: int = 1000,  # keys per range call; ~1000 objects stay well under 1.5 MiB
        watch_idle_timeout: float | None = 30.0,  # members send progress every 5 s (member.py)
    ) -> None:
        if client is None:
            if ssl_context is None:
                raise InvalidArgument("EtcdBackend needs an ssl_context or a client")
            client = EtcdClient(endpoints, ssl_context=ssl_context, timeout=timeout)
        self.client = client
        self._page_size = page_size
        self._watch_idle_timeout = watch_idle_timeout
        self._txn_timeout = txn_timeout

    async def start(self) -> None:
        """Check that a member answers (raises Unavailable otherwise)."""
        await self.client.status()

    async def close(self) -> None:
        await self.client.close()

    async def list(self, prefix: str) -> tuple[int, builtins.list[KV]]:
        for attempt in range(_LIST_ATTEMPTS):
            try:
                return await self._list_once(prefix.encode())
            except Compacted:
                if attempt == _LIST_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _list_once(self, prefix: bytes) -> tuple[int, builtins.list[KV]]:
        key, end = _bounds(prefix)
        revision = 0
        kvs: builtins.list[KV] = []
        while True:
            page = await self.client.range(key, end, revision=revision, limit=self._page_size)
            revision = revision or page.header.revision
            kvs.extend(KV(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision)
                       for kv in page.kvs)
            if not page.more or not page.kvs:
                return revision, kvs
            key = page.kvs[-1].key + b"\x00"

    async def revision(self) -> int:
        # A linearizable (ReadIndex) read of one key that never exists: no data and no count
        # over the keyspace, just the quorum's revision in the header.
        return (await self.client.range(b"\x00", count_only=True)).header.revision

    async def watch(
        self, prefix: str, start_revision: int
    ) -> AsyncGenerator[builtins.list[Event], None]:
        key, end = _bounds(prefix.encode())
        stream = self.client.watch(key, end, start_revision=start_revision,
                                   progress_notify=self._watch_idle_timeout is not None,
                                   idle_timeout=self._watch_idle_timeout)
        async with aclosing(stream):
            async for events in stream:
                for group in _by_revision(events):
                    yield group

    async def txn(
        self, compares: builtins.list[Compare], ops: builtins.list[Op], fence: Fence | None = None
    ) -> TxnResult:
        if len(ops) > MAX_TXN_OPS or len(compares) > MAX_TXN_OPS:
            raise InvalidArgument(f"a transaction holds at most {MAX_TXN_OPS} operations and "
                                  f"compares; got {len(ops)} and {len(compares)}")
        checks = [
            TxnCompare(c.key.encode(), "MOD", c.mod_revision) if c.mod_revision
            else TxnCompare(c.key.encode(), "CREATE", 0)
            for c in compares
        ]
        writes = [PutOp(o.key.encode(), o.value) if o.value is not None
                  else DeleteOp(o.key.encode()) for o in ops]
        if fence is None:
            with metrics.timed(metrics.RAFT_TX):
                answer = await self.client.txn(checks, writes, timeout=self._txn_timeout)
            return TxnResult(answer.succeeded, answer.header.revision)
        key = fence.key.encode()
        checks.append(TxnCompare(key, "CREATE", fence.create_revision))
        # On failure, read the fence key back: it tells a conflict from a lost leadership.
        with metrics.timed(metrics.RAFT_TX):
            answer = await self.client.txn(checks, writes, [RangeOp(key)], timeout=self._txn_timeout)
        fenced = False
        if not answer.succeeded and answer.responses:
            found = answer.responses[0].response_range
            kvs = found.kvs if found is not None else ()
            fenced = not kvs or kvs[0].create_revision != fence.create_revision
        return TxnResult(answer.succeeded, answer.header.revision, fenced)


def _bounds(prefix: bytes) -> tuple[bytes, bytes]:
    """etcd's [key, range_end) for every key under ``prefix`` (all keys when empty)."""
    return (prefix or b"\x00"), prefix_end(prefix)


def _by_revision(events: Sequence[WatchEvent]) -> builtins.list[builtins.list[Event]]:
    groups: builtins.list[builtins.list[Event]] = []
    revision = -1
    for event in events:
        kv = event.kv
        if kv.mod_revision != revision:
            groups.append([])
            revision = kv.mod_revision
        if event.type == "DELETE":
            converted = Event(EventType.DELETE, KV(kv.key.decode(), b"", revision, 0), revision)
        else:
            converted = Event(EventType.PUT, KV(kv.key.decode(), kv.value, revision,
                                                kv.create_revision), revision)
        groups[-1].append(converted)
    return groups
