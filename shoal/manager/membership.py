"""A manager's own entry into and exit from the etcd membership (raft.md 5 and 8).

Join (a manager joining with the manager token, or a promoted worker): with its raft-CA
certificate (``POST /ca/raft``), the new manager asks the existing members to add it as a
learner, starts its etcd member with ``--initial-cluster-state existing``, and once the learner
has caught up promotes it to a voter. A learner does not count towards the quorum, so a member
that never starts does not weaken the swarm. etcd refuses a reconfiguration that would lose the
quorum, or while a member restarted less than 5 s ago ("unhealthy cluster"): those are retried
until ``deadline``.

Leave (``swarm leave --force`` on a manager): the member removes itself through the others.

``MemberProbe``: whether a member answers etcd's status in time (the role manager's
reachability, the elector's dead-leader check), with one client per member kept between probes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from shoal import aio
from shoal.errors import ShoalError, Unavailable
from shoal.store.etcd import EtcdAPI
from shoal.store.etcd.messages import Member

__all__ = ["MemberProbe", "add_learner", "initial_cluster", "promote", "remove_self"]

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY = 0.5  # seconds between attempts of a refused reconfiguration
_RETRY = aio.Backoff(initial=RETRY, cap=RETRY)  # fixed: no growth, no jitter


class MemberProbe:
    def __init__(self, connect: Callable[[str], EtcdAPI]) -> None:
        self._connect = connect  # an etcd client for one member's client URL
        self._clients: dict[str, EtcdAPI] = {}

    async def answers(self, member: Member, timeout: float) -> bool:
        """Whether ``member`` answers a status call within ``timeout`` (never started: no)."""
        if not member.client_urls:
            return False
        url = member.client_urls[0]
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = self._connect(url)
        try:
            async with aio.timeout(timeout):
                await client.status(timeout=timeout)
            return True
        except (ShoalError, TimeoutError):
            return False

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def _retry(what: str, call: Callable[[], Awaitable[T]], deadline: float) -> T:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            return await call()
        except ShoalError as exc:
            if loop.time() >= end:
                raise Unavailable(f"{what}: {exc.message}") from exc
            log.info("%s: %s; retrying", what, exc.message)
            await _RETRY.sleep()


async def add_learner(client: EtcdAPI, *, name: str, peer_url: str,
                      deadline: float = 60.0) -> tuple[Member, list[Member]]:
    """Add this manager as a learner (replacing a member left by an earlier attempt)."""
    for member in await _retry("etcd member list", client.member_list, deadline):
        if peer_url in member.peer_urls or (member.name and member.name == name):
            log.info("removing stale etcd member %x (%s) before joining", member.id, member.name)
            await _retry("etcd member remove", partial(client.member_remove, member.id), deadline)
    return await _retry("etcd member add",
                        lambda: client.member_add([peer_url], is_learner=True), deadline)


def initial_cluster(me: Member, name: str, members: list[Member]) -> str:
    """etcd's --initial-cluster for a joining member: every started member, and this one."""
    parts = []
    for m in members:
        member_name = name if m.id == me.id else m.name
        if not member_name:
            log.warning("etcd member %x has not started yet; it is left out", m.id)
            continue
        parts += [f"{member_name}={url}" for url in m.peer_urls]
    return ",".join(parts)


async def promote(client: EtcdAPI, member_id: int, *, deadline: float = 60.0) -> None:
    """Make the learner a voter once etcd says it is in sync with the leader."""
    await _retry("etcd member promote", lambda: client.member_promote(member_id), deadline)
    log.info("etcd member %x is a voter now", member_id)


async def remove_self(client: EtcdAPI, name: str, *, deadline: float = 10.0) -> None:
    """Remove the member called ``name`` (this manager's), through any member that answers."""
    for member in await _retry("etcd member list", client.member_list, deadline):
        if member.name == name:
            await _retry("etcd member remove", partial(client.member_remove, member.id), deadline)
            log.info("etcd member %x (%s) removed", member.id, name)
