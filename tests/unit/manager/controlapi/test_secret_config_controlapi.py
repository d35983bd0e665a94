"""Secrets and configs in the control API: swarmkit's create rules, sealing, labels-only update,
remove refused while a service uses the object, and the data never stored in clear."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest

from shoal.errors import Conflict, InvalidArgument, NotFound, SequenceConflict
from shoal.manager.controlapi.config import create_config, remove_config, update_config
from shoal.manager.controlapi.secret import create_secret, remove_secret, update_secret
from shoal.manager.controlapi.service import create_service
from shoal.manager.deks import ClusterKeys, StoreDEK, is_sealed
from shoal.manager.secretbox import new_key, open_sealed
from shoal.model.objects import Cluster, Config, Secret
from shoal.model.specs import ConfigSpec, Driver, SecretSpec, ServiceSpec, TaskSpec
from shoal.store.store import Store, Tx

PLAIN = b"correct horse battery staple"
KEYS = ClusterKeys(StoreDEK.generate())  # the secrets key itself is sealed in the store
SECRETS_KEY = new_key()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def swarm(store: Store) -> Store:
    def seed(tx: Tx) -> None:
        tx.create(Cluster(id="c1", secrets_key=KEYS.seal("c1", "secrets key", SECRETS_KEY)))

    await store.update(seed)
    return store


def _service(name: str, secrets: Sequence[Secret] = (), configs: Sequence[Config] = ()) -> ServiceSpec:
    cs = {
        "Image": "busybox",
        "Secrets": [{"SecretID": s.id, "SecretName": s.spec.name,
                     "File": {"Name": s.spec.name, "UID": "0", "GID": "0", "Mode": 292}} for s in secrets],
        "Configs": [{"ConfigID": c.id, "ConfigName": c.spec.name,
                     "File": {"Name": f"/{c.spec.name}", "UID": "0", "GID": "0", "Mode": 292}} for c in configs],
    }
    return ServiceSpec(name=name, task_template=TaskSpec(container_spec=cs))


async def test_secret_is_sealed_and_the_store_holds_no_plaintext(swarm: Store) -> None:
    secret = await create_secret(swarm, SecretSpec(name="db_pw", labels={"a": "b"}, data=b64(PLAIN)), keys=KEYS)
    stored = swarm.view().get(Secret, secret.id)
    assert stored is not None and stored.spec.data is None and stored.sealed
    cluster = swarm.view().cluster()
    assert cluster is not None
    assert open_sealed(KEYS.secrets_key(cluster), stored.sealed, secret_id=secret.id) == PLAIN
    _, kvs = await swarm.backend.list("/")
    raw = b"".join(kv.value for kv in kvs)
    assert PLAIN not in raw and b64(PLAIN).encode() not in raw
    assert SECRETS_KEY.encode() not in raw  # nor the key that opens it
    assert b'"db_pw"' in raw  # the search does see the secret's record


async def test_a_swarm_without_a_key_gets_one(store: Store) -> None:
    await store.update(lambda tx: tx.create(Cluster(id="c1")))
    secret = await create_secret(store, SecretSpec(name="s", data=b64(PLAIN)), keys=KEYS)
    cluster = store.view().cluster()
    assert cluster is not None and is_sealed(cluster.secrets_key)
    stored = store.view().get(Secret, secret.id)
    assert stored is not None
    assert open_sealed(KEYS.secrets_key(cluster), stored.sealed, secret_id=secret.id) == PLAIN


@pytest.mark.parametrize(("spec", "message"), [
    (SecretSpec(name="", data="eA=="), "name must be provided"),
    (SecretSpec(name="-bad", data="eA=="), "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed"),
    (SecretSpec(name="bad.", data="eA=="), "the start and end character must be [a-zA-Z0-9]"),
    (SecretSpec(name="a" * 65, data="eA=="), "only 64"),
    (SecretSpec(name="empty"), "secret data must be larger than 0 and less than 512000 bytes"),
    (SecretSpec(name="big", data=b64(b"x" * 512000)), "less than 512000 bytes"),
    (SecretSpec(name="d", data="eA==", driver=Driver(name="vault")), "secret driver 'vault' is not supported"),
    (SecretSpec(name="d", data="eA==", driver=Driver()), "secret driver must have a name"),
    (SecretSpec(name="t", data="eA==", templating=Driver(name="jinja")),
     "template driver 'jinja' is not supported: the only template driver is 'golang'"),
    (SecretSpec(name="b", data="not base64!"), "illegal base64"),
])
async def test_secret_create_refusals(swarm: Store, spec: SecretSpec, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        await create_secret(swarm, spec, keys=KEYS)
    assert message in err.value.message
    assert not swarm.view().all(Secret)


async def test_secret_limits_and_names_that_pass(swarm: Store) -> None:
    await create_secret(swarm, SecretSpec(name="a.b-c_d9", data=b64(b"x" * 511999)), keys=KEYS)
    await create_secret(swarm, SecretSpec(name="t", data="eA==", templating=Driver()), keys=KEYS)  # empty: none
    assert {s.spec.name for s in swarm.view().all(Secret)} == {"a.b-c_d9", "t"}


async def test_golang_templating_is_accepted_and_kept(swarm: Store) -> None:
    secret = await create_secret(swarm, SecretSpec(name="ts", data=b64(b"{{.Task.Slot}}"),
                                                   templating=Driver(name="golang")), keys=KEYS)
    config = await create_config(swarm, ConfigSpec(name="tc", data=b64(b"{{.Node.Hostname}}"),
                                                   templating=Driver(name="golang")))
    stored_secret = swarm.view().get(Secret, secret.id)
    stored_config = swarm.view().get(Config, config.id)
    assert stored_secret is not None and stored_secret.spec.templating == Driver(name="golang")
    assert stored_config is not None and stored_config.spec.templating == Driver(name="golang")
    assert stored_config.spec.data == b64(b"{{.Node.Hostname}}")  # expanded on the nodes only


async def test_names_are_unique(swarm: Store) -> None:
    await create_secret(swarm, SecretSpec(name="dup", data="eA=="), keys=KEYS)
    with pytest.raises(Conflict) as err:
        await create_secret(swarm, SecretSpec(name="dup", data="eA=="), keys=KEYS)
    assert err.value.message == "rpc error: code = AlreadyExists desc = secret dup already exists"
    assert err.value.status == 409
    await create_config(swarm, ConfigSpec(name="dup", data="eA=="))  # another kind: fine
    with pytest.raises(Conflict, match="config dup already exists"):
        await create_config(swarm, ConfigSpec(name="dup", data="eA=="))


async def test_secret_update_labels_only(swarm: Store) -> None:
    secret = await create_secret(swarm, SecretSpec(name="s", data=b64(PLAIN)), keys=KEYS)
    version = secret.version.index
    # A stack re-deploy sends the same data: accepted, labels replaced.
    updated = await update_secret(swarm, "s", version, SecretSpec(name="s", labels={"x": "1"}, data=b64(PLAIN)), keys=KEYS)
    assert updated.spec.labels == {"x": "1"} and updated.spec.data is None
    with pytest.raises(SequenceConflict):
        await update_secret(swarm, secret.id, version, SecretSpec(name="s"), keys=KEYS)
    version = updated.version.index
    for bad in (SecretSpec(name="s", data=b64(b"other")), SecretSpec(name="renamed")):
        with pytest.raises(InvalidArgument) as err:
            await update_secret(swarm, secret.id, version, bad, keys=KEYS)
        assert err.value.message == "rpc error: code = InvalidArgument desc = only updates to Labels are allowed"
    stored = swarm.view().get(Secret, secret.id)
    assert stored is not None and stored.spec.labels == {"x": "1"}
    with pytest.raises(NotFound, match="^secret nosuch not found$"):
        await update_secret(swarm, "nosuch", 1, SecretSpec(name="nosuch"), keys=KEYS)


async def test_config_keeps_its_data_and_updates_labels_only(swarm: Store) -> None:
    config = await create_config(swarm, ConfigSpec(name="conf", data=b64(b"k=v\n")))
    assert config.spec.data == b64(b"k=v\n")
    updated = await update_config(swarm, config.id[:6], config.version.index,
                                  ConfigSpec(name="conf", labels={"l": ""}, data=b64(b"k=v\n")))
    assert updated.spec.labels == {"l": ""} and updated.spec.data == b64(b"k=v\n")
    with pytest.raises(InvalidArgument, match="only updates to Labels are allowed"):
        await update_config(swarm, "conf", updated.version.index, ConfigSpec(name="conf", data=b64(b"k=w\n")))


@pytest.mark.parametrize(("spec", "message"), [
    (ConfigSpec(name="c"), "config data must be larger than 0 and less than 1024000 bytes"),
    (ConfigSpec(name="c", data=b64(b"x" * 1024000)), "less than 1024000 bytes"),
    (ConfigSpec(name="c_", data="eA=="), "invalid name"),
    (ConfigSpec(name="c", data="eA==", templating=Driver(name="jinja")), "template driver 'jinja'"),
])
async def test_config_create_refusals(swarm: Store, spec: ConfigSpec, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        await create_config(swarm, spec)


async def test_remove_refused_while_a_service_uses_it(swarm: Store) -> None:
    secret = await create_secret(swarm, SecretSpec(name="db", data="eA=="), keys=KEYS)
    config = await create_config(swarm, ConfigSpec(name="conf", data="eA=="))
    await create_service(swarm, _service("web", [secret], [config]))
    with pytest.raises(InvalidArgument) as err:
        await remove_secret(swarm, "db")
    assert err.value.message == ("rpc error: code = InvalidArgument desc = secret 'db' is in use by the "
                                 "following service: web")
    await create_service(swarm, _service("api", [secret]))
    with pytest.raises(InvalidArgument, match="secret 'db' is in use by the following services: api, web"):
        await remove_secret(swarm, secret.id)
    with pytest.raises(InvalidArgument, match="config 'conf' is in use by the following service: web"):
        await remove_config(swarm, "conf")
    other = await create_secret(swarm, SecretSpec(name="free", data="eA=="), keys=KEYS)
    await remove_secret(swarm, other.id[:8])
    assert swarm.view().get(Secret, other.id) is None
    with pytest.raises(NotFound, match="^config nosuch not found$"):
        await remove_config(swarm, "nosuch")
