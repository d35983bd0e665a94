"""A process-local Backend: the same contract as etcd, without durability or replication.

Used by unit tests of the orchestrators and scheduler and by in-process benchmarks, where a real
etcd would only add noise. Never used by shoald.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator

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

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    def __init__(self, *, history: int = 100_000) -> None:
        self._data: dict[str, KV] = {}
        self._revision = 1
        self._log: list[list[Event]] = []  # one entry per revision, oldest first
        self._history = history
        self._watchers: list[tuple[str, asyncio.Queue[list[Event] | None]]] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for _, queue in self._watchers:
            queue.put_nowait(None)
        self._watchers.clear()

    async def list(self, prefix: str) -> tuple[int, builtins.list[KV]]:
        return self._revision, [kv for k, kv in sorted(self._data.items()) if k.startswith(prefix)]

    async def revision(self) -> int:
        return self._revision

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[builtins.list[Event]]:
        oldest = self._revision - len(self._log) + 1
        if start_revision < oldest:
            raise Compacted(f"revision {start_revision} compacted (oldest kept {oldest})")
        queue: asyncio.Queue[list[Event] | None] = asyncio.Queue()
        for events in self._log[start_revision - oldest :]:
            mine = [e for e in events if e.kv.key.startswith(prefix)]
            if mine:
                queue.put_nowait(mine)
        entry = (prefix, queue)
        self._watchers.append(entry)
        try:
            while True:
                batch = await queue.get()
                if batch is None:
                    return
                yield batch
        finally:
            if entry in self._watchers:
                self._watchers.remove(entry)

    async def txn(
        self, compares: builtins.list[Compare], ops: builtins.list[Op], fence: Fence | None = None
    ) -> TxnResult:
        if len(ops) > MAX_TXN_OPS:
            raise InvalidArgument(f"too many operations in one transaction: {len(ops)}")
        if fence is not None:
            holder = self._data.get(fence.key)
            if holder is None or holder.create_revision != fence.create_revision:
                return TxnResult(False, self._revision, fenced=True)
        for cmp in compares:
            current = self._data.get(cmp.key)
            if (current.mod_revision if current else 0) != cmp.mod_revision:
                return TxnResult(False, self._revision)
        self._revision += 1
        rev = self._revision
        events: list[Event] = []
        for op in ops:
            if op.value is None:
                old = self._data.pop(op.key, None)
                if old is not None:
                    events.append(Event(EventType.DELETE, KV(op.key, b"", rev, 0), rev))
            else:
                old = self._data.get(op.key)
                kv = KV(op.key, op.value, rev, old.create_revision if old else rev)
                self._data[op.key] = kv
                events.append(Event(EventType.PUT, kv, rev))
        self._log.append(events)
        if len(self._log) > self._history:
            del self._log[: len(self._log) - self._history]
        for prefix, queue in self._watchers:
            mine = [e for e in events if e.kv.key.startswith(prefix)]
            if mine:
                queue.put_nowait(mine)
        return TxnResult(True, rev)
