"""The cluster root CA: creates the swarm-ca root and signs node certificates from CSRs.

The root certificate and key live in the Cluster object so every manager can sign; the CA
server (``/ca/join``, ``/ca/renew``) signs once it has decided the node's ID and role, through
``shoal.manager.ca.signing`` (this local key, or an external CA holding the root's key).
During a root rotation (``rotation.py``) the local key is the new root's, with a ``chain``: the
new root cross-signed by the old one (``cross_sign``), appended to every certificate it issues.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shoal.errors import FailedPrecondition, InvalidArgument
from shoal.pki.subjects import (
    CA_CN,
    MANAGER_OU,
    Role,
    issuer_fields,
    ou_for_role,
    parse_certificates,
)

__all__ = [
    "BACKDATE",
    "MIN_NODE_CERT_EXPIRY",
    "MIN_ROOT_CA_VALIDITY",
    "NODE_CERT_EXPIRY",
    "ROOT_CA_EXPIRY",
    "CAKey",
    "CSRKey",
    "RootCA",
    "Signer",
    "backdate_for",
    "csr_public_key",
    "issued_by",
]

ROOT_CA_EXPIRY = timedelta(seconds=630720000)  # 20 years, swarmkit RootCAExpiration
NODE_CERT_EXPIRY = timedelta(days=90)  # swarmkit DefaultNodeCertExpiration (2160h)
MIN_NODE_CERT_EXPIRY = timedelta(hours=1)  # swarmkit MinNodeCertExpiration
BACKDATE = timedelta(hours=1)  # NotBefore in the past, against clock skew between nodes
MIN_ROOT_CA_VALIDITY = timedelta(days=365)  # swarmkit minRootExpiration, for a given root

# What a root CA's key may be (swarmkit's ensureCertKeyMatch): ECDSA (what shoal makes) or RSA
# (a root an operator brings with ``swarm ca --rotate --ca-key``).
CAKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def backdate_for(expiry: timedelta) -> timedelta:
    """How far before now a certificate of ``expiry`` starts: swarmkit's hour; a quarter of the
    expiry below the 1 h minimum (test swarms only, SHOAL_TEST_MIN_CERT_EXPIRY), where a full
    hour would put the renewal point, half way from NotBefore, in the past at once."""
    return BACKDATE if expiry >= MIN_NODE_CERT_EXPIRY else expiry / 4


class Signer(Protocol):
    """Turns a node's CSR into a certificate chain whose subject the CA chose."""

    def sign(
        self,
        csr_pem: str,
        *,
        node_id: str,
        role: Role,
        cluster_id: str,
        expiry: timedelta = NODE_CERT_EXPIRY,
        san_ips: Sequence[str] = (),
        san_dns: Sequence[str] = (),
    ) -> str:
        """The PEM chain (node certificate first) for ``csr_pem``."""
        ...


class RootCA:
    """A root certificate and, on managers, its private key; ``chain`` (the cross-signed root
    during a rotation) follows every certificate it signs."""

    def __init__(self, cert: x509.Certificate, key: CAKey | None, *,
                 chain: Sequence[x509.Certificate] = ()) -> None:
        if key is not None and key.public_key() != cert.public_key():
            raise InvalidArgument("invalid root CA key: it does not match the root CA certificate")
        self._cert = cert
        self._key = key
        self._chain = list(chain)
        self._cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    @classmethod
    def create(cls, expiry: timedelta = ROOT_CA_EXPIRY, *, common_name: str = CA_CN) -> RootCA:
        """A new self-signed root: ECDSA P-256, CN=swarm-ca (or ``common_name``: the managers'
        separate etcd CA is CN=swarm-raft-ca)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.now(UTC)
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + expiry)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def from_pem(cls, cert_pem: str, key_pem: str | None = None) -> RootCA:
        """A root CA from stored PEM; without the key it can verify but not sign."""
        cert = parse_certificates(cert_pem, what="root CA certificate")[0]
        if not _is_ca(cert):
            raise InvalidArgument("invalid root CA certificate: not a CA certificate")
        if key_pem is None:
            return cls(cert, None)
        try:
            key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"invalid root CA key: {exc}") from exc
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise InvalidArgument("invalid root CA key: it does not match the root CA certificate")
        return cls(cert, key)

    @classmethod
    def from_operator(cls, cert_pem: str, key_pem: str | None) -> RootCA:
        """A root the operator gives at init (``SigningCACert``, and ``SigningCAKey`` unless an
        external CA keeps the key), refused as swarmkit's validateCAConfig refuses it."""
        if len(parse_certificates(cert_pem, what="root CA certificate")) != 1:
            raise InvalidArgument("the desired CA certificate cannot contain multiple certificates")
        root = cls.from_pem(cert_pem, key_pem)
        cert = root.certificate
        if cert.issuer != cert.subject or not issued_by(cert, cert):
            raise InvalidArgument(
                "error while validating Root CA Certificate: the certificate is not self-signed")
        if root.not_after < datetime.now(UTC) + MIN_ROOT_CA_VALIDITY:
            raise InvalidArgument("CA certificate expires too soon")
        return root

    def with_chain(self, chain: Sequence[x509.Certificate]) -> RootCA:
        """This CA (same key), appending ``chain`` to what it signs."""
        return RootCA(self._cert, self._key, chain=chain)

    def cross_sign(self, other: x509.Certificate) -> x509.Certificate:
        """``other`` (a CA certificate) certified by this CA: the same subject, key, validity and
        constraints, issued by this root (swarmkit ``CrossSignCACertificate``). A certificate
        signed by ``other``'s key, followed by this one, chains to this root."""
        if self._key is None:
            raise FailedPrecondition("this root CA has no signing key")
        if not _is_ca(other):
            raise InvalidArgument("certificate not a CA")
        public = other.public_key()
        if not isinstance(public, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
            raise InvalidArgument("unsupported CA public key")
        builder = (
            x509.CertificateBuilder()
            .subject_name(other.subject)
            .issuer_name(self._cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(other.not_valid_before_utc)
            .not_valid_after(other.not_valid_after_utc)
        )
        for ext in other.extensions:
            # the issuer's key ID is this root's now; the rest (CA, key usage, SKI) is kept
            if not isinstance(ext.value, x509.AuthorityKeyIdentifier):
                builder = builder.add_extension(ext.value, critical=ext.critical)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        return builder.sign(self._key, hashes.SHA256())

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    @property
    def cert_pem(self) -> str:
        return self._cert_pem

    @property
    def key_pem(self) -> str | None:
        """The private key as unencrypted PKCS#8 PEM, or None on a verify-only CA."""
        if self._key is None:
            return None
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def can_sign(self) -> bool:
        return self._key is not None

    def tls_info(self) -> tuple[str, str, str]:
        """(TrustRoot PEM, issuer subject DER, issuer public key DER) as the API's TLSInfo shows
        them (the two DER fields base64-encoded)."""
        return (self.cert_pem, *issuer_fields(self.certificate))

    @property
    def digest(self) -> bytes:
        """SHA-256 of the DER certificate: the digest part of the join tokens."""
        return hashlib.sha256(self._cert.public_bytes(serialization.Encoding.DER)).digest()

    @property
    def not_after(self) -> datetime:
        return self._cert.not_valid_after_utc

    def sign(
        self,
        csr_pem: str,
        *,
        node_id: str,
        role: Role,
        cluster_id: str,
        expiry: timedelta = NODE_CERT_EXPIRY,
        san_ips: Sequence[str] = (),
        san_dns: Sequence[str] = (),
    ) -> str:
        """A node certificate for ``csr_pem``; the CSR's own subject and extensions are ignored."""
        if self._key is None:
            raise FailedPrecondition("this root CA has no signing key")
        # The minimum (1 h) is the control API's to enforce, on the cluster spec this comes from.
        if expiry <= timedelta(0):
            raise InvalidArgument("certificate expiry must be positive")
        if not node_id or not cluster_id:
            raise InvalidArgument("node ID and cluster ID must not be empty")
        ou = ou_for_role(role)
        public = csr_public_key(csr_pem)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, node_id),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            ]
        )
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - backdate_for(expiry))
            .not_valid_after(min([now + expiry, self.not_after, *(c.not_valid_after_utc for c in self._chain)]))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_NODE_KEY_USAGE, critical=True)
            .add_extension(_NODE_EXT_KEY_USAGE, critical=False)
            .add_extension(_sans(ou, node_id, role, san_ips, san_dns), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in [cert, *self._chain])


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _key_usage(*allowed: str) -> x509.KeyUsage:
    """x509.KeyUsage with only ``allowed`` set (its constructor wants all nine flags)."""
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    unknown = set(allowed) - set(names)
    assert not unknown, unknown
    return x509.KeyUsage(**{name: name in allowed for name in names})


_CA_KEY_USAGE = _key_usage("key_cert_sign", "crl_sign")
_NODE_KEY_USAGE = _key_usage("digital_signature", "key_encipherment")
_NODE_EXT_KEY_USAGE = x509.ExtendedKeyUsage(
    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
)

CSRKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey  # what a node's CSR may carry


def csr_public_key(csr_pem: str) -> CSRKey:
    """The public key of a CSR whose signature verifies; InvalidArgument otherwise."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as exc:
        raise InvalidArgument(f"invalid CSR: {exc}") from exc
    if not csr.is_signature_valid:
        raise InvalidArgument("invalid CSR: signature does not verify")
    public = csr.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        return public
    if isinstance(public, rsa.RSAPublicKey) and public.key_size >= 2048:
        return public
    raise InvalidArgument("invalid CSR: key must be ECDSA or RSA of at least 2048 bits")


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``cert`` (names and signature)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _sans(
    ou: str, node_id: str, role: Role, ips: Sequence[str], dns: Sequence[str]
) -> x509.SubjectAlternativeName:
    """DNS names [OU, CN] (+ swarm-manager, swarm-ca for managers) and the given IPs."""
    names = [ou, node_id]
    if role == "manager":
        names += [MANAGER_OU, CA_CN]
    names += list(dns)
    general: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(names)]
    for ip in dict.fromkeys(ips):
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError as exc:
            raise InvalidArgument(f"invalid IP address SAN {ip!r}") from exc
    return x509.SubjectAlternativeName(general)
