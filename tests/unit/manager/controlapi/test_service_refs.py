"""A service's Secrets and Configs references: swarmkit's shape rules and existence check, on
create and update; references in any key case are stored canonically."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from shoal.errors import InvalidArgument
from shoal.manager.controlapi.config import create_config
from shoal.manager.controlapi.secret import create_secret
from shoal.manager.controlapi.service import create_service, update_service
from shoal.manager.deks import ClusterKeys
from shoal.manager.secretbox import new_key
from shoal.model.codec import decode
from shoal.model.objects import Cluster, Config, Secret, Service
from shoal.model.specs import ConfigSpec, SecretSpec, ServiceSpec, TaskSpec
from shoal.store.store import Store, Tx

DATA = base64.b64encode(b"x").decode()
KEYS = ClusterKeys(None)  # a secrets key in clear: a swarm made before the store DEK


@pytest.fixture
async def objs(store: Store) -> tuple[Store, Secret, Config]:
    def seed(tx: Tx) -> None:
        tx.create(Cluster(id="c1", secrets_key=new_key()))

    await store.update(seed)
    secret = await create_secret(store, SecretSpec(name="pw", data=DATA), keys=KEYS)
    config = await create_config(store, ConfigSpec(name="conf", data=DATA))
    return store, secret, config


def _sref(s: Secret, target: str | None = "pw", name: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"SecretID": s.id, "SecretName": name or s.spec.name}
    if target is not None:
        ref["File"] = {"Name": target, "UID": "0", "GID": "0", "Mode": 292}
    return ref


def _cref(c: Config, target: str = "/conf") -> dict[str, Any]:
    return {"ConfigID": c.id, "ConfigName": c.spec.name,
            "File": {"Name": target, "UID": "0", "GID": "0", "Mode": 292}}


def _spec(**cs: Any) -> ServiceSpec:
    return ServiceSpec(name="web", task_template=TaskSpec(container_spec={"Image": "busybox", **cs}))


async def test_valid_references_are_accepted(objs: tuple[Store, Secret, Config]) -> None:
    store, secret, config = objs
    svc = await create_service(store, _spec(Secrets=[_sref(secret), _sref(secret, "/run/other")],
                                            Configs=[_cref(config)]))
    assert (svc.spec.task_template.container_spec or {})["Secrets"][1]["File"]["Name"] == "/run/other"


@pytest.mark.parametrize(("cs", "message"), [
    ({"Secrets": [{"SecretID": "", "SecretName": "pw", "File": {"Name": "pw"}}]}, "malformed secret reference"),
    ({"Secrets": [{"SecretID": "x"}]}, "malformed secret reference"),
    ({"Secrets": [{"SecretID": "x", "SecretName": "pw"}]}, "malformed secret reference, no target provided"),
    ({"Secrets": [{"SecretID": "x", "SecretName": "pw", "File": {"Name": ""}}]},
     "malformed file secret reference, invalid target file name provided"),
    ({"Secrets": [{"SecretID": "x", "SecretName": "a", "File": {"Name": "t"}},
                  {"SecretID": "y", "SecretName": "b", "File": {"Name": "t"}}]},
     "secret references 'a' and 'b' have a conflicting target: 't'"),
    ({"Secrets": [{"SecretID": "x", "SecretName": "a", "File": {"Name": "t", "UID": 0}}]},
     "File.UID must be a string"),
    ({"Secrets": [{"SecretID": "x", "SecretName": "a", "File": {"Name": "t", "Mode": "0444"}}]},
     "File.Mode must be a file mode"),
    ({"Configs": [{"ConfigID": "x", "ConfigName": "c"}]}, "either File or Runtime should be set"),
    ({"Configs": [{"ConfigID": "x", "ConfigName": "c", "File": {"Name": "f"}, "Runtime": {}}]},
     "cannot specify both File and Runtime"),
    ({"Configs": [{"ConfigID": "x", "ConfigName": "c", "Runtime": {}}]}, "has a Runtime target (a credential spec)"),
    ({"Configs": [{"ConfigID": "x", "ConfigName": "a", "File": {"Name": "/f"}},
                  {"ConfigID": "y", "ConfigName": "b", "File": {"Name": "/f"}}]},
     "config references 'a' and 'b' have a conflicting target: '/f'"),
    ({"Privileges": {"CredentialSpec": {"Config": "x"}}},
     "CredentialSpec references config 'x', but that config isn't in config references with RuntimeTarget"),
])
async def test_malformed_references(objs: tuple[Store, Secret, Config], cs: dict[str, Any], message: str) -> None:
    store, _, _ = objs
    with pytest.raises(InvalidArgument) as err:
        await create_service(store, _spec(**cs))
    assert message in err.value.message


async def test_unknown_or_misnamed_objects(objs: tuple[Store, Secret, Config]) -> None:
    store, secret, config = objs
    ghost = Secret(id="nosuchid", spec=SecretSpec(name="ghost"))
    with pytest.raises(InvalidArgument) as err:
        await create_service(store, _spec(Secrets=[_sref(ghost, "g")]))
    assert err.value.message == "rpc error: code = InvalidArgument desc = secret not found: ghost"
    with pytest.raises(InvalidArgument, match="secrets not found: ghost, other"):
        # the right ID under another name is not found either (swarmkit checks both)
        await create_service(store, _spec(Secrets=[_sref(ghost, "g"), _sref(secret, "o", name="other")]))
    with pytest.raises(InvalidArgument, match="config not found: conf"):
        await create_service(store, _spec(Configs=[{**_cref(config), "ConfigID": "nosuchid"}]))


async def test_update_checks_references(objs: tuple[Store, Secret, Config]) -> None:
    store, secret, _ = objs
    svc = await create_service(store, _spec())
    version = store.view().resolve(Service, svc.id).version.index
    ghost = Secret(id="nosuchid", spec=SecretSpec(name="ghost"))
    with pytest.raises(InvalidArgument, match="secret not found: ghost"):
        await update_service(store, svc.id, version, _spec(Secrets=[_sref(ghost)]))
    await update_service(store, svc.id, version, _spec(Secrets=[_sref(secret)]))


def test_reference_keys_are_canonical() -> None:
    body = (b'{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"x","secrets":[{"secretid":"i",'
            b'"secretname":"n","file":{"name":"t","uid":"0","gid":"0","mode":256}}],'
            b'"configs":[{"configID":"c","configname":"m","runtime":{}}]}}}')
    cs = decode(body, ServiceSpec).task_template.container_spec or {}
    assert cs["Secrets"] == [{"SecretID": "i", "SecretName": "n",
                              "File": {"Name": "t", "UID": "0", "GID": "0", "Mode": 256}}]
    assert cs["Configs"] == [{"ConfigID": "c", "ConfigName": "m", "Runtime": {}}]
