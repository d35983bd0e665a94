"""The cluster CA (manager side): the root certificate and node certificate signing
(``rootca``), the managers' etcd certificates from the separate raft CA (``etcdtls``), and the
HTTPS endpoints joining nodes call (``server``). Roles, identities and join tokens, shared with
the node side, are in ``shoal.pki``."""

from shoal.manager.ca.rootca import (
    MIN_NODE_CERT_EXPIRY,
    NODE_CERT_EXPIRY,
    ROOT_CA_EXPIRY,
    RootCA,
    Signer,
)

__all__ = ["MIN_NODE_CERT_EXPIRY", "NODE_CERT_EXPIRY", "ROOT_CA_EXPIRY", "RootCA", "Signer"]
