"""What a node may report over its session, checked before any of it reaches the store.

A node's messages are decoded into the protocol's types (``shoal.model.dispatch``), which say
less than Docker's Go types: Python's ``int`` has no width, a timestamp is a string, a task's
PortStatus a dict. A value the docker CLI cannot read back (``json: cannot unmarshal number ...
into ... of type int64``, ``parsing time``) would break every ``node ls`` or ``service ps`` once
stored, so the dispatcher refuses it here: ``check_register`` for a Register's description,
``check_status`` for one task's reported status, ``check_logs`` for the lines of a log batch (a
time no timestamp can show would fail ``service logs -t``), ``check_addr`` for an advertised
address. Called by the dispatcher only.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any

import msgspec

from shoal.errors import InvalidArgument
from shoal.model import codec
from shoal.model.dispatch import LogEntry
from shoal.model.objects import NodeDescription, TaskStatus
from shoal.model.specs import PortConfig

__all__ = ["check_addr", "check_logs", "check_register", "check_status"]

_I64 = (-(2**63), 2**63 - 1)
# Go's time.RFC3339Nano, as encoding/json parses a time.Time
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


class _PortStatus(msgspec.Struct, rename="pascal", kw_only=True):
    """Docker's swarm.PortStatus."""

    ports: list[PortConfig] | None = None


def _int_out_of_range(value: Any) -> int | None:
    """The first integer in ``value`` (builtins) outside Go's int64, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if not _I64[0] <= value <= _I64[1] else None
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        found = _int_out_of_range(child)
        if found is not None:
            return found
    return None


def _check_ints(obj: Any, what: str) -> None:
    bad = _int_out_of_range(msgspec.to_builtins(obj))
    if bad is not None:
        raise InvalidArgument(f"invalid {what}: number {bad} overflows int64")


def _check_time(text: str, what: str) -> None:
    if _RFC3339.fullmatch(text) is None:
        raise InvalidArgument(f"invalid {what}: timestamp {text[:40]!r} is not RFC 3339")
    try:
        datetime.fromisoformat(text[:19])  # month 13, day 32, hour 25...
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what}: timestamp {text[:40]!r}: {exc}") from None


def check_register(description: NodeDescription) -> None:
    """InvalidArgument when the node's description holds what Docker's Node type cannot."""
    _check_ints(description, "node description")


def check_status(status: TaskStatus) -> None:
    """InvalidArgument when a reported task status holds what Docker's Task type cannot."""
    _check_ints(status, "task status")
    _check_time(status.timestamp, "task status")
    if status.port_status is not None:
        codec.decode(status.port_status, _PortStatus, what="task status PortStatus")


_LAST_NS = 253402300799 * 10**9  # 9999-12-31T23:59:59Z: the last time Go's RFC 3339 writes


def check_logs(entries: list[LogEntry]) -> None:
    """InvalidArgument when a log line has no stream (1 or 2) or a time no timestamp can show."""
    for entry in entries:
        if entry.stream not in (1, 2):
            raise InvalidArgument(f"invalid log entry of task {entry.task_id[:64]!r}: stream {entry.stream}")
        if not 0 <= entry.time <= _LAST_NS:
            raise InvalidArgument(f"invalid log entry of task {entry.task_id[:64]!r}: time {entry.time}")


def check_addr(addr: str) -> None:
    """An advertised address is empty (the connection's is taken) or an IP address."""
    if addr:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise InvalidArgument(f"invalid advertise address {addr[:64]!r}: not an IP address") from None
