"""``--cert-expiry``: Docker's minimum (1 h) and message, the test-only lower minimum, and
``swarm init`` signing the first certificates for the requested expiry."""

from __future__ import annotations

import pytest

from shoal.errors import InvalidArgument
from shoal.manager.bootstrap import new_swarm
from shoal.manager.controlapi.cluster import (
    DEFAULT_CERT_EXPIRY,
    TEST_MIN_CERT_EXPIRY_ENV,
    apply_defaults,
    min_cert_expiry,
)
from shoal.model.requests import InitRequest
from shoal.model.specs import SECOND, ClusterSpec

DOCKER_MESSAGE = "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"


def _spec(expiry_seconds: float) -> ClusterSpec:
    spec = ClusterSpec()
    spec.ca_config.node_cert_expiry = int(expiry_seconds * SECOND)
    return spec


def test_default_and_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEST_MIN_CERT_EXPIRY_ENV, raising=False)
    assert apply_defaults(ClusterSpec()).ca_config.node_cert_expiry == DEFAULT_CERT_EXPIRY
    assert apply_defaults(_spec(3600)).ca_config.node_cert_expiry == 3600 * SECOND
    with pytest.raises(InvalidArgument) as info:
        apply_defaults(_spec(3599))
    assert info.value.message == DOCKER_MESSAGE


def test_the_test_only_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_MIN_CERT_EXPIRY_ENV, "10")
    assert min_cert_expiry() == 10 * SECOND
    assert apply_defaults(_spec(20)).ca_config.node_cert_expiry == 20 * SECOND
    with pytest.raises(InvalidArgument, match="minimum certificate expiry time is: 10s$"):
        apply_defaults(_spec(5))
    monkeypatch.setenv(TEST_MIN_CERT_EXPIRY_ENV, "90")
    with pytest.raises(InvalidArgument, match="is: 1m30s$"):
        apply_defaults(_spec(60))


@pytest.mark.parametrize("value", ["", "0", "-5", "soon"])
def test_a_bad_override_keeps_the_hour(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(TEST_MIN_CERT_EXPIRY_ENV, value)
    assert min_cert_expiry() == 3600 * SECOND


async def test_init_signs_the_first_certificates_for_the_requested_expiry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_MIN_CERT_EXPIRY_ENV, "10")
    swarm = await new_swarm(InitRequest(spec=_spec(20)), hostname="h1", advertise_ip="10.9.0.2",
                            manager_addr="10.9.0.2:2377")
    cert = swarm.identity.certificate
    # 20 s of validity plus the short backdate (a quarter of it), for both certificates
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() == pytest.approx(25, abs=1)
    etcd = swarm.etcd_tls.certificate
    assert (etcd.not_valid_after_utc - etcd.not_valid_before_utc).total_seconds() == pytest.approx(25, abs=1)
