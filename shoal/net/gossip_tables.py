"""The replicated tables: key -> value per table, merged by Lamport version (pure state).

Every entry carries the node that wrote it last (its owner) and a Lamport version; of two
versions of an entry the higher ``(version, owner, deleted)`` wins everywhere, so replicas agree
whatever the order news arrives in. A delete is a tombstone (value None) that wins over older sets
and is forgotten after a while (``reap``). The entries of a member declared dead or left are
dropped without tombstones (``drop_owner``); the membership refuses them afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shoal.net.gossip_wire import DigestItem, EntryMsg

__all__ = ["Entry", "Event", "Tables"]

Event = tuple[str, str, bytes | None]  # (table, key, value or None when it went away)


@dataclass(slots=True)
class Entry:
    value: bytes | None  # None: a tombstone
    owner: str
    version: int
    stamp: float  # loop time it was stored here (tombstones are reaped by it)

    def rank(self) -> tuple[int, str, bool]:
        return self.version, self.owner, self.value is None


def _rank(msg: EntryMsg) -> tuple[int, str, bool]:
    return msg.version, msg.owner, msg.value is None


class Tables:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.clock = 0  # Lamport: above every version seen
        self._tables: dict[str, dict[str, Entry]] = {}

    def local(self, table: str, key: str, value: bytes | None,
              now: float) -> tuple[EntryMsg, Event | None]:
        """A write by this node: the entry to broadcast, and the visible change."""
        self.clock += 1
        msg = EntryMsg(table, key, value, self.node_id, self.clock)
        return msg, self.merge(msg, now)[1]

    def merge(self, msg: EntryMsg, now: float) -> tuple[bool, Event | None]:
        """Store ``msg`` if it is newer than what is here: whether it was stored, and the
        visible change (a value that appeared, changed or went away), if any."""
        self.clock = max(self.clock, msg.version)
        rows = self._tables.setdefault(msg.table, {})
        cur = rows.get(msg.key)
        if cur is not None and cur.rank() >= _rank(msg):
            return False, None
        rows[msg.key] = Entry(msg.value, msg.owner, msg.version, now)
        before = None if cur is None else cur.value
        if before == msg.value:
            return True, None
        return True, (msg.table, msg.key, msg.value)

    def newer(self, msg: EntryMsg) -> bool:
        cur = self._tables.get(msg.table, {}).get(msg.key)
        return cur is None or cur.rank() < _rank(msg)

    def get(self, table: str, key: str) -> Entry | None:
        return self._tables.get(table, {}).get(key)

    def table(self, table: str) -> dict[str, bytes]:
        return {k: e.value for k, e in self._tables.get(table, {}).items() if e.value is not None}

    def names(self) -> list[str]:
        return [t for t, rows in self._tables.items() if any(e.value is not None
                                                             for e in rows.values())]

    def msg(self, table: str, key: str) -> EntryMsg | None:
        e = self.get(table, key)
        return None if e is None else EntryMsg(table, key, e.value, e.owner, e.version)

    def all_msgs(self, keep: Callable[[EntryMsg], bool] = lambda m: True) -> list[EntryMsg]:
        return [m for t, rows in self._tables.items() for k, e in rows.items()
                if keep(m := EntryMsg(t, k, e.value, e.owner, e.version))]

    def digest(self) -> list[DigestItem]:
        return [DigestItem(t, k, e.owner, e.version, e.value is None)
                for t, rows in self._tables.items() for k, e in rows.items()]

    def diff(self, digest: list[DigestItem]) -> tuple[list[EntryMsg], list[tuple[str, str]]]:
        """Against a peer's digest: the entries it lacks (or has older), and the keys it has
        newer than here."""
        theirs = {(d.table, d.key): (d.version, d.owner, d.deleted) for d in digest}
        send = [m for m in self.all_msgs()
                if (r := theirs.get((m.table, m.key))) is None or r < _rank(m)]
        want = []
        for d in digest:
            cur = self.get(d.table, d.key)
            if cur is None or cur.rank() < (d.version, d.owner, d.deleted):
                want.append((d.table, d.key))
        return send, want

    def owned_by(self, owner: str) -> list[EntryMsg]:
        return self.all_msgs(lambda m: m.owner == owner and m.value is not None)

    def drop_owner(self, owner: str) -> list[Event]:
        """Forget every entry ``owner`` wrote (it is dead or left): the values that went away."""
        events: list[Event] = []
        for table, rows in self._tables.items():
            for key in [k for k, e in rows.items() if e.owner == owner]:
                if rows.pop(key).value is not None:
                    events.append((table, key, None))
        return events

    def reap(self, before: float) -> int:
        """Forget tombstones stored before ``before``; how many."""
        count = 0
        for table in list(self._tables):
            rows = self._tables[table]
            for key in [k for k, e in rows.items() if e.value is None and e.stamp < before]:
                del rows[key]
                count += 1
            if not rows:
                del self._tables[table]
        return count
