"""When to renew a certificate, and the loop that does it (swarmkit ca/renewer.go).

Every node runs one ``Renewer`` for its node certificate (shoal.daemon.node), every manager one
more for its etcd certificate (shoal.manager.manager). The renewal point is drawn once per
certificate, uniformly between 50% and 80% of its validity counted from NotBefore (swarmkit's
``calculateRandomExpiry``, so a swarm's nodes do not all renew at once); a point already past
means now. A failed renewal is retried with a jittered exponential backoff, 5 s up to 1 h as
swarmkit's, scaled down for lifetimes so short (test swarms) that an hour would outlive them.

Differences from swarmkit, on purpose: the point is drawn in seconds, not whole minutes (a 20 s
test certificate has no whole minute to draw from), and once per certificate rather than on
every pass, because the loop wakes at least every ``NAP`` seconds to notice a certificate
replaced by someone else (a renewal for a new role) and a wall clock that jumped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509

from shoal.aio import Backoff
from shoal.errors import ShoalError, Unavailable

__all__ = ["LOWER", "NAP", "UPPER", "Renewer", "renewal_point", "retry_backoff"]

log = logging.getLogger(__name__)

LOWER, UPPER = 0.5, 0.8  # swarmkit's CertLowerRotationRange, CertUpperRotationRange
NAP = 60.0  # seconds the loop sleeps at most before looking at the certificate and clock again
_BACKOFF_INITIAL, _BACKOFF_CAP = 5.0, 3600.0  # swarmkit's RenewTLSExponentialBackoff bounds


def renewal_point(not_before: datetime, not_after: datetime, rng: Callable[[], float]) -> datetime:
    """A random time between 50% and 80% of the validity, measured from ``not_before``."""
    validity = not_after - not_before
    return not_before + validity * (LOWER + (UPPER - LOWER) * rng())


def retry_backoff(validity: timedelta, rng: Callable[[], float]) -> Backoff:
    """5 s doubling up to 1 h, +-50%; at most a 20th and a 10th of the validity, so a short
    certificate is retried several times before it expires."""
    seconds = max(validity.total_seconds(), 0.2)
    return Backoff(initial=min(_BACKOFF_INITIAL, seconds / 20), cap=min(_BACKOFF_CAP, seconds / 10),
                   jitter=0.5, rng=rng)


class Renewer:
    """Renews ``what`` at its renewal point, retrying failures, until cancelled.

    ``certificate`` gives the certificate in use now (None: nothing to renew, the loop ends);
    ``renew`` gets and installs the next one, raising ShoalError (or OSError) when it cannot.
    ``clock``, ``sleep`` and ``rng`` are injectable for tests.
    """

    def __init__(self, what: str, *, certificate: Callable[[], x509.Certificate | None],
                 renew: Callable[[], Awaitable[object]],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: Callable[[], float] = random.random) -> None:
        self._what = what
        self._certificate = certificate
        self._renew = renew
        self._clock, self._sleep, self._rng = clock, sleep, rng

    async def run(self) -> None:
        drawn_for: int | None = None  # the serial number the point was drawn for
        point = retry_at = datetime.min.replace(tzinfo=UTC)
        backoff: Backoff | None = None
        while (cert := self._certificate()) is not None:
            if cert.serial_number != drawn_for:  # a new certificate: a new point, no failures
                drawn_for, backoff = cert.serial_number, None
                point = renewal_point(cert.not_valid_before_utc, cert.not_valid_after_utc, self._rng)
                log.info("%s valid until %s; renewal at %s", self._what,
                         _iso(cert.not_valid_after_utc), _iso(point))
            now = self._clock()
            due = retry_at if backoff is not None else point
            if now < due:
                await self._sleep(min((due - now).total_seconds(), NAP))
                continue
            if now >= cert.not_valid_after_utc:
                log.warning("%s expired at %s; trying to renew it anyway", self._what,
                            _iso(cert.not_valid_after_utc))
            try:
                await self._renew()
                after = self._certificate()
                if after is not None and after.serial_number == cert.serial_number:
                    raise Unavailable("the renewal did not replace the certificate")
            except (ShoalError, OSError) as exc:
                if backoff is None:
                    backoff = retry_backoff(cert.not_valid_after_utc - cert.not_valid_before_utc,
                                            self._rng)
                delay = backoff.next()
                retry_at = self._clock() + timedelta(seconds=delay)
                log.warning("%s renewal failed (%s); retrying in %.1f s", self._what, exc, delay)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")
