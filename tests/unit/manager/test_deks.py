"""The swarm's keys at rest: sealed in the cluster object under the store DEK, which lives on the
managers' disks only; what swarm init writes holds no private key in clear, and a manager
without the DEK says so instead of signing."""

from __future__ import annotations

import stat
from pathlib import Path

import msgspec
import pytest

from shoal.errors import InvalidArgument, Unavailable
from shoal.manager.bootstrap import NewSwarm, new_swarm
from shoal.manager.deks import ClusterKeys, StoreDEK, is_sealed
from shoal.manager.dispatcher.dependencies import SentData
from shoal.manager.secretbox import seal
from shoal.model.objects import Cluster, RootCAState, Secret, Task, TaskStatus
from shoal.model.requests import InitRequest
from shoal.model.specs import SecretSpec, TaskSpec
from shoal.model.states import TaskState
from shoal.pki import generate_key_and_csr
from shoal.store.store import Store, Tx


async def _swarm() -> NewSwarm:
    return await new_swarm(InitRequest(), hostname="h1", advertise_ip="127.0.0.1", manager_addr="127.0.0.1:2377")


async def test_swarm_init_stores_no_private_key_in_clear() -> None:
    swarm = await _swarm()
    root_ca = swarm.cluster.root_ca
    assert root_ca is not None
    stored = msgspec.json.encode(swarm.cluster)
    assert b"PRIVATE KEY" not in stored
    assert is_sealed(root_ca.ca_key) and is_sealed(root_ca.raft_ca_key)
    assert is_sealed(swarm.cluster.secrets_key)
    keys = ClusterKeys(swarm.dek)
    _, csr = generate_key_and_csr()
    cert = keys.root_ca(swarm.cluster).sign(csr, node_id="n1", role="worker", cluster_id=swarm.cluster_id)
    assert "BEGIN CERTIFICATE" in cert
    assert keys.raft_ca(swarm.cluster).can_sign
    assert len(keys.secrets_key(swarm.cluster)) == 44  # base64 of 32 bytes


async def test_without_the_dek_or_with_another_the_keys_stay_shut() -> None:
    swarm = await _swarm()
    with pytest.raises(Unavailable, match="holds no store DEK"):
        ClusterKeys(None).root_ca(swarm.cluster)
    with pytest.raises(Unavailable, match="cannot be opened with this manager's store DEK"):
        ClusterKeys(StoreDEK.generate()).root_ca(swarm.cluster)
    # A sealed value is bound to its place: the root key moved into the raft key's field does not open.
    assert swarm.cluster.root_ca is not None
    moved = Cluster(id=swarm.cluster_id, root_ca=RootCAState(
        raft_ca_cert=swarm.cluster.root_ca.ca_cert, raft_ca_key=swarm.cluster.root_ca.ca_key))
    with pytest.raises(Unavailable):
        ClusterKeys(swarm.dek).raft_ca(moved)


async def test_keys_in_clear_from_an_older_swarm_are_read_as_they_are() -> None:
    swarm = await _swarm()
    keys = ClusterKeys(swarm.dek)
    assert swarm.cluster.root_ca is not None
    clear = Cluster(id="old", secrets_key="a2V5", root_ca=RootCAState(
        ca_cert=swarm.cluster.root_ca.ca_cert,
        ca_key=keys.open(swarm.cluster_id, "root CA key", swarm.cluster.root_ca.ca_key)))
    assert keys.secrets_key(clear) == "a2V5" and ClusterKeys(None).secrets_key(clear) == "a2V5"
    assert keys.root_ca(clear).can_sign


def test_the_dek_file(tmp_path: Path) -> None:
    assert StoreDEK.load(tmp_path) is None
    dek = StoreDEK.generate()
    dek.save(tmp_path)
    path = StoreDEK.path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and StoreDEK.load(tmp_path) == dek
    assert StoreDEK.from_text(dek.text) == dek
    with pytest.raises(InvalidArgument):
        StoreDEK.from_text("c2hvcnQ=")


async def test_assignments_open_secrets_sealed_under_a_sealed_key(store: Store) -> None:
    swarm = await _swarm()
    keys = ClusterKeys(swarm.dek)
    secrets_key = keys.secrets_key(swarm.cluster)
    spec = {"Image": "busybox", "Secrets": [{"SecretID": "s1", "SecretName": "s1",
                                             "File": {"Name": "s1", "UID": "0", "GID": "0", "Mode": 292}}]}
    task = Task(id="t1", node_id="n1", spec=TaskSpec(container_spec=spec),
                status=TaskStatus(state=TaskState.ASSIGNED))

    def seed(tx: Tx) -> None:
        tx.create(swarm.cluster)
        tx.create(Secret(id="s1", spec=SecretSpec(name="s1"), sealed=seal(secrets_key, b"pw", secret_id="s1")))
    await store.update(seed)
    secrets, _ = SentData().collect(store.view(), [task], [task], full=True, keys=keys)
    assert [(d.id, d.data) for d in secrets] == [("s1", b"pw")]
    secrets, _ = SentData().collect(store.view(), [task], [task], full=True, keys=ClusterKeys(None))
    assert secrets == []  # logged: no secret can be sent without the DEK
