"""Placement constraints: ``key==value`` / ``key!=value`` expressions over a node (swarmkit
manager/constraint). Parsed by controlapi (to refuse bad ones), matched by the scheduler and the
global orchestrator.

Keys: node.id, node.hostname, node.role, node.platform.os, node.platform.arch,
node.labels.<k> (from Spec.Labels), engine.labels.<k> (from Description.Engine.Labels).
Values compare case-insensitively; a missing label never equals and always differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shoal.errors import InvalidArgument
from shoal.model.objects import Node

__all__ = ["Constraint", "node_matches", "parse"]

_EXPR = re.compile(r"^\s*([^=!<>\s]+)\s*(==|!=)\s*(.*?)\s*$")
_KEY = re.compile(r"^[a-z_][a-z0-9\-_.]+$", re.IGNORECASE)
_FIXED = {"node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch", "node.ip"}


@dataclass(frozen=True, slots=True)
class Constraint:
    key: str
    equal: bool
    value: str

    def matches(self, node: Node) -> bool:
        actual = _node_value(node, self.key)
        same = actual is not None and actual.lower() == self.value.lower()
        return same if self.equal else not same


def parse(exprs: list[str] | None) -> list[Constraint]:
    out = []
    for expr in exprs or []:
        m = _EXPR.match(expr)
        if m is None or not m.group(3):
            raise InvalidArgument(f"invalid constraint expression {expr!r}: expected key==value or key!=value")
        key, op, value = m.groups()
        if not _KEY.match(key):
            raise InvalidArgument(f"invalid constraint key {key!r}")
        if key.lower() not in _FIXED and not key.startswith(("node.labels.", "engine.labels.")):
            raise InvalidArgument(f"invalid constraint key {key!r}: unknown key")
        out.append(Constraint(key, op == "==", value))
    return out


def node_matches(constraints: list[Constraint], node: Node) -> bool:
    return all(c.matches(node) for c in constraints)


def _node_value(node: Node, key: str) -> str | None:
    lower = key.lower()
    if lower == "node.id":
        return node.id
    if lower == "node.hostname":
        return node.description.hostname
    if lower == "node.role":
        return node.spec.role
    if lower == "node.platform.os":
        return node.description.platform.os
    if lower == "node.platform.arch":
        return node.description.platform.architecture
    if lower == "node.ip":
        return node.status.addr
    if key.startswith("node.labels."):
        return (node.spec.labels or {}).get(key[len("node.labels.") :])
    if key.startswith("engine.labels."):
        return (node.description.engine.labels or {}).get(key[len("engine.labels.") :])
    return None
