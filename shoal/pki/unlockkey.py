"""The swarm's unlock key (autolock): Docker's ``SWMKEY-1-<base64>`` key-encryption key.

With autolock on, a manager's key files are wrapped under it (``shoal.manager.deks``), so a
restarted manager stays locked until ``docker swarm unlock`` gives it back. The key is 32
random bytes; the text is swarmkit's (manager/encryption: the prefix, then base64 without
padding). It is never written to disk in clear: the cluster object holds it sealed under the
store DEK, and a manager keeps it in memory only.

Wrapping derives an AES-256-GCM key from it (HKDF-SHA256), so the unlock key itself is used for
nothing but that derivation; each box is bound to what it holds (``context``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shoal.errors import InvalidArgument, Unauthenticated, Unavailable

__all__ = ["LOCKED", "PREFIX", "InvalidUnlockKey", "SwarmLocked", "UnlockKey"]

PREFIX = "SWMKEY-1-"
LOCKED = ('Swarm is encrypted and needs to be unlocked before it can be used. '
          'Please use "docker swarm unlock" to unlock it.')
_INVALID = "swarm could not be unlocked: invalid key provided"
_KEY_BYTES = 32
_NONCE = 12
_INFO = b"shoal autolock wrap v1"


class SwarmLocked(Unavailable):
    """A manager's key files are wrapped and no unlock key was given (dockerd's errSwarmLocked)."""

    def __init__(self) -> None:
        super().__init__(LOCKED)


class InvalidUnlockKey(Unauthenticated):
    """The key given does not open this manager's files (dockerd's invalidUnlockKey, 401)."""

    def __init__(self) -> None:
        super().__init__(_INVALID)


@dataclass(frozen=True, slots=True)
class UnlockKey:
    raw: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> UnlockKey:
        return cls(os.urandom(_KEY_BYTES))

    @property
    def text(self) -> str:
        """What ``docker swarm unlock-key`` shows."""
        return PREFIX + base64.b64encode(self.raw).decode().rstrip("=")

    @classmethod
    def parse(cls, text: str) -> UnlockKey:
        """Docker's key text; InvalidArgument "invalid key string" otherwise (as swarmkit's
        ParseHumanReadableKey, but a key must also be 32 bytes, the only kind ever made)."""
        body = text.strip()
        if not body.startswith(PREFIX):
            raise InvalidArgument("invalid key string")
        body = body[len(PREFIX):]
        try:
            raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != _KEY_BYTES or "=" in body:
            raise InvalidArgument("invalid key string")
        return cls(raw)

    def same_as(self, other: UnlockKey | None) -> bool:
        return other is not None and hmac.compare_digest(self.raw, other.raw)

    def _aead(self) -> AESGCM:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(self.raw)
        return AESGCM(key)

    def wrap(self, plain: bytes, *, context: str) -> str:
        """base64 of nonce + AES-256-GCM box, bound to ``context``."""
        nonce = os.urandom(_NONCE)
        return base64.b64encode(nonce + self._aead().encrypt(nonce, plain, context.encode())).decode()

    def unwrap(self, wrapped: str, *, context: str) -> bytes:
        """The plain bytes; InvalidUnlockKey when this key (or ``context``) does not fit."""
        try:
            raw = base64.b64decode(wrapped, validate=True)
            return self._aead().decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise InvalidUnlockKey() from None
