"""swarmkit's errors as dockerd shows them: the gRPC status inside the message."""

from __future__ import annotations

from shoal.errors import Conflict, InvalidArgument

__all__ = ["already_exists", "invalid"]


def invalid(desc: str) -> InvalidArgument:
    return InvalidArgument(f"rpc error: code = InvalidArgument desc = {desc}")


def already_exists(desc: str) -> Conflict:
    return Conflict(f"rpc error: code = AlreadyExists desc = {desc}")
