"""The one mapping from etcd's errors to Shoal's tree, for what differs between etcd releases."""

from __future__ import annotations

import pytest

from shoal import errors
from shoal.store.backend import Compacted
from shoal.store.etcd._errors import error_from_stream, grpc_error


@pytest.mark.parametrize("message", [
    "server closed the stream without sending trailers",  # etcd 3.5's gateway, member stopped
    "rpc error: code = Unknown desc = transport is closing",
    "error reading from server: EOF",
])
def test_a_lost_connection_is_unavailable_not_a_failure(message: str) -> None:
    err = error_from_stream({"grpc_code": 2, "message": message}, "watch")
    assert type(err) is errors.Unavailable and message in str(err)


def test_other_unknown_errors_stay_failures_and_compaction_is_special() -> None:
    assert type(grpc_error(2, "something else", "range")) is errors.ShoalError
    assert isinstance(grpc_error(11, "mvcc: required revision has been compacted", "watch"), Compacted)
    assert type(grpc_error(14, "etcdserver: no leader", "txn")) is errors.Unavailable


@pytest.mark.parametrize("message", ["context deadline exceeded", "context canceled"])
def test_etcd_giving_up_on_a_request_is_unavailable(message: str) -> None:
    """A member cut off from its peers answers a txn with code 2 "context deadline exceeded"
    (seen in the partition tests): no quorum, the outcome unknown, a 503, not a 500."""
    err = grpc_error(2, message, "kv/txn")
    assert type(err) is errors.Unavailable and err.status == 503
