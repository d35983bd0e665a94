"""The sandbox a ContainerSpec asks for: capability names as Docker normalizes them, the
effective set after CapabilityAdd/Drop (moby TweakCapabilities), and Privileges honoured or
refused naming the field."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shoal.errors import InvalidArgument
from shoal.model.codec import decode
from shoal.model.privileges import (
    DEFAULT_CAPS,
    KNOWN_CAPS,
    Sandbox,
    effective_caps,
    normalize_caps,
    sandbox,
)
from shoal.model.specs import ServiceSpec

EVERY = frozenset(KNOWN_CAPS)


def _b64(profile: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(profile).encode()).decode()


def test_docker_default_caps_are_the_fourteen() -> None:
    assert len(DEFAULT_CAPS) == 14 and set(DEFAULT_CAPS) <= EVERY
    assert effective_caps((), (), available=EVERY) == DEFAULT_CAPS
    assert len(KNOWN_CAPS) == 41 and KNOWN_CAPS[21] == "CAP_SYS_ADMIN"  # bit numbers


def test_names_with_or_without_prefix_any_case() -> None:
    assert normalize_caps(["net_admin", "CAP_sys_admin", "Cap_Kill", "all"]) == (
        "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_KILL", "ALL")
    assert normalize_caps(None) == ()


@pytest.mark.parametrize("name", ["FOO", "CAP_FOO", "RESET"])
def test_unknown_capability_is_refused_as_docker_says(name: str) -> None:
    bare = name.removeprefix("CAP_")
    with pytest.raises(InvalidArgument, match=f'^unknown capability: "CAP_{bare}"$'):
        normalize_caps([name])


def test_add_and_drop() -> None:
    caps = effective_caps(("CAP_NET_ADMIN", "CAP_CHOWN"), ("CAP_KILL", "CAP_CHOWN"),
                          available=EVERY)
    assert "CAP_NET_ADMIN" in caps and "CAP_KILL" not in caps
    assert "CAP_CHOWN" in caps  # in both lists: stays added, as Docker
    assert len(caps) == len(set(caps))


def test_all_added_is_what_the_node_has_minus_drops() -> None:
    node = EVERY - {"CAP_SYS_RESOURCE"}  # as on a host without it
    caps = effective_caps(("ALL",), ("CAP_NET_RAW",), available=node)
    assert set(caps) == node - {"CAP_NET_RAW"}


def test_all_dropped_leaves_only_the_added() -> None:
    assert effective_caps(("CAP_CHOWN",), ("ALL",), available=EVERY) == ("CAP_CHOWN",)
    assert effective_caps((), ("ALL",), available=EVERY) == ()


def test_an_added_cap_the_node_lacks_is_refused() -> None:
    with pytest.raises(InvalidArgument, match='not available in the current environment: '
                                              '"CAP_SYS_RESOURCE"'):
        effective_caps(("CAP_SYS_RESOURCE",), (), available=EVERY - {"CAP_SYS_RESOURCE"})


def test_nothing_asked_is_docker_default() -> None:
    assert sandbox({"Image": "x"}) == Sandbox()
    assert sandbox({"Privileges": {"NoNewPrivileges": False, "CredentialSpec": {},
                                   "SELinuxContext": {"Disable": True},
                                   "AppArmor": {"Mode": "disabled"},
                                   "Seccomp": {"Mode": "default"}}}) == Sandbox()


def test_stack_deploys_nulls_are_accepted() -> None:
    body = {"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "x", "Privileges": {
        "CredentialSpec": None, "SELinuxContext": None, "NoNewPrivileges": False}}}}
    spec = decode(json.dumps(body), ServiceSpec)
    assert sandbox(spec.task_template.container_spec or {}) == Sandbox()


def test_privileges_in_any_key_case_are_read() -> None:
    body = {"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "x", "privileges": {
        "noNewPrivileges": True, "seccomp": {"mode": "unconfined"}}}}}
    cs = decode(json.dumps(body), ServiceSpec).task_template.container_spec or {}
    assert cs["Privileges"] == {"NoNewPrivileges": True, "Seccomp": {"Mode": "unconfined"}}
    assert sandbox(cs) == Sandbox(no_new_privileges=True, seccomp="unconfined")


def test_custom_profile_is_decoded() -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    box = sandbox({"Privileges": {"Seccomp": {"Mode": "custom", "Profile": _b64(profile)}}})
    assert box.seccomp == "custom" and box.seccomp_profile is not None
    assert box.seccomp_profile.syscalls[0].errno_ret == 13


@pytest.mark.parametrize(("privileges", "message"), [
    ({"CredentialSpec": {"File": "spec.json"}}, "Privileges.CredentialSpec is not supported"),
    ({"CredentialSpec": {"Registry": "r"}}, "Privileges.CredentialSpec is not supported"),
    ({"SELinuxContext": {"Type": "svirt_t"}}, "Privileges.SELinuxContext.Type is not supported"),
    ({"AppArmor": {"Mode": "custom"}}, "invalid Privileges.AppArmor.Mode 'custom'"),
    ({"Seccomp": {"Mode": "strict"}}, "invalid Privileges.Seccomp.Mode 'strict'"),
    ({"Seccomp": {"Mode": "custom"}}, 'Mode "custom" needs a Profile'),
    ({"Seccomp": {"Mode": "unconfined", "Profile": "e30="}},
     'Profile is only used with Mode "custom"'),
    ({"Seccomp": {"Mode": "custom", "Profile": "not base64!"}}, "illegal base64 data"),
    ({"Seccomp": {"Mode": "custom", "Profile": "e30="}}, "defaultAction must be set"),
    ({"NoNewPrivileges": "yes"}, "NoNewPrivileges must be a boolean"),
    ({"Ulimits": []}, "Privileges.Ulimits is not supported"),
])
def test_what_shoal_cannot_honour_is_refused(privileges: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        sandbox({"Privileges": privileges})


def test_bad_capability_lists_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="CapabilityDrop must be a list of strings"):
        sandbox({"CapabilityDrop": "CHOWN"})
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_NOPE"'):
        sandbox({"CapabilityDrop": ["nope"]})
