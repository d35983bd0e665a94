"""SWIM membership rules: what a node believes about every member, and how news changes it.

Pure state (no I/O, no clock of its own) so the rules can be read in one place. A member's
incarnation is a counter only the member itself raises, to refute a suspicion or a death; news
about a member wins by incarnation, and at equal incarnation SUSPECT beats ALIVE and DEAD/LEFT
beat both. Dead and left members are kept (``reap`` drops them later) so that a stale ALIVE with
an old incarnation cannot bring them back.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.net.gossip_wire import MemberMsg, State

__all__ = ["Change", "Member", "Membership"]

GONE = (State.DEAD, State.LEFT)


@dataclass(slots=True)
class Member:
    id: str
    host: str
    port: int
    inc: int
    state: State
    since: float  # loop time of the last state change

    def msg(self) -> MemberMsg:
        return MemberMsg(self.id, self.host, self.port, self.inc, self.state)

    @property
    def addr(self) -> tuple[str, int]:
        return self.host, self.port


@dataclass(frozen=True, slots=True)
class Change:
    """News that changed this node's view: ``old`` is None for a member first heard of;
    ``refuted`` when the news was about this node and it raised its incarnation to deny it."""

    member: Member
    old: State | None
    refuted: bool = False


class Membership:
    def __init__(self, me: Member) -> None:
        self.me = me
        self.leaving = False
        self._others: dict[str, Member] = {}

    def get(self, node_id: str) -> Member | None:
        return self.me if node_id == self.me.id else self._others.get(node_id)

    def others(self, *states: State) -> list[Member]:
        return [m for m in self._others.values() if not states or m.state in states]

    def all(self) -> list[Member]:
        return [self.me, *self._others.values()]

    def live_count(self) -> int:
        """Members believed up (alive or suspect), this node included."""
        return 1 + sum(1 for m in self._others.values() if m.state not in GONE)

    def is_gone(self, node_id: str) -> bool:
        m = self._others.get(node_id)
        return m is not None and m.state in GONE

    def apply(self, msg: MemberMsg, now: float) -> Change | None:
        """Apply news about a member; the change it made, or None if it was old news."""
        if msg.id == self.me.id:
            return self._about_me(msg)
        cur = self._others.get(msg.id)
        if cur is None:
            m = Member(msg.id, msg.host, msg.port, msg.inc, msg.state, now)
            self._others[msg.id] = m
            return Change(m, None)
        old = cur.state
        if msg.state == State.ALIVE:
            accept = msg.inc > cur.inc
        elif msg.state == State.SUSPECT:
            accept = (old == State.ALIVE and msg.inc >= cur.inc) or (
                old == State.SUSPECT and msg.inc > cur.inc)
        elif msg.state == State.DEAD:
            accept = old not in GONE and msg.inc >= cur.inc
        else:  # LEFT
            accept = old != State.LEFT and msg.inc >= cur.inc
        if not accept:
            return None
        cur.host, cur.port, cur.inc = msg.host, msg.port, msg.inc
        if msg.state != old:
            cur.state, cur.since = msg.state, now
        return Change(cur, old)

    def _about_me(self, msg: MemberMsg) -> Change | None:
        if self.leaving:
            return None
        if msg.inc < self.me.inc or (msg.state == State.ALIVE and msg.inc == self.me.inc
                                     and (msg.host, msg.port) == self.me.addr):
            return None
        # Someone believes I am suspect or gone, or knew a past life of mine (a higher
        # incarnation, or another address): deny it with a newer incarnation.
        self.me.inc = msg.inc + 1
        return Change(self.me, State.ALIVE, refuted=True)

    def reap(self, before: float) -> list[str]:
        """Forget dead and left members whose state changed before ``before``."""
        gone = [m.id for m in self._others.values() if m.state in GONE and m.since < before]
        for node_id in gone:
            del self._others[node_id]
        return gone
