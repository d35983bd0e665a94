"""Docker's seccomp profile format: what decodes, and what is refused with the reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shoal.errors import InvalidArgument
from shoal.model.seccomp import decode_profile

OK_RULE = {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}


def _decode(**profile: Any) -> Any:
    return decode_profile(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", **profile}))


def test_dockers_own_shape_decodes() -> None:
    profile = _decode(
        defaultErrnoRet=1,
        archMap=[{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                 {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": None}],
        syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "why"},
                  {"name": "clone", "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
                   "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"]}},
                  {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                   "includes": {"minKernel": "4.8"}}])
    assert profile.default_errno_ret == 1
    assert profile.arch_map[0].sub_architectures == ("SCMP_ARCH_X86",)
    assert profile.syscalls[1].name == "clone" and profile.syscalls[1].args[0].value == 0x7E020000
    assert profile.syscalls[2].includes is not None
    assert profile.syscalls[2].includes.min_kernel == "4.8"


@pytest.mark.parametrize(("profile", "message"), [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown or unsupported action 'SCMP_ACT_NOPE'"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "unknown or unsupported action"),
    ({"syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "nmes": []}]},
     "unknown field `nmes`"),
    ({"syscalls": [{"names": ["x"], "name": "y", "action": "SCMP_ACT_ALLOW"}]},
     "both 'name' and 'names'"),
    ({"syscalls": [{"action": "SCMP_ACT_ALLOW"}]}, r"syscalls\[0\]: no syscall names"),
    ({"syscalls": [OK_RULE, {"names": ["x"], "action": "SCMP_ACT_ALLOW",
                             "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]},
     r"syscalls\[1\]: argument index must be 0-5"),
    ({"syscalls": [{**OK_RULE, "args": [{"index": 0, "value": 0, "op": "EQ"}]}]},
     "unknown operator 'EQ'"),
    ({"syscalls": [{**OK_RULE, "includes": {"minKernel": "4"}}]}, "invalid kernel version '4'"),
    ({"architectures": ["SCMP_ARCH_X86_64"],
      "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}, "both 'architectures' and 'archMap'"),
    ({"architectures": ["SCMP_ARCH_Z80"]}, "unknown architecture 'SCMP_ARCH_Z80'"),
    ({"flags": ["SECCOMP_FILTER_FLAG_LOG"]}, "flags are not supported"),
    ({"listenerPath": "/run/x.sock"}, "listenerPath"),
])
def test_bad_profiles_are_refused(profile: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match="^invalid Privileges.Seccomp.Profile: .*" + message):
        _decode(**profile)


def test_no_default_action_or_not_json_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="defaultAction must be set"):
        decode_profile(b'{"syscalls": []}')
    with pytest.raises(InvalidArgument, match="decoding seccomp profile failed"):
        decode_profile(b"{not json")
