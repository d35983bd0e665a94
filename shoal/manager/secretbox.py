"""Secrets' data at rest: sealed with AES-256-GCM under the cluster's secrets key, which the
store holds sealed in turn under the managers' store DEK (``deks.py``), itself never in the
store. The store, and so etcd's files on every manager, hold the ciphertext; the plain bytes
exist only in a manager's memory while it answers a create or fills an assignment, and on a
node in tmpfs."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal.errors import ShoalError

__all__ = ["new_key", "open_sealed", "seal"]

_NONCE = 12


def new_key() -> str:
    """A fresh secrets key, base64 (as ``Cluster.secrets_key`` holds it)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def seal(key: str, data: bytes, *, secret_id: str) -> str:
    """``data`` sealed, bound to ``secret_id`` (a sealed value cannot be moved to another
    secret); base64 of nonce + ciphertext."""
    nonce = os.urandom(_NONCE)
    box = AESGCM(base64.b64decode(key)).encrypt(nonce, data, secret_id.encode())
    return base64.b64encode(nonce + box).decode()


def open_sealed(key: str, sealed: str, *, secret_id: str) -> bytes:
    raw = base64.b64decode(sealed)
    try:
        return AESGCM(base64.b64decode(key)).decrypt(raw[:_NONCE], raw[_NONCE:], secret_id.encode())
    except Exception as exc:  # InvalidTag: another key, or a value that was tampered with
        raise ShoalError(f"secret {secret_id}: its sealed data cannot be opened") from exc
