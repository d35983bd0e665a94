"""``swarm update --autolock`` and ``unlock-key --rotate`` in the control API (swarmkit's
UpdateCluster): a key made when autolock is turned on, a new one on rotation, none once off."""

from __future__ import annotations

import msgspec

from shoal.manager.bootstrap import new_swarm
from shoal.manager.controlapi.cluster import update_cluster
from shoal.manager.deks import ClusterKeys, is_sealed
from shoal.model.objects import Cluster
from shoal.model.requests import InitRequest
from shoal.model.specs import ClusterSpec
from shoal.store.store import Store


async def _update(store: Store, keys: ClusterKeys, *, autolock: bool, rotate: bool = False) -> Cluster:
    current = store.view().cluster()
    assert current is not None
    spec = msgspec.json.decode(msgspec.json.encode(current.spec), type=ClusterSpec)
    spec.encryption_config.auto_lock_managers = autolock
    return await update_cluster(store, current.version.index, spec, rotate_worker=False,
                                rotate_manager=False, rotate_unlock_key=rotate, keys=keys)


async def test_turn_on_rotate_turn_off(store: Store) -> None:
    swarm = await new_swarm(InitRequest(), hostname="h", advertise_ip="127.0.0.1", manager_addr="127.0.0.1:2377")
    await store.update(swarm.write)
    keys = ClusterKeys(swarm.dek)

    on = await _update(store, keys, autolock=True)
    first = keys.unlock_key(on)
    assert first is not None and is_sealed(on.unlock_key)
    same = await _update(store, keys, autolock=True)  # an unrelated update keeps the key
    assert first.same_as(keys.unlock_key(same))
    rotated = await _update(store, keys, autolock=True, rotate=True)
    second = keys.unlock_key(rotated)
    assert second is not None and not second.same_as(first)
    off = await _update(store, keys, autolock=False, rotate=True)  # rotation without autolock: none
    assert off.unlock_key == "" and keys.unlock_key(off) is None


async def test_rotation_is_ignored_while_autolock_is_off(store: Store) -> None:
    swarm = await new_swarm(InitRequest(), hostname="h", advertise_ip="127.0.0.1", manager_addr="127.0.0.1:2377")
    await store.update(swarm.write)
    cluster = await _update(store, ClusterKeys(swarm.dek), autolock=False, rotate=True)
    assert cluster.unlock_key == ""
