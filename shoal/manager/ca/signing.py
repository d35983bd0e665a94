"""Who signs a node certificate: an external CA that holds the swarm root's key, or the root
key in the cluster object; and the check of what an external CA sends back.

A ``NodeSigner`` is made per signing from the cluster as it is then (swarmkit ca/server.go
``UpdateRootCA``, ``signNodeCert``): the cfssl ExternalCAs whose ``CACert`` is the swarm's root
certificate (an empty one stands for it) are tried in order, over mutual TLS with this manager's
node certificate, the server verified against that ``CACert``; only when none matches does the
manager sign with the root key, and only if the cluster holds it. A certificate from an external
CA must be for the CSR's key, carry the subject asked for and chain to the root: it is refused
here, with the reason, rather than by the node that would have received it.

Callers: the CA server (``/ca/join``, ``/ca/renew``) and ``swarm init`` (``bootstrap``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from cryptography.hazmat.primitives import serialization

from shoal.aio import Backoff
from shoal.errors import FailedPrecondition, InvalidArgument, Unavailable
from shoal.manager.ca.external import CFSSL, REQUEST_TIMEOUT, cfssl_sign, sign_request
from shoal.manager.ca.rootca import NODE_CERT_EXPIRY, CSRKey, RootCA, csr_public_key, issued_by
from shoal.model.specs import ExternalCA
from shoal.pki._tls import ca_verifying_ssl_context
from shoal.pki.identity import NodeIdentity
from shoal.pki.subjects import Role, identity_from_certificate, ou_for_role, parse_certificates

__all__ = ["SIGN_WAIT", "NodeSigner", "matching_external_cas"]

log = logging.getLogger(__name__)

# How long a signing waits for an external CA that does not answer before it fails: well inside
# the joining node's 20 s, so the node gets this reason rather than its own timeout.
SIGN_WAIT = 10.0

Sleep = Callable[[float], Awaitable[None]]


def matching_external_cas(root: RootCA, external_cas: Sequence[ExternalCA] | None) -> list[ExternalCA]:
    """The cfssl ExternalCAs that sign for ``root``, in order (swarmkit filterExternalCAURLS)."""
    wanted = _ders(root.cert_pem)
    out = []
    for ca in external_cas or []:
        if ca.protocol.lower() != CFSSL:
            continue
        try:
            if (_ders(ca.ca_cert) if ca.ca_cert else wanted) == wanted:
                out.append(ca)
        except InvalidArgument:
            log.warning("external CA %s: its CACert is not a PEM certificate; not used", ca.url)
    return out


class NodeSigner:
    """Signs node certificates for one cluster, with the signer its CA configuration names."""

    def __init__(self, root: RootCA, external_cas: Sequence[ExternalCA] | None, *, cluster_id: str,
                 identity: NodeIdentity | None, expiry: timedelta = NODE_CERT_EXPIRY) -> None:
        self._root = root
        self._external = matching_external_cas(root, external_cas)
        self._cluster_id = cluster_id
        self._identity = identity  # None only at swarm init: the first manager has no cert yet
        self._expiry = expiry

    @property
    def external_urls(self) -> list[str]:
        return [ca.url for ca in self._external]

    async def sign(self, csr_pem: str, *, node_id: str, role: Role, san_ips: Sequence[str] = (),
                   wait: float = SIGN_WAIT, sleep: Sleep = asyncio.sleep) -> str:
        """The certificate chain for ``csr_pem``. An external CA that cannot be reached is
        tried again for ``wait`` seconds, then ``Unavailable`` names it; its refusal, or a
        certificate that fails the checks, is ``FailedPrecondition`` at once."""
        csr_key = csr_public_key(csr_pem)  # a bad CSR is refused before anything is sent
        if not self._external:
            if not self._root.can_sign:
                raise Unavailable("no valid signer found: the swarm's root CA key is held by an "
                                  "external CA and no external CA is configured for it")
            return self._root.sign(csr_pem, node_id=node_id, role=role, cluster_id=self._cluster_id,
                                   expiry=self._expiry, san_ips=san_ips)
        request = sign_request(csr_pem, node_id=node_id, role=role, cluster_id=self._cluster_id,
                               san_ips=san_ips)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        backoff = Backoff(initial=0.5, cap=4.0, jitter=0.2)
        timeout = REQUEST_TIMEOUT  # the first round in full; later ones within what is left
        while True:
            try:
                cert = await self._sign_external(request, timeout=timeout)
            except Unavailable as exc:
                delay = backoff.next()
                if loop.time() + delay >= deadline:
                    raise Unavailable(f"the swarm's external CA could not sign the certificate of "
                                      f"node {node_id} (tried for {wait:g}s): {exc.message}") from exc
                log.info("external CA unavailable (%s); trying again in %.1fs", exc.message, delay)
                await sleep(delay)
                timeout = max(0.5, min(REQUEST_TIMEOUT, deadline - loop.time()))
                continue
            except FailedPrecondition as exc:
                raise FailedPrecondition(f"the swarm's external CA refused the certificate of node "
                                         f"{node_id}: {exc.message}") from exc
            return self._check(cert, csr_key=csr_key, node_id=node_id, role=role)

    async def _sign_external(self, request: dict[str, object], *, timeout: float) -> str:
        """The first certificate an external CA issues, URLs in order (swarmkit
        ExternalCA.Sign); all failing: the last error."""
        last: Unavailable | FailedPrecondition | None = None
        for ca in self._external:
            try:
                cert = await cfssl_sign(ca.url, request, ssl_ctx=self._ssl_context(ca), timeout=timeout)
            except (Unavailable, FailedPrecondition) as exc:
                log.debug("external CA %s: %s", ca.url, exc.message)
                last = exc
                continue
            log.info("certificate signed by the external CA at %s", ca.url)
            return cert
        assert last is not None  # there is at least one external CA
        raise last

    def _ssl_context(self, ca: ExternalCA) -> ssl.SSLContext:
        server_ca = ca.ca_cert or self._root.cert_pem
        if self._identity is None:
            return ca_verifying_ssl_context(server_ca)
        return self._identity.external_ssl_context(server_ca)

    def _check(self, cert_pem: str, *, csr_key: CSRKey, node_id: str, role: Role) -> str:
        """``cert_pem`` if it is the certificate asked for, chained to the swarm's root."""
        what = "the certificate from the swarm's external CA"
        try:
            chain = parse_certificates(cert_pem, what=what)
        except InvalidArgument as exc:
            raise FailedPrecondition(exc.message) from exc
        if chain[0].public_key() != csr_key:
            raise FailedPrecondition(f"{what} is not for the key of the node's CSR")
        peer = identity_from_certificate(chain[0])
        if peer is None or (peer.node_id, peer.role, peer.cluster_id) != (node_id, role, self._cluster_id):
            raise FailedPrecondition(f"{what} does not have the subject asked for "
                                     f"(CN={node_id}, OU={ou_for_role(role)}, O={self._cluster_id})")
        issuers = [*chain[1:], self._root.certificate]
        if not all(issued_by(cert, issuer) for cert, issuer in zip(chain, issuers, strict=True)):
            raise FailedPrecondition(f"{what} is not signed by the swarm's root CA")
        return cert_pem


def _ders(pem: str) -> list[bytes]:
    """A PEM bundle as DER, to compare certificates whatever their PEM text looks like."""
    return [c.public_bytes(serialization.Encoding.DER) for c in parse_certificates(pem)]
