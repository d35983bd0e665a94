"""The managers' etcd certificates, issued by the cluster's separate raft CA.

etcd trusts only the raft CA (client and peer), and only managers get a certificate from it:
the first manager at ``swarm init``, later ones through the manager-only ``POST /ca/raft``.
So a worker's swarm certificate, valid as it is, is refused by etcd. Files live in
``<data-root>/swarm/etcd-tls/`` (node.crt, node.key, ca.crt). Managers renew it like their node
certificate (shoal.manager.manager), with no restart of etcd (``EtcdTLS.save``).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509

from shoal.manager.ca.rootca import NODE_CERT_EXPIRY, RootCA
from shoal.pki.identity import generate_key_and_csr
from shoal.pki.keypair import finish_interrupted_save, save_pair

__all__ = ["RAFT_CA_CN", "EtcdTLS", "issue_etcd_tls"]

RAFT_CA_CN = "swarm-raft-ca"
_FILES = ("node.crt", "node.key", "ca.crt")


@dataclass(frozen=True, slots=True)
class EtcdTLS:
    cert_pem: str
    key_pem: str
    ca_pem: str

    @property
    def certificate(self) -> x509.Certificate:
        """The member's own certificate (its validity drives the renewal)."""
        return x509.load_pem_x509_certificate(self.cert_pem.encode())

    def save(self, directory: Path) -> None:
        """Replace the files together, the certificate last: etcd reads the pair from them on
        each new handshake (client and peer), so a renewal needs no restart of etcd."""
        cert, key, ca = _FILES
        save_pair(directory, cert=(cert, self.cert_pem), key=(key, self.key_pem),
                  others=[(ca, self.ca_pem, 0o600)])

    @classmethod
    def load(cls, directory: Path) -> EtcdTLS | None:
        finish_interrupted_save(directory, cert=_FILES[0], key=_FILES[1])
        paths = [directory / name for name in _FILES]
        if not all(p.exists() for p in paths):
            return None
        cert, key, ca = (p.read_text() for p in paths)
        return cls(cert, key, ca)

    def files(self, directory: Path) -> tuple[Path, Path, Path]:
        cert, key, ca = (directory / name for name in _FILES)
        return cert, key, ca

    def client_ssl_context(self, directory: Path) -> ssl.SSLContext:
        cert, key, ca = self.files(directory)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(cert), str(key))
        return ctx


def issue_etcd_tls(raft_ca: RootCA, *, node_id: str, cluster_id: str, ips: list[str],
                   expiry: timedelta = NODE_CERT_EXPIRY) -> EtcdTLS:
    key, csr = generate_key_and_csr()
    cert = raft_ca.sign(csr, node_id=node_id, role="manager", cluster_id=cluster_id, expiry=expiry,
                        san_ips=sorted(set(ips) | {"127.0.0.1"}))
    return EtcdTLS(cert, key, raft_ca.cert_pem)
