"""Swarm events: every manager turns the store's changes of services, nodes, networks, secrets
and configs into ``scope: swarm`` events in the node's event log (moby daemon/events.go
``generateClusterEvent``, fed by a SwarmKit watch on every manager daemon, leader or not;
workers have none, as in Docker).

Actions are create, update, remove; the time is the object's CreatedAt for a create, its
UpdatedAt for an update, now for a remove (moby ``eventTimestamp``). Attributes: ``name``
always (a node's spec name, else its hostname); a service update adds ``image.old/new``,
``replicas.old/new`` (replicated mode) and ``updatestate.new`` (the first UpdateStatus) or
``updatestate.old/new``; a node update adds ``availability``, ``role``, ``state``,
``leader`` and ``reachability`` old/new where they changed. Every write of a node is an
update event, even when none of those changed (as swarmkit's watch reports every write).

The store's watch gives each change with the object before it; a re-list after a compaction
gives every object as removed then created, which is folded here into updates of what changed
(by Version.Index), so a compaction is no burst of false removes. Started by the manager
(``Manager._serve``) with its store; runs until cancelled.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import datetime

from shoal.events import EventLog
from shoal.model.objects import Config, Network, Node, Secret, Service, StoredObject
from shoal.store.store import Store
from shoal.store.watch import Change, Subscription

__all__ = ["SwarmEvents", "convert"]

log = logging.getLogger(__name__)

WATCHED = (Service, Node, Network, Secret, Config)
_TYPES = {Service.kind: "service", Node.kind: "node", Network.kind: "network",
          Secret.kind: "secret", Config.kind: "config"}
_ZERO = "0001-01-01T00:00:00Z"
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)")


def _stamp(text: str) -> int:
    """An object's CreatedAt/UpdatedAt (RFC 3339, any fraction) in nanoseconds; now if none."""
    if not text or text == _ZERO:
        return time.time_ns()
    found = _RFC3339.fullmatch(text)
    if found is None:
        return time.time_ns()
    whole, frac, zone = found.groups()
    try:
        moment = datetime.fromisoformat(whole + ("+00:00" if zone in ("Z", "z") else zone))
    except ValueError:
        return time.time_ns()
    return int(moment.timestamp()) * 1_000_000_000 + int((frac + "0" * 9)[:9] or 0)


def _name(obj: StoredObject) -> str:
    if isinstance(obj, Node):
        return obj.spec.name or obj.description.hostname
    spec = getattr(obj, "spec", None)
    return str(getattr(spec, "name", "") or "")


def _changed(attrs: dict[str, str], key: str, old: str, new: str) -> None:
    if old != new:
        attrs[f"{key}.old"] = old
        attrs[f"{key}.new"] = new


def _service_update(attrs: dict[str, str], old: Service, new: Service) -> None:
    old_image = (old.spec.task_template.container_spec or {}).get("Image") or ""
    new_image = (new.spec.task_template.container_spec or {}).get("Image") or ""
    _changed(attrs, "image", str(old_image), str(new_image))
    old_rep, new_rep = old.spec.mode.replicated, new.spec.mode.replicated
    if old_rep is not None and new_rep is not None:
        _changed(attrs, "replicas", str(old_rep.replicas or 0), str(new_rep.replicas or 0))
    if new.update_status is not None:
        state = (new.update_status.state or "unknown").lower()
        if old.update_status is None:
            attrs["updatestate.new"] = state
        else:
            _changed(attrs, "updatestate", (old.update_status.state or "unknown").lower(), state)


def _node_update(attrs: dict[str, str], old: Node, new: Node) -> None:
    _changed(attrs, "availability", (old.spec.availability or "active").lower(),
             (new.spec.availability or "active").lower())
    _changed(attrs, "role", old.actual_role().lower(), new.actual_role().lower())
    _changed(attrs, "state", old.status.state.lower(), new.status.state.lower())
    if old.manager_status is not None and new.manager_status is not None:
        _changed(attrs, "leader", str(old.manager_status.leader).lower(),
                 str(new.manager_status.leader).lower())
        _changed(attrs, "reachability", old.manager_status.reachability.lower(),
                 new.manager_status.reachability.lower())


def convert(change: Change) -> tuple[str, str, str, dict[str, str], int] | None:
    """(type, action, actor ID, attributes, time in ns) of one store change, None for a kind
    Docker has no event for (tasks, the cluster)."""
    type_ = _TYPES.get(change.kind)
    if type_ is None:
        return None
    old, new = change.old, change.new
    if new is None:
        assert old is not None
        return type_, "remove", old.id, {"name": _name(old)}, time.time_ns()
    attrs = {"name": _name(new)}
    if old is None:
        return type_, "create", new.id, attrs, _stamp(new.created_at)
    if isinstance(new, Service) and isinstance(old, Service):
        _service_update(attrs, old, new)
    elif isinstance(new, Node) and isinstance(old, Node):
        _node_update(attrs, old, new)
    return type_, "update", new.id, attrs, _stamp(new.updated_at)


def fold(changes: list[Change]) -> Iterator[Change]:
    """The changes in order, with a remove and a later create of the same object at the same
    revision (the store's re-list) made one update, or nothing when the object is unchanged."""
    removed: dict[tuple[str, str], Change] = {}
    relisted: set[tuple[str, str]] = set()
    for change in changes:
        key = (change.kind, change.obj.id)
        if change.new is None:
            removed[key] = change
        elif change.old is None and key in removed and removed[key].revision == change.revision:
            relisted.add(key)
    for change in changes:
        key = (change.kind, change.obj.id)
        if key not in relisted:
            yield change
        elif change.new is not None:
            before = removed[key].old
            assert before is not None
            if before.version.index != change.new.version.index:
                yield Change(change.kind, before, change.new, change.revision)


class SwarmEvents:
    """A manager part: the store's watch into the event log."""

    def __init__(self, store: Store, events: EventLog) -> None:
        self._events = events
        # Subscribed at construction: the changes from here on are all seen.
        self._sub: Subscription = store.subscribe(WATCHED)

    def publish(self, changes: list[Change]) -> None:
        for change in fold(changes):
            event = convert(change)
            if event is not None:
                type_, action, actor, attrs, stamp = event
                self._events.publish(type_, action, actor, attrs, scope="swarm", time_nano=stamp)

    async def run(self) -> None:
        try:
            while True:
                self.publish(await self._sub.next())
        finally:
            self._sub.close()
