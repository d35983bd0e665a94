"""Object IDs: 25-character base-36 strings from 17 random bytes, as swarmkit's identity.NewID."""

from __future__ import annotations

import secrets
from typing import NewType

__all__ = ["NetworkID", "NodeID", "ServiceID", "TaskID", "base36", "new_id"]

NodeID = NewType("NodeID", str)
ServiceID = NewType("ServiceID", str)
TaskID = NewType("TaskID", str)
NetworkID = NewType("NetworkID", str)

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(value: int, width: int) -> str:
    """``value`` in base 36, left-padded with zeros to ``width`` characters."""
    out = []
    while value:
        value, rem = divmod(value, 36)
        out.append(_DIGITS[rem])
    return "".join(reversed(out)).rjust(width, "0")


def new_id() -> str:
    return base36(int.from_bytes(secrets.token_bytes(17), "big"), 25)[-25:]
