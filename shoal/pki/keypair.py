"""A certificate and its key on disk, replaced together and never left mismatched.

Used for the node identity (``identity.py``: swarm-node.crt/.key) and a manager's etcd
certificate (shoal.manager.ca.etcdtls: node.crt/.key). ``save_pair`` writes every file before
renaming any, the certificate last; a crash between the key's rename and the certificate's
leaves the new key beside the old certificate and the new certificate in its temporary file.
``finish_interrupted_save``, called before each load, completes that rename, so a node that
crashed mid-renewal restarts with its new pair instead of a key that fits nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shoal.fsutil import fsync_dir, temp_path, write_together

__all__ = ["finish_interrupted_save", "key_matches", "save_pair"]

log = logging.getLogger(__name__)


def save_pair(directory: Path, *, cert: tuple[str, str], key: tuple[str, str],
              others: Sequence[tuple[str, str, int]] = ()) -> None:
    """Write ``others`` (name, PEM, mode), then the key (0600), then the certificate (0644),
    each given as (file name, PEM), durably."""
    write_together(directory, [*others, (key[0], key[1], 0o600), (cert[0], cert[1], 0o644)],
                   durable=True)


def key_matches(cert_pem: str, key_pem: str, *, password: bytes | None = None) -> bool:
    """Whether the first certificate of ``cert_pem`` is for the private key ``key_pem``
    (encrypted under ``password``, an autolocked manager's)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), password=password)
    except (ValueError, TypeError):
        return False
    return bool(key.public_key() == cert.public_key())


def finish_interrupted_save(directory: Path, *, cert: str, key: str,
                            password: bytes | None = None) -> bool:
    """Complete a ``save_pair`` cut short between its last two renames; True if it did
    (``password``: the key's, if it is encrypted)."""
    pending, cert_path, key_path = temp_path(directory / cert), directory / cert, directory / key
    try:
        new_cert, old_cert, key_pem = pending.read_text(), cert_path.read_text(), key_path.read_text()
    except FileNotFoundError:
        return False
    if (key_matches(old_cert, key_pem, password=password)
            or not key_matches(new_cert, key_pem, password=password)):
        return False
    os.replace(pending, cert_path)
    fsync_dir(directory)
    log.warning("finished an interrupted certificate save in %s", directory)
    return True
