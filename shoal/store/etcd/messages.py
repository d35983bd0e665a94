"""etcd v3 JSON-gateway messages: typed requests and results, and the error mapping.

Held here so ``client.py`` stays about transport. The gateway (grpc-gateway in etcd 3.4) speaks
protobuf JSON: bytes are base64, int64 fields come back as strings, and zero values are left out
(a failed txn has no ``succeeded``; a PUT event has no ``type``). Results are frozen dataclasses
decoded by msgspec with ``strict=False`` (which turns ``"42"`` into ``42``); the few camelCase
messages go through a private ``msgspec.Struct`` with ``rename``. Both clients (``client.py`` and
``grpc_client.py``) answer with these dataclasses; callers import them from here. Errors:
``_errors.py``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import msgspec

from shoal import errors

T = TypeVar("T")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseHeader:
    cluster_id: int = 0
    member_id: int = 0
    revision: int = 0
    raft_term: int = 0


@dataclass(frozen=True, slots=True)
class HeaderOnly:
    """An answer whose only field of interest is the header (compaction)."""

    header: ResponseHeader = ResponseHeader()


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes = b""
    value: bytes = b""
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    lease: int = 0


@dataclass(frozen=True, slots=True)
class RangeResponse:
    header: ResponseHeader = ResponseHeader()
    kvs: tuple[KeyValue, ...] = ()
    more: bool = False
    count: int = 0


@dataclass(frozen=True, slots=True)
class PutResponse:
    header: ResponseHeader = ResponseHeader()
    prev_kv: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class DeleteRangeResponse:
    header: ResponseHeader = ResponseHeader()
    deleted: int = 0
    prev_kvs: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True)
class ResponseOp:
    response_range: RangeResponse | None = None
    response_put: PutResponse | None = None
    response_delete_range: DeleteRangeResponse | None = None


@dataclass(frozen=True, slots=True)
class TxnResponse:
    header: ResponseHeader = ResponseHeader()
    succeeded: bool = False
    responses: tuple[ResponseOp, ...] = ()


@dataclass(frozen=True, slots=True)
class WatchEvent:
    kv: KeyValue = KeyValue()  # for DELETE: key, and mod_revision = the delete's revision
    type: Literal["PUT", "DELETE"] = "PUT"
    prev_kv: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class WatchResult:
    """One message of the watch stream (``created``, events, progress or cancellation)."""

    header: ResponseHeader = ResponseHeader()
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
    events: tuple[WatchEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamLine:
    result: WatchResult | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    id: int
    ttl: int  # seconds left; the server's answer, not the request


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    name: str  # empty until the added member has started
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool


@dataclass(frozen=True, slots=True)
class Status:
    header: ResponseHeader
    version: str
    db_size: int
    db_size_in_use: int
    leader: int  # member id, 0 while there is no leader
    raft_index: int
    raft_term: int
    raft_applied_index: int
    is_learner: bool
    errors: tuple[str, ...]  # active alarms, e.g. "NOSPACE"


class _Lease(msgspec.Struct, rename={"id": "ID", "ttl": "TTL"}):
    id: int = 0
    ttl: int = 0
    error: str = ""


class _KeepAlive(msgspec.Struct):
    result: _Lease | None = None
    error: dict[str, Any] | None = None


class _Member(msgspec.Struct, rename="camel"):
    id: int = msgspec.field(default=0, name="ID")
    name: str = ""
    peer_urls: list[str] = msgspec.field(default_factory=list, name="peerURLs")
    client_urls: list[str] = msgspec.field(default_factory=list, name="clientURLs")
    is_learner: bool = False

    def public(self) -> Member:
        return Member(self.id, self.name, tuple(self.peer_urls), tuple(self.client_urls),
                      self.is_learner)


class _Members(msgspec.Struct):
    header: ResponseHeader = ResponseHeader()
    member: _Member | None = None
    members: list[_Member] = msgspec.field(default_factory=list)


class _Status(msgspec.Struct, rename="camel"):
    header: ResponseHeader = ResponseHeader()
    version: str = ""
    db_size: int = 0
    db_size_in_use: int = 0
    leader: int = 0
    raft_index: int = 0
    raft_term: int = 0
    raft_applied_index: int = 0
    is_learner: bool = False
    errors: list[str] = msgspec.field(default_factory=list)

    def public(self) -> Status:
        return Status(self.header, self.version, self.db_size, self.db_size_in_use, self.leader,
                      self.raft_index, self.raft_term, self.raft_applied_index, self.is_learner,
                      tuple(self.errors))


def decode(data: bytes, kind: type[T]) -> T:
    """Decode a gateway answer into ``kind``; a malformed answer is a bug (ShoalError)."""
    try:
        return msgspec.json.decode(data, type=kind, strict=False)
    except msgspec.ValidationError as e:
        raise errors.ShoalError(f"etcd sent an unexpected {kind.__name__}: {e}") from e


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxnCompare:
    """``target`` of ``key`` compared to ``value`` (an int, or bytes for VALUE)."""

    key: bytes
    target: Literal["VERSION", "CREATE", "MOD", "VALUE", "LEASE"]
    value: int | bytes
    result: Literal["EQUAL", "GREATER", "LESS", "NOT_EQUAL"] = "EQUAL"

    def encode(self) -> dict[str, Any]:
        field = _COMPARE_FIELDS[self.target]
        value = b64(self.value) if isinstance(self.value, bytes) else str(self.value)
        return {"key": b64(self.key), "target": self.target, "result": self.result, field: value}


_COMPARE_FIELDS = {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision",
                   "VALUE": "value", "LEASE": "lease"}


@dataclass(frozen=True, slots=True)
class PutOp:
    key: bytes
    value: bytes
    lease: int = 0

    def encode(self) -> dict[str, Any]:
        put: dict[str, Any] = {"key": b64(self.key), "value": b64(self.value)}
        if self.lease:
            put["lease"] = str(self.lease)
        return {"request_put": put}


def _key_range(key: bytes, range_end: bytes) -> dict[str, str]:
    body = {"key": b64(key)}
    if range_end:
        body["range_end"] = b64(range_end)
    return body


@dataclass(frozen=True, slots=True)
class DeleteOp:
    key: bytes
    range_end: bytes = b""

    def encode(self) -> dict[str, Any]:
        return {"request_delete_range": _key_range(self.key, self.range_end)}


@dataclass(frozen=True, slots=True)
class RangeOp:
    key: bytes
    range_end: bytes = b""

    def encode(self) -> dict[str, Any]:
        return {"request_range": _key_range(self.key, self.range_end)}


TxnOp = PutOp | DeleteOp | RangeOp


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that makes [prefix, end) every key starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\x00"  # etcd: "every key >= key"
    return stripped[:-1] + bytes([stripped[-1] + 1])
