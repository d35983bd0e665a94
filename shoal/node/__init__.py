"""The node: its TLS identity (``identity``) and how it gets one by joining a swarm (``join``)."""

from shoal.node.identity import (
    NodeIdentity,
    PeerIdentity,
    bootstrap_ssl_context,
    generate_key_and_csr,
    peer_identity,
)
from shoal.node.join import join, renew

__all__ = [
    "NodeIdentity",
    "PeerIdentity",
    "bootstrap_ssl_context",
    "generate_key_and_csr",
    "join",
    "peer_identity",
    "renew",
]
