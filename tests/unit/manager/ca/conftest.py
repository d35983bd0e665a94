"""Fixtures for the CA and node identity tests: a root CA, identities, a leak check."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shoal.manager.ca import RootCA
from shoal.model.ids import new_id
from shoal.pki import NodeIdentity, Role, generate_key_and_csr

CLUSTER_ID = "cluster0000000000000000001"

MakeIdentity = Callable[..., NodeIdentity]


@pytest.fixture
def root() -> RootCA:
    return RootCA.create()


@pytest.fixture
def make_identity(root: RootCA) -> MakeIdentity:
    def make(
        role: Role = "worker",
        *,
        ca: RootCA | None = None,
        node_id: str | None = None,
        san_ips: list[str] | None = None,
    ) -> NodeIdentity:
        signer = ca or root
        key_pem, csr_pem = generate_key_and_csr()
        cert = signer.sign(
            csr_pem,
            node_id=node_id or new_id(),
            role=role,
            cluster_id=CLUSTER_ID,
            san_ips=san_ips or [],
        )
        return NodeIdentity(cert_pem=cert, key_pem=key_pem, ca_pem=signer.cert_pem)

    return make
