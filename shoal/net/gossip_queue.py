"""The retransmit queue: updates waiting to be piggybacked on outgoing datagrams.

Each member or entry update is sent a bounded number of times (``retransmit_mult * ceil(log10(n +
1))`` for n live members, memberlist's rule), least-sent first; a newer update about the same member
or key replaces the queued one. Updates are packed into a datagram until its byte budget is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shoal.net.gossip_wire import EntryMsg, MemberMsg, encode

__all__ = ["BroadcastQueue", "retransmit_limit"]

# msgpack array headers of the two update lists, at most 3 bytes each when a list has <= 65535
# items (a datagram holds far fewer)
LIST_OVERHEAD = 6


def retransmit_limit(mult: int, live: int) -> int:
    return mult * max(1, math.ceil(math.log10(live + 1)))


@dataclass(slots=True)
class _Item:
    msg: MemberMsg | EntryMsg
    size: int
    sent: int
    order: int


class BroadcastQueue:
    def __init__(self) -> None:
        self._items: dict[tuple[str, ...], _Item] = {}
        self._order = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, msg: MemberMsg | EntryMsg) -> None:
        ident = ("m", msg.id) if isinstance(msg, MemberMsg) else ("e", msg.table, msg.key)
        self._order += 1
        self._items[ident] = _Item(msg, len(encode(msg)), 0, self._order)

    def take(self, budget: int, limit: int) -> tuple[list[MemberMsg], list[EntryMsg]]:
        """Updates that fit in ``budget`` bytes, each counted as sent once more; items sent
        ``limit`` times leave the queue."""
        members: list[MemberMsg] = []
        entries: list[EntryMsg] = []
        budget -= LIST_OVERHEAD
        full = budget
        for ident, item in sorted(self._items.items(), key=lambda kv: (kv[1].sent, -kv[1].order)):
            if item.size > full:  # never fits a datagram: push-pull carries it
                del self._items[ident]
                continue
            if item.size > budget:
                continue
            budget -= item.size
            if isinstance(item.msg, MemberMsg):
                members.append(item.msg)
            else:
                entries.append(item.msg)
            item.sent += 1
            if item.sent >= limit:
                del self._items[ident]
        return members, entries
