"""The renewal schedule: a random point between 50% and 80% of the validity from NotBefore,
at once when it is past, a backoff on failure; with an injected clock, sleep and random."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.errors import Unavailable
from shoal.node.renewal import NAP, Renewer, renewal_point, retry_backoff

T0 = datetime(2030, 1, 1, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())
NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node1")])


def cert(not_before: datetime, not_after: datetime) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(NAME).issuer_name(NAME)
            .public_key(KEY.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after).sign(KEY, hashes.SHA256()))


class Clock:
    """Fake time: ``sleep`` advances it; stops the loop after ``limit`` sleeps."""

    def __init__(self, now: datetime, limit: int = 10_000) -> None:
        self.now, self.sleeps, self.limit = now, list[float](), limit

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        if len(self.sleeps) > self.limit:
            raise RuntimeError("too many sleeps")
        self.now += timedelta(seconds=seconds)


class Node:
    """A certificate holder whose renewals are scripted: ``outcomes`` True renews, False fails;
    once they run out the node leaves (``certificate`` None ends the loop)."""

    def __init__(self, clock: Clock, validity: timedelta, outcomes: list[bool],
                 backdate: timedelta = timedelta(0)) -> None:
        self.clock, self.validity, self.backdate, self.outcomes = clock, validity, backdate, outcomes
        self.cert: x509.Certificate | None = self._issue()
        self.attempts: list[datetime] = []

    def _issue(self) -> x509.Certificate:
        now = self.clock.now
        return cert(now - self.backdate, now + self.validity)

    def certificate(self) -> x509.Certificate | None:
        return self.cert

    async def renew(self) -> None:
        self.attempts.append(self.clock.now)
        if not self.outcomes:
            self.cert = None
            return
        if not self.outcomes.pop(0):
            raise Unavailable("no manager answers")
        self.cert = self._issue()


def renewer(node: Node, clock: Clock, rng: float) -> Renewer:
    return Renewer("node certificate", certificate=node.certificate, renew=node.renew,
                   clock=clock, sleep=clock.sleep, rng=lambda: rng)


def test_the_point_lies_between_half_and_four_fifths_from_not_before() -> None:
    start, end = T0 - timedelta(hours=1), T0 + timedelta(days=90)  # backdated by an hour
    span = end - start
    assert renewal_point(start, end, lambda: 0.0) == start + span * 0.5
    assert renewal_point(start, end, lambda: 0.5) == start + span * 0.65
    assert renewal_point(start, end, lambda: 0.999999) < start + span * 0.8
    assert renewal_point(start, end, lambda: 0.999999) > start + span * 0.79


async def test_renews_at_the_drawn_point_and_draws_again_for_the_new_certificate() -> None:
    clock = Clock(T0)
    node = Node(clock, timedelta(hours=3), [True, True], backdate=timedelta(hours=1))
    await renewer(node, clock, 0.5).run()
    # 65% of 4 h from NotBefore (an hour ago): 1 h 36 min from now
    assert node.attempts[0] == T0 + timedelta(hours=4) * 0.65 - timedelta(hours=1)
    assert node.attempts[1] == node.attempts[0] + timedelta(hours=4) * 0.65 - timedelta(hours=1)
    assert max(clock.sleeps) <= NAP  # naps, so a clock jump or a replaced certificate is seen


async def test_a_point_already_past_renews_at_once() -> None:
    clock = Clock(T0)
    node = Node(clock, timedelta(seconds=20), [True])
    node.cert = cert(T0 - timedelta(days=80), T0 + timedelta(days=10))  # 88% of its life gone
    await renewer(node, clock, 0.0).run()
    assert node.attempts[0] == T0 and clock.sleeps[0] > 0  # renewed before any sleep


async def test_an_expired_certificate_is_still_tried_at_once() -> None:
    clock = Clock(T0)
    node = Node(clock, timedelta(hours=1), [True])
    node.cert = cert(T0 - timedelta(hours=2), T0 - timedelta(hours=1))
    await renewer(node, clock, 0.3).run()
    assert node.attempts[0] == T0


async def test_failures_back_off_exponentially_then_a_success_starts_afresh() -> None:
    clock = Clock(T0)
    node = Node(clock, timedelta(hours=2), [False, False, False, True, False, True])
    await renewer(node, clock, 0.5).run()  # rng 0.5: no jitter, the middle of the range
    first = T0 + timedelta(hours=2) * 0.65
    gaps = [(b - a).total_seconds() for a, b in zip(node.attempts, node.attempts[1:])]
    assert node.attempts[0] == first
    assert gaps[:3] == [5.0, 10.0, 20.0]  # swarmkit's 5 s base, doubling
    # renewed at the fourth try; the new certificate's point, then one failure: 5 s again
    assert node.attempts[4] == node.attempts[3] + timedelta(hours=2) * 0.65
    assert gaps[4] == 5.0


def test_the_backoff_is_capped_at_an_hour_and_scaled_for_short_lifetimes() -> None:
    long = retry_backoff(timedelta(days=90), lambda: 0.5)
    delays = [long.next() for _ in range(20)]
    assert delays[0] == 5.0 and max(delays) == 3600.0
    short = retry_backoff(timedelta(seconds=25), lambda: 0.5)  # a test swarm's 20 s certificate
    delays = [short.next() for _ in range(5)]
    assert delays[0] == 1.25 and max(delays) == 2.5
    jittered = retry_backoff(timedelta(days=90), lambda: 0.0)
    assert jittered.next() == 2.5  # -50%


async def test_a_certificate_replaced_meanwhile_is_not_renewed_again() -> None:
    clock = Clock(T0)
    node = Node(clock, timedelta(hours=1), [])  # its first renewal ends the test
    old = node.cert
    run = renewer(node, clock, 0.0)

    async def replace_then_sleep(seconds: float) -> None:
        await Clock.sleep(clock, seconds)
        if len(clock.sleeps) == 3:  # e.g. a renewal for a new role, made by the daemon
            node.cert = cert(clock.now, clock.now + timedelta(hours=1))

    run._sleep = replace_then_sleep  # type: ignore[method-assign]
    await run.run()
    assert node.cert is None and old is not None
    # the one renewal came at the new certificate's point, not the old one's (T0 + 30 min)
    assert node.attempts == [T0 + timedelta(seconds=3 * NAP) + timedelta(minutes=30)]


async def test_a_renewal_that_changes_nothing_counts_as_a_failure() -> None:
    clock = Clock(T0, limit=100)
    node = Node(clock, timedelta(hours=2), [])

    async def no_op() -> None:
        node.attempts.append(clock.now)

    run = Renewer("etcd certificate", certificate=node.certificate, renew=no_op, clock=clock,
                  sleep=clock.sleep, rng=lambda: 0.5)
    with pytest.raises(RuntimeError, match="too many sleeps"):
        await run.run()
    assert len(node.attempts) >= 2
    assert node.attempts[1] - node.attempts[0] == timedelta(seconds=5)  # backed off, no spin


async def test_no_certificate_ends_the_loop() -> None:
    clock = Clock(T0)
    await Renewer("x", certificate=lambda: None, renew=lambda: clock.sleep(0), clock=clock,
                  sleep=clock.sleep).run()
    assert clock.sleeps == []
