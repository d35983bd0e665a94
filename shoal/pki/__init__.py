"""Node identity shared by both sides of every TLS connection: roles as certificate OUs and a
peer's identity (``subjects``), join tokens (``tokens``), a node's key, certificate and TLS
contexts (``identity``), a certificate and key replaced together on disk (``keypair``), the
autolock unlock key (``unlockkey``).
Imports only model, errors and fsutil, so managers and agents both use it."""

from shoal.pki._tls import ServingContext
from shoal.pki.identity import NodeIdentity, bootstrap_ssl_context, generate_key_and_csr
from shoal.pki.subjects import (
    CA_CN,
    MANAGER_OU,
    SERVER_NAME,
    WORKER_OU,
    PeerIdentity,
    Role,
    identity_from_certificate,
    peer_identity,
)
from shoal.pki.tokens import ParsedToken, digest_matches, generate_token, match_token, parse_token

__all__ = [
    "CA_CN",
    "MANAGER_OU",
    "SERVER_NAME",
    "WORKER_OU",
    "NodeIdentity",
    "ParsedToken",
    "PeerIdentity",
    "Role",
    "ServingContext",
    "bootstrap_ssl_context",
    "digest_matches",
    "generate_key_and_csr",
    "generate_token",
    "identity_from_certificate",
    "match_token",
    "parse_token",
    "peer_identity",
]
