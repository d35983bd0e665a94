"""Throwaway certificates and etcd members for tests (never used by shoald).

Called by tests/unit/store/etcd/test_etcd_*.py and by integration tests that need a real etcd:
``make_pki`` writes a CA and one ECDSA P-256 certificate (serverAuth + clientAuth, SAN IP
127.0.0.1: etcd 3.4 also checks the client certificate's SAN on peer links), ``reissue`` another
certificate from the same CA (a renewal), ``member_settings``
picks free ports, and ``throwaway_member`` starts a member and always stops it and removes its
data dir (each member preallocates a 64 MB WAL).
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shoal.store.etcd.client import client_ssl_context
from shoal.store.etcd.member import EtcdMember
from shoal.store.etcd.settings import EtcdMemberSettings

__all__ = [
    "ThrowawayPKI",
    "client_context",
    "free_port",
    "make_pki",
    "member_settings",
    "reissue",
    "throwaway_member",
]


@dataclass(frozen=True, slots=True)
class ThrowawayPKI:
    ca_file: Path
    cert_file: Path  # server and client certificate
    key_file: Path
    ca_key_file: Path | None = None  # for ``reissue``


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory: Path, *, ips: Sequence[str] = ("127.0.0.1",), cn: str = "etcd0",
             ca_name: str = "shoal test CA") -> ThrowawayPKI:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name(ca_name)).issuer_name(_name(ca_name))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = ThrowawayPKI(directory / "ca.pem", directory / "node.pem", directory / "node-key.pem",
                       directory / "ca-key.pem")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "ca-key.pem", ca_key)
    _issue(pki, ca, ca_key, ips=ips, cn=cn)
    return pki


def reissue(pki: ThrowawayPKI, directory: Path, *, ips: Sequence[str] = ("127.0.0.1",),
            cn: str = "etcd0") -> ThrowawayPKI:
    """A new key and certificate from ``pki``'s CA, written under ``directory``."""
    if pki.ca_key_file is None:
        raise ValueError("reissue needs the CA's key (a PKI made by make_pki)")
    directory.mkdir(parents=True, exist_ok=True)
    ca = x509.load_pem_x509_certificate(pki.ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key_file.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    new = ThrowawayPKI(pki.ca_file, directory / "node.pem", directory / "node-key.pem",
                       pki.ca_key_file)
    _issue(new, ca, ca_key, ips=ips, cn=cn)
    return new


def _issue(pki: ThrowawayPKI, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, *,
           ips: Sequence[str], cn: str) -> None:
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        # Python 3.13's default contexts verify strictly (RFC 5280): key identifiers required.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.key_file, key)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (another process may still take it: rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def member_settings(directory: Path, pki: ThrowawayPKI, *, name: str = "etcd0",
                    host: str = "127.0.0.1", **overrides: Any) -> EtcdMemberSettings:
    fields: dict[str, Any] = {
        "name": name, "data_dir": directory / name,
        "client_url": f"https://{host}:{free_port(host)}",
        "peer_url": f"https://{host}:{free_port(host)}",
        "cert_file": pki.cert_file, "key_file": pki.key_file, "trusted_ca_file": pki.ca_file,
        "restart_backoff_initial": 0.1,  # tests restart etcd; do not wait for production delays
        "health_interval": 0.2,  # notice a killed etcd quickly
        "heartbeat_interval_ms": 50,  # a lone member elects itself in ~0.5 s instead of ~1 s
        "election_timeout_ms": 500,
    }
    fields.update(overrides)
    return EtcdMemberSettings(**fields)


def client_context(settings: EtcdMemberSettings) -> ssl.SSLContext:
    """A client TLS context for ``settings``' member (the member's own certificate)."""
    return client_ssl_context(cert_file=settings.cert_file, key_file=settings.key_file,
                              ca_file=settings.trusted_ca_file)


@asynccontextmanager
async def throwaway_member(directory: Path, **overrides: Any) -> AsyncIterator[EtcdMember]:
    """A started single-member etcd under ``directory``; stopped and wiped on exit."""
    settings = member_settings(directory, make_pki(directory / "pki"), **overrides)
    member = EtcdMember(settings)
    try:
        await member.start()
        yield member
    finally:
        await member.stop()
        shutil.rmtree(settings.data_dir, ignore_errors=True)
