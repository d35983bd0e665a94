"""A node's TLS identity: its key, its certificate chain and the root CA, on disk and as SSL contexts.

The daemon loads it at start (``NodeIdentity.load``; None means "not in a swarm yet"), the join
client (``shoal.node.join``) makes it, the manager and agent endpoints take their SSL contexts
from it. Files are swarmkit's: ``swarm-root-ca.crt``, ``swarm-node.crt``, ``swarm-node.key``.
On an autolocked manager the key file is an encrypted PKCS#8 PEM (swarmkit's FIPS format) under
a password the manager keeps wrapped by the unlock key (``shoal.manager.deks``); in memory the
key is always in clear.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shoal.errors import InvalidArgument
from shoal.model.ids import NodeID
from shoal.model.objects import TLSInfo
from shoal.pki import _tls
from shoal.pki._tls import bootstrap_ssl_context
from shoal.pki.keypair import finish_interrupted_save, save_pair
from shoal.pki.subjects import (
    PeerIdentity,
    Role,
    identity_from_certificate,
    issuer_fields,
    parse_certificates,
    peer_identity,
)
from shoal.pki.unlockkey import SwarmLocked

__all__ = [
    "NODE_CERT_FILE",
    "NODE_KEY_FILE",
    "ROOT_CA_FILE",
    "NodeIdentity",
    "PeerIdentity",
    "bootstrap_ssl_context",
    "generate_key_and_csr",
    "key_is_encrypted",
    "peer_identity",
]

ROOT_CA_FILE = "swarm-root-ca.crt"
NODE_CERT_FILE = "swarm-node.crt"
NODE_KEY_FILE = "swarm-node.key"


def generate_key_and_csr() -> tuple[str, str]:
    """A new ECDSA P-256 key (PKCS#8 PEM) and a CSR for it; the CA chooses the subject."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, csr.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class NodeIdentity:
    """A node certificate chain (node cert first), its private key and the root CA, validated."""

    cert_pem: str
    key_pem: str = field(repr=False)
    ca_pem: str
    _peer: PeerIdentity = field(init=False, repr=False, compare=False)
    _leaf: x509.Certificate = field(init=False, repr=False, compare=False)
    _issuer: x509.Certificate = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chain = parse_certificates(self.cert_pem, what="node certificate")
        roots = parse_certificates(self.ca_pem, what="root CA certificate")
        try:
            key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"invalid node key: {exc}") from exc
        if key.public_key() != chain[0].public_key():
            raise InvalidArgument("node key does not match the node certificate")
        issuer = _verify_chain(chain, roots)
        peer = identity_from_certificate(chain[0])
        if peer is None:
            raise InvalidArgument("not a swarm node certificate (need CN, OU=swarm-*, O)")
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_leaf", chain[0])
        object.__setattr__(self, "_issuer", issuer)

    @property
    def node_id(self) -> NodeID:
        return self._peer.node_id

    @property
    def role(self) -> Role:
        return self._peer.role

    @property
    def cluster_id(self) -> str:
        return self._peer.cluster_id

    @property
    def peer(self) -> PeerIdentity:
        """What a server's ``peer_identity`` reports for this node."""
        return self._peer

    @property
    def not_after(self) -> datetime:
        return self._leaf.not_valid_after_utc

    @property
    def certificate(self) -> x509.Certificate:
        return self._leaf

    def tls_info(self) -> TLSInfo:
        """What the node reports (``node inspect``'s TLS info): the roots it trusts, and the
        subject and key of its certificate's issuer; a root rotation is done with a node once
        that issuer is the new root."""
        return TLSInfo(self.ca_pem, *issuer_fields(self._issuer))

    def with_trust(self, ca_pem: str) -> NodeIdentity:
        """The same certificate and key, trusting ``ca_pem`` (InvalidArgument if the certificate
        does not chain to it)."""
        return NodeIdentity(cert_pem=self.cert_pem, key_pem=self.key_pem, ca_pem=ca_pem)

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS >= 1.2 with this chain; client certs optional but verified against the root CA."""
        return _tls.server_ssl_context(self.cert_pem, self.key_pem, self.ca_pem)

    def client_ssl_context(self) -> ssl.SSLContext:
        """Mutual TLS; connect with ``server_hostname="swarm-manager"``."""
        return _tls.client_ssl_context(self.cert_pem, self.key_pem, self.ca_pem)

    def external_ssl_context(self, server_ca_pem: str) -> ssl.SSLContext:
        """Mutual TLS to a server outside the swarm (an external CA): present this chain, verify
        the server against ``server_ca_pem`` and by the host name it is reached at."""
        return _tls.client_ssl_context(self.cert_pem, self.key_pem, server_ca_pem)

    def load_into(self, ctx: ssl.SSLContext) -> None:
        """Put this chain and key into ``ctx`` (a listener's server context, after a renewal):
        handshakes from now on present it; connections already made keep theirs."""
        _tls.load_chain(ctx, self.cert_pem, self.key_pem)

    def save(self, directory: str | os.PathLike[str], *, key_password: bytes | None = None) -> None:
        """Write the three files durably, all before any is replaced, the certificate last (the
        key is mode 0600, encrypted under ``key_password`` if given); see ``keypair`` for a
        crash between the renames."""
        key_pem = self.key_pem if key_password is None else _encrypt_key(self.key_pem, key_password)
        save_pair(Path(directory), cert=(NODE_CERT_FILE, self.cert_pem),
                  key=(NODE_KEY_FILE, key_pem), others=[(ROOT_CA_FILE, self.ca_pem, 0o644)])

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *,
             key_password: bytes | None = None) -> NodeIdentity | None:
        """The identity saved in ``directory``, None if a file is missing; InvalidArgument if bad;
        SwarmLocked if the key is encrypted and no ``key_password`` is given."""
        path = Path(directory)
        finish_interrupted_save(path, cert=NODE_CERT_FILE, key=NODE_KEY_FILE, password=key_password)
        try:
            ca_pem = (path / ROOT_CA_FILE).read_text()
            cert_pem = (path / NODE_CERT_FILE).read_text()
            key_pem = (path / NODE_KEY_FILE).read_text()
        except FileNotFoundError:
            return None
        try:
            if _ENCRYPTED in key_pem:
                if key_password is None:
                    raise SwarmLocked()
                key_pem = _decrypt_key(key_pem, key_password)
            return cls(cert_pem=cert_pem, key_pem=key_pem, ca_pem=ca_pem)
        except InvalidArgument as exc:
            raise InvalidArgument(f"invalid node identity in {path}: {exc.message}") from exc


_ENCRYPTED = "-----BEGIN ENCRYPTED PRIVATE KEY-----"


def key_is_encrypted(directory: str | os.PathLike[str]) -> bool:
    """Whether the node key in ``directory`` is encrypted (False when there is none)."""
    try:
        return _ENCRYPTED in (Path(directory) / NODE_KEY_FILE).read_text()
    except FileNotFoundError:
        return False


def _encrypt_key(key_pem: str, password: bytes) -> str:
    """PKCS#8 PEM under ``password`` (PBES2: PBKDF2-SHA256, AES-256-CBC)."""
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(password)).decode()


def _decrypt_key(key_pem: str, password: bytes) -> str:
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=password)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"the node key cannot be decrypted: {exc}") from exc
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _verify_chain(chain: list[x509.Certificate], roots: list[x509.Certificate]) -> x509.Certificate:
    """The leaf's issuer, once the chain is checked: each certificate is signed by the next one
    until one is signed by a root (what follows it, the cross-signed root a rotation left in
    the chain, is not needed any more)."""
    for i, cert in enumerate(chain):
        if any(_issued_by(cert, root) for root in roots):
            break
        if i + 1 == len(chain) or not _issued_by(cert, chain[i + 1]):
            raise InvalidArgument("node certificate is not signed by the root CA")
    return next(c for c in [*chain[1:2], *roots] if _issued_by(chain[0], c))


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


