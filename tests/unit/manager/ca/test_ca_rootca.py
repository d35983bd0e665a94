"""RootCA: the root certificate, signing node certificates, subjects, SANs, validity."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shoal.errors import FailedPrecondition, InvalidArgument
from shoal.manager.ca import RootCA, Signer
from shoal.manager.ca.rootca import BACKDATE, backdate_for
from shoal.pki import generate_key_and_csr

CLUSTER = "c1"


def _sign(signer: Signer, role: str = "worker", **kw: object) -> x509.Certificate:
    _, csr = generate_key_and_csr()
    pem = signer.sign(csr, node_id="node1", role=role, cluster_id=CLUSTER, **kw)  # type: ignore[arg-type]
    return x509.load_pem_x509_certificate(pem.encode())


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> object:
    return cert.subject.get_attributes_for_oid(oid)[0].value


def _near(a: datetime, b: datetime) -> bool:
    return abs(a - b) < timedelta(minutes=1)


def test_root_certificate(root: RootCA) -> None:
    cert = root.certificate
    now = datetime.now(UTC)
    assert _attr(cert, NameOID.COMMON_NAME) == "swarm-ca"
    assert cert.subject == cert.issuer
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    assert _near(cert.not_valid_after_utc, now + timedelta(days=7300))
    assert _near(cert.not_valid_before_utc, now - timedelta(hours=1))
    cert.verify_directly_issued_by(cert)


def test_from_pem_round_trip(root: RootCA) -> None:
    assert root.key_pem is not None and "BEGIN PRIVATE KEY" in root.key_pem
    again = RootCA.from_pem(root.cert_pem, root.key_pem)
    assert again.digest == root.digest and len(root.digest) == 32
    assert again.cert_pem == root.cert_pem
    _sign(again).verify_directly_issued_by(root.certificate)


def test_verify_only_ca_cannot_sign(root: RootCA) -> None:
    public = RootCA.from_pem(root.cert_pem)
    assert public.key_pem is None and not public.can_sign
    with pytest.raises(FailedPrecondition):
        _sign(public)


def test_from_pem_rejects_bad_input(root: RootCA) -> None:
    other = RootCA.create()
    assert other.key_pem is not None
    with pytest.raises(InvalidArgument, match="does not match"):
        RootCA.from_pem(root.cert_pem, other.key_pem)
    with pytest.raises(InvalidArgument):
        RootCA.from_pem("not a pem")
    with pytest.raises(InvalidArgument):
        RootCA.from_pem(root.cert_pem, "not a key")
    leaf = root.sign(generate_key_and_csr()[1], node_id="n", role="worker", cluster_id="c")
    with pytest.raises(InvalidArgument, match="not a CA"):
        RootCA.from_pem(leaf)


def test_node_certificate_subject_and_extensions(root: RootCA) -> None:
    cert = _sign(root, "worker")
    assert _attr(cert, NameOID.COMMON_NAME) == "node1"
    assert _attr(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == "swarm-worker"
    assert _attr(cert, NameOID.ORGANIZATION_NAME) == CLUSTER
    assert cert.issuer == root.certificate.subject
    cert.verify_directly_issued_by(root.certificate)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["swarm-worker", "node1"]
    assert sans.get_values_for_type(x509.IPAddress) == []


def test_manager_sans(root: RootCA) -> None:
    cert = _sign(root, "manager", san_ips=["10.0.0.5", "127.0.0.1"], san_dns=["mgr.example"])
    assert _attr(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == "swarm-manager"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = sans.get_values_for_type(x509.DNSName)
    assert dns == ["swarm-manager", "node1", "swarm-ca", "mgr.example"]
    ips = sans.get_values_for_type(x509.IPAddress)
    assert ips == [ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("127.0.0.1")]


def test_validity_default_backdate_and_cap(root: RootCA) -> None:
    now = datetime.now(UTC)
    cert = _sign(root)
    assert _near(cert.not_valid_before_utc, now - timedelta(hours=1))
    assert _near(cert.not_valid_after_utc, now + timedelta(days=90))
    short = _sign(root, expiry=timedelta(hours=1))
    assert _near(short.not_valid_after_utc, now + timedelta(hours=1))
    capped = _sign(RootCA.create(expiry=timedelta(days=10)))
    assert _near(capped.not_valid_after_utc, now + timedelta(days=10))


def test_expiry_below_the_minimum_is_the_control_apis_to_refuse(root: RootCA) -> None:
    # The 1 h minimum is checked on the cluster spec (controlapi); the signer takes what the
    # spec says, so a test swarm's 20 s certificates work, with a quarter of it as backdate
    # (a full hour would put every renewal point in the past at once).
    now = datetime.now(UTC)
    short = _sign(root, expiry=timedelta(seconds=20))
    assert abs(short.not_valid_before_utc - (now - timedelta(seconds=5))) < timedelta(seconds=2)
    assert abs(short.not_valid_after_utc - (now + timedelta(seconds=20))) < timedelta(seconds=2)
    assert backdate_for(timedelta(hours=1)) == BACKDATE == backdate_for(timedelta(days=90))
    with pytest.raises(InvalidArgument, match="positive"):
        _sign(root, expiry=timedelta(0))


def test_csr_subject_is_ignored(root: RootCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    evil = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "someone-else"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "swarm-manager"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "other-cluster"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(evil).sign(key, hashes.SHA256())
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    pem = root.sign(csr_pem, node_id="node1", role="worker", cluster_id=CLUSTER)
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert _attr(cert, NameOID.COMMON_NAME) == "node1"
    assert _attr(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == "swarm-worker"
    assert _attr(cert, NameOID.ORGANIZATION_NAME) == CLUSTER
    assert cert.public_key() == key.public_key()


def test_csr_with_bad_signature_is_refused(root: RootCA) -> None:
    _, csr_pem = generate_key_and_csr()
    der = bytearray(
        x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(serialization.Encoding.DER)
    )
    der[-5] ^= 0x01  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(InvalidArgument, match="signature"):
        root.sign(tampered, node_id="n", role="worker", cluster_id="c")


@pytest.mark.parametrize(
    ("csr", "kw", "match"),
    [
        ("garbage", {}, "invalid CSR"),
        (None, {"role": "admin"}, "invalid node role"),
        (None, {"node_id": ""}, "must not be empty"),
        (None, {"san_ips": ["not-an-ip"]}, "invalid IP"),
    ],
)
def test_sign_rejects_bad_arguments(
    root: RootCA, csr: str | None, kw: dict[str, object], match: str
) -> None:
    args: dict[str, object] = {"node_id": "n", "role": "worker", "cluster_id": "c", **kw}
    with pytest.raises(InvalidArgument, match=match):
        root.sign(csr or generate_key_and_csr()[1], **args)  # type: ignore[arg-type]
