"""SSL contexts for swarm TLS, built from PEM strings (NodeIdentity and the join client use them)."""

from __future__ import annotations

import os
import ssl
import tempfile

__all__ = [
    "ServingContext",
    "bootstrap_ssl_context",
    "ca_verifying_ssl_context",
    "client_ssl_context",
    "load_chain",
    "server_ssl_context",
]

# TLS 1.2 suites as swarmkit: ECDHE with AES-GCM or ChaCha20 (TLS 1.3 suites are all fine).
_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def _harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(_CIPHERS)
    return ctx


def load_chain(ctx: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """Load a cert chain and key given as PEM (ssl only reads files: a private temp dir); on a
    context already serving, it replaces the pair for the handshakes that follow."""
    with tempfile.TemporaryDirectory(prefix="shoal-tls-") as tmp:  # mode 0700
        cert_path = os.path.join(tmp, "cert.pem")
        key_path = os.path.join(tmp, "key.pem")
        for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)


def server_ssl_context(cert_pem: str, key_pem: str, ca_pem: str) -> ssl.SSLContext:
    """Serve with this chain; verify a client cert against the root CA if one is given."""
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    load_chain(ctx, cert_pem, key_pem)
    ctx.load_verify_locations(cadata=ca_pem)
    # Token-authenticated calls (/ca, /ca/join) arrive without a client certificate.
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


class ServingContext:
    """A listener's SSL context whose roots can be replaced while it serves.

    A renewed chain goes into the context in use (``load_chain``), but roots cannot be taken
    out of one: after a root rotation the old root must not verify clients any more. So each
    new handshake is switched, from its SNI callback (called on every ClientHello, with or
    without a server name), to the newest context given to ``use``; connections already made
    keep theirs.
    """

    def __init__(self, listener: ssl.SSLContext) -> None:
        self.listener = listener  # the one the server was created with
        self._current = listener
        listener.sni_callback = self._pick

    @property
    def current(self) -> ssl.SSLContext:
        return self._current

    def use(self, ctx: ssl.SSLContext) -> None:
        self._current = ctx

    def _pick(self, conn: ssl.SSLObject | ssl.SSLSocket, _name: str | None,
              ctx: ssl.SSLContext) -> None:
        if ctx is not self._current:
            conn.context = self._current


def ca_verifying_ssl_context(ca_pem: str) -> ssl.SSLContext:
    """A client that verifies the server against ``ca_pem`` and presents no certificate."""
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))  # CERT_REQUIRED, check_hostname
    ctx.load_verify_locations(cadata=ca_pem)
    return ctx


def client_ssl_context(cert_pem: str, key_pem: str, ca_pem: str) -> ssl.SSLContext:
    """Mutual TLS: present this chain and verify the server (name ``swarm-manager``)."""
    ctx = ca_verifying_ssl_context(ca_pem)
    load_chain(ctx, cert_pem, key_pem)
    return ctx


def bootstrap_ssl_context() -> ssl.SSLContext:
    """A client that verifies nothing: only for fetching the root CA to check against a token."""
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
