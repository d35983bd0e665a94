"""Service create and update refuse capabilities and Privileges the nodes could not honour, with
Docker's words, instead of storing them; what they can honour is stored as sent."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from shoal.errors import InvalidArgument
from shoal.manager.controlapi.service import create_service, update_service
from shoal.model.objects import Service
from shoal.model.specs import ServiceSpec, TaskSpec
from shoal.store.store import Store


def _spec(**cs: Any) -> ServiceSpec:
    return ServiceSpec(name="web", task_template=TaskSpec(container_spec={"Image": "busybox", **cs}))


async def test_caps_and_privileges_shoal_honours_are_stored(store: Store) -> None:
    profile = base64.b64encode(b'{"defaultAction": "SCMP_ACT_ALLOW"}').decode()
    cs = {"CapabilityAdd": ["sys_admin"], "CapabilityDrop": ["CAP_CHOWN"],
          "Privileges": {"NoNewPrivileges": True, "Seccomp": {"Mode": "custom", "Profile": profile},
                         "AppArmor": {"Mode": "disabled"}}}
    svc = await create_service(store, _spec(**cs))
    stored = svc.spec.task_template.container_spec or {}
    assert {k: stored[k] for k in cs} == cs


@pytest.mark.parametrize(("cs", "message"), [
    ({"CapabilityAdd": ["CAP_FOO"]}, 'unknown capability: "CAP_FOO"'),
    ({"CapabilityDrop": ["bar"]}, 'unknown capability: "CAP_BAR"'),
    ({"Privileges": {"SELinuxContext": {"Level": "s0"}}},
     "Privileges.SELinuxContext.Level is not supported"),
    ({"Privileges": {"CredentialSpec": {"File": "x.json"}}},
     "Privileges.CredentialSpec is not supported"),
    ({"Privileges": {"Seccomp": {"Mode": "custom", "Profile": base64.b64encode(b"{}").decode()}}},
     "invalid Privileges.Seccomp.Profile: defaultAction must be set"),
])
async def test_what_nodes_cannot_honour_is_refused(store: Store, cs: dict[str, Any],
                                                   message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        await create_service(store, _spec(**cs))
    assert message in err.value.message
    assert not store.view().all(Service)


async def test_update_is_checked_too(store: Store) -> None:
    svc = await create_service(store, _spec())
    version = store.view().resolve(Service, svc.id).version.index
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_NOPE"'):
        await update_service(store, svc.id, version, _spec(CapabilityAdd=["NOPE"]))
    await update_service(store, svc.id, version, _spec(CapabilityAdd=["NET_ADMIN"]))
