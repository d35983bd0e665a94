"""The one mapping from etcd's errors (gRPC codes, via the JSON gateway) to Shoal's tree.

Called by ``client.py`` (non-200 answers) and ``_stream.py`` (error lines of a watch stream).
Compaction is the one special case: it becomes ``shoal.store.backend.Compacted`` so the store
re-lists. The other is ``StaleAuthRevision``: with etcd's authentication on, a request checked
against users that changed while it was in flight (a manager joined or was demoted) is refused
unapplied, and the client sends it again.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shoal import errors
from shoal.store.backend import Compacted

# --- errors -----------------------------------------------------------------------------------


class StaleAuthRevision(errors.Unavailable):
    """etcd refused a request, without applying it, because its users changed meanwhile."""


_STALE_AUTH = "revision of auth store is old"  # etcd's ErrGRPCAuthOldRevision

_BY_GRPC_CODE: dict[int, type[errors.ShoalError]] = {
    1: errors.Unavailable,  # CANCELLED
    3: errors.InvalidArgument,  # too many ops, duplicate key, request too large
    4: errors.Unavailable,  # DEADLINE_EXCEEDED: request timed out
    5: errors.NotFound,  # lease or member not found
    6: errors.Conflict,  # ALREADY_EXISTS
    7: errors.PermissionDenied,
    8: errors.Unavailable,  # RESOURCE_EXHAUSTED: NOSPACE alarm, too many requests
    9: errors.FailedPrecondition,  # member not promotable, peer URL exists
    10: errors.Unavailable,  # ABORTED
    11: errors.InvalidArgument,  # OUT_OF_RANGE: future revision (compacted is special-cased)
    12: errors.Unimplemented,
    14: errors.Unavailable,  # no leader, leader changed, unhealthy cluster, not capable
    16: errors.PermissionDenied,  # UNAUTHENTICATED
}


# UNKNOWN errors that are a lost connection to etcd, not a refusal: etcd 3.5's gateway ends a
# watch with "server closed the stream without sending trailers" when its member stops (3.4's
# just hangs up), and a stream to a member that is going says "transport is closing".
_LOST_CONNECTION = ("closed the stream without sending trailers", "transport is closing",
                    "error reading from server")
# UNKNOWN errors that are etcd giving up on a request it could not commit in time: a member cut
# off from its peers answers a txn with its own context's "context deadline exceeded" (code 2,
# not 4). Unavailable, as "etcdserver: request timed out" is (its outcome unknown), so the API
# answers Docker's no-leader 503 instead of a 500 (seen in tests/integration/test_partitions.py).
_SERVER_TIMEOUT = ("context deadline exceeded", "context canceled")


def grpc_error(code: int, message: str, where: str) -> errors.ShoalError:
    """The one mapping from an etcd (gRPC) error to Shoal's tree."""
    text = f"etcd {where}: {message}"
    if code == 11 and "compacted" in message:
        return Compacted(text)
    if _STALE_AUTH in message:
        return StaleAuthRevision(text)
    if code == 2 and any(lost in message for lost in (*_LOST_CONNECTION, *_SERVER_TIMEOUT)):
        return errors.Unavailable(text)
    return _BY_GRPC_CODE.get(code, errors.ShoalError)(text)


def error_from_body(status: int, body: bytes, where: str) -> errors.ShoalError:
    """Map a non-200 gateway answer ``{"error", "message", "code"}``."""
    try:
        doc = msgspec.json.decode(body, type=dict[str, Any])
        return grpc_error(int(doc.get("code", 2)), str(doc.get("message") or doc["error"]), where)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, ValueError):
        kind = errors.Unavailable if status >= 500 else errors.ShoalError
        return kind(f"etcd {where}: HTTP {status}: {body[:200]!r}")


def error_from_stream(error: dict[str, Any], where: str) -> errors.ShoalError:
    """Map an ``{"error": {"grpc_code", "message"}}`` line of a streaming call."""
    return grpc_error(int(error.get("grpc_code", 2)), str(error.get("message", error)), where)
