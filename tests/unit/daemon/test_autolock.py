"""A manager's key files under autolock: wrapped by the unlock key, re-wrapped when the cluster's
key changes (the previous key opens them until then), in clear again when autolock is off, and
every half-done write still opened and completed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shoal.daemon.autolock import Autolock
from shoal.manager.bootstrap import NewSwarm, new_swarm
from shoal.manager.deks import ClusterKeys, LocalKeys, StoreDEK
from shoal.model.requests import InitRequest
from shoal.pki.identity import NodeIdentity, generate_key_and_csr, key_is_encrypted
from shoal.pki.unlockkey import InvalidUnlockKey, SwarmLocked, UnlockKey


def _swarm(autolock: bool = True) -> NewSwarm:
    return asyncio.run(new_swarm(InitRequest(auto_lock_managers=autolock), hostname="h", advertise_ip="127.0.0.1",
                     manager_addr="127.0.0.1:2377"))


def _init(tmp_path: Path, autolock: bool = True) -> tuple[Autolock, NewSwarm]:
    swarm = _swarm(autolock)
    lock = Autolock(tmp_path)
    lock.adopt(swarm.dek, swarm.unlock_key, swarm.identity)
    return lock, swarm


def _no_clear_secret(root: Path, *secrets: str) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_text()
            assert not any(s in data for s in secrets), path


def test_init_with_autolock_locks_the_restart(tmp_path: Path) -> None:
    lock, swarm = _init(tmp_path)
    assert swarm.unlock_key is not None and lock.enabled
    assert lock.locked_on_disk() and key_is_encrypted(lock.certs_dir)
    _no_clear_secret(tmp_path, swarm.unlock_key.text, swarm.dek.text, "BEGIN PRIVATE KEY")
    restarted = Autolock(tmp_path)
    with pytest.raises(SwarmLocked):
        restarted.open(None)
    with pytest.raises(InvalidUnlockKey):
        restarted.open(UnlockKey.generate())
    identity = restarted.open(swarm.unlock_key)
    assert identity is not None and identity.key_pem == swarm.identity.key_pem
    assert restarted.dek == swarm.dek and restarted.enabled


def test_without_autolock_nothing_is_locked(tmp_path: Path) -> None:
    lock, swarm = _init(tmp_path, autolock=False)
    assert not lock.locked_on_disk() and not lock.enabled
    identity = Autolock(tmp_path).open(None)
    assert identity is not None and identity.node_id == swarm.node_id


def test_rotation_keeps_the_old_key_until_rewrapped(tmp_path: Path) -> None:
    _, swarm = _init(tmp_path)
    old, new = swarm.unlock_key, UnlockKey.generate()
    assert old is not None
    # A manager down during the rotation: its files still open with the old key only.
    with pytest.raises(InvalidUnlockKey):
        Autolock(tmp_path).open(new)
    back = Autolock(tmp_path)
    identity = back.open(old)
    assert identity is not None
    # Its store then shows the new key: it re-wraps, and from then on only the new key opens.
    assert back.apply(identity, new, version=20)
    assert not back.apply(identity, new, version=21)  # nothing new
    with pytest.raises(InvalidUnlockKey):
        Autolock(tmp_path).open(old)
    assert Autolock(tmp_path).open(new) is not None
    # A view older than the one the files follow changes nothing.
    assert not back.apply(identity, old, version=19)
    assert Autolock(tmp_path).open(new) is not None


def test_turning_autolock_on_and_off(tmp_path: Path) -> None:
    lock, swarm = _init(tmp_path, autolock=False)
    kek = UnlockKey.generate()
    assert lock.apply(swarm.identity, kek, version=5)
    assert lock.locked_on_disk() and key_is_encrypted(lock.certs_dir)
    assert Autolock(tmp_path).open(kek) is not None
    assert lock.apply(swarm.identity, None, version=6)
    assert not lock.locked_on_disk() and not lock.enabled
    assert Autolock(tmp_path).open(None) is not None
    _no_clear_secret(tmp_path, kek.text)


def test_a_crash_while_turning_on_is_completed_at_unlock(tmp_path: Path) -> None:
    lock, swarm = _init(tmp_path, autolock=False)
    kek = UnlockKey.generate()
    # The DEK file was wrapped, the TLS key not yet encrypted: read as locked.
    LocalKeys(swarm.dek, b"p" * 32, 5).save(tmp_path, kek)
    assert not key_is_encrypted(lock.certs_dir)
    restarted = Autolock(tmp_path)
    assert restarted.locked_on_disk()
    assert restarted.open(kek) is not None
    assert key_is_encrypted(lock.certs_dir)


def test_a_crash_while_turning_off_still_unlocks(tmp_path: Path) -> None:
    _, swarm = _init(tmp_path)
    assert swarm.unlock_key is not None
    swarm.identity.save(tmp_path / "certificates")  # the TLS key in clear, the DEK file still wrapped
    restarted = Autolock(tmp_path)
    assert restarted.locked_on_disk()
    identity = restarted.open(swarm.unlock_key)
    assert identity is not None and restarted.apply(identity, None, version=9)
    assert not Autolock(tmp_path).locked_on_disk()


def test_a_worker_key_is_never_encrypted(tmp_path: Path) -> None:
    lock, swarm = _init(tmp_path)
    key, csr = generate_key_and_csr()
    cert = ClusterKeys(swarm.dek).root_ca(swarm.cluster).sign(
        csr, node_id=swarm.node_id, role="worker", cluster_id=swarm.cluster_id)
    worker = NodeIdentity(cert_pem=cert, key_pem=key, ca_pem=swarm.identity.ca_pem)
    lock.save_identity(worker)  # a demotion's renewed certificate
    assert not key_is_encrypted(lock.certs_dir)
    lock.save_identity(swarm.identity)
    assert key_is_encrypted(lock.certs_dir)
    lock.forget(swarm.identity)
    assert not key_is_encrypted(lock.certs_dir) and lock.dek is None and not lock.enabled


def test_a_new_manager_writes_its_dek_wrapped_at_once(tmp_path: Path) -> None:
    swarm = _swarm()
    lock = Autolock(tmp_path)
    swarm.identity.save(lock.certs_dir)  # as joined, before /ca/raft
    lock.adopt(StoreDEK.from_text(swarm.dek.text), swarm.unlock_key, swarm.identity)
    assert LocalKeys.is_wrapped(tmp_path) and key_is_encrypted(lock.certs_dir)
