"""Autolock's DEK file: the store DEK and the TLS key's password wrapped under the unlock key in
one file, and the unlock key kept in the cluster object sealed under the DEK, never in clear."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import msgspec
import pytest

from shoal.errors import FailedPrecondition
from shoal.manager.bootstrap import new_swarm
from shoal.manager.deks import ClusterKeys, LocalKeys, StoreDEK, is_sealed
from shoal.model.requests import InitRequest
from shoal.pki.unlockkey import InvalidUnlockKey, SwarmLocked, UnlockKey


def test_wrapped_file_opens_with_its_key_only(tmp_path: Path) -> None:
    dek, kek = StoreDEK.generate(), UnlockKey.generate()
    LocalKeys(dek, b"p" * 32, 7).save(tmp_path, kek)
    path = StoreDEK.path(tmp_path)
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dek.text not in text and kek.text not in text and "Key" not in json.loads(text)
    assert LocalKeys.is_wrapped(tmp_path)
    with pytest.raises(SwarmLocked):
        LocalKeys.load(tmp_path, None)
    with pytest.raises(SwarmLocked):
        StoreDEK.load(tmp_path)
    with pytest.raises(InvalidUnlockKey):
        LocalKeys.load(tmp_path, UnlockKey.generate())
    assert LocalKeys.load(tmp_path, kek) == LocalKeys(dek, b"p" * 32, 7)


def test_clear_file_needs_no_key(tmp_path: Path) -> None:
    assert LocalKeys.load(tmp_path, None) is None and not LocalKeys.is_wrapped(tmp_path)
    dek = StoreDEK.generate()
    LocalKeys(dek, None, 3).save(tmp_path, None)
    assert not LocalKeys.is_wrapped(tmp_path)
    assert LocalKeys.load(tmp_path, None) == LocalKeys(dek, None, 3)
    assert LocalKeys.load(tmp_path, UnlockKey.generate()) == LocalKeys(dek, None, 3)
    assert StoreDEK.load(tmp_path) == dek
    with pytest.raises(AssertionError):
        LocalKeys(dek, b"p" * 32).save(tmp_path, None)  # a password is never written in clear


def test_init_autolock_seals_the_unlock_key_in_the_cluster() -> None:
    swarm = asyncio.run(new_swarm(InitRequest(auto_lock_managers=True), hostname="h", advertise_ip="127.0.0.1",
                      manager_addr="127.0.0.1:2377"))
    assert swarm.unlock_key is not None and swarm.cluster.spec.encryption_config.auto_lock_managers
    assert is_sealed(swarm.cluster.unlock_key)
    assert swarm.unlock_key.text.encode() not in msgspec.json.encode(swarm.cluster)
    keys = ClusterKeys(swarm.dek)
    assert swarm.unlock_key.same_as(keys.unlock_key(swarm.cluster))
    plain = asyncio.run(new_swarm(InitRequest(), hostname="h", advertise_ip="127.0.0.1", manager_addr="127.0.0.1:2377"))
    assert plain.unlock_key is None and plain.cluster.unlock_key == ""
    assert ClusterKeys(plain.dek).unlock_key(plain.cluster) is None


def test_no_unlock_key_without_a_dek() -> None:
    cluster = asyncio.run(new_swarm(InitRequest(), hostname="h", advertise_ip="127.0.0.1",
                        manager_addr="127.0.0.1:2377")).cluster
    with pytest.raises(FailedPrecondition, match="autolock needs a store DEK"):
        ClusterKeys(None).seal_unlock_key(cluster, UnlockKey.generate())
