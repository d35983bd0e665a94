"""Node certificate subjects: roles as OUs, PEM parsing and reading a peer's identity.

Both sides use this module: the CA (``rootca``) writes ``CN=<node ID>, OU=swarm-manager|
swarm-worker, O=<cluster ID>``; the node (``shoal.pki.identity``) and the manager's TLS
endpoints read it back from a verified certificate with ``identity_from_certificate`` and
``peer_identity``.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from shoal.errors import InvalidArgument
from shoal.model.ids import NodeID

__all__ = [
    "CA_CN",
    "MANAGER_OU",
    "SERVER_NAME",
    "WORKER_OU",
    "PeerIdentity",
    "Role",
    "expiry_of",
    "identity_from_certificate",
    "issuer_fields",
    "ou_for_role",
    "parse_certificates",
    "peer_identity",
    "role_for_ou",
]

Role = Literal["manager", "worker"]

MANAGER_OU = "swarm-manager"
WORKER_OU = "swarm-worker"
CA_CN = "swarm-ca"
# Clients verify managers by this name, carried as a DNS SAN, never by hostname (as swarmkit).
SERVER_NAME = MANAGER_OU

_OU_BY_ROLE: dict[str, str] = {"manager": MANAGER_OU, "worker": WORKER_OU}
_ROLE_BY_OU: dict[str, Role] = {MANAGER_OU: "manager", WORKER_OU: "worker"}


def ou_for_role(role: str) -> str:
    """The OU a certificate for ``role`` carries; InvalidArgument for an unknown role."""
    try:
        return _OU_BY_ROLE[role]
    except KeyError:
        raise InvalidArgument(f"invalid node role {role!r}: must be manager or worker") from None


def role_for_ou(ou: str) -> Role | None:
    """The role an OU stands for, or None when it is not a swarm role."""
    return _ROLE_BY_OU.get(ou)


@dataclass(frozen=True)
class PeerIdentity:
    """Who a verified certificate belongs to."""

    node_id: NodeID
    role: Role
    cluster_id: str


def parse_certificates(pem: str | bytes, *, what: str = "certificate") -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order; InvalidArgument if there is none or it is bad."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what}: {exc}") from exc
    if not certs:
        raise InvalidArgument(f"invalid {what}: no certificate in PEM data")
    return certs


def expiry_of(pem: str) -> str:
    """When a PEM chain's leaf (its first certificate) expires, as RFC 3339 in UTC."""
    leaf = parse_certificates(pem)[0]
    return leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def issuer_fields(ca: x509.Certificate) -> tuple[str, str]:
    """A CA certificate as an issuer, the way the API's TLSInfo shows one: base64 of its DER
    subject and of its DER SubjectPublicKeyInfo. Two CA certificates with the same subject and
    key issue the same certificates (a root and its cross-signed copy)."""
    spki = ca.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(ca.subject.public_bytes()).decode(), base64.b64encode(spki).decode()


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    if not attrs:
        return None
    value = attrs[0].value
    return value.decode() if isinstance(value, bytes) else value


def identity_from_certificate(cert: x509.Certificate) -> PeerIdentity | None:
    """The node ID, role and cluster ID in a node certificate, or None if it is not one."""
    return _identity(
        _name_attr(cert.subject, NameOID.COMMON_NAME),
        _name_attr(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        _name_attr(cert.subject, NameOID.ORGANIZATION_NAME),
    )


def _identity(cn: str | None, ou: str | None, org: str | None) -> PeerIdentity | None:
    role = role_for_ou(ou) if ou else None
    if not cn or role is None or not org:
        return None
    return PeerIdentity(node_id=NodeID(cn), role=role, cluster_id=org)


def peer_identity(
    peer: ssl.SSLObject | ssl.SSLSocket | Mapping[str, Any] | None,
) -> PeerIdentity | None:
    """The identity of the verified peer of a TLS connection, or None without a verified cert.

    ``peer`` is the connection's ``SSLObject`` (aiohttp: ``request.transport.get_extra_info(
    "ssl_object")``) or the dict ``getpeercert()`` returned. Only the dict form is read: Python
    leaves it empty when the certificate was not verified, so an unverified cert never counts.
    """
    if peer is None:
        return None
    info = peer if isinstance(peer, Mapping) else peer.getpeercert()
    if not info:
        return None
    fields: dict[str, str] = {}
    for rdn in cast(tuple[tuple[tuple[str, str], ...], ...], info.get("subject", ())):
        for key, value in rdn:
            fields.setdefault(key, value)
    return _identity(
        fields.get("commonName"),
        fields.get("organizationalUnitName"),
        fields.get("organizationName"),
    )
