"""Join tokens: ``SWMTKN-1-<root CA digest, base 36, 50 chars>-<secret, base 36, 25 chars>``.

The controlapi makes one worker and one manager token per cluster (``generate_token``; rotating
one only changes its secret); the CA server matches a presented token to a role
(``match_token``); a joining node checks the remote root CA against it (``digest_matches``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shoal.errors import InvalidArgument
from shoal.model.ids import base36
from shoal.pki.subjects import Role

__all__ = [
    "TOKEN_PREFIX",
    "ParsedToken",
    "digest_matches",
    "generate_token",
    "match_token",
    "parse_token",
]

TOKEN_PREFIX = "SWMTKN"
_VERSION = "1"
_DIGEST_LEN = 50  # sha256 in base 36 takes at most 50 digits
_SECRET_LEN = 25  # 16 bytes in base 36 take at most 25 digits
_SECRET_BYTES = 16
_TOKEN_RE = re.compile(
    rf"{TOKEN_PREFIX}-(?P<version>1)-(?P<digest>[0-9a-z]{{{_DIGEST_LEN}}})"
    rf"-(?P<secret>[0-9a-z]{{{_SECRET_LEN}}})"
)


@dataclass(frozen=True)
class ParsedToken:
    """The three parts of a well-formed join token."""

    version: str
    digest_b36: str
    secret: str

    @property
    def digest(self) -> bytes:
        """The root CA digest the token names, as 32 bytes."""
        return int(self.digest_b36, 36).to_bytes(32, "big")


def generate_token(root_digest: bytes) -> str:
    """A new token for the root CA whose SHA-256 is ``root_digest``, with a fresh secret."""
    if len(root_digest) != hashlib.sha256().digest_size:
        raise InvalidArgument("root CA digest must be 32 bytes (SHA-256)")
    digest = base36(int.from_bytes(root_digest, "big"), _DIGEST_LEN)
    secret = base36(int.from_bytes(secrets.token_bytes(_SECRET_BYTES), "big"), _SECRET_LEN)
    return f"{TOKEN_PREFIX}-{_VERSION}-{digest}-{secret}"


def parse_token(token: str) -> ParsedToken:
    """The parts of ``token``; InvalidArgument("invalid join token") if it is malformed."""
    match = _TOKEN_RE.fullmatch(token.strip())
    if match is None or int(match["digest"], 36) >= 1 << 256:
        raise InvalidArgument("invalid join token")
    return ParsedToken(match["version"], match["digest"], match["secret"])


def digest_matches(token: str, root_cert_pem: str | bytes) -> bool:
    """Whether the root CA in ``root_cert_pem`` (its first certificate) is the one ``token`` names.

    A malformed token raises InvalidArgument; PEM data that holds no certificate never matches.
    """
    expected = parse_token(token).digest
    data = root_cert_pem.encode() if isinstance(root_cert_pem, str) else root_cert_pem
    try:
        cert = x509.load_pem_x509_certificates(data)[0]
    except (ValueError, IndexError):
        return False
    actual = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return hmac.compare_digest(actual, expected)


def match_token(token: str, worker_token: str | None, manager_token: str | None) -> Role | None:
    """The role ``token`` grants, comparing in constant time against both cluster tokens."""
    presented = token.strip().encode()
    is_worker = bool(worker_token) and hmac.compare_digest(presented, (worker_token or "").encode())
    is_manager = bool(manager_token) and hmac.compare_digest(
        presented, (manager_token or "").encode()
    )
    if is_manager:
        return "manager"
    if is_worker:
        return "worker"
    return None
