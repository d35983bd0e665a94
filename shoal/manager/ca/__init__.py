"""The cluster CA: root certificate, node certificate signing, join tokens.

Modules: ``subjects`` (roles as OUs, reading a peer's identity), ``rootca`` (``RootCA``, the
``Signer`` protocol), ``tokens`` (``SWMTKN-1-...`` join tokens). Node IDs come from
``shoal.model.ids.new_id``. The node side (key, CSR, TLS contexts, join client) is
``shoal.node``.
"""

from shoal.manager.ca.rootca import (
    MIN_NODE_CERT_EXPIRY,
    NODE_CERT_EXPIRY,
    ROOT_CA_EXPIRY,
    RootCA,
    Signer,
)
from shoal.manager.ca.subjects import (
    CA_CN,
    MANAGER_OU,
    SERVER_NAME,
    WORKER_OU,
    PeerIdentity,
    Role,
    identity_from_certificate,
    peer_identity,
)
from shoal.manager.ca.tokens import (
    ParsedToken,
    digest_matches,
    generate_token,
    match_token,
    parse_token,
)

__all__ = [
    "CA_CN",
    "MANAGER_OU",
    "MIN_NODE_CERT_EXPIRY",
    "NODE_CERT_EXPIRY",
    "ROOT_CA_EXPIRY",
    "SERVER_NAME",
    "WORKER_OU",
    "ParsedToken",
    "PeerIdentity",
    "Role",
    "RootCA",
    "Signer",
    "digest_matches",
    "generate_token",
    "identity_from_certificate",
    "match_token",
    "parse_token",
    "peer_identity",
]
