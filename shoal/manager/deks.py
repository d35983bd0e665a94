"""The swarm's own keys at rest: sealed in the store under the store DEK, which only managers
hold, on their own disks, never in etcd (swarmkit manager/deks.go, design/raft_encryption.md).

The cluster object holds the root CA key (and during a root rotation the next root's), the raft
CA key and the secrets key. etcd keeps
everything it stores in clear on every manager's disk, in its snapshots and in any backup of
them, so those three are sealed (AES-256-GCM, bound to the cluster ID and to which key it is)
under a 32-byte key made by ``swarm init``: the store DEK. Each manager keeps it in
``<data-root>/swarm/manager/store-dek.json`` (0600); a joining or promoted manager gets it with
its etcd certificate from the manager-only ``POST /ca/raft``, and a demoted one deletes it.

SwarmKit encrypts its whole raft log with a per-manager DEK instead; etcd encrypts nothing, so
here the secrets are sealed field by field. Values stored in clear (a swarm made before the
store DEK) are read as they are, and stay so.

Autolock: the file then holds, wrapped under the unlock key (``shoal.pki.unlockkey``), the DEK
and the password of this manager's TLS key file (an encrypted PKCS#8 PEM), as swarmkit keeps its
raft DEK in PEM headers of the TLS key it encrypts with the KEK. One file holds both so that a
new unlock key is one atomic write: a crash never leaves them under two different keys. The
unlock key itself is in the cluster object, sealed under the DEK (``ClusterKeys.unlock_key``);
``KEKVersion`` is the cluster version it came with, so a manager never re-wraps with an older one.

Callers: ``bootstrap`` (seals the first keys), the CA server (opens the CA keys to sign), the
control API (the secrets key, the unlock key), the dispatcher (opens secrets for assignments),
the daemon (``LocalKeys``: shoal.daemon.autolock).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal.errors import FailedPrecondition, InvalidArgument, Unavailable
from shoal.fsutil import write_atomic
from shoal.manager.ca.rootca import RootCA
from shoal.manager.secretbox import new_key
from shoal.model.objects import Cluster
from shoal.pki.unlockkey import SwarmLocked, UnlockKey

__all__ = ["DEK_DIR", "DEK_FILE", "ClusterKeys", "LocalKeys", "StoreDEK", "is_sealed"]

DEK_DIR = "manager"  # under <data-root>/swarm, next to etcd/ and etcd-tls/
DEK_FILE = "store-dek.json"
_SEALED = "sealed:v1:"  # a sealed value: this prefix, then base64 of nonce + ciphertext
_NONCE = 12


@dataclass(frozen=True, slots=True)
class StoreDEK:
    key: bytes  # 32 random bytes

    @classmethod
    def generate(cls) -> StoreDEK:
        return cls(AESGCM.generate_key(bit_length=256))

    @property
    def text(self) -> str:
        """Base64: in the file and in ``/ca/raft``'s answer."""
        return base64.b64encode(self.key).decode()

    @classmethod
    def from_text(cls, text: str) -> StoreDEK:
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise InvalidArgument("invalid store DEK: expected 32 bytes of base64")
        return cls(key)

    @staticmethod
    def path(state_dir: Path) -> Path:
        return state_dir / DEK_DIR / DEK_FILE

    def save(self, state_dir: Path) -> None:
        """In clear (no autolock); ``LocalKeys.save`` writes it wrapped."""
        LocalKeys(self).save(state_dir, None)

    @classmethod
    def load(cls, state_dir: Path) -> StoreDEK | None:
        """The manager's DEK, or None when it has none (a swarm made before the store DEK);
        SwarmLocked if the file is wrapped (``LocalKeys.load`` opens it)."""
        keys = LocalKeys.load(state_dir, None)
        return keys.dek if keys is not None else None

    def seal(self, plain: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE)
        box = AESGCM(self.key).encrypt(nonce, plain.encode(), context.encode())
        return _SEALED + base64.b64encode(nonce + box).decode()

    def open(self, sealed: str, *, context: str) -> str:
        raw = base64.b64decode(sealed[len(_SEALED):])
        try:
            return AESGCM(self.key).decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except InvalidTag as exc:
            raise Unavailable(f"{context}: cannot be opened with this manager's store DEK") from exc


_WRAP_CONTEXT = "shoal manager keys v1"  # what a wrapped file's box is bound to


@dataclass(frozen=True, slots=True)
class LocalKeys:
    """``store-dek.json`` opened: the DEK and, while autolocked, the TLS key file's password."""

    dek: StoreDEK
    node_key_password: bytes | None = None
    kek_version: int = 0  # the cluster version whose unlock key (or none) wraps the file

    @staticmethod
    def _read(state_dir: Path) -> dict[str, object] | None:
        path = StoreDEK.path(state_dir)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise Unavailable(f"cannot read the store DEK {path}: {exc}") from exc
        return doc if isinstance(doc, dict) else {}

    @classmethod
    def is_wrapped(cls, state_dir: Path) -> bool:
        """Whether this manager is autolocked (its DEK file wrapped by the unlock key)."""
        doc = cls._read(state_dir)
        return doc is not None and bool(doc.get("Wrapped"))

    @classmethod
    def load(cls, state_dir: Path, kek: UnlockKey | None) -> LocalKeys | None:
        """None when there is no file; SwarmLocked if it is wrapped and ``kek`` is None;
        InvalidUnlockKey if ``kek`` does not open it. A file in clear needs no key."""
        doc = cls._read(state_dir)
        if doc is None:
            return None
        version = doc.get("KEKVersion")
        version = version if isinstance(version, int) else 0
        wrapped = doc.get("Wrapped")
        if not wrapped:
            return cls(StoreDEK.from_text(str(doc.get("Key", ""))), kek_version=version)
        if kek is None:
            raise SwarmLocked()
        inner = json.loads(kek.unwrap(str(wrapped), context=_WRAP_CONTEXT))
        password = base64.b64decode(str(inner.get("NodeKeyPassword", "")))
        return cls(StoreDEK.from_text(str(inner.get("Key", ""))), password or None, version)

    def save(self, state_dir: Path, kek: UnlockKey | None) -> None:
        """Replace the file in one step: wrapped under ``kek`` with the TLS key's password, or
        in clear (then there is no password: the TLS key is in clear too)."""
        doc: dict[str, object] = {"KEKVersion": self.kek_version}
        if kek is None:
            assert self.node_key_password is None, "a key password is never written in clear"
            doc["Key"] = self.dek.text
        else:
            inner = {"Key": self.dek.text,
                     "NodeKeyPassword": base64.b64encode(self.node_key_password or b"").decode()}
            doc["Wrapped"] = kek.wrap(json.dumps(inner).encode(), context=_WRAP_CONTEXT)
        path = StoreDEK.path(state_dir)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, json.dumps(doc), mode=0o600, durable=True)


def is_sealed(value: str) -> bool:
    return value.startswith(_SEALED)


class ClusterKeys:
    """The cluster object's keys, opened (and new ones sealed) with this manager's DEK; with
    none, values are in clear (a swarm made before the store DEK, or tests)."""

    def __init__(self, dek: StoreDEK | None) -> None:
        self._dek = dek

    @property
    def dek(self) -> StoreDEK | None:
        return self._dek

    def seal(self, cluster_id: str, what: str, plain: str) -> str:
        if self._dek is None:
            return plain
        return self._dek.seal(plain, context=f"{cluster_id}/{what}")

    def open(self, cluster_id: str, what: str, value: str) -> str:
        if not is_sealed(value):
            return value
        if self._dek is None:
            raise Unavailable(f"this manager cannot open the swarm's {what}: it holds no store DEK "
                              f"(<data-root>/swarm/{DEK_DIR}/{DEK_FILE})")
        return self._dek.open(value, context=f"{cluster_id}/{what}")

    def root_ca(self, cluster: Cluster) -> RootCA:
        """The swarm's root CA (during a rotation, the old one: it cross-signs the new)."""
        if cluster.root_ca is None:
            raise Unavailable("this manager has no swarm CA")
        key = self.open(cluster.id, "root CA key", cluster.root_ca.ca_key)
        return RootCA.from_pem(cluster.root_ca.ca_cert, key or None)  # none: an external CA's

    def signer(self, cluster: Cluster) -> RootCA:
        """What signs node certificates now: the root, or during a rotation the new root's key
        with the new root cross-signed by the old one after each certificate (swarmkit
        ``RootCAFromAPI``)."""
        rotation = cluster.root_ca.root_rotation if cluster.root_ca is not None else None
        if rotation is None:
            return self.root_ca(cluster)
        key = self.open(cluster.id, "root CA key", rotation.ca_key)
        cross = x509.load_pem_x509_certificate(rotation.cross_signed_ca_cert.encode())
        return RootCA.from_pem(rotation.ca_cert, key).with_chain([cross])

    def raft_ca(self, cluster: Cluster) -> RootCA:
        if cluster.root_ca is None:
            raise Unavailable("this manager has no swarm CA")
        key = self.open(cluster.id, "raft CA key", cluster.root_ca.raft_ca_key)
        return RootCA.from_pem(cluster.root_ca.raft_ca_cert, key)

    def secrets_key(self, cluster: Cluster) -> str:
        """The secrets key in clear, or "" when the cluster has none yet."""
        if not cluster.secrets_key:
            return ""
        return self.open(cluster.id, "secrets key", cluster.secrets_key)

    def unlock_key(self, cluster: Cluster) -> UnlockKey | None:
        """The swarm's unlock key, None when autolock is off."""
        if not cluster.unlock_key:
            return None
        return UnlockKey.parse(self.open(cluster.id, "unlock key", cluster.unlock_key))

    def seal_unlock_key(self, cluster: Cluster, key: UnlockKey) -> str:
        """Sealed as the cluster object keeps it: never in clear, so a DEK is required."""
        if self._dek is None:
            raise FailedPrecondition("autolock needs a store DEK, which this swarm (made by an "
                                     "older shoald) does not have")
        return self.seal(cluster.id, "unlock key", key.text)

    def new_secrets_key(self, cluster: Cluster) -> tuple[str, str]:
        """A new secrets key: in clear, and as the cluster object stores it."""
        plain = new_key()
        return plain, self.seal(cluster.id, "secrets key", plain)
