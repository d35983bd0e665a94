"""NodeCertificates: when this node's certificate is renewed (swarmkit node/node.go's renewals):
on its schedule (``shoal.node.renewal.Renewer``), for a new role, and at once when a root CA
rotation asks. A renewal goes through any manager (the leader signs, with the role the swarm
gives this node now) and is put in use by the node's ``install``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from shoal import aio
from shoal.errors import ShoalError, Unavailable
from shoal.node.join import renew
from shoal.node.renewal import Renewer
from shoal.pki.identity import NodeIdentity

__all__ = ["ROTATION_RENEWAL_DEADLINE", "NodeCertificates"]

log = logging.getLogger(__name__)

ROTATION_RENEWAL_DEADLINE = 300.0  # seconds a renewal a root rotation asked for is retried


class NodeCertificates:
    def __init__(self, *, identity: Callable[[], NodeIdentity | None],
                 managers: Callable[[], list[str] | None], install: Callable[[NodeIdentity], None],
                 spawn: Callable[[Coroutine[Any, Any, None], str], None]) -> None:
        """``identity``: the node's now (None out of a swarm); ``managers``: the addresses to
        ask (None out of a swarm)."""
        self._identity = identity
        self._managers = managers
        self._install = install
        self._spawn = spawn
        self._renewing = asyncio.Lock()  # one renewal at a time
        self._rotating = False  # a renewal a root rotation asked for is under way

    def start_schedule(self) -> None:
        renewer = Renewer("node certificate", renew=self.renew,
                          certificate=lambda: (i.certificate if (i := self._identity()) else None))
        self._spawn(renewer.run(), "cert-renewal")

    async def renew(self) -> NodeIdentity:
        """A new certificate from the swarm's CA, saved and put in use at once."""
        async with self._renewing:
            identity, addrs = self._identity(), self._managers()
            if identity is None or addrs is None:
                raise Unavailable("This node is not part of a swarm")
            errors: list[str] = []
            for addr in addrs:
                try:
                    new = await renew(addr, identity)
                except ShoalError as exc:
                    errors.append(exc.message)
                    continue
                if self._identity() is identity:  # not left (or renewed) meanwhile
                    self._install(new)
                    log.info("node certificate renewed: role %s, valid until %s", new.role,
                             new.not_after.isoformat(timespec="seconds"))
                return new
            raise Unavailable("no manager renewed the certificate: " + "; ".join(errors or ["none known"]))

    def start_rotation(self) -> None:
        """A root rotation asks for a certificate from the new root."""
        if not self._rotating:
            self._rotating = True
            self._spawn(self._renew_for_rotation(), "root-rotation-renewal")

    async def _renew_for_rotation(self) -> None:
        """Renew now, retrying for a while (the next session's SessionInfo asks again if this
        gives up)."""
        backoff = aio.Backoff(initial=0.5, cap=10.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ROTATION_RENEWAL_DEADLINE
        try:
            while self._identity() is not None:
                try:
                    await self.renew()
                    return
                except ShoalError as exc:
                    if loop.time() > deadline:
                        log.error("root rotation: could not renew this node's certificate: %s",
                                  exc.message)
                        return
                    log.info("root rotation: certificate renewal failed (%s); retrying", exc.message)
                    await backoff.sleep()
        finally:
            self._rotating = False
