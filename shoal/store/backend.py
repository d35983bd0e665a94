"""The contract between the store cache and its durable, replicated copy.

The store (shoal.store.memory) keeps every object in memory with indexes; a Backend is the
replicated key/value log underneath it. Two implementations exist:

* ``shoal.store.etcd.EtcdBackend``: etcd, the store of record on managers;
* ``shoal.store.membackend.MemoryBackend``: a process-local log for unit tests and in-process
  benchmarks (same semantics, no durability).

Keys are ``/shoal/v1/<kind>/<id>`` strings, values are opaque bytes (msgspec JSON of the object).
Every successful write advances one global revision; a key's ``mod_revision`` is the revision of its
last write and is what the API shows as ``Version.Index``.

Contract (as Patroni's AbstractDCS states its own):

* ``list`` is a consistent read at one revision, returned with the objects.
* ``watch`` yields every change from ``start_revision`` on (inclusive, as etcd), in revision order, grouped by revision
  (one list per committed transaction). If ``start_revision`` was compacted it raises
  ``Compacted``; the caller re-lists.
* ``txn`` is atomic and compare-and-set: all compares hold and every op is applied at one new
  revision, or nothing is applied and ``succeeded`` is False. An optional ``fence`` (the leader
  key's create_revision, see shoal.manager.leadership) must hold as well; when it is what failed,
  ``fenced`` is True, so a deposed leader learns that it was deposed rather than of a conflict. At most ``MAX_TXN_OPS`` ops and about
  ``MAX_TXN_BYTES`` bytes per call (more is InvalidArgument); the store splits larger batches.
* Every method is time-bounded: a backend that cannot answer within its timeout raises
  ``shoal.errors.Unavailable``; it never hangs.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum

from shoal.errors import ShoalError

__all__ = [
    "KV",
    "MAX_TXN_BYTES",
    "MAX_TXN_OPS",
    "Backend",
    "Compacted",
    "Compare",
    "Event",
    "EventType",
    "Fence",
    "Op",
    "TxnResult",
]

# etcd's defaults: 128 operations per transaction, 1.5 MiB per request; keep a margin.
MAX_TXN_OPS = 120
MAX_TXN_BYTES = 1_200_000


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


class EventType(Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    kv: KV  # for DELETE: value is b"" and mod_revision is the revision of the delete
    revision: int


@dataclass(frozen=True, slots=True)
class Compare:
    """``key``'s mod_revision must equal ``mod_revision``; 0 means the key must not exist."""

    key: str
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Fence:
    """``key`` must exist with this ``create_revision`` (the leader's term)."""

    key: str
    create_revision: int


@dataclass(frozen=True, slots=True)
class Op:
    """A put (``value`` is bytes) or a delete (``value`` is None)."""

    key: str
    value: bytes | None


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    revision: int  # the store revision after the call (the new one when it succeeded)
    fenced: bool = False  # not applied because the fence did not hold


class Compacted(ShoalError):
    """The watch start revision is older than what the backend keeps; re-list."""


class Backend(abc.ABC):
    """A replicated, revisioned key/value log. See the module docstring for the contract."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect (and, for a supervised engine, make sure it is serving)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; idempotent."""

    @abc.abstractmethod
    async def list(self, prefix: str) -> tuple[int, builtins.list[KV]]:
        """Every key under ``prefix`` at one revision, and that revision."""

    @abc.abstractmethod
    async def revision(self) -> int:
        """The latest committed revision, read through the quorum (a read barrier)."""

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[builtins.list[Event]]:
        """Changes under ``prefix`` from ``start_revision`` on, one list per revision."""

    @abc.abstractmethod
    async def txn(
        self, compares: builtins.list[Compare], ops: builtins.list[Op], fence: Fence | None = None
    ) -> TxnResult:
        """Apply ``ops`` at one new revision if every compare (and the fence) holds."""
