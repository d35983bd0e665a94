"""Autolock on a manager's disk (swarmkit node/node.go, manager/deks.go, ca/keyreadwriter.go).

Two files hold what a stolen disk must not give away: the node's TLS key
(``certificates/swarm-node.key``) and the store DEK (``manager/store-dek.json``). With autolock
the DEK file is wrapped under the unlock key and also holds a random password, under which the
TLS key is an encrypted PKCS#8 PEM (``shoal.manager.deks.LocalKeys``). The unlock key is kept in
memory only; a restarted manager finds its files wrapped and stays locked until ``swarm unlock``.

A manager follows the cluster object: a new unlock key (rotation), a first one (autolock turned
on) or none (turned off) is applied to its files as soon as its store shows it, never for an
older cluster version than the one the files were wrapped for. Until a manager has re-wrapped
(one that was down during a rotation), its files open with the key it last had, as swarmkit's.

Write order, so a crash never leaves a file nothing opens: turning on writes the wrapped DEK file
(with the password) first, then the encrypted TLS key; turning off writes the TLS key in clear
first, then the DEK file in clear. A rotation is one atomic write. Either half-done state is
read as locked, unlocked with the key in the DEK file, and completed (``open``, then ``apply``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from shoal.manager.deks import LocalKeys, StoreDEK
from shoal.model.states import NodeRole
from shoal.pki.identity import NodeIdentity, key_is_encrypted
from shoal.pki.unlockkey import UnlockKey

__all__ = ["Autolock"]

log = logging.getLogger(__name__)

CERTS_DIR = "certificates"
_PASSWORD_BYTES = 32


class Autolock:
    """This node's key files and the unlock key that wraps them (in memory only)."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir  # <data-root>/swarm
        self._kek: UnlockKey | None = None
        self._local: LocalKeys | None = None  # None: no DEK file (a worker, or an old swarm)

    @property
    def certs_dir(self) -> Path:
        return self._dir / CERTS_DIR

    @property
    def dek(self) -> StoreDEK | None:
        return self._local.dek if self._local is not None else None

    @property
    def enabled(self) -> bool:
        return self._kek is not None

    def locked_on_disk(self) -> bool:
        """Whether a restart must wait for ``swarm unlock``: either file is wrapped."""
        return LocalKeys.is_wrapped(self._dir) or key_is_encrypted(self.certs_dir)

    def open(self, kek: UnlockKey | None) -> NodeIdentity | None:
        """Read the DEK file (with ``kek`` if it is wrapped: SwarmLocked without one,
        InvalidUnlockKey if it does not fit) and the identity; finish a half-done enabling."""
        local = LocalKeys.load(self._dir, kek)
        password = local.node_key_password if local is not None else None
        identity = NodeIdentity.load(self.certs_dir, key_password=password)
        self._local = local
        self._kek = kek if password is not None else None
        if (identity is not None and identity.role == NodeRole.MANAGER and password is not None
                and not key_is_encrypted(self.certs_dir)):
            identity.save(self.certs_dir, key_password=password)  # a crash after the DEK file
        return identity

    def save_identity(self, identity: NodeIdentity) -> None:
        """The node's certificate and key, the key encrypted while autolocked (a worker's never:
        Docker locks managers only)."""
        password = self._local.node_key_password if self._local is not None else None
        if identity.role != NodeRole.MANAGER:
            password = None
        identity.save(self.certs_dir, key_password=password)

    def adopt(self, dek: StoreDEK, kek: UnlockKey | None, identity: NodeIdentity) -> None:
        """A new manager's DEK (swarm init, or from ``/ca/raft``), wrapped at once if the swarm
        is autolocked; then its TLS key, encrypted under the new password."""
        password = os.urandom(_PASSWORD_BYTES) if kek is not None else None
        local = LocalKeys(dek, password)
        local.save(self._dir, kek)
        self._local, self._kek = local, kek
        self.save_identity(identity)

    def apply(self, identity: NodeIdentity, kek: UnlockKey | None, version: int) -> bool:
        """Re-wrap for the unlock key the cluster has at ``version`` (None: autolock off);
        True if the files changed."""
        local = self._local
        if local is None or version < local.kek_version:
            return False  # no DEK file, or a view older than the one the files follow
        unchanged = kek.same_as(self._kek) if kek is not None else self._kek is None
        if unchanged:
            return False
        if kek is None:  # turned off: the TLS key in clear first, then the DEK file
            new = LocalKeys(local.dek, None, version)
            identity.save(self.certs_dir, key_password=None)
            new.save(self._dir, None)
        else:  # turned on or rotated: the DEK file (one write), then the TLS key if it was clear
            new = LocalKeys(local.dek, local.node_key_password or os.urandom(_PASSWORD_BYTES), version)
            new.save(self._dir, kek)
            if local.node_key_password is None:
                identity.save(self.certs_dir, key_password=new.node_key_password)
        self._local, self._kek = new, kek
        log.info("this manager's key files are %s", "wrapped by the unlock key" if kek else "in clear")
        return True

    def forget(self, identity: NodeIdentity | None) -> None:
        """This node stops managing: its TLS key in clear again, before the DEK file goes."""
        if identity is not None and self._local is not None:
            identity.save(self.certs_dir, key_password=None)
        self._local = self._kek = None
