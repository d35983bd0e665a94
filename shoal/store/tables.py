"""The in-memory tables and their domain indexes: the fast, local read side of the store.

One ``Tables`` per manager, fed only by the store's apply loop (backend watch events), read by
everyone through ``store.view()``. Objects in it are never mutated; writers copy first.
Indexes: every kind by ID; services, networks, secrets and configs by name; nodes by hostname
(case-insensitive); tasks by service, by node and by desired state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TypeVar

from shoal.errors import InvalidArgument, NotFound
from shoal.model.objects import (
    KINDS,
    Cluster,
    Config,
    Network,
    Node,
    Secret,
    Service,
    StoredObject,
    Task,
)
from shoal.model.states import TaskState

__all__ = ["Tables"]

O = TypeVar("O", bound=StoredObject)
K = TypeVar("K", str, TaskState)


def _name_of(obj: StoredObject) -> str | None:
    if isinstance(obj, (Service, Network, Secret, Config)):
        return obj.spec.name
    if isinstance(obj, Node):
        return obj.description.hostname.lower()
    if isinstance(obj, Cluster):
        return obj.spec.name or "default"
    return None


class Tables:
    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, StoredObject]] = {kind: {} for kind in KINDS}
        self._names: dict[str, dict[str, set[str]]] = {kind: defaultdict(set) for kind in KINDS}
        self._tasks_by_service: dict[str, set[str]] = defaultdict(set)
        self._tasks_by_node: dict[str, set[str]] = defaultdict(set)
        self._tasks_by_desired: dict[TaskState, set[str]] = defaultdict(set)

    # -- apply (the store's apply loop is the only caller) -------------------------------
    def put(self, obj: StoredObject) -> StoredObject | None:
        old = self.by_id[obj.kind].get(obj.id)
        if old is not None:
            self._unindex(old)
        self.by_id[obj.kind][obj.id] = obj
        self._index(obj)
        return old

    def delete(self, kind: str, obj_id: str) -> StoredObject | None:
        old = self.by_id[kind].pop(obj_id, None)
        if old is not None:
            self._unindex(old)
        return old

    def _index(self, obj: StoredObject) -> None:
        name = _name_of(obj)
        if name is not None:
            self._names[obj.kind][name].add(obj.id)
        if isinstance(obj, Task):
            self._tasks_by_service[obj.service_id].add(obj.id)
            self._tasks_by_node[obj.node_id].add(obj.id)
            self._tasks_by_desired[obj.desired_state].add(obj.id)

    def _unindex(self, obj: StoredObject) -> None:
        name = _name_of(obj)
        if name is not None:
            ids = self._names[obj.kind].get(name)
            if ids is not None:
                ids.discard(obj.id)
                if not ids:
                    del self._names[obj.kind][name]
        if isinstance(obj, Task):
            _discard(self._tasks_by_service, obj.service_id, obj.id)
            _discard(self._tasks_by_node, obj.node_id, obj.id)
            _discard(self._tasks_by_desired, obj.desired_state, obj.id)

    # -- reads -----------------------------------------------------------------------------
    def get(self, cls: type[O], obj_id: str) -> O | None:
        obj = self.by_id[cls.kind].get(obj_id)
        return obj  # type: ignore[return-value]

    def all(self, cls: type[O]) -> list[O]:
        return list(self.by_id[cls.kind].values())  # type: ignore[arg-type]

    def by_name(self, cls: type[O], name: str) -> list[O]:
        key = name.lower() if cls is Node else name
        table = self.by_id[cls.kind]
        return [table[i] for i in self._names[cls.kind].get(key, ())]  # type: ignore[misc]

    def _tasks(self, ids: Iterable[str]) -> list[Task]:
        table = self.by_id["tasks"]
        return [table[i] for i in ids]  # type: ignore[misc]

    def tasks_of_service(self, service_id: str) -> list[Task]:
        return self._tasks(self._tasks_by_service.get(service_id, ()))

    def tasks_of_node(self, node_id: str) -> list[Task]:
        return self._tasks(self._tasks_by_node.get(node_id, ()))

    def tasks_by_desired_state(self, desired: TaskState) -> list[Task]:
        return self._tasks(self._tasks_by_desired.get(desired, ()))

    def count(self, cls: type[StoredObject]) -> int:
        return len(self.by_id[cls.kind])

    def cluster(self) -> Cluster | None:
        for obj in self.by_id["clusters"].values():
            return obj  # type: ignore[return-value]
        return None

    def resolve(self, cls: type[O], ref: str, *, what: str | None = None) -> O:
        """An object by full ID, exact name, or unique ID prefix, in that order (as Docker)."""
        what = what or cls.kind.rstrip("s")
        table = self.by_id[cls.kind]
        if ref in table:
            return table[ref]  # type: ignore[return-value]
        named = self.by_name(cls, ref)
        if len(named) == 1:
            return named[0]
        if not ref:
            raise NotFound(f"{what} {ref} not found")
        matches = [obj for oid, obj in table.items() if oid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]  # type: ignore[return-value]
        if len(matches) > 1 or len(named) > 1:
            n = max(len(matches), len(named))
            raise InvalidArgument(f"{what} {ref} is ambiguous ({n} matches found)")
        raise NotFound(f"{what} {ref} not found")


def _discard(index: dict[K, set[str]], key: K, obj_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(obj_id)
        if not ids:
            del index[key]
